import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  frameSealedEvents,
  randomSaltSource,
  sealEvent,
  sha256Hex,
  ZERO_HASH,
  type EventInput,
  type SealedEvent,
} from '@vigil/protocol';
import { searchEvents, type Store } from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { DEFAULT_RETENTION_DAYS } from '../stage-config.js';
import { encodeEventMessage, type EventMessage } from '../log/event-message.js';
import type { ConsumedBatch, ConsumedRecord } from '../log/log.js';
import { SinkProcessor, integrityStream } from './sink.js';

const salts = randomSaltSource();
// Receive times come from the store engine's clock (set in beforeAll): the TTL runs on it, and
// rows received too long before it would expire at insert.
let T0 = 0;
let offset = 0;

function input(
  i: number,
  overrides: Partial<EventInput> = {},
): EventInput & { id: string; time: string } {
  return {
    id: `0193a4b2-6c1e-7000-8000-${String(i).padStart(12, '0')}`,
    time: new Date(T0 + i).toISOString(),
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'user', id: `u-${i % 3}`, email: `u${i % 3}@example.eu` },
    target: { type: 'document', id: `doc-${i}` },
    context: { ip: '198.51.100.7', userAgent: 'test/1' },
    ...overrides,
  };
}

function chain(
  stream: string,
  from: number,
  count: number,
  prev: string,
  idBase = 0,
): SealedEvent[] {
  const out: SealedEvent[] = [];
  for (let i = 0; i < count; i++) {
    const e = sealEvent(input(idBase + from + i), { stream, seq: from + i, prev }, salts).event;
    out.push(e);
    prev = e.hash;
  }
  return out;
}

function record(message: EventMessage, partition = 0): ConsumedRecord {
  return {
    partition,
    offset: offset++,
    key: `${message.tenant}/${message.stream}`,
    value: encodeEventMessage(message),
    timestamp: message.receivedAt,
  };
}

function batch(...records: ConsumedRecord[]): ConsumedBatch {
  return { partition: records[0]?.partition ?? 0, records, highWatermark: offset };
}

function sealedMessage(tenant: string, stream: string, events: SealedEvent[]): EventMessage {
  return {
    v: 2,
    tenant,
    keyId: 'k1',
    receivedAt: T0 + 5000,
    backfillBefore: T0 - 86_400_000,
    stream,
    kind: 'sealed',
    events,
  };
}

async function count(store: Store, tenant: string, where = '1'): Promise<number> {
  const rows = await store.query<{ c: number | string }>(
    `SELECT count() AS c FROM ${store.table('events')} FINAL WHERE tenant_id = {t:String} AND ${where}`,
    { t: tenant },
  );
  return Number(rows[0]?.c ?? 0);
}

describe('SinkProcessor on chDB', () => {
  let ts: TestStore;
  let sink: SinkProcessor;
  const processor = (): SinkProcessor =>
    new SinkProcessor({
      store: ts.store,
      config: { group: 'g', maxBatchRecords: 100 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      salts,
    });

  beforeAll(async () => {
    ts = await openTestStore();
    T0 = await ts.now();
    sink = processor();
  });
  afterAll(async () => {
    await ts.cleanup();
  });

  it('stores sealed events with their exact bytes and opens personal values for search', async () => {
    const events = chain('app/h/1', 0, 3, ZERO_HASH);
    await sink.process(batch(record(sealedMessage('acme', 'app/h/1', events))));
    const page = await searchEvents(ts.store, 'acme', { order: 'asc' });
    expect(page.events.map((e) => e.hash)).toEqual(events.map((e) => e.hash));
    expect(page.events[0]?.event).toMatchObject({
      actor: { type: 'user', id: 'u-0', email: 'u0@example.eu' },
      context: { ip: '198.51.100.7' },
    });
    const stored = await ts.store.query<{ record: string; hash: string }>(
      `SELECT record, hash FROM ${ts.store.table('events')} WHERE tenant_id = 'acme' ORDER BY seq`,
    );
    for (const [i, row] of stored.entries()) {
      expect(row.record).toBe(events[i]?.record);
      expect(sha256Hex(row.record)).toBe(row.hash);
    }
    expect((await searchEvents(ts.store, 'acme', { actor: 'u-1' })).events).toHaveLength(1);
    expect((await searchEvents(ts.store, 'other', {})).events).toHaveLength(0);
  });

  it('stores a replayed batch once', async () => {
    const events = chain('app/h/2', 0, 4, ZERO_HASH, 100);
    const message = sealedMessage('acme', 'app/h/2', events);
    await sink.process(batch(record(message)));
    await sink.process(batch(record(message)));
    // A fresh processor (after a restart) recognises the replay from the store alone.
    await processor().process(batch(record(message)));
    expect(await count(ts.store, 'acme', "stream = 'app/h/2'")).toBe(4);
  });

  it('continues a chain after a restart without reporting a gap', async () => {
    const first = chain('app/h/3', 0, 2, ZERO_HASH, 200);
    await sink.process(batch(record(sealedMessage('acme', 'app/h/3', first))));
    const next = chain('app/h/3', 2, 2, first[1]!.hash, 200);
    await processor().process(batch(record(sealedMessage('acme', 'app/h/3', next))));
    expect(await count(ts.store, 'acme', "stream = 'app/h/3'")).toBe(4);
    expect(await count(ts.store, 'acme', "has(flags, 'gap') OR has(flags, 'fork')")).toBe(0);
  });

  it('stores and marks gaps and forks, and records a security event for each', async () => {
    const events = chain('app/h/4', 0, 5, ZERO_HASH, 300);
    await sink.process(batch(record(sealedMessage('acme', 'app/h/4', events.slice(0, 2)))));
    // seq 2 lost: 3 and 4 arrive.
    await sink.process(batch(record(sealedMessage('acme', 'app/h/4', events.slice(3)))));
    // seq 5 that does not link to seq 4.
    const forked = sealEvent(
      input(399),
      { stream: 'app/h/4', seq: 5, prev: events[2]!.hash },
      salts,
    ).event;
    await sink.process(batch(record(sealedMessage('acme', 'app/h/4', [forked]))));
    expect(await count(ts.store, 'acme', "stream = 'app/h/4'")).toBe(5);
    expect(await count(ts.store, 'acme', "stream = 'app/h/4' AND has(flags, 'gap')")).toBe(1);
    expect(await count(ts.store, 'acme', "stream = 'app/h/4' AND has(flags, 'fork')")).toBe(1);
    const alerts = await searchEvents(ts.store, 'acme', {
      stream: integrityStream(0),
      order: 'asc',
    });
    const alertEvents = alerts.events.map((e) => e.event);
    alertEvents.sort((a, b) => Number(a['seq']) - Number(b['seq']));
    const actions = alertEvents.map((e) => e['action']);
    expect(actions[0]).toBe('stream.opened');
    expect(actions).toContain('integrity.chain_gap');
    expect(actions).toContain('integrity.chain_fork');
    const gap = alertEvents.find((e) => e['action'] === 'integrity.chain_gap');
    expect(gap).toMatchObject({
      category: 'security',
      metadata: { seq: 3, expectedSeq: 2, eventId: events[3] && JSON.parse(events[3].record).id },
    });
  });

  it('chains unchained events on the key stream and recognises their replays', async () => {
    const plain = { ...input(500), personal: ['/metadata/phone'], metadata: { phone: '+33 1 23' } };
    const digest = sha256Hex(JSON.stringify(plain));
    const message: EventMessage = {
      v: 2,
      tenant: 'acme',
      keyId: 'kx',
      receivedAt: T0 + 9000,
      backfillBefore: T0 - 86_400_000,
      stream: 'key/kx',
      kind: 'unchained',
      events: [{ input: plain, digest }],
    };
    await sink.process(batch(record(message)));
    await processor().process(batch(record(message)));
    const page = await searchEvents(ts.store, 'acme', { stream: 'key/kx', order: 'asc' });
    page.events.sort((a, b) => Number(a.event['seq']) - Number(b.event['seq']));
    expect(page.events.map((e) => [e.event['seq'], e.event['action']])).toEqual([
      [0, 'stream.opened'],
      [1, 'document.viewed'],
    ]);
    expect(page.events[1]).toMatchObject({
      event: { metadata: { phone: '+33 1 23' } },
      server: { source: 'unchained' },
    });
    const conflicting: EventMessage = {
      ...message,
      events: [{ input: { ...plain, outcome: 'failure' }, digest: sha256Hex('other content') }],
    };
    const issues: string[] = [];
    await new SinkProcessor({
      store: ts.store,
      config: { group: 'g', maxBatchRecords: 100 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      salts,
      observer: {
        inserted() {},
        duplicate() {},
        rejectedRecord() {},
        chainIssue: (kind) => issues.push(kind),
      },
    }).process(batch(record(conflicting)));
    expect(await count(ts.store, 'acme', "stream = 'key/kx' AND has(flags, 'conflict')")).toBe(1);
    expect(issues).toEqual(['conflict']);
  });

  it('recognises an unchained event posted again through another collector, whose clock filled in another time', async () => {
    const plain = { ...input(700), time: new Date(T0 + 1000).toISOString() };
    const digest = sha256Hex('same submitted content');
    const first: EventMessage = {
      v: 2,
      tenant: 'acme',
      keyId: 'ky',
      receivedAt: T0 + 1000,
      backfillBefore: T0 - 86_400_000,
      stream: 'key/ky',
      kind: 'unchained',
      events: [{ input: plain, digest }],
    };
    await sink.process(batch(record(first)));
    // Hours later, through another collector: same id and content, another filled-in time.
    const later = {
      ...first,
      receivedAt: T0 + 7_200_000,
      events: [{ input: { ...plain, time: new Date(T0 + 7_200_000).toISOString() }, digest }],
    };
    await processor().process(batch(record(later)));
    expect(await count(ts.store, 'acme', "stream = 'key/ky' AND action != 'stream.opened'")).toBe(
      1,
    );
  });

  it('flags records that are not in canonical form', async () => {
    const [e] = chain('app/h/5', 0, 1, ZERO_HASH, 600);
    const spaced = e!.record.replace('"v":2', '"v": 2');
    const bad = { ...e!, record: spaced, hash: sha256Hex(spaced) };
    await sink.process(batch(record(sealedMessage('acme', 'app/h/5', [bad]))));
    expect(await count(ts.store, 'acme', "stream = 'app/h/5' AND has(flags, 'noncanonical')")).toBe(
      1,
    );
  });

  it('keeps malformed log records aside, naming the field, and stores the rest of the batch', async () => {
    // A log record that decodes but would not make a well-formed row (written by something
    // other than a collector, or by a faulty one) must neither be stored nor fail the insert of
    // its whole batch, again after every restart, holding up the partition.
    const [valid] = chain('app/poison/ok', 0, 1, ZERO_HASH, 700);
    const [e] = chain('app/poison/1', 0, 1, ZERO_HASH, 710);
    const sealed = (
      stream: string,
      events: unknown[],
      extra: { kind?: string } & Record<string, unknown> = {},
    ): ConsumedRecord => ({
      partition: 0,
      offset: offset++,
      key: `acme/${stream}`,
      // Sealed events as framed lines after the header (event-message.ts), others as JSON.
      value:
        extra.kind === 'unchained'
          ? Buffer.from(JSON.stringify({ ...sealedMessage('acme', stream, []), events, ...extra }))
          : Buffer.from(
              JSON.stringify({
                ...sealedMessage('acme', stream, []),
                ...extra,
                events: undefined,
              }) +
                '\n' +
                frameSealedEvents(events as SealedEvent[]),
            ),
      timestamp: T0,
    });
    const notIp = {
      ...e!.disclosures,
      '/context/ip': { ...e!.disclosures!['/context/ip']!, value: 'not-an-ip' },
    };
    const bad: [ConsumedRecord, string][] = [
      [sealed('app/poison/1', [{ record: '{}', hash: sha256Hex('{}') }]), '/events/0/record'],
      [sealed('app/poison/1', [{ ...e!, hash: sha256Hex('x') }]), '/events/0/hash'],
      [sealed('app/poison/1', [e!], { tenant: '' }), '/tenant'],
      [sealed('app/poison/1', [e!], { receivedAt: 'yesterday' }), '/receivedAt'],
      [sealed('app/poison/other', [e!]), '/events/0/record/stream'],
      [sealed('app/poison/1', [{ ...e!, disclosures: notIp }]), '/events/0/context/ip'],
      [sealed('app/poison/1', [e!], { kind: 'mixed' }), '/kind'],
      [
        sealed('key/k1', [{ input: { action: 5 }, digest: sha256Hex('x') }], { kind: 'unchained' }),
        '/events/0/input',
      ],
    ];
    const before = await ts.store.query<{ c: number | string }>(
      `SELECT count() AS c FROM ${ts.store.table('rejected_records')}`,
    );
    await sink.process(
      batch(...bad.map(([r]) => r), record(sealedMessage('acme', 'app/poison/ok', [valid!]))),
    );
    expect(await count(ts.store, 'acme', "startsWith(stream, 'app/poison/')")).toBe(1);
    expect(await count(ts.store, 'acme', "stream = 'app/poison/ok'")).toBe(1);
    const rejected = await ts.store.query<{ error: string }>(
      `SELECT error FROM ${ts.store.table('rejected_records')} ORDER BY log_offset`,
    );
    expect(rejected.length - Number(before[0]?.c)).toBe(bad.length);
    const errors = rejected.slice(-bad.length).map((r) => r.error);
    bad.forEach(([, path], i) => expect(errors[i]).toMatch(`invalid log record: ${path}`));
  });

  it('refuses an unchained event it cannot seal alone, and stores the others of its record', async () => {
    const ok = { ...input(720), id: '0193a4b2-6c1e-7000-8000-000000000720' };
    // A lone surrogate has no RFC 8785 form: the collector refuses it; here it came in anyway.
    const unsealable = { ...input(721), metadata: { note: 'broken \ud800 text' } };
    const message: EventMessage = {
      v: 2,
      tenant: 'acme',
      keyId: 'kunseal',
      receivedAt: T0 + 9000,
      backfillBefore: T0 - 86_400_000,
      stream: 'key/kunseal',
      kind: 'unchained',
      events: [
        { input: ok, digest: sha256Hex('ok') },
        { input: unsealable, digest: sha256Hex('unsealable') },
      ],
    };
    const logged = record(message);
    await sink.process(batch(logged));
    const page = await searchEvents(ts.store, 'acme', { stream: 'key/kunseal', order: 'asc' });
    expect(page.events.map((e) => e.event['action']).sort()).toEqual([
      'document.viewed',
      'stream.opened',
    ]);
    const rejected = await ts.store.query<{ error: string }>(
      `SELECT error FROM ${ts.store.table('rejected_records')} WHERE log_offset = {o:UInt64}`,
      { o: logged.offset },
    );
    expect(rejected.map((r) => r.error)).toEqual([
      expect.stringMatching(/^invalid log record: \/events\/1\/input /),
    ]);
  });

  it('keeps undecodable log records instead of dropping them', async () => {
    const junk: ConsumedRecord = {
      partition: 0,
      offset: offset++,
      key: 'x',
      value: Buffer.from('{not json'),
      timestamp: T0,
    };
    await sink.process(batch(junk));
    const rows = await ts.store.query<{ error: string }>(
      `SELECT error FROM ${ts.store.table('rejected_records')} WHERE log_offset = {o:UInt64}`,
      { o: junk.offset },
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.error).toMatch(/JSON/);
  });
});
