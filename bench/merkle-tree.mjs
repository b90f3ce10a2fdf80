// Question: what do Merkle trees cost? (1) The sink's throughput on chDB with and without the
// tree plugin (leaf hashing in the row loop, the leaves written by a materialized view in the
// same INSERT; nodes and heads are built off the sink's path, by the tree writer, when a
// checkpoint needs them, timed separately). (2) Reading a root and an inclusion proof from
// the store for a large tree. (3) The pure tree math: leaf hashes and frontier appends per second.
//
//   npm run build && node bench/merkle-tree.mjs [events=50000] [treeSize=1000000]
//
// Method: the same pre-sealed events (10 per log record, 100 records per batch, one stream per
// record) go through a fresh SinkProcessor on a fresh chDB database, once without plugins and
// once with the tree plugin, alternating, three times each; medians are compared. The large tree for (2) is
// written straight into merkle_leaves and merkle_nodes (the sink would produce the same rows).
// Caveats: chDB runs in this process, so store work and JS share the 2 cores; a ClickHouse
// server moves the insert cost off the sink. Numbers vary ±10 % between runs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  eventLeafHash,
  hashLeaf,
  leafData,
  MerkleFrontier,
  randomSaltSource,
  sealEvent,
  newEventId,
  ZERO_HASH,
} from '@vigil/protocol';
import { MerkleStore, migrate, openStore } from '@vigil/query';
import { MerklePlugin, SinkProcessor, TreeWriter, DEFAULT_RETENTION_DAYS } from '@vigil/collector';
import { encodeEventMessage } from '@vigil/collector';

const EVENTS = Number(process.argv[2] ?? 50_000);
const TREE = Number(process.argv[3] ?? 1_000_000);
const PER_RECORD = 10;
const PER_BATCH = 100;

const salts = randomSaltSource();
const now = Date.now();
function records() {
  const out = [];
  for (let r = 0; r < EVENTS / PER_RECORD; r++) {
    const stream = `bench/${r}`;
    let prev = ZERO_HASH;
    const events = [];
    for (let seq = 0; seq < PER_RECORD; seq++) {
      const e = sealEvent(
        {
          id: newEventId(),
          time: new Date(now).toISOString(),
          action: 'document.viewed',
          category: 'data_access',
          outcome: 'success',
          actor: { type: 'user', id: `u-${r}`, email: `u${r}@example.eu` },
          target: { type: 'document', id: `doc-${seq}` },
          context: { ip: '198.51.100.7' },
        },
        { stream, seq, prev },
        salts,
      ).event;
      prev = e.hash;
      events.push(e);
    }
    out.push({
      v: 1,
      tenant: 'bench',
      keyId: 'k1',
      receivedAt: now,
      backfillBefore: now - 86_400_000,
      stream,
      kind: 'sealed',
      events,
    });
  }
  return out;
}

async function sinkRun(messages, withTree) {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-merkle-'));
  const store = await openStore({ kind: 'chdb', path: dir, database: 'bench' });
  try {
    await migrate(store);
    const writer = new TreeWriter(store);
    const plugins = withTree ? [new MerklePlugin({ store, observer: writer })] : [];
    const sink = new SinkProcessor({
      store,
      config: { group: 'g', maxBatchRecords: PER_BATCH },
      retentionDays: DEFAULT_RETENTION_DAYS,
      plugins,
    });
    let offset = 0;
    const started = performance.now();
    for (let i = 0; i < messages.length; i += PER_BATCH) {
      const batch = messages.slice(i, i + PER_BATCH).map((m) => ({
        partition: 0,
        offset: offset++,
        key: m.stream,
        value: encodeEventMessage(m),
        timestamp: now,
      }));
      await sink.process({ partition: 0, records: batch, highWatermark: offset });
    }
    const seconds = (performance.now() - started) / 1000;
    let flushMs = 0;
    if (withTree) {
      // What the checkpointer pays before it signs: nodes and head of every new leaf.
      const t = performance.now();
      await writer.flush();
      flushMs = performance.now() - t;
    }
    return { rate: EVENTS / seconds, flushMs };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`sealing ${EVENTS} events …`);
const messages = records();
const rates = { without: [], with: [] };
for (const withTree of [false, true, false, true, false, true]) {
  const { rate, flushMs } = await sinkRun(messages, withTree);
  rates[withTree ? 'with' : 'without'].push(rate);
  console.log(
    `sink ${withTree ? 'with the tree plugin   ' : 'without the tree plugin'}: ${Math.round(rate)} events/s` +
      (withTree
        ? `; then nodes and head of its ${EVENTS} leaves written in ${Math.round(flushMs)} ms`
        : ''),
  );
}
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
console.log(
  `tree overhead in the sink: ${(100 * (1 - median(rates.with) / median(rates.without))).toFixed(1)} % (medians of 3 runs each)`,
);

// (3) Pure math.
{
  const n = 200_000;
  const hashes = [];
  let t = performance.now();
  for (let i = 0; i < n; i++)
    hashes.push(
      eventLeafHash({
        tenant: 'bench',
        stream: `bench/${i >> 4}`,
        seq: i & 15,
        eventHash: ZERO_HASH,
      }),
    );
  const leafRate = n / ((performance.now() - t) / 1000);
  const frontier = new MerkleFrontier();
  t = performance.now();
  for (const h of hashes) frontier.append(h);
  frontier.root();
  const appendRate = n / ((performance.now() - t) / 1000);
  console.log(
    `leaf hash as the sink computes it: ${Math.round(leafRate)} /s; frontier append (node hashes included): ${Math.round(appendRate)} /s`,
  );
}

// (2) Roots and proofs of a large stored tree.
{
  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-tree-'));
  const store = await openStore({ kind: 'chdb', path: dir, database: 'bench' });
  try {
    await migrate(store);
    console.log(`writing a tree of ${TREE} leaves …`);
    const frontier = new MerkleFrontier();
    let leaves = [];
    let nodes = [];
    const flush = async () => {
      await store.insert(store.table('merkle_leaves'), leaves);
      await store.insert(store.table('merkle_nodes'), nodes);
      leaves = [];
      nodes = [];
    };
    for (let i = 0; i < TREE; i++) {
      const h = hashLeaf(leafData({ tenant: 'big', stream: 's', seq: i, eventHash: ZERO_HASH }));
      leaves.push({
        tenant_id: 'big',
        log_partition: 0,
        leaf_index: i,
        leaf_hash: h.toString('hex'),
        event_id: '00000000-0000-7000-8000-000000000000',
        event_hash: ZERO_HASH,
        stream: 's',
        seq: i,
        received_at: now,
        time: now,
      });
      frontier.append(h, (level, index, hash) =>
        nodes.push({
          tenant_id: 'big',
          log_partition: 0,
          level,
          node_index: index,
          hash: hash.toString('hex'),
        }),
      );
      if (leaves.length === 100_000) await flush();
    }
    await flush();
    const trees = new MerkleStore(store, { writeBack: false });
    const time = async (label, fn, runs = 20) => {
      await fn();
      const t = performance.now();
      for (let i = 0; i < runs; i++) await fn(i);
      console.log(`${label}: ${((performance.now() - t) / runs).toFixed(1)} ms`);
    };
    const size = TREE - 1; // not a power of two: more peaks
    const expected = (await trees.root('big', 0, size)).toString('hex');
    await time(`root of ${size} leaves from stored nodes`, () => trees.root('big', 0, size));
    await time(`inclusion path in ${size} leaves`, (i = 0) =>
      trees.inclusionPath('big', 0, (i * 7919) % size, size),
    );
    await time(`consistency path ${size >> 1} → ${size}`, () =>
      trees.consistencyPath('big', 0, size >> 1, size),
    );
    await time(`leaf count`, () => trees.leafCount('big', 0));
    // Without nodes: what a reader pays to rebuild a missing node of 4096 leaves.
    if (TREE >= 4096)
      await store.command(
        `DELETE FROM ${store.table('merkle_nodes')} WHERE tenant_id = 'big' AND level <= 12 AND node_index = 0`,
      );
    await time(
      'node of 4096 leaves rebuilt from its leaves',
      () => trees.subtreeHashes('big', 0, [{ level: 12, index: 0 }]),
      5,
    );
    if ((await trees.root('big', 0, size)).toString('hex') !== expected)
      throw new Error('root changed');
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
