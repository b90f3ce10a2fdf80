import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  eventLeafHash,
  newEventId,
  randomSaltSource,
  sealEvent,
  sha256Hex,
  ZERO_HASH,
  type EventInput,
  type SealedEvent,
} from '@vigil/protocol';
import {
  CheckpointStore,
  RetentionPolicies,
  verifyLog,
  type Finding,
  toChTime,
  type Store,
  type VerifyReport,
} from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { DEFAULT_RETENTION_DAYS } from '../config/config.js';
import { Checkpointer } from '@vigil/collector';
import { MemorySigner } from '@vigil/collector';
import { TreeWriter } from '@vigil/collector';
import { DirectoryWitness, type WitnessedCheckpoint } from '@vigil/collector';
import { encodeEventMessage, type EventMessage } from '@vigil/collector';
import { MerklePlugin } from '@vigil/collector';
import { SinkProcessor } from '@vigil/collector';
import { readWitnessDir } from './verify.js';

/**
 * Tamper tests: a tenant's log is built through the real sink (chains judged, leaves numbered,
 * checkpoints signed and witnessed), then its stored rows are edited directly with SQL, the
 * way whoever runs the database could, and `vigil verify` must detect and name each edit.
 * Every case has its own tenant, so each sees only its own tampering.
 */

const salts = randomSaltSource();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const offsets = new Map<number, number>();

interface Log {
  readonly tenant: string;
  readonly signer: MemorySigner;
  readonly witnessDir: string;
  /** Every sealed event by stream, in seq order (the producers' view). */
  readonly streams: Map<string, SealedEvent[]>;
}

function input(
  i: number,
  time: number,
  overrides: Partial<EventInput> = {},
): EventInput & {
  id: string;
  time: string;
} {
  return {
    id: newEventId(time),
    time: new Date(time).toISOString(),
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'user', id: `u-${i % 4}`, email: `u${i % 4}@example.eu` },
    target: { type: 'document', id: `doc-${i}` },
    context: { ip: `203.0.113.${i % 250}`, userAgent: 'Mozilla/5.0 (X11; Linux x86_64)' },
    ...overrides,
  };
}

function message(tenant: string, stream: string, events: SealedEvent[], at: number): EventMessage {
  return {
    v: 2,
    tenant,
    keyId: 'k1',
    receivedAt: at,
    backfillBefore: at - 30 * DAY,
    stream,
    kind: 'sealed',
    events,
  };
}

async function deliver(sink: SinkProcessor, partition: number, m: EventMessage): Promise<void> {
  const offset = offsets.get(partition) ?? 0;
  offsets.set(partition, offset + 1);
  await sink.process({
    partition,
    records: [
      {
        partition,
        offset,
        key: `${m.tenant}/${m.stream}`,
        value: encodeEventMessage(m),
        timestamp: m.receivedAt,
      },
    ],
    highWatermark: offset + 1,
  });
}

/**
 * A tenant's log: three producer streams over two partitions (one with a gap the sink records),
 * unchained events on a key stream, two signed checkpoints, each witnessed in a directory.
 */
async function buildLog(
  store: Store,
  tenant: string,
  options: {
    signer?: MemorySigner;
    receivedAt?: number;
    alter?: (i: number) => Partial<EventInput>;
  } = {},
): Promise<Log> {
  const signer = options.signer ?? MemorySigner.generate();
  const witnessDir = mkdtempSync(join(tmpdir(), 'vigil-witness-'));
  const witness = new DirectoryWitness(witnessDir);
  const submitted: Promise<void>[] = [];
  const trees = new TreeWriter(store);
  const checkpointer = new Checkpointer({
    heads: trees,
    tree: trees,
    sink: new CheckpointStore(store),
    signer,
    everyEvents: 1_000_000,
    intervalMs: 0,
    witnesses: { submit: (c: WitnessedCheckpoint) => submitted.push(witness.submit(c)) },
  });
  await new CheckpointStore(store).publishKeys(signer.publishedKeys());
  const sink = new SinkProcessor({
    store,
    config: { group: 'g', maxBatchRecords: 100 },
    retentionDays: DEFAULT_RETENTION_DAYS,
    salts,
    plugins: [new MerklePlugin({ store, observer: checkpointer })],
  });
  const streams = new Map<string, SealedEvent[]>();
  const at = options.receivedAt ?? Date.now() - 2 * HOUR;
  let i = 0;
  const produce = async (stream: string, partition: number, count: number, skip = -1) => {
    const list = streams.get(stream) ?? [];
    const batch: SealedEvent[] = [];
    for (let n = 0; n < count; n++) {
      const seq = list.length;
      const prev = seq === 0 ? ZERO_HASH : (list[seq - 1] as SealedEvent).hash;
      const time = at - 60_000 + i;
      const e = sealEvent(input(i, time, options.alter?.(i)), { stream, seq, prev }, salts).event;
      i++;
      list.push(e);
      // A lost event: the producer sealed it, the sink never gets it (a gap, recorded).
      if (seq !== skip) batch.push(e);
    }
    streams.set(stream, list);
    await deliver(sink, partition, message(tenant, stream, batch, at));
  };
  for (let round = 0; round < 4; round++) {
    await produce('app/a', 0, 5);
    await produce('app/b', 1, 5);
    await produce('app/c', 0, 5, round === 1 ? 7 : -1);
    await deliver(sink, 0, {
      v: 2,
      tenant,
      keyId: 'k1',
      receivedAt: at,
      backfillBefore: at - 30 * DAY,
      stream: 'key/k1',
      kind: 'unchained',
      events: [
        {
          input: { ...input(i++, at - 60_000), actor: { type: 'service', id: 'cron' } },
          digest: `d${tenant}${round}`,
        },
      ],
    });
    if (round === 1) await checkpointer.flush();
  }
  await checkpointer.flush();
  await Promise.all(submitted);
  return { tenant, signer, witnessDir, streams };
}

async function mutate(
  store: Store,
  table: string,
  change: string,
  params: Record<string, unknown>,
) {
  await store.command(`ALTER TABLE ${store.table(table)} ${change}`, params, {
    mutations_sync: '2',
  });
}

interface EventRowText {
  [column: string]: unknown;
}

async function rowsOf(
  store: Store,
  tenant: string,
  where: string,
  params = {},
): Promise<EventRowText[]> {
  return store.query<EventRowText>(
    `SELECT * FROM ${store.table('events')} FINAL WHERE tenant_id = {tenant:String} AND ${where}`,
    { tenant, ...params },
  );
}

function failures(report: VerifyReport): Finding[] {
  return report.findings.filter((f) => f.severity === 'failure');
}

function categories(report: VerifyReport): string[] {
  return [...new Set(failures(report).map((f) => f.category))].sort();
}

describe('vigil verify against a log tampered with in the store (chDB)', () => {
  let ts: TestStore;
  let store: Store;
  const dirs: string[] = [];
  const verify = (log: Log, extra: Partial<Parameters<typeof verifyLog>[1]> = {}) =>
    verifyLog(store, { tenant: log.tenant, keys: [log.signer.publicKey()], ...extra });

  beforeAll(async () => {
    ts = await openTestStore();
    store = ts.store;
  });
  afterAll(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await ts.cleanup();
  });

  it('verifies an untouched log clean, and names what the sink recorded at ingest', async () => {
    const log = await buildLog(store, 'clean');
    dirs.push(log.witnessDir);
    const report = await verify(log, { trusted: readWitnessDir(log.witnessDir) });
    expect(failures(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.totals.events).toBeGreaterThan(60);
    expect(report.totals.checkpoints.verified).toBe(2);
    expect(report.totals.checkpoints.witness).toBe(2);
    // The lost seq 7 of app/c: a gap the consumer flagged and signed an integrity event for.
    const gap = report.findings.find((f) => f.category === 'recorded_at_ingest');
    expect(gap).toMatchObject({ stream: 'app/c', seq: 8 });
    expect(report.trees.every((t) => t.signedSize === t.leaves)).toBe(true);
  });

  it('names a record edited and re-hashed', async () => {
    const log = await buildLog(store, 'rehash');
    const target = (log.streams.get('app/a') as SealedEvent[])[3] as SealedEvent;
    const [row] = await rowsOf(store, log.tenant, 'hash = {h:String}', { h: target.hash });
    const record = String(row?.['record']).replace('"document.viewed"', '"document.deleted"');
    await mutate(store, 'events', 'DELETE WHERE tenant_id = {t:String} AND hash = {h:String}', {
      t: log.tenant,
      h: target.hash,
    });
    await store.insert(store.table('events'), [
      { ...row, record, hash: sha256Hex(record), action: 'document.deleted' },
    ]);
    const report = await verify(log);
    expect(report.ok).toBe(false);
    const edited = failures(report).filter((f) => f.category === 'edited');
    expect(edited.map((f) => f.eventId)).toContain(JSON.parse(target.record).id);
    expect(edited.some((f) => /leaf hash does not bind/.test(f.message))).toBe(true);
  });

  it('names a record re-hashed with its leaf rewritten too: the signed root no longer holds', async () => {
    const log = await buildLog(store, 'releaf');
    const target = (log.streams.get('app/b') as SealedEvent[])[2] as SealedEvent;
    const [row] = await rowsOf(store, log.tenant, 'hash = {h:String}', { h: target.hash });
    const record = String(row?.['record']).replace('"document.viewed"', '"document.deleted"');
    const hash = sha256Hex(record);
    const leaf = eventLeafHash({
      tenant: log.tenant,
      stream: 'app/b',
      seq: 2,
      eventHash: hash,
    }).toString('hex');
    await mutate(store, 'events', 'DELETE WHERE tenant_id = {t:String} AND hash = {h:String}', {
      t: log.tenant,
      h: target.hash,
    });
    await mutate(
      store,
      'merkle_leaves',
      'DELETE WHERE tenant_id = {t:String} AND event_hash = {h:String}',
      {
        t: log.tenant,
        h: target.hash,
      },
    );
    await store.insert(store.table('events'), [
      { ...row, record, hash, action: 'document.deleted', leaf_hash: leaf },
    ]);
    const report = await verify(log);
    expect(categories(report)).toEqual(expect.arrayContaining(['rewritten', 'chain_break']));
    const broken = failures(report).find((f) => f.category === 'chain_break');
    expect(broken).toMatchObject({ stream: 'app/b', seq: 3 });
  });

  it('names a typed column changed on its own', async () => {
    const log = await buildLog(store, 'column');
    const target = (log.streams.get('app/a') as SealedEvent[])[1] as SealedEvent;
    await mutate(
      store,
      'events',
      "UPDATE actor_id = 'mallory' WHERE tenant_id = {t:String} AND hash = {h:String}",
      {
        t: log.tenant,
        h: target.hash,
      },
    );
    const report = await verify(log);
    expect(categories(report)).toEqual(['edited']);
    const [finding] = failures(report);
    expect(finding).toMatchObject({ eventHash: target.hash, stream: 'app/a', seq: 1 });
    expect(finding?.paths).toEqual(['actor_id']);
  });

  it('checks every event once when the engine takes the log in small chunks', async () => {
    const log = await buildLog(store, 'chunks');
    const events = [...log.streams.values()].flat();
    const first = events[0] as SealedEvent;
    const last = events[events.length - 1] as SealedEvent;
    for (const target of [first, last])
      await mutate(
        store,
        'events',
        "UPDATE actor_id = 'mallory' WHERE tenant_id = {t:String} AND hash = {h:String}",
        { t: log.tenant, h: target.hash },
      );
    const whole = await verify(log);
    const chunked = await verify(log, { chunkEvents: 7 });
    expect(chunked.totals.events).toBe(whole.totals.events);
    const named = (r: VerifyReport) =>
      failures(r)
        .map((f) => `${f.category} ${f.eventHash}`)
        .sort();
    expect(named(chunked)).toEqual(named(whole));
    expect(named(chunked)).toEqual([`edited ${first.hash}`, `edited ${last.hash}`].sort());
  });

  it('names a disclosure altered on its own', async () => {
    const log = await buildLog(store, 'disclosure');
    const target = (log.streams.get('app/c') as SealedEvent[])[0] as SealedEvent;
    const [row] = await rowsOf(store, log.tenant, 'hash = {h:String}', { h: target.hash });
    const disclosures = String(row?.['disclosures']).replace(/u\d@example\.eu/, 'eve@example.eu');
    await mutate(
      store,
      'events',
      'UPDATE disclosures = {d:String}, actor_email = {e:String} WHERE tenant_id = {t:String} AND hash = {h:String}',
      {
        t: log.tenant,
        h: target.hash,
        d: disclosures,
        e: 'eve@example.eu',
      },
    );
    const report = await verify(log);
    expect(categories(report)).toEqual(['edited']);
    expect(failures(report)[0]).toMatchObject({ eventHash: target.hash, paths: ['/actor/email'] });
  });

  it('names a deleted row as missing', async () => {
    const log = await buildLog(store, 'deleted');
    const target = (log.streams.get('app/b') as SealedEvent[])[6] as SealedEvent;
    await mutate(store, 'events', 'DELETE WHERE tenant_id = {t:String} AND hash = {h:String}', {
      t: log.tenant,
      h: target.hash,
    });
    const report = await verify(log);
    expect(categories(report)).toEqual(['missing']);
    expect(failures(report)[0]).toMatchObject({ eventHash: target.hash, stream: 'app/b', seq: 6 });
  });

  it('names a forged row inserted into a stream', async () => {
    const log = await buildLog(store, 'forged');
    const list = log.streams.get('app/a') as SealedEvent[];
    const before = list[9] as SealedEvent;
    // A second event at seq 10, linked to seq 9, stored as the sink would store it, at the next
    // leaf position, received long ago: nothing signed knows it.
    const forged = sealEvent(
      input(999, Date.now() - 3 * HOUR),
      { stream: 'app/a', seq: 10, prev: before.hash },
      salts,
    );
    const [template] = await rowsOf(store, log.tenant, 'hash = {h:String}', {
      h: (list[10] as SealedEvent).hash,
    });
    const sizes = await store.query<{ n: string }>(
      `SELECT max(leaf_index) + 1 AS n FROM ${store.table('merkle_leaves')} WHERE tenant_id = {t:String} AND log_partition = 0`,
      { t: log.tenant },
    );
    const leafIndex = Number(sizes[0]?.n);
    await store.insert(store.table('events'), [
      {
        ...template,
        id: forged.record.id,
        time: toChTime(forged.record.time),
        record: forged.event.record,
        hash: forged.event.hash,
        disclosures: JSON.stringify(forged.event.disclosures),
        actor_id: 'u-3',
        actor_email: 'u3@example.eu',
        target_id: 'doc-999',
        ip: '::ffff:203.0.113.249',
        received_at: Date.now() - 3 * HOUR,
        leaf_index: leafIndex,
        leaf_hash: eventLeafHash({
          tenant: log.tenant,
          stream: 'app/a',
          seq: 10,
          eventHash: forged.event.hash,
        }).toString('hex'),
      },
    ]);
    const report = await verify(log);
    expect(categories(report)).toEqual(['inserted', 'unsigned']);
    const inserted = failures(report).find((f) => f.category === 'inserted');
    expect(inserted).toMatchObject({ eventHash: forged.event.hash, seq: 10 });
    expect(categories(report)).toContain('unsigned');
  });

  it('names two rows whose positions were swapped', async () => {
    const log = await buildLog(store, 'swapped');
    const list = log.streams.get('app/b') as SealedEvent[];
    const [x, y] = [list[4] as SealedEvent, list[5] as SealedEvent];
    const [rx] = await rowsOf(store, log.tenant, 'hash = {h:String}', { h: x.hash });
    const [ry] = await rowsOf(store, log.tenant, 'hash = {h:String}', { h: y.hash });
    const lx = Number(rx?.['leaf_index']);
    const ly = Number(ry?.['leaf_index']);
    // Positions swapped in the events and in the leaves: each row is consistent with its leaf.
    const leaves = await store.query<Record<string, unknown>>(
      `SELECT * FROM ${store.table('merkle_leaves')} WHERE tenant_id = {t:String} AND event_hash IN ({a:String}, {b:String})`,
      { t: log.tenant, a: x.hash, b: y.hash },
    );
    await mutate(
      store,
      'merkle_leaves',
      'DELETE WHERE tenant_id = {t:String} AND event_hash IN ({a:String}, {b:String})',
      {
        t: log.tenant,
        a: x.hash,
        b: y.hash,
      },
    );
    await store.insert(
      store.table('merkle_leaves'),
      leaves.map((l) => ({ ...l, leaf_index: l['event_hash'] === x.hash ? ly : lx })),
    );
    await mutate(
      store,
      'events',
      'UPDATE leaf_index = if(hash = {a:String}, {ly:UInt64}, {lx:UInt64}) WHERE tenant_id = {t:String} AND hash IN ({a:String}, {b:String})',
      {
        t: log.tenant,
        a: x.hash,
        b: y.hash,
        lx,
        ly,
      },
    );
    const report = await verify(log);
    expect(categories(report)).toEqual(expect.arrayContaining(['reordered', 'rewritten']));
    expect(failures(report).find((f) => f.category === 'reordered')).toMatchObject({
      stream: 'app/b',
      seq: 5,
    });
  });

  it('names the newest rows dropped after the last checkpoint as a truncation', async () => {
    const log = await buildLog(store, 'truncated');
    const newest = await store.query<{ n: string }>(
      `SELECT max(leaf_index) AS n FROM ${store.table('merkle_leaves')} WHERE tenant_id = {t:String} AND log_partition = 1`,
      { t: log.tenant },
    );
    const top = Number(newest[0]?.n);
    for (const table of ['events', 'merkle_leaves'])
      await mutate(
        store,
        table,
        'DELETE WHERE tenant_id = {t:String} AND log_partition = 1 AND leaf_index > {k:UInt64}',
        {
          t: log.tenant,
          k: top - 3,
        },
      );
    const report = await verify(log);
    expect(categories(report)).toEqual(['truncated']);
    expect(failures(report)[0]).toMatchObject({
      partition: 1,
      leafFrom: top - 2,
      leafTo: top,
      count: 3,
    });
  });

  it('names a log rewritten, re-chained and re-signed with a new key: against the pinned key and the witness', async () => {
    const original = await buildLog(store, 'rewritten');
    dirs.push(original.witnessDir);
    // Whoever holds the database drops the tenant's log and its trees, and writes another one,
    // chained and signed anew.
    for (const table of [
      'events',
      'stream_heads',
      'merkle_leaves',
      'merkle_nodes',
      'merkle_heads',
      'merkle_sizes',
      'checkpoints',
    ])
      await mutate(store, table, 'DELETE WHERE tenant_id = {t:String}', { t: 'rewritten' });
    const forger = MemorySigner.generate();
    const rewritten = await buildLog(store, 'rewritten', {
      signer: forger,
      alter: (i) => (i === 5 ? { action: 'document.printed' } : {}),
    });
    dirs.push(rewritten.witnessDir);
    const pinned = await verify(original);
    expect(categories(pinned)).toEqual(['unknown_key', 'unsigned']);
    expect(failures(pinned).filter((f) => f.category === 'unknown_key')).toHaveLength(2);
    const witnessed = await verify(original, { trusted: readWitnessDir(original.witnessDir) });
    expect(categories(witnessed)).toContain('rewritten');
    expect(
      failures(witnessed)
        .filter((f) => f.category === 'rewritten')
        .every((f) => f.sources?.includes('witness')),
    ).toBe(true);
    // Even with the forger's key pinned, the witness's copies are the original key's.
    const forged = await verifyLog(store, {
      tenant: 'rewritten',
      keys: [forger.publicKey()],
      trusted: readWitnessDir(original.witnessDir),
    });
    expect(
      failures(forged).filter(
        (f) => f.category === 'unknown_key' && f.sources?.includes('witness'),
      ),
    ).toHaveLength(2);
  });

  it('verifies clean after TTL deleted expired events: removed by retention', async () => {
    await new RetentionPolicies(store, DEFAULT_RETENTION_DAYS).change(
      'expired',
      { data_access: 1 },
      'test',
      'short retention',
    );
    const log = await buildLog(store, 'expired', { receivedAt: Date.now() - 3 * DAY });
    await store.command(`OPTIMIZE TABLE ${store.table('events')} FINAL`);
    const left = await store.query<{ n: string }>(
      `SELECT count() AS n FROM ${store.table('events')} WHERE tenant_id = 'expired' AND category = 'data_access'`,
    );
    expect(Number(left[0]?.n)).toBe(0);
    const report = await verify(log);
    expect(failures(report)).toEqual([]);
    const removed = report.findings.filter((f) => f.category === 'removed_by_retention');
    expect(removed.reduce((n, f) => n + f.count, 0)).toBeGreaterThan(50);
  });

  it('verifies clean after an erasure: values gone, commitments kept, reported as erased', async () => {
    const log = await buildLog(store, 'erased');
    const target = (log.streams.get('app/a') as SealedEvent[])[2] as SealedEvent;
    const [row] = await rowsOf(store, log.tenant, 'hash = {h:String}', { h: target.hash });
    const d = JSON.parse(String(row?.['disclosures'])) as Record<string, unknown>;
    delete d['/actor/email'];
    delete d['/actor/id'];
    // The erasure's new version of the row (PROTOCOL.md §5.4): same key, higher row_version.
    await store.insert(store.table('events'), [
      {
        ...row,
        disclosures: JSON.stringify(d),
        actor_id: '',
        actor_email: '',
        erased_paths: ['/actor/email', '/actor/id'],
        row_version: Number(row?.['row_version']) + 1,
      },
    ]);
    const report = await verify(log);
    expect(failures(report)).toEqual([]);
    const erased = report.findings.filter((f) => f.category === 'erased');
    expect(erased.map((f) => f.paths?.[0]).sort()).toEqual(['/actor/email', '/actor/id']);
  });
});
