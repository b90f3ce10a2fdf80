import { describe, expect, it } from 'vitest';
import {
  frameSealedEvents,
  randomSaltSource,
  sealEvent,
  SEALED_MEDIA_TYPE,
  ZERO_HASH,
  type EventInput,
  type SealedEvent,
} from '@vigil/protocol';
import type { IngestConfig } from '../stage-config.js';
import { decodeEventMessage, sealedHeader, type EventMessage } from '../log/event-message.js';
import { readEventMessage } from '../sink/read-message.js';
import { MemoryLog } from '../log/memory-log.testkit.js';
import { Ingestor } from './ingestor.js';

const NOW = Date.parse('2026-11-23T10:00:00.000Z');
const config: IngestConfig = {
  maxBodyBytes: 5 << 20,
  maxEvents: 10,
  maxRecordBytes: 32 << 10,
  clockSkewMs: 300_000,
  backfillAfterMs: 86_400_000,
  dedupeWindow: 1000,
  maxLagRecords: 0,
  workers: 0,
};
const source = { tenantId: 't1', keyId: 'k1' };
const salts = randomSaltSource();

function input(
  i: number,
  overrides: Partial<EventInput> = {},
): EventInput & { id: string; time: string } {
  return {
    id: `0193a4b2-6c1e-7000-8000-${String(i).padStart(12, '0')}`,
    time: new Date(NOW - 1000 + i).toISOString(),
    action: 'user.login',
    category: 'authentication',
    outcome: 'success',
    actor: { type: 'user', id: `u-${i}`, email: `u${i}@example.eu` },
    context: { ip: '203.0.113.9' },
    ...overrides,
  };
}

function chain(count: number, stream = 'app/h/1', idBase = 0): SealedEvent[] {
  const out: SealedEvent[] = [];
  let prev = ZERO_HASH;
  for (let i = 0; i < count; i++) {
    const e = sealEvent(input(idBase + i), { stream, seq: i, prev }, salts).event;
    out.push(e);
    prev = e.hash;
  }
  return out;
}

function setup(now = NOW): { log: MemoryLog; ingestor: Ingestor } {
  const log = new MemoryLog('events', 4);
  return { log, ingestor: new Ingestor(log, config, { now: () => now }) };
}

function messages(log: MemoryLog): EventMessage[] {
  return log.all().map((r) => decodeEventMessage(r.value));
}

describe('Ingestor', () => {
  it('appends a sealed batch as one message for its stream, keyed by tenant and stream', async () => {
    const { log, ingestor } = setup();
    const batch = chain(3);
    await expect(ingestor.ingest(source, batch)).resolves.toEqual({ accepted: 3, duplicates: 0 });
    const [record] = log.all();
    expect(log.all()).toHaveLength(1);
    expect(record?.key).toBe('t1/app/h/1');
    const [m] = messages(log);
    expect(m).toMatchObject({
      kind: 'sealed',
      tenant: 't1',
      keyId: 'k1',
      stream: 'app/h/1',
      receivedAt: NOW,
    });
    // The exact bytes travel untouched.
    expect(m?.kind === 'sealed' && m.events.map((e) => e.record)).toEqual(
      batch.map((e) => e.record),
    );
  });

  it('answers only after the log says the batch is durable', async () => {
    const { log, ingestor } = setup();
    let release!: () => void;
    log.appendGate = new Promise<void>((resolve) => (release = resolve));
    let settled = false;
    const pending = ingestor.ingest(source, chain(2)).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    release();
    await expect(pending).resolves.toEqual({ accepted: 2, duplicates: 0 });
  });

  it('refuses a batch whole, naming every bad event by index and field', async () => {
    const { log, ingestor } = setup();
    const batch: unknown[] = chain(4);
    const tampered = batch[1] as SealedEvent;
    batch[1] = { ...tampered, record: tampered.record.replace('success', 'failure') };
    batch[3] = {
      action: 'nope',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: 'x' },
    };
    const error = await ingestor.ingest(source, batch).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'VIGIL_ERR_INVALID_BATCH', status: 400 });
    const details = (error as { details: { index: number; path: string }[] }).details;
    expect(details).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ index: 1, path: '/hash' }),
        expect.objectContaining({ index: 3, path: '/action' }),
      ]),
    );
    expect(log.all()).toHaveLength(0);
  });

  it('refuses broken links inside a batch', async () => {
    const { ingestor } = setup();
    const batch = chain(3);
    const error = await ingestor.ingest(source, [batch[0], batch[2]]).catch((e: unknown) => e);
    expect(error).toMatchObject({
      status: 400,
      details: [expect.objectContaining({ index: 1, path: '/record/seq' })],
    });
  });

  it('counts a replay as duplicates and stores it once; refuses the same id with other bytes', async () => {
    const { log, ingestor } = setup();
    const batch = chain(2);
    await ingestor.ingest(source, batch);
    await expect(ingestor.ingest(source, batch)).resolves.toEqual({ accepted: 0, duplicates: 2 });
    expect(log.all()).toHaveLength(1);
    // Another tenant may use the same ids.
    await expect(ingestor.ingest({ tenantId: 't2', keyId: 'k2' }, batch)).resolves.toEqual({
      accepted: 2,
      duplicates: 0,
    });
    const other = sealEvent(
      input(0, { outcome: 'failure' }),
      { stream: 'app/h/2', seq: 0, prev: ZERO_HASH },
      salts,
    ).event;
    await expect(ingestor.ingest(source, [other])).rejects.toMatchObject({
      code: 'VIGIL_ERR_EVENT_CONFLICT',
      status: 409,
      details: [expect.objectContaining({ index: 0, path: '/record/id' })],
    });
  });

  it('refuses events from the future and flags old ones as backfill', async () => {
    const { log, ingestor } = setup();
    const future = sealEvent(
      input(1, { time: new Date(NOW + 600_000).toISOString() }),
      { stream: 's/1', seq: 0, prev: ZERO_HASH },
      salts,
    ).event;
    await expect(ingestor.ingest(source, [future])).rejects.toMatchObject({
      status: 400,
      details: [
        expect.objectContaining({
          path: '/record/time',
          message: expect.stringContaining('ahead of the collector'),
        }),
      ],
    });
    const old = sealEvent(
      input(2, { time: new Date(NOW - 3 * 86_400_000).toISOString() }),
      { stream: 's/1', seq: 0, prev: ZERO_HASH },
      salts,
    ).event;
    await ingestor.ingest(source, [old]);
    const [m] = messages(log);
    // The sink flags it: the log record says from when on events count as backfill.
    expect(m?.backfillBefore).toBe(NOW - config.backfillAfterMs);
  });

  it('takes unchained events: fills id and time, keeps them on the key stream, dedupes on content', async () => {
    const { log, ingestor } = setup();
    const plain = {
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: 'u-9' },
    };
    const withId = { ...plain, id: '0193a4b2-6c1e-7000-8000-00000000aaaa' };
    await expect(ingestor.ingest(source, [plain, withId])).resolves.toEqual({
      accepted: 2,
      duplicates: 0,
    });
    const [m] = messages(log);
    expect(m).toMatchObject({ kind: 'unchained', stream: 'key/k1' });
    if (m?.kind !== 'unchained') throw new Error('expected unchained');
    expect(m.events[0]?.input.time).toBe(new Date(NOW).toISOString());
    expect(m.events[0]?.input.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(m.events[1]?.input.id).toBe(withId.id);
    await expect(ingestor.ingest(source, [withId])).resolves.toEqual({
      accepted: 0,
      duplicates: 1,
    });
    await expect(
      ingestor.ingest(source, [{ ...withId, outcome: 'failure' }]),
    ).rejects.toMatchObject({ status: 409 });
  });

  it('limits the events per request and the record size', async () => {
    const { ingestor } = setup();
    await expect(ingestor.ingest(source, chain(11))).rejects.toMatchObject({
      code: 'VIGIL_ERR_TOO_MANY_EVENTS',
      status: 413,
    });
    await expect(ingestor.ingest(source, [])).rejects.toMatchObject({ status: 400 });
    const big = sealEvent(
      input(1, { metadata: { blob: 'x'.repeat(40_000) } }),
      { stream: 's/2', seq: 0, prev: ZERO_HASH },
      salts,
    ).event;
    await expect(ingestor.ingest(source, [big])).rejects.toMatchObject({
      status: 400,
      details: [
        expect.objectContaining({
          path: '/record',
          message: expect.stringContaining('the limit is 32768'),
        }),
      ],
    });
  });

  it('turns a log failure into a retriable 503 and does not remember the ids', async () => {
    const { log, ingestor } = setup();
    const batch = chain(1);
    log.failAppends = new Error('disk full');
    await expect(ingestor.ingest(source, batch)).rejects.toMatchObject({
      code: 'VIGIL_ERR_LOG_UNAVAILABLE',
      status: 503,
      retriable: true,
    });
    log.failAppends = undefined;
    await expect(ingestor.ingest(source, batch)).resolves.toEqual({ accepted: 1, duplicates: 0 });
  });

  it('splits a batch with several streams into one message per stream', async () => {
    const { log, ingestor } = setup();
    const a = chain(2, 'svc/a/1');
    const b = chain(2, 'svc/b/1', 100);
    await ingestor.ingest(source, [a[0], b[0], a[1], b[1]]);
    expect(
      messages(log)
        .map((m) => [m.stream, m.events.length])
        .sort(),
    ).toEqual([
      ['svc/a/1', 2],
      ['svc/b/1', 2],
    ]);
  });

  it('passes a framed body to the log byte for byte, and the sink reads it back', async () => {
    const { log, ingestor } = setup();
    const full = chain(4, 'raw/h/1', 900);
    const batch = full.slice(0, 3);
    const body = Buffer.from(frameSealedEvents(batch));
    await expect(ingestor.ingestBody(source, body, SEALED_MEDIA_TYPE)).resolves.toEqual({
      accepted: 3,
      duplicates: 0,
    });
    const value = log.all()[0]!.value;
    const head = sealedHeader({
      v: 2,
      tenant: 't1',
      keyId: 'k1',
      receivedAt: NOW,
      backfillBefore: NOW - config.backfillAfterMs,
      stream: 'raw/h/1',
    });
    expect(value).toEqual(Buffer.concat([head, body]));
    const read = readEventMessage(value);
    expect(read.message).toMatchObject({ kind: 'sealed', stream: 'raw/h/1', events: batch });
    expect(read.records.map((r) => r.seq)).toEqual([0, 1, 2]);
    // A replay of part of it is still filtered per event, the other lines kept verbatim.
    const again = Buffer.from(frameSealedEvents(full));
    await expect(ingestor.ingestBody(source, again, SEALED_MEDIA_TYPE)).resolves.toEqual({
      accepted: 1,
      duplicates: 3,
    });
    const [, second] = log.all();
    expect(second!.value.toString().split('\n').slice(1)).toEqual([
      frameSealedEvents([full[3]!]).slice(0, -1),
      '',
    ]);
  });

  it('logs sealed events of a JSON body as the lines of the framing, like a framed body', async () => {
    const a = setup();
    const b = setup();
    const batch = chain(3, 'json/h/1', 700);
    await a.ingestor.ingestBody(
      source,
      Buffer.from(JSON.stringify({ events: batch })),
      'application/json',
    );
    // A framed body with CR LF line ends and a blank line gives the same log record.
    const crlf = frameSealedEvents(batch).replaceAll('\n', '\r\n\r\n');
    await b.ingestor.ingestBody(source, Buffer.from(crlf), `${SEALED_MEDIA_TYPE}; charset=utf-8`);
    expect(a.log.all()[0]!.value.toString()).toBe(b.log.all()[0]!.value.toString());
    expect(a.log.all()[0]!.value.toString().split('\n').slice(1, -1)).toEqual(
      frameSealedEvents(batch).split('\n').slice(0, -1),
    );
  });

  it('counts every event of a refused body as rejected, by reason', async () => {
    const log = new MemoryLog('events', 4);
    const rejected: [string, number][] = [];
    const ingestor = new Ingestor(log, config, {
      now: () => NOW,
      observer: {
        rejected: (reason, events) => rejected.push([reason, events]),
        accepted() {},
        appendLatency() {},
      },
    });
    const batch = chain(3, 'bad/h/1', 950);
    const tampered = [batch[0], { ...batch[1]!, hash: ZERO_HASH }, batch[2]];
    const bad = Buffer.from(JSON.stringify({ events: tampered }));
    await expect(ingestor.ingestBody(source, bad, 'application/json')).rejects.toThrow();
    const many = Buffer.from(JSON.stringify({ events: chain(11, 'big/h/1', 960) }));
    await expect(ingestor.ingestBody(source, many, 'application/json')).rejects.toThrow();
    await expect(
      ingestor.ingestBody(source, Buffer.from('{"events":'), 'application/json'),
    ).rejects.toThrow();
    expect(rejected).toEqual([
      ['VIGIL_ERR_INVALID_BATCH', 3],
      ['VIGIL_ERR_TOO_MANY_EVENTS', 11],
      ['VIGIL_ERR_BAD_REQUEST', 0],
    ]);
    expect(log.all()).toEqual([]);
  });
});
