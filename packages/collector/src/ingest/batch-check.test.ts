import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  newEventId,
  randomSaltSource,
  sealEvent,
  sha256Hex,
  ZERO_HASH,
  type SealedEvent,
} from '@vigil/protocol';
import { checkBody, type BatchCheck, type CheckLimits } from './batch-check.js';

const limits: CheckLimits = {
  maxEvents: 100,
  maxRecordBytes: 32 << 10,
  clockSkewMs: 300_000,
  backfillAfterMs: 86_400_000,
};
const context = { tenantId: 't', keyId: 'k', receivedAt: Date.now(), limits };
const salts = randomSaltSource();

function sealed(seq: number, prev: string, metadata: Record<string, string> = {}): SealedEvent {
  return sealEvent(
    {
      id: newEventId(),
      time: new Date(context.receivedAt).toISOString(),
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'service', id: 'api' },
      metadata,
    },
    { stream: 'utf8/test', seq, prev },
    salts,
  ).event;
}

function unchained(action: string): string {
  return `{"action":"${action}","category":"system","outcome":"success","actor":{"type":"service","id":"api"}}`;
}

const bytes = (...parts: (string | number[])[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

function refused(result: BatchCheck): Extract<BatchCheck, { ok: false }> {
  if (result.ok) throw new Error('the batch was accepted');
  return result;
}

describe('invalid UTF-8 in a body', () => {
  // "x\xff\xc0\x80y": a byte that never starts a character, then an overlong NUL.
  const bad = [0x78, 0xff, 0xc0, 0x80, 0x79];

  it('refuses a JSON body, naming the event and the field', () => {
    const body = bytes(
      `{"events":[${unchained('a.ok')},`,
      '{"action":"b.bad","category":"system","outcome":"success","actor":{"type":"service","id":"',
      bad,
      `"}},${unchained('c.ok')}]}`,
    );
    const r = refused(checkBody(body, 'application/json', context));
    expect(r.status).toBe(400);
    expect(r.code).toBe('VIGIL_ERR_INVALID_BATCH');
    expect(r.details).toEqual([
      { index: 1, path: '/actor/id', message: expect.stringContaining('not valid UTF-8') },
    ]);
    // The same bytes in a bare array, and gzip-compressed (the route inflates before the checks).
    const array = refused(
      checkBody(gunzipSync(gzipSync(body.subarray(10, -1))), 'application/json', context),
    );
    expect(array.details[0]).toMatchObject({ index: 1, path: '/actor/id' });
  });

  it('refuses an NDJSON body, naming the event among the non-blank lines', () => {
    const body = bytes(
      `${unchained('a.ok')}\n\n${unchained('b.ok')}\n`,
      '{"action":"c.bad","category":"system","outcome":"success","actor":{"type":"service","id":"api"},"metadata":{"',
      bad,
      `":1}}\n`,
    );
    const r = refused(checkBody(body, 'application/x-ndjson', context));
    expect(r.status).toBe(400);
    expect(r.details).toEqual([
      {
        index: 2,
        path: expect.stringMatching(/^\/metadata\//),
        message: expect.stringContaining('UTF-8'),
      },
    ]);
  });

  it('refuses bad bytes outside any string, and truncated characters', () => {
    const outside = refused(
      checkBody(bytes('{"events":[', bad, ']}'), 'application/json', context),
    );
    expect(outside).toMatchObject({ status: 400, code: 'VIGIL_ERR_BAD_REQUEST' });
    const truncated = refused(
      checkBody(
        bytes(`[${unchained('a.ok')},{"action":"b`, [0xe2, 0x82], `"}]`),
        'application/json',
        context,
      ),
    );
    expect(truncated.details[0]).toMatchObject({ index: 1, path: '/action' });
    const lineOutside = refused(
      checkBody(bytes(`${unchained('a.ok')}\n`, bad, '\n'), 'application/x-ndjson', context),
    );
    expect(lineOutside.details[0]).toMatchObject({ index: 1 });
  });

  it('accepts well-formed UTF-8 of every length, and U+FFFD sent as itself', () => {
    const body = `[{"action":"a.ok","category":"system","outcome":"success","actor":{"type":"service","id":"api"},"metadata":{"t":"é€𝄞\uFFFD"}}]`;
    const ok = checkBody(Buffer.from(body), 'application/json', context);
    expect(ok).toMatchObject({ ok: true });
  });
});

describe('lone surrogates', () => {
  it('refuses a sealed record string holding one: its hash would be taken over U+FFFD', () => {
    const e = sealed(0, ZERO_HASH, { note: '\uFFFD' });
    // Two record strings, one with U+FFFD and one with a lone surrogate escape in its place,
    // have the same UTF-8 bytes after lenient encoding: the hash cannot tell them apart.
    const wire = JSON.stringify({ events: [e] }).replace('\uFFFD', '\\ud800');
    expect(sha256Hex(JSON.parse(wire).events[0].record as string)).toBe(e.hash);
    const r = refused(checkBody(Buffer.from(wire), 'application/json', context));
    expect(r.status).toBe(400);
    expect(r.details).toEqual([
      { index: 0, path: '/record', message: expect.stringContaining('lone surrogate') },
    ]);
  });

  it('refuses a record text holding one, escaped, naming the field', () => {
    const e = sealed(0, ZERO_HASH, { note: 'plain' });
    const record = e.record.replace('"plain"', '"\\udc00"');
    const r = refused(
      checkBody(
        Buffer.from(JSON.stringify({ events: [{ record, hash: sha256Hex(record) }] })),
        'application/json',
        context,
      ),
    );
    expect(r.details).toEqual([
      {
        index: 0,
        path: '/record/metadata/note',
        message: expect.stringContaining('lone surrogate'),
      },
    ]);
  });

  it('refuses an unchained event holding one, naming the field', () => {
    const body = `[${unchained('a.ok')},{"action":"b.bad","category":"system","outcome":"success","actor":{"type":"service","id":"api"},"metadata":{"k\\ud800":"v"}}]`;
    const r = refused(checkBody(Buffer.from(body), 'application/json', context));
    expect(r.details).toEqual([
      { index: 1, path: '/metadata/k\ud800', message: expect.stringContaining('lone surrogate') },
    ]);
  });

  it('accepts surrogate pairs, escaped or not', () => {
    const e = sealed(0, ZERO_HASH, { clef: '𝄞' });
    const escaped = JSON.stringify({ events: [e] }).replace('𝄞', '\\ud834\\udd1e');
    expect(checkBody(Buffer.from(escaped), 'application/json', context).ok).toBe(true);
  });
});
