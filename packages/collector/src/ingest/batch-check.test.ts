import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  frameSealedEvents,
  newEventId,
  randomSaltSource,
  sealEvent,
  SEALED_MEDIA_TYPE,
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

describe('the sealed framing (PROTOCOL.md §9)', () => {
  const framed = (text: string | Buffer, limitsOf: Partial<CheckLimits> = {}): BatchCheck =>
    checkBody(Buffer.from(text), SEALED_MEDIA_TYPE, {
      ...context,
      limits: { ...limits, ...limitsOf },
    });
  const chain = (n: number): SealedEvent[] => {
    const out: SealedEvent[] = [];
    for (let i = 0; i < n; i++) out.push(sealed(i, out[i - 1]?.hash ?? ZERO_HASH));
    return out;
  };

  it('accepts a framed batch whatever the case of its media type', () => {
    const body = frameSealedEvents(chain(3));
    for (const type of [SEALED_MEDIA_TYPE, 'Application/VND.Vigil.Sealed.V2; charset=utf-8']) {
      const ok = checkBody(Buffer.from(body), type, context);
      expect(ok).toMatchObject({ ok: true, ids: expect.any(Array) });
    }
    // Only that media type: a longer name is not the framing.
    const json = refused(checkBody(Buffer.from(body), `${SEALED_MEDIA_TYPE}0`, context));
    expect(json.code).toBe('VIGIL_ERR_BAD_REQUEST');
  });

  it('lists the problems of every line with its index among the non-blank lines', () => {
    const [a, b, c, d] = chain(4);
    const lines = frameSealedEvents([a!, b!, c!, d!]).split('\n');
    const v1 = a!.record.replace(/"v":2([,}])/, '"v":1$1');
    const body = [
      `${v1}\t${sha256Hex(v1)}\t`,
      '',
      lines[1]!.replace(`\t${b!.hash}\t`, `\t${b!.hash.toUpperCase()}\t`),
      `${lines[2]!}{}\textra`,
      lines[3]!.replace('"user.login"', '"user.logout"'),
    ].join('\r\n');
    const r = refused(framed(body));
    expect(r.status).toBe(400);
    expect(r.code).toBe('VIGIL_ERR_INVALID_BATCH');
    expect(r.events).toBe(4);
    expect(r.message).toBe('4 of 4 events are invalid; nothing of this batch was stored');
    expect(r.details).toEqual([
      { index: 0, path: '/record/v', message: 'must be 2 (protocol v2)' },
      { index: 1, path: '/hash', message: 'must be 64 lower-case hex digits (SHA-256)' },
      { index: 2, path: '', message: expect.stringContaining('has 4 TAB-separated fields') },
      { index: 3, path: '/hash', message: expect.stringContaining('is not the SHA-256') },
    ]);
  });

  it('refuses an empty body, too many lines and a record over the size limit', () => {
    expect(refused(framed('\n\r\n')).details).toEqual([
      { path: '/events', message: 'must hold at least one event' },
    ]);
    expect(refused(framed(frameSealedEvents(chain(3)), { maxEvents: 2 })).status).toBe(413);
    const [e] = chain(1);
    const r = refused(framed(frameSealedEvents([e!]), { maxRecordBytes: 100 }));
    expect(r.details).toEqual([
      {
        index: 0,
        path: '/record',
        message: `is ${Buffer.byteLength(e!.record)} bytes; the limit is 100`,
      },
    ]);
  });

  it('refuses bytes that are not UTF-8, naming the field', () => {
    const [e] = chain(1);
    const record = e!.record.replace('"api"', '"a\u00e9"');
    const bad = Buffer.from(`${record}\t${sha256Hex(record)}\t\n`);
    // é is c3 a9: cut it to a lone lead byte.
    const at = bad.indexOf(0xa9);
    bad[at] = 0x41;
    const r = refused(framed(bad));
    expect(r.details).toEqual([
      {
        index: 0,
        path: '/record/actor/id',
        message: `is not valid UTF-8 (byte ${at - 1} of the body): send UTF-8 text`,
      },
    ]);
  });

  it('judges links within a framed batch as within a JSON one', () => {
    const [a, b, c] = chain(3);
    const r = refused(framed(frameSealedEvents([a!, c!, b!])));
    const json = refused(
      checkBody(Buffer.from(JSON.stringify([a, c, b])), 'application/json', context),
    );
    expect(r.details).toEqual(json.details);
    expect(r.details.map((d) => [d.index, d.path])).toEqual([
      [1, '/record/seq'],
      [2, '/record/seq'],
    ]);
  });

  it('refuses a JSON-form record holding a raw TAB, which no line of the framing can carry', () => {
    const [e] = chain(1);
    const record = e!.record.replace('{"action"', '{\t"action"');
    const body = JSON.stringify({ events: [{ record, hash: sha256Hex(record) }] });
    const r = refused(checkBody(Buffer.from(body), 'application/json', context));
    expect(r.details).toEqual([
      { index: 0, path: '/record', message: 'holds a raw TAB, LF or CR: not RFC 8785 text (§4)' },
    ]);
  });
});
