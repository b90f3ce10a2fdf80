import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import {
  newEventId,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type SealedEvent,
} from '@vigil/protocol';
import { CollectorErrorCodes, SinkRunner } from '@vigil/collector';
import { createAuditClient, type RetryInfo } from '@vigil/sdk';
import { DEFAULT_RETENTION_DAYS, loadConfig } from '../config/config.js';
import { runRole, type RunningRole } from './roles.js';

/**
 * Admission control end to end in one process: the real embedded file log and chDB, the roles
 * as `vigil start` runs them (with and without its sink). Refused batches answer 503 with Retry-After
 * and the one error body; every batch answered 202 ends up stored.
 */

const salts = randomSaltSource();
const dir = mkdtempSync(join(tmpdir(), 'vigil-backpressure-'));
const run = randomBytes(4).toString('hex');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A body of `count` sealed events on a stream of its own: one log record. */
function body(count = 3): { events: SealedEvent[]; ids: string[] } {
  const stream = `bp/${newEventId()}`;
  let prev = ZERO_HASH;
  const events: SealedEvent[] = [];
  for (let seq = 0; seq < count; seq++) {
    const e = sealEvent(
      {
        id: newEventId(),
        time: new Date().toISOString(),
        action: 'document.viewed',
        category: 'data_access',
        outcome: 'success',
        actor: { type: 'user', id: 'alice' },
      },
      { stream, seq, prev },
      salts,
    ).event;
    events.push(e);
    prev = e.hash;
  }
  return { events, ids: events.map((e) => JSON.parse(e.record).id as string) };
}

let roles = 0;

/** `vigil start` in this process; without its sink when `sink` is false. */
async function startRole(
  flags: Record<string, unknown>,
  sink = true,
  listen = false,
): Promise<RunningRole> {
  const n = ++roles;
  const config = loadConfig({
    role: 'start',
    flags: {
      dataDir: join(dir, `role-${n}`),
      'store.path': join(dir, 'store'),
      'store.database': `bp_${n}_${run}`,
      'log.fsync': 'never',
      'geoip.enabled': false,
      'ingest.workers': 0,
      'rateLimit.ingestPerMinute': 0,
      port: 0,
      ...flags,
    },
  });
  return runRole(config, {
    logger: pino({ level: 'silent' }),
    listen,
    print: () => {},
    sink,
  });
}

async function post(role: RunningRole, payload: { events: SealedEvent[] }) {
  const res = await role.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: {
      authorization: `Bearer ${role.credentials?.ingestKey ?? ''}`,
      'content-type': 'application/json',
    },
    payload: JSON.stringify(payload),
  });
  return {
    status: res.statusCode,
    retryAfter: res.headers['retry-after'],
    body: res.json<{ error?: { code: string; message: string; details: unknown[] } }>(),
  };
}

async function storedCount(role: RunningRole, ids: readonly string[]): Promise<number> {
  const store = role.store;
  if (!store) throw new Error('the role has no store');
  const rows = await store.query<{ n: string }>(
    `SELECT count() AS n FROM ${store.table('events')} WHERE toString(id) IN {ids:Array(String)}`,
    { ids },
  );
  return Number(rows[0]?.n ?? 0);
}

describe('ingest admission on the embedded log and chDB', () => {
  it('refuses with 503 + Retry-After once the sinks lag beyond ingest.maxLagRecords, admits again once they catch up, and stores every event it acknowledged', async () => {
    // Without its sink (as a collector on Kafka): nothing consumes the sinks' group until the
    // test starts a sink, so every accepted batch adds to the lag.
    const role = await startRole({ 'ingest.maxLagRecords': 3 }, false);
    let sink: SinkRunner | undefined;
    try {
      const admission = role.admission;
      if (!admission || !role.log || !role.store) throw new Error('collector without admission');
      await admission.refresh();
      const bootstrapLag = admission.lag; // the bootstrap's own system events
      const acked: string[] = [];
      for (let i = bootstrapLag; i <= 3; i++) {
        const b = body();
        const res = await post(role, b);
        expect(res.status).toBe(202);
        acked.push(...b.ids);
      }
      await admission.refresh();
      expect(admission.lag).toBeGreaterThan(3);

      const refused = body();
      const res = await post(role, refused);
      expect(res.status).toBe(503);
      expect(res.retryAfter).toBe('2');
      expect(res.body.error?.code).toBe(CollectorErrorCodes.OVERLOADED);
      expect(res.body.error?.message).toContain('ingest.maxLagRecords');
      expect(res.body.error?.details).toEqual([]);
      const ready = await role.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json<{ checks: Record<string, string> }>().checks['lag']).toMatch(/^behind/);

      // A sink catches up; once the collector reads the lag again, events come in again.
      const config = loadConfig({ role: 'start', flags: { dataDir: join(dir, 'sink') } });
      sink = new SinkRunner({
        store: role.store,
        log: role.log,
        config: config.sink,
        retentionDays: DEFAULT_RETENTION_DAYS,
        logger: pino({ level: 'silent' }),
      });
      await sink.start();
      await expect
        .poll(
          async () => {
            await admission.refresh();
            return admission.lag;
          },
          { timeout: 20_000, interval: 100 },
        )
        .toBe(0);
      const again = body();
      const back = await post(role, again);
      expect(back.status).toBe(202);
      acked.push(...again.ids);

      await expect
        .poll(() => storedCount(role, acked), { timeout: 20_000, interval: 200 })
        .toBe(acked.length);
      expect(await storedCount(role, refused.ids)).toBe(0);
    } finally {
      await sink?.stop();
      await role.close();
    }
  });

  it('refuses with 503 + Retry-After while the sink of `vigil start` is stopped, and admits again once it runs', async () => {
    const role = await startRole({});
    try {
      const sink = role.sink;
      if (!sink) throw new Error('vigil start without a sink');
      await expect.poll(() => sink.state, { timeout: 20_000 }).toBe('running');
      const acked: string[] = [];
      const first = body();
      expect((await post(role, first)).status).toBe(202);
      acked.push(...first.ids);

      await sink.stop();
      const refused = body();
      const res = await post(role, refused);
      expect(res.status).toBe(503);
      expect(res.retryAfter).toBe('5');
      expect(res.body.error?.code).toBe(CollectorErrorCodes.SINK_NOT_READY);

      await sink.start();
      await expect.poll(() => sink.state, { timeout: 20_000 }).toBe('running');
      const again = body();
      expect((await post(role, again)).status).toBe(202);
      acked.push(...again.ids);
      await expect
        .poll(() => storedCount(role, acked), { timeout: 20_000, interval: 200 })
        .toBe(acked.length);
      expect(await storedCount(role, refused.ids)).toBe(0);
    } finally {
      await role.close();
    }
  });

  it('the SDK waits Retry-After on a 503, keeps the events in its spool, and delivers every one once the collector admits again', async () => {
    const role = await startRole({}, true, true);
    const spool = mkdtempSync(join(dir, 'spool-'));
    const audit = createAuditClient({
      endpoint: role.url,
      apiKey: role.credentials?.ingestKey ?? '',
      service: 'backpressure-test',
      batch: { maxEvents: 10, maxDelayMs: 10 },
      retry: { initialDelayMs: 50, maxDelayMs: 200 },
      spool: { dir: spool },
      logger: false,
    });
    const retries: RetryInfo[] = [];
    audit.on('retry', (r) => retries.push(r));
    try {
      const sink = role.sink;
      if (!sink) throw new Error('vigil start without a sink');
      await expect.poll(() => sink.state, { timeout: 20_000 }).toBe('running');
      await sink.stop();
      const ids: string[] = [];
      for (let i = 0; i < 25; i++) {
        const id = newEventId();
        ids.push(id);
        await audit.record({
          id,
          action: 'document.viewed',
          category: 'data_access',
          outcome: 'success',
          actor: { type: 'user', id: `u-${i}` },
        });
      }
      // Refused: nothing delivered yet, the events wait in the spool.
      expect(await audit.flush({ deadlineMs: 1_500 })).toBe(false);
      const refusals = retries.filter((r) => r.status === 503);
      expect(refusals.length).toBeGreaterThan(0);
      // Retry-After: 5 overrides the SDK's own 200 ms ceiling.
      expect(Math.min(...refusals.map((r) => r.delayMs))).toBeGreaterThanOrEqual(5_000);
      expect(audit.stats().spoolBytes).toBeGreaterThan(0);
      expect(await storedCount(role, ids)).toBe(0);

      await sink.start();
      expect(await audit.flush({ deadlineMs: 20_000 })).toBe(true);
      await expect
        .poll(() => storedCount(role, ids), { timeout: 20_000, interval: 200 })
        .toBe(ids.length);
    } finally {
      await audit.close({ deadlineMs: 2_000 });
      await role.close();
    }
  }, 60_000);
});
