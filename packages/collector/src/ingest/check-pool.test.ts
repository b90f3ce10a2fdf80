import { afterAll, describe, expect, it } from 'vitest';
import { newEventId, randomSaltSource, sealEvent, ZERO_HASH } from '@vigil/protocol';
import { checkBody, type CheckLimits } from './batch-check.js';
import { CheckPool } from './check-pool.js';

const limits: CheckLimits = {
  maxEvents: 100,
  maxRecordBytes: 32 << 10,
  clockSkewMs: 300_000,
  backfillAfterMs: 86_400_000,
};
const salts = randomSaltSource();

function body(count: number, tamper = -1): Buffer {
  let prev = ZERO_HASH;
  const events = Array.from({ length: count }, (_, seq) => {
    const e = sealEvent(
      {
        id: newEventId(),
        time: new Date().toISOString(),
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: `u${seq}`, email: 'x@example.eu' },
      },
      { stream: 'pool/test/1', seq, prev },
      salts,
    ).event;
    prev = e.hash;
    return seq === tamper ? { ...e, hash: ZERO_HASH } : e;
  });
  return Buffer.from(JSON.stringify({ events }));
}

// The pool runs the compiled worker (dist/ingest/check-worker.js): `npm test` builds first.
describe('CheckPool', () => {
  const pool = new CheckPool(2, limits, 4);
  afterAll(() => pool.close());
  const context = { tenantId: 't', keyId: 'k', receivedAt: Date.now(), limits };

  it('gives the same answers as the checks on the calling thread', async () => {
    for (const b of [body(20), body(5, 2), Buffer.from('{"events":')]) {
      const inline = checkBody(Buffer.from(b), 'application/json', context);
      const pooled = await pool.run({
        body: Buffer.from(b),
        contentType: 'application/json',
        tenantId: 't',
        keyId: 'k',
        receivedAt: context.receivedAt,
      });
      if (inline.ok && pooled.ok) {
        expect(pooled.ids).toEqual(inline.ids);
        expect(Buffer.from(pooled.messages[0]!.value).toString()).toBe(
          Buffer.from(inline.messages[0]!.value).toString(),
        );
      } else {
        expect(pooled).toEqual(inline);
      }
    }
  });

  it('refuses work beyond its bound with a retriable 503 instead of queueing it', async () => {
    const many = Array.from({ length: 12 }, () =>
      pool.run({
        body: body(50),
        contentType: 'application/json',
        tenantId: 't',
        keyId: 'k',
        receivedAt: Date.now(),
      }),
    );
    const results = await Promise.all(many);
    expect(results.filter((r) => !r.ok && r.status === 503).length).toBeGreaterThan(0);
    expect(results.filter((r) => r.ok).length).toBeGreaterThanOrEqual(8);
  });
});
