import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  consistencyProof,
  hashLeaf,
  inclusionProof,
  leafData,
  randomSaltSource,
  rootOf,
  sealEvent,
  sha256Hex,
  verifyConsistencyProof,
  verifyInclusionProof,
  ZERO_HASH,
  type EventInput,
  type SealedEvent,
} from '@vigil/protocol';
import { CheckpointStore, MerkleStore, ProofService, type Store } from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { DEFAULT_RETENTION_DAYS } from '../stage-config.js';
import { Checkpointer } from '../checkpoint/checkpointer.js';
import { MemorySigner } from '../checkpoint/signer.js';
import { encodeEventMessage, type EventMessage } from '../log/event-message.js';
import type { ConsumedBatch, ConsumedRecord } from '../log/log.js';
import { TreeWriter } from '../checkpoint/tree-writer.js';
import { MerklePlugin, type TreeObserver } from './merkle.js';
import type { SinkPlugin } from './plugins.js';
import { SinkProcessor } from './sink.js';

const salts = randomSaltSource();
// Receive times come from the store engine's clock (set in beforeAll): the TTL runs on it, and
// rows received too long before it would expire at insert.
let T0 = 0;
const offsets = new Map<number, number>();
let ids = 0;

function input(overrides: Partial<EventInput> = {}): EventInput & { id: string; time: string } {
  const i = ids++;
  return {
    id: `0193a4b2-6c1e-7000-8000-${String(i).padStart(12, '0')}`,
    time: new Date(T0 + i).toISOString(),
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'user', id: `u-${i % 3}` },
    target: { type: 'document', id: `doc-${i}` },
    ...overrides,
  };
}

/** A producer's stream: each call returns its next `count` sealed events. */
function stream(name: string): (count: number) => SealedEvent[] {
  let seq = 0;
  let prev = ZERO_HASH;
  return (count) =>
    Array.from({ length: count }, () => {
      const e = sealEvent(input(), { stream: name, seq: seq++, prev }, salts).event;
      prev = e.hash;
      return e;
    });
}

function record(message: EventMessage, partition: number): ConsumedRecord {
  const offset = offsets.get(partition) ?? 0;
  offsets.set(partition, offset + 1);
  return {
    partition,
    offset,
    key: `${message.tenant}/${message.stream}`,
    value: encodeEventMessage(message),
    timestamp: message.receivedAt,
  };
}

function batch(partition: number, ...records: ConsumedRecord[]): ConsumedBatch {
  return { partition, records, highWatermark: offsets.get(partition) ?? 0 };
}

const head = () =>
  ({ v: 2, keyId: 'k1', receivedAt: T0 + 5000, backfillBefore: T0 - 86_400_000 }) as const;

function sealed(tenant: string, name: string, events: SealedEvent[]): EventMessage {
  return { ...head(), tenant, stream: name, kind: 'sealed', events };
}

function unchained(tenant: string, count: number): EventMessage {
  return {
    ...head(),
    tenant,
    stream: 'key/k1',
    kind: 'unchained',
    events: Array.from({ length: count }, () => ({
      input: input({ actor: { type: 'service', id: 'cron' } }),
      digest: sha256Hex(`d${ids}`),
    })),
  };
}

interface LeafRow {
  leaf_index: string;
  leaf_hash: string;
  event_hash: string;
  stream: string;
  seq: string;
  tenant_id: string;
}

async function leavesOf(store: Store, tenant: string, partition: number): Promise<LeafRow[]> {
  return store.query<LeafRow>(
    `SELECT tenant_id, leaf_index, leaf_hash, event_hash, stream, seq FROM ${store.table('merkle_leaves')} FINAL
     WHERE tenant_id = {t:String} AND log_partition = {p:UInt32} ORDER BY leaf_index`,
    { t: tenant, p: partition },
  );
}

/** Passes reports on to a tree writer and keeps them. */
class Recorder implements TreeObserver {
  readonly calls: { tenant: string; partition: number; start: number; added: number }[] = [];
  constructor(readonly writer: TreeWriter) {}
  leavesStored(tenant: string, partition: number, start: number, hashes: readonly Buffer[]): void {
    this.calls.push({ tenant, partition, start, added: hashes.length });
    this.writer.leavesStored(tenant, partition, start, hashes);
  }
  treeLoaded(tenant: string, partition: number, size: number): void {
    this.writer.treeLoaded(tenant, partition, size);
  }
}

describe('Merkle trees written by the sink, on chDB', () => {
  let ts: TestStore;
  let store: Store;
  const processor = (plugins: SinkPlugin[]): SinkProcessor =>
    new SinkProcessor({
      store,
      config: { group: 'g', maxBatchRecords: 100 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      salts,
      plugins,
    });

  beforeAll(async () => {
    ts = await openTestStore();
    T0 = await ts.now();
    store = ts.store;
  });
  afterAll(async () => {
    await ts.cleanup();
  });

  it('numbers leaves densely in log order, for every stored row, with the events', async () => {
    const writer = new TreeWriter(store);
    const observer = new Recorder(writer);
    const sink = processor([new MerklePlugin({ store, observer })]);
    const a = stream('app/a');
    const b = stream('app/b');
    const first = a(3);
    await sink.process(
      batch(0, record(sealed('acme', 'app/a', first), 0), record(sealed('beta', 'app/b', b(2)), 0)),
    );
    // A gap (seq 3 lost) makes the sink write an integrity event; unchained events open the
    // key stream: both are rows, so both get leaves.
    a(1);
    await sink.process(
      batch(0, record(sealed('acme', 'app/a', a(2)), 0), record(unchained('acme', 2), 0)),
    );
    await sink.process(batch(1, record(sealed('acme', 'app/c', stream('app/c')(4)), 1)));

    const rows = await store.query<{
      tenant_id: string;
      log_partition: number;
      leaf_index: string;
      leaf_hash: string;
      hash: string;
      stream: string;
      seq: string;
      log_offset: string;
      log_index: number;
    }>(
      `SELECT tenant_id, log_partition, leaf_index, leaf_hash, hash, stream, seq, log_offset, log_index
       FROM ${store.table('events')} FINAL ORDER BY tenant_id, log_partition, leaf_index`,
    );
    const trees = new Map<string, typeof rows>();
    for (const r of rows) {
      const k = `${r.tenant_id}/${r.log_partition}`;
      trees.set(k, [...(trees.get(k) ?? []), r]);
    }
    expect([...trees.keys()].sort()).toEqual(['acme/0', 'acme/1', 'beta/0']);
    // acme/0: 3 + 2 + integrity stream.opened + gap event + key stream.opened + 2 = 10 rows.
    expect(trees.get('acme/0')).toHaveLength(10);
    for (const [k, tree] of trees) {
      const [tenant, partition] = k.split('/') as [string, string];
      expect(tree.map((r) => Number(r.leaf_index))).toEqual(tree.map((_, i) => i));
      for (const r of tree) {
        const expected = hashLeaf(
          leafData({ tenant, stream: r.stream, seq: Number(r.seq), eventHash: r.hash }),
        );
        expect(r.leaf_hash).toBe(expected.toString('hex'));
      }
      // Log order: offsets never go back along the leaves.
      const positions = tree.map((r) => Number(r.log_offset));
      expect(positions).toEqual([...positions].sort((x, y) => x - y));
      const leaves = await leavesOf(store, tenant, Number(partition));
      expect(leaves.map((l) => l.leaf_hash)).toEqual(tree.map((r) => r.leaf_hash));
      expect(leaves.map((l) => l.event_hash)).toEqual(tree.map((r) => r.hash));
      // Heads are written by the tree writer when a checkpoint asks for them.
      const heads = await writer.heads(tenant);
      const stated = heads.find((h) => h.partition === Number(partition));
      expect(stated).toEqual({
        partition: Number(partition),
        size: tree.length,
        root: rootOf(tree.map((r) => Buffer.from(r.leaf_hash, 'hex'))).toString('hex'),
      });
    }
    expect(observer.calls.filter((c) => c.tenant === 'acme').map((c) => c.added)).toEqual([
      3, 7, 4,
    ]);
  });

  it('numbers each partition densely while partitions are processed at the same time', async () => {
    // The log hands batches of different partitions to the sink concurrently.
    const sink = processor([new MerklePlugin({ store, observer: new TreeWriter(store) })]);
    const streams = [stream('app/p8'), stream('app/p9')];
    for (let round = 0; round < 6; round++)
      await Promise.all(
        [8, 9].map((p, i) =>
          sink.process(batch(p, record(sealed('conc', `app/p${p}`, streams[i]!(3)), p))),
        ),
      );
    for (const p of [8, 9]) {
      const leaves = await leavesOf(store, 'conc', p);
      expect(leaves.map((l) => Number(l.leaf_index))).toEqual(
        Array.from({ length: 18 }, (_, i) => i),
      );
      expect(new Set(leaves.map((l) => l.event_hash)).size).toBe(18);
    }
  });

  it('serves roots and proofs from stored nodes that equal the tree math', async () => {
    const writer = new TreeWriter(store);
    const sink = processor([new MerklePlugin({ store, observer: writer })]);
    const s = stream('app/proofs');
    // Nodes are written in several flushes, as successive checkpoints would.
    for (let i = 0; i < 9; i++) {
      await sink.process(batch(2, record(sealed('gamma', 'app/proofs', s(5)), 2)));
      if (i % 4 === 3) await writer.flush();
    }
    await writer.flush();
    const leaves = (await leavesOf(store, 'gamma', 2)).map((l) => Buffer.from(l.leaf_hash, 'hex'));
    expect(leaves).toHaveLength(45);
    // Without write-back, so this reads exactly what the tree writer stored.
    const trees = new MerkleStore(store, { writeBack: false });
    for (let n = 1; n <= 45; n++) {
      expect(await trees.root('gamma', 2, n)).toEqual(rootOf(leaves.slice(0, n)));
    }
    for (const n of [1, 7, 16, 33, 45]) {
      for (let m = 0; m < n; m++)
        expect(await trees.inclusionPath('gamma', 2, m, n)).toEqual(
          inclusionProof(m, leaves.slice(0, n)),
        );
      for (let m = 0; m <= n; m++)
        expect(await trees.consistencyPath('gamma', 2, m, n)).toEqual(
          consistencyProof(m, leaves.slice(0, n)),
        );
    }
    const nodes = await store.query<{ c: string }>(
      `SELECT count() AS c FROM ${store.table('merkle_nodes')} FINAL WHERE tenant_id = 'gamma'`,
    );
    // 45 leaves complete 45 - popcount(45) = 41 interior nodes.
    expect(Number(nodes[0]?.c)).toBe(41);
  });

  it('keeps the tree dense when a batch is delivered again after a crash', async () => {
    const s = stream('app/crash');
    // Each "process" has its own tree writer, never flushed before it dies: its nodes and
    // heads are lost with it.
    const run = (plugins: SinkPlugin[] = []) => {
      const writer = new TreeWriter(store);
      return {
        writer,
        sink: processor([...plugins, new MerklePlugin({ store, observer: writer })]),
      };
    };
    await run().sink.process(batch(3, record(sealed('delta', 'app/crash', s(4)), 3)));
    // Crash between the insert and the offset commit: a new process gets the same batch.
    const again = batch(
      3,
      record(sealed('delta', 'app/crash', s(3)), 3),
      record(unchained('delta', 2), 3),
    );
    await run().sink.process(again);
    await run().sink.process(again);
    // Crash after the insert, before the sink got to its `stored` step.
    const crashing: SinkPlugin = {
      name: 'crash',
      stored() {
        throw new Error('killed');
      },
    };
    const third = batch(3, record(sealed('delta', 'app/crash', s(5)), 3));
    await expect(run([crashing]).sink.process(third)).rejects.toThrow('killed');
    const restarted = run();
    await restarted.sink.process(third);
    await restarted.sink.process(batch(3, record(sealed('delta', 'app/crash', s(2)), 3)));

    const leaves = await leavesOf(store, 'delta', 3);
    // 4 + 3 + (key stream.opened + 2) + 5 + 2, each once.
    expect(leaves.map((l) => Number(l.leaf_index))).toEqual(
      Array.from({ length: 17 }, (_, i) => i),
    );
    expect(new Set(leaves.map((l) => l.event_hash)).size).toBe(17);
    const hashes = leaves.map((l) => Buffer.from(l.leaf_hash, 'hex'));
    // No process wrote a node or a head: the restarted one reads its tree's edge back from the
    // leaves when a checkpoint asks for heads.
    expect(await new MerkleStore(store).heads('delta')).toEqual([]);
    expect(await restarted.writer.heads('delta')).toEqual([
      { partition: 3, size: 17, root: rootOf(hashes).toString('hex') },
    ]);
    expect(await new MerkleStore(store, { writeBack: false }).root('delta', 3, 17)).toEqual(
      rootOf(hashes),
    );
  });

  it('finds and signs trees whose leaves a crashed sink never signed, with no new event', async () => {
    const s = stream('app/idle');
    const writer = new TreeWriter(store);
    await processor([new MerklePlugin({ store, observer: writer })]).process(
      batch(7, record(sealed('idle', 'app/idle', s(5)), 7)),
    );
    await writer.flush();
    await processor([new MerklePlugin({ store, observer: new TreeWriter(store) })]).process(
      batch(7, record(sealed('idle', 'app/idle', s(6)), 7)),
    );
    // That process died before a checkpoint; the next one gets no event for this tree.
    const fresh = new TreeWriter(store);
    // (Other tests of this file leave unsigned trees too: look at this tenant only.)
    expect(await fresh.lagging(60_000)).not.toContain('idle');
    expect(await fresh.lagging(0)).toContain('idle');
    const leaves = (await leavesOf(store, 'idle', 7)).map((l) => Buffer.from(l.leaf_hash, 'hex'));
    expect(await fresh.heads('idle')).toEqual([
      { partition: 7, size: 11, root: rootOf(leaves).toString('hex') },
    ]);
    expect(await fresh.lagging(0)).not.toContain('idle');
  });

  it('still signs the sound trees of a tenant while one of its trees misses a leaf', async () => {
    const writer = new TreeWriter(store);
    const sink = processor([new MerklePlugin({ store, observer: writer })]);
    await sink.process(batch(10, record(sealed('holey', 'app/h10', stream('app/h10')(4)), 10)));
    await sink.process(batch(11, record(sealed('holey', 'app/h11', stream('app/h11')(3)), 11)));
    // A leaf lost from both tables: nothing can rebuild that tree's edge.
    for (const table of ['merkle_leaves', 'events'])
      await store.command(
        `DELETE FROM ${store.table(table)} WHERE tenant_id = 'holey' AND log_partition = 10 AND leaf_index = 1`,
      );
    const fresh = new TreeWriter(store);
    expect(await fresh.lagging(0)).toContain('holey');
    const heads = await fresh.heads('holey');
    expect(heads.map((h) => [h.partition, h.size])).toEqual([[11, 3]]);
    await expect(new MerkleStore(store).root('holey', 10, 4)).rejects.toThrow(/leaf|leaves/);
  });

  it('copies back leaves that reached the events but not merkle_leaves', async () => {
    const s = stream('app/mv');
    const first = new TreeWriter(store);
    await processor([new MerklePlugin({ store, observer: first })]).process(
      batch(4, record(sealed('eps', 'app/mv', s(6)), 4)),
    );
    await first.flush();
    // As if the view's part of the INSERT was lost: the last three leaves, nodes and head go.
    for (const table of ['merkle_leaves', 'merkle_nodes', 'merkle_heads'])
      await store.command(
        `DELETE FROM ${store.table(table)} WHERE tenant_id = 'eps'${table === 'merkle_leaves' ? ' AND leaf_index >= 3' : ''}`,
      );
    const second = new TreeWriter(store);
    await processor([new MerklePlugin({ store, observer: second })]).process(
      batch(4, record(sealed('eps', 'app/mv', s(2)), 4)),
    );
    const leaves = await leavesOf(store, 'eps', 4);
    expect(leaves.map((l) => Number(l.leaf_index))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const heads = await second.heads('eps');
    expect(heads[0]?.size).toBe(8);
    expect(heads[0]?.root).toBe(
      rootOf(leaves.map((l) => Buffer.from(l.leaf_hash, 'hex'))).toString('hex'),
    );
  });

  it('proves every event against checkpoints with the public key alone, also after retention deletes', async () => {
    const signer = MemorySigner.generate();
    const checkpoints = new CheckpointStore(store);
    await checkpoints.publishKeys(signer.publishedKeys());
    const writer = new TreeWriter(store);
    const checkpointer = new Checkpointer({
      heads: writer,
      tree: writer,
      sink: checkpoints,
      signer,
      everyEvents: 1_000_000,
      intervalMs: 0,
    });
    const sink = processor([new MerklePlugin({ store, observer: checkpointer })]);
    const s = stream('app/zeta');
    const t = stream('app/zeta2');
    await sink.process(batch(5, record(sealed('zeta', 'app/zeta', s(6)), 5)));
    await sink.process(batch(6, record(sealed('zeta', 'app/zeta2', t(3)), 6)));
    const first = await checkpointer.checkpoint('zeta');
    expect(first).toBeDefined();
    // Nothing new: no second checkpoint.
    expect(await checkpointer.checkpoint('zeta')).toBeUndefined();
    await sink.process(batch(5, record(sealed('zeta', 'app/zeta', s(7)), 5)));
    await sink.process(batch(6, record(sealed('zeta', 'app/zeta2', t(2)), 6)));
    const second = await checkpointer.checkpoint('zeta');
    expect(second).toBeDefined();

    const published = await checkpoints.keys();
    expect(published.map((k) => k.keyId)).toEqual([signer.keyId]);
    const keys = published.map((k) => k.publicKey);
    const proofs = new ProofService(store);
    const events = await store.query<{
      event_id: string;
      hash: string;
      stream: string;
      seq: number;
    }>(
      `SELECT toString(id) AS event_id, hash, stream, seq FROM ${store.table('events')} FINAL WHERE tenant_id = 'zeta'`,
    );
    expect(events).toHaveLength(18);
    for (const e of events) {
      const proof = await proofs.inclusion('zeta', e.event_id);
      expect(proof.checkpoint.id).toBe(second?.id);
      expect(proof.record).toBeDefined();
      expect(verifyInclusionProof(proof, keys)).toMatchObject({ ok: true });
      // A copy with one bit of the path flipped fails.
      if (proof.auditPath.length > 0) {
        const bad = {
          ...proof,
          auditPath: [flipHex(proof.auditPath[0]!), ...proof.auditPath.slice(1)],
        };
        expect(verifyInclusionProof(bad, keys).ok).toBe(false);
      }
    }
    // The first checkpoint still proves the events it covers.
    const oldest = events.find((e) => e.stream === 'app/zeta' && Number(e.seq) === 0)!;
    const early = await proofs.inclusion('zeta', oldest.event_id, { checkpoint: first!.id });
    expect(early.treeSize).toBe(6);
    expect(verifyInclusionProof(early, keys).ok).toBe(true);
    // By tree size too; a size that does not hold the leaf is refused.
    expect(
      (await proofs.inclusion('zeta', oldest.event_id, { checkpoint: '6' })).checkpoint.id,
    ).toBe(first!.id);
    for (const partition of ['5', '6']) {
      const c = await proofs.consistency('zeta', partition, first!.id, second!.id);
      expect(c.fromSize).toBeLessThan(c.toSize);
      expect(verifyConsistencyProof(c, keys)).toMatchObject({ ok: true });
    }

    // Retention deletes events; the tree and every proof stay valid, deleted ones without record.
    await store.command(
      `DELETE FROM ${store.table('events')} WHERE tenant_id = 'zeta' AND stream = 'app/zeta' AND seq < 4`,
    );
    for (const e of events) {
      const proof = await proofs.inclusion('zeta', e.event_id);
      expect(verifyInclusionProof(proof, keys)).toMatchObject({ ok: true });
    }
    const left = await store.query<{ c: string }>(
      `SELECT count() AS c FROM ${store.table('events')} FINAL WHERE tenant_id = 'zeta'`,
    );
    expect(Number(left[0]?.c)).toBe(14);
  });
});

function flipHex(h: string): string {
  return (h[0] === '0' ? '1' : '0') + h.slice(1);
}
