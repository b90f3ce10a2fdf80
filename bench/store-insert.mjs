// Question: what does inserting a row of `events` cost, in JSONEachRow (the sink's format before)
// and in RowBinaryWithDefaults (the sink's format now), on the embedded store? CPU of every thread
// of the process, per row: the encoding on the sink's thread, the engine's parsing and writing,
// its materialized views and the background merges that follow.
//
//   npm run build && node bench/store-insert.mjs [rowsPerInsert=4000] [inserts=15]
//
// Method: the bench events (bench/lib/events.mjs: 4 personal fields) sealed and turned into rows
// as the sink does (eventRow, with a leaf), in `inserts` batches; then, per format, a fresh chDB
// data directory in a child process (the engine allows one per process), the migrated schema, the
// batches inserted one after the other, then 8 s of idle for the merges they set off. CPU time
// (/proc, user + system) by thread name: CPU time does not grow when other work on the machine
// takes the cores, wall time does. Caveats: merges still due after the 8 s are not counted, in
// either format; the encoding figure is the sink's thread alone ("main").
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [mode, rowsArg, insertsArg] = process.argv.slice(2);
const rowsPerInsert = Number((mode === 'json' || mode === 'rowbinary' ? rowsArg : mode) ?? 4000);
const inserts = Number((mode === 'json' || mode === 'rowbinary' ? insertsArg : rowsArg) ?? 15);

if (mode !== 'json' && mode !== 'rowbinary') {
  const self = fileURLToPath(import.meta.url);
  const results = {};
  for (const format of ['json', 'rowbinary']) {
    const run = spawnSync(process.execPath, [self, format, rowsPerInsert, inserts], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    results[format] = JSON.parse(run.stdout.trim().split('\n').pop());
  }
  console.log(JSON.stringify({ rowsPerInsert, inserts, ...results }, null, 1));
  process.exit(0);
}

const { eventRow, migrate, openStore, RowBinaryCodec, EVENT_COLUMN_TYPES } =
  await import('@vigil/query');
const { sampleInput } = await import('./lib/events.mjs');
const { randomSaltSource, sealEvent, ZERO_HASH } = await import('@vigil/protocol');

const salts = randomSaltSource();
const now = Date.now();
const batches = Array.from({ length: inserts }, (_, b) => {
  let prev = ZERO_HASH;
  return Array.from({ length: rowsPerInsert }, (_, seq) => {
    const { event, record } = sealEvent(
      sampleInput(b * rowsPerInsert + seq, now),
      { stream: `bench/${b}`, seq, prev },
      salts,
    );
    prev = event.hash;
    const row = eventRow(event, record, event.disclosures, {
      tenantId: 'bench',
      receivedAt: now,
      keyId: 'k',
      source: 'sealed',
      submittedDigest: '',
      logPartition: 0,
      logOffset: b,
      logIndex: seq,
      expiresAt: Math.floor(now / 1000) + 400 * 86_400,
      flags: [],
    });
    row.leaf_index = b * rowsPerInsert + seq;
    row.leaf_hash = event.hash;
    return row;
  });
});

function threads() {
  const out = {};
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = Number(tid) === process.pid ? 'main' : stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) * 10_000; // µs (USER_HZ 100)
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-insert-'));
const store = await openStore({ kind: 'chdb', path: dir, database: 'bench' });
await migrate(store);
const codec = new RowBinaryCodec(EVENT_COLUMN_TYPES);
const table = store.table('events');
const before = threads();
const cpu0 = process.cpuUsage();
const started = performance.now();
for (const rows of batches) {
  if (mode === 'json') await store.insert(table, rows);
  else await store.insertRowBinary(table, codec.names, codec.encode(rows).chunks());
}
const insertSeconds = (performance.now() - started) / 1000;
await new Promise((r) => setTimeout(r, 8000));
const cpu = process.cpuUsage(cpu0);
const after = threads();
const total = rowsPerInsert * inserts;
const [{ c }] = await store.query(`SELECT count() AS c FROM ${table}`);
if (Number(c) !== total) throw new Error(`stored ${c} rows of ${total}`);
const byThread = {};
for (const [name, us] of Object.entries(after)) {
  const d = (us - (before[name] ?? 0)) / total;
  if (d >= 0.5) byThread[name] = Number(d.toFixed(1));
}
await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    cpuMicrosecondsPerRow: Number(((cpu.user + cpu.system) / total).toFixed(1)),
    byThread,
    insertSecondsWall: Number(insertSeconds.toFixed(2)),
  }),
);
