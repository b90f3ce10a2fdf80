// Question: how fast does `vigil verify` check a tenant's log (issue bar: ≥ 500 000 events/s on
// a 2-core machine), and what does it cost next to the least any verifier must do, re-hashing
// every stored record?
//
//   npm run build && node bench/verify.mjs [events=1000000] [partitions=2] [--keep DIR]
//
// --keep DIR builds the log in DIR and leaves it there; a later run with the same DIR reuses
// it (pinning the key the store published), to measure verify again without rebuilding.
//
// Method: a fresh embedded store (chDB) gets `events` sealed events (~600-byte records, three
// committed personal fields each: actor id and e-mail, IP) through the real sink with the
// Merkle tree plugin, on `partitions` log partitions, 10 events per stream, with a signed
// checkpoint every 100 000 events. Then, three times each, alternating:
//   - verifyLog (what `vigil verify --key …` runs): checkpoints, every record's hash, every
//     disclosure against its commitment and every typed column through the column digest the
//     leaf binds (one hash per row, PROTOCOL.md §13.2.1), every leaf, every tree root against
//     every checkpoint, every chain link;
//   - verifyLog with deep: true (`vigil verify --deep`): the same, and every record parsed and
//     compared with its columns and disclosures;
//   - the baseline: one engine query that re-hashes every stored record of the tenant
//     (`SHA256(record) = hash`, FINAL), nothing else.
// Medians are reported, as events/s and as the ratio verify / baseline.
// Caveats: chDB runs in this process, so the engine and JS share the 2 cores; building the log
// (sealing in JS, then the sink) takes most of the run and is not part of the figures.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newEventId, randomSaltSource, sealEvent, ZERO_HASH } from '@vigil/protocol';
import { CheckpointStore, migrate, openStore, verifyLog } from '@vigil/query';
import {
  Checkpointer,
  DEFAULT_RETENTION_DAYS,
  MemorySigner,
  MerklePlugin,
  SinkProcessor,
  TreeWriter,
} from '@vigil/collector';
import { encodeEventMessage } from '@vigil/collector';

const keepAt = process.argv.indexOf('--keep');
const keep = keepAt > 0 ? process.argv[keepAt + 1] : undefined;
const positional = process.argv
  .slice(2)
  .filter((a, i, all) => a !== '--keep' && all[i - 1] !== '--keep');
const EVENTS = Number(positional[0] ?? 1_000_000);
const PARTITIONS = Number(positional[1] ?? 2);
const PER_STREAM = 10;
const RECORDS_PER_BATCH = 200;
const TENANT = 'bench';
const RUNS = 3;

const salts = randomSaltSource();
const now = Date.now() - 600_000;
const cpuSince = (start) => {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
};
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

function message(r) {
  const stream = `billing-api/host-${r % 16}/${r}`;
  let prev = ZERO_HASH;
  const events = [];
  for (let seq = 0; seq < PER_STREAM; seq++) {
    const e = sealEvent(
      {
        id: newEventId(now + r),
        time: new Date(now + r).toISOString(),
        action: 'invoice.viewed',
        category: 'data_access',
        outcome: 'success',
        actor: { type: 'user', id: `u-${r % 5000}`, email: `user${r % 5000}@example.eu` },
        target: { type: 'invoice', id: `inv-${r}-${seq}` },
        context: {
          ip: `198.51.${r % 256}.${seq}`,
          requestId: `req-${r}-${seq}`,
        },
        metadata: { amountCents: 1000 + seq, currency: 'EUR', plan: 'enterprise' },
      },
      { stream, seq, prev },
      salts,
    ).event;
    prev = e.hash;
    events.push(e);
  }
  return {
    v: 1,
    tenant: TENANT,
    keyId: 'k1',
    receivedAt: now + r,
    backfillBefore: now - 86_400_000,
    stream,
    kind: 'sealed',
    events,
  };
}

const reuse = keep !== undefined && existsSync(join(keep, 'built'));
const dir = keep ?? mkdtempSync(join(tmpdir(), 'vigil-bench-verify-'));
const store = await openStore({ kind: 'chdb', path: dir, database: 'bench' });
try {
  const pinned = reuse ? await reopen() : await build();
  await measure(pinned);
} finally {
  await store.close();
  if (keep === undefined) rmSync(dir, { recursive: true, force: true });
}

async function reopen() {
  const keys = await new CheckpointStore(store).keys();
  console.log(`reusing the log in ${dir}`);
  return keys.map((k) => k.publicKey);
}

async function build() {
  await migrate(store);
  const signer = MemorySigner.generate();
  const checkpoints = new CheckpointStore(store);
  await checkpoints.publishKeys(signer.publishedKeys());
  const trees = new TreeWriter(store);
  const checkpointer = new Checkpointer({
    heads: trees,
    tree: trees,
    sink: checkpoints,
    signer,
    everyEvents: 100_000,
    intervalMs: 0,
  });
  const sink = new SinkProcessor({
    store,
    config: { group: 'g', maxBatchRecords: RECORDS_PER_BATCH },
    retentionDays: DEFAULT_RETENTION_DAYS,
    salts,
    plugins: [new MerklePlugin({ store, observer: checkpointer })],
  });

  const records = EVENTS / PER_STREAM;
  const offsets = new Array(PARTITIONS).fill(0);
  let sample = 0;
  const started = performance.now();
  for (let r = 0; r < records; r += RECORDS_PER_BATCH * PARTITIONS) {
    for (let p = 0; p < PARTITIONS; p++) {
      const batch = [];
      for (let i = 0; i < RECORDS_PER_BATCH; i++) {
        const n = r + p * RECORDS_PER_BATCH + i;
        if (n >= records) break;
        const m = message(n);
        const value = encodeEventMessage(m);
        if (sample === 0) sample = Buffer.byteLength(m.events[0].record);
        batch.push({ partition: p, offset: offsets[p]++, key: m.stream, value, timestamp: now });
      }
      if (batch.length > 0)
        await sink.process({ partition: p, records: batch, highWatermark: offsets[p] });
    }
    const done = Math.min(records, r + RECORDS_PER_BATCH * PARTITIONS) * PER_STREAM;
    if (done % 100_000 === 0)
      process.stderr.write(
        `\rbuilding the log: ${fmt(done)} / ${fmt(EVENTS)} events (${Math.round((performance.now() - started) / 1000)} s)`,
      );
  }
  await checkpointer.flush();
  process.stderr.write('\n');
  if (keep !== undefined) writeFileSync(join(keep, 'built'), '');
  console.log(
    `log: ${fmt(EVENTS)} events (records of ${sample} bytes), ${PARTITIONS} partitions, built in ${Math.round((performance.now() - started) / 1000)} s`,
  );
  return [signer.publicKey()];
}

async function measure(keys) {
  const stored = Number(
    (
      await store.query(
        `SELECT count() AS n FROM ${store.table('events')} FINAL WHERE tenant_id = {t:String}`,
        { t: TENANT },
      )
    )[0].n,
  );
  const verifyRates = [];
  const deepRates = [];
  const baseRates = [];
  let phases = new Map();
  let phaseStart = 0;
  let phase = '';
  const onProgress = (p) => {
    if (p.phase === phase) return;
    const t = performance.now();
    if (phase) phases.set(phase, (phases.get(phase) ?? 0) + t - phaseStart);
    phase = p.phase;
    phaseStart = t;
  };
  for (let run = 0; run < RUNS; run++) {
    phases = new Map();
    phase = '';
    // CPU time of this process, the engine's threads included (chDB runs in it): on a shared
    // machine wall time also counts other processes' load.
    let c = process.cpuUsage();
    let t = performance.now();
    const [row] = await store.query(
      `SELECT count() AS n, countIf(lower(hex(SHA256(record))) != hash) AS bad
         FROM ${store.table('events')} FINAL WHERE tenant_id = {t:String}`,
      { t: TENANT },
    );
    const baseSeconds = (performance.now() - t) / 1000;
    const baseCpu = cpuSince(c);
    if (Number(row.bad) !== 0 || Number(row.n) !== stored) throw new Error('baseline disagrees');
    baseRates.push(stored / baseSeconds);

    c = process.cpuUsage();
    t = performance.now();
    const report = await verifyLog(store, { tenant: TENANT, keys, onProgress });
    const seconds = (performance.now() - t) / 1000;
    const verifyCpu = cpuSince(c);
    if (!report.ok) throw new Error(`verification failed: ${JSON.stringify(report.findings[0])}`);
    if (report.totals.events !== stored) throw new Error('verify did not see every event');
    verifyRates.push(stored / seconds);
    const lastPhases = phases;

    phases = new Map();
    phase = '';
    c = process.cpuUsage();
    t = performance.now();
    const deep = await verifyLog(store, { tenant: TENANT, keys, deep: true });
    const deepSeconds = (performance.now() - t) / 1000;
    const deepCpu = cpuSince(c);
    if (!deep.ok) throw new Error(`deep verification failed: ${JSON.stringify(deep.findings[0])}`);
    deepRates.push(stored / deepSeconds);
    phases = lastPhases;
    console.log(
      `run ${run + 1}: verify ${seconds.toFixed(2)} s = ${fmt(stored / seconds)} events/s ` +
        `(${report.totals.checkpoints.verified} checkpoints, ${report.totals.leaves} leaves, ${report.totals.streams} streams); ` +
        `--deep ${deepSeconds.toFixed(2)} s = ${fmt(stored / deepSeconds)} events/s; ` +
        `baseline hash scan ${baseSeconds.toFixed(2)} s = ${fmt(stored / baseSeconds)} events/s; ` +
        `CPU-s: verify ${verifyCpu.toFixed(2)}, --deep ${deepCpu.toFixed(2)}, baseline ${baseCpu.toFixed(2)}`,
    );
  }
  const v = median(verifyRates);
  const d = median(deepRates);
  const b = median(baseRates);
  console.log(
    `vigil verify: ${fmt(v)} events/s (bar 500,000: ${v >= 500_000 ? 'met' : 'NOT met'}); ` +
      `--deep: ${fmt(d)} events/s; ` +
      `baseline (re-hash every record in the engine): ${fmt(b)} events/s; ratio ${(v / b).toFixed(2)}, --deep ${(d / b).toFixed(2)} (medians of ${RUNS})`,
  );
  console.log(
    `time per phase of the last run (events and trees run concurrently): ${[...phases].map(([p, ms]) => `${p} ${(ms / 1000).toFixed(2)} s`).join(', ')}`,
  );
}
