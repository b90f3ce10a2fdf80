import { describe, expect, it } from 'vitest';
import { columnDigestHex, hashLeaf, leafData, type EventRecord } from '@vigil/protocol';
import type { EventRow, Store } from '@vigil/query';
import { MerklePlugin, type TreeObserver } from './merkle.js';

/** A store whose trees are all empty, recording what is written to it. */
function fakeStore(): Store & { writes: number } {
  const fake = {
    kind: 'chdb' as const,
    database: 't',
    cluster: undefined,
    stream: () => Promise.reject(new Error('the Merkle plugin does not stream')),
    writes: 0,
    table: (name: string) => name,
    query: () => Promise.resolve([]),
    command: () => {
      fake.writes++;
      return Promise.resolve();
    },
    insert: () => {
      fake.writes++;
      return Promise.resolve();
    },
    insertRowBinary: () => {
      fake.writes++;
      return Promise.resolve();
    },
    ping: () => Promise.resolve(true),
    close: () => Promise.resolve(),
  };
  return fake;
}

class Recorder implements TreeObserver {
  readonly stored: { tenant: string; partition: number; start: number; count: number }[] = [];
  readonly loaded: { tenant: string; partition: number; size: number }[] = [];
  readonly hashes: Buffer[] = [];
  leavesStored(tenant: string, partition: number, start: number, leafHashes: readonly Buffer[]) {
    this.stored.push({ tenant, partition, start, count: leafHashes.length });
    this.hashes.push(...leafHashes);
  }
  treeLoaded(tenant: string, partition: number, size: number) {
    this.loaded.push({ tenant, partition, size });
  }
}

let n = 0;
function row(tenant: string, stream = 's'): EventRow {
  const i = n++;
  return { tenant_id: tenant, stream, seq: i, hash: i.toString(16).padStart(64, '0') } as EventRow;
}

/** The record rows are built from: the leaf binds its column digest. */
const RECORD = {
  id: '0193a4b2-6c1e-7000-8000-000000000001',
  time: '2026-10-01T00:00:01.000Z',
  stream: 's',
  seq: 0,
  prev: '0'.repeat(64),
  action: 'job.ran',
  category: 'system',
  outcome: 'success',
  actor: { type: 'service', id: 'cron' },
  v: 2,
} as unknown as EventRecord;

const context = (partition: number) => ({
  partition,
  record: RECORD,
  disclosures: undefined,
});

describe('MerklePlugin', () => {
  it('gives rows dense leaf positions per tenant and the leaf hash of §13', async () => {
    const plugin = new MerklePlugin({ store: fakeStore() });
    const batch = { partition: 2, tenants: new Set(['a', 'b']) };
    await plugin.prepare(batch);
    const rows = [row('a'), row('b'), row('a'), row('a'), row('b')];
    for (const r of rows) plugin.decorate(r, context(2));
    expect(rows.map((r) => [r.tenant_id, r.leaf_index])).toEqual([
      ['a', 0],
      ['b', 0],
      ['a', 1],
      ['a', 2],
      ['b', 1],
    ]);
    const columns = columnDigestHex(RECORD);
    for (const r of rows) {
      expect(r.column_digest).toBe(columns);
      expect(r.leaf_hash).toBe(
        hashLeaf(
          leafData({
            tenant: r.tenant_id,
            stream: r.stream,
            seq: r.seq,
            eventHash: r.hash,
            columns,
          }),
        ).toString('hex'),
      );
    }
    plugin.stored(rows, batch);
    // The next batch continues where the stored one ended.
    await plugin.prepare({ partition: 2, tenants: new Set(['a']) });
    const next = row('a');
    plugin.decorate(next, context(2));
    expect(next.leaf_index).toBe(3);
  });

  it('reports the stored leaves, in order, and writes nothing itself', async () => {
    const store = fakeStore();
    const observer = new Recorder();
    const plugin = new MerklePlugin({ store, observer });
    const batch = { partition: 0, tenants: new Set(['a']) };
    const all: EventRow[] = [];
    for (const size of [3, 4, 6]) {
      await plugin.prepare(batch);
      const rows = Array.from({ length: size }, () => row('a'));
      for (const r of rows) plugin.decorate(r, context(0));
      plugin.stored(rows, batch);
      all.push(...rows);
    }
    expect(observer.loaded).toEqual([{ tenant: 'a', partition: 0, size: 0 }]);
    expect(observer.stored.map((s) => [s.start, s.count])).toEqual([
      [0, 3],
      [3, 4],
      [7, 6],
    ]);
    expect(observer.hashes.map((h) => h.toString('hex'))).toEqual(all.map((r) => r.leaf_hash));
    expect(store.writes).toBe(0);
  });

  it('advances nothing for a batch whose insert failed, so it can be delivered again', async () => {
    const observer = new Recorder();
    const plugin = new MerklePlugin({ store: fakeStore(), observer });
    const batch = { partition: 0, tenants: new Set(['a']) };
    await plugin.prepare(batch);
    for (const r of [row('a'), row('a')]) plugin.decorate(r, context(0));
    // The insert failed: no `stored`. The same batch again gets the same positions.
    await plugin.prepare(batch);
    const again = [row('a'), row('a')];
    for (const r of again) plugin.decorate(r, context(0));
    expect(again.map((r) => r.leaf_index)).toEqual([0, 1]);
    plugin.stored(again, batch);
    expect(observer.stored).toEqual([{ tenant: 'a', partition: 0, start: 0, count: 2 }]);
  });

  it('keeps the batches of partitions processed at the same time apart', async () => {
    const observer = new Recorder();
    const plugin = new MerklePlugin({ store: fakeStore(), observer });
    const p0 = { partition: 0, tenants: new Set(['a']) };
    const p1 = { partition: 1, tenants: new Set(['a']) };
    // The log hands over batches of different partitions concurrently: interleaved steps.
    await plugin.prepare(p0);
    await plugin.prepare(p1);
    const rows0 = [row('a'), row('a'), row('a')];
    const rows1 = [row('a')];
    for (const r of rows0) plugin.decorate(r, context(0));
    for (const r of rows1) plugin.decorate(r, context(1));
    plugin.stored(rows1, p1);
    await plugin.prepare(p1);
    const more1 = [row('a')];
    for (const r of more1) plugin.decorate(r, context(1));
    plugin.stored(rows0, p0);
    plugin.stored(more1, p1);
    expect(observer.stored.map((s) => [s.partition, s.start, s.count])).toEqual([
      [1, 0, 1],
      [0, 0, 3],
      [1, 1, 1],
    ]);
    await plugin.prepare(p0);
    const next0 = row('a');
    plugin.decorate(next0, context(0));
    expect(next0.leaf_index).toBe(3);
  });

  it('reloads its trees after a reset and refuses a row of a tenant it was not prepared for', async () => {
    const observer = new Recorder();
    const plugin = new MerklePlugin({ store: fakeStore(), observer });
    await plugin.prepare({ partition: 0, tenants: new Set(['a']) });
    expect(() => plugin.decorate(row('b'), context(0))).toThrow(/no tree prepared/);
    plugin.reset();
    await plugin.prepare({ partition: 0, tenants: new Set(['a']) });
    expect(observer.loaded).toHaveLength(2);
  });
});
