// Embedded log (FileLog): how many durable appends per second, and how fast a large log opens.
//
// Question: can one collector process keep up with ~100k events/s (~100 events, 50-100 KB
// per message) when every append waits for its fdatasync, and does a 1 GiB log open fast?
//
// Method: 32 concurrent appenders, each appending one 64 KB message at a time with its own
// key (so they spread over the partitions), fsync 'always', for --seconds. Then a log of
// --open-mib MiB is written (fsync 'never', it is only the input), closed, and opened again:
// once after a clean close, once as after a crash (lock file left by a dead process), when
// the last segment of each partition is checked in full.
//
// Caveats: fdatasync cost depends entirely on the disk and its cache settings (a virtual
// disk with a write-back cache is far faster than a laptop SSD with barriers, let alone a
// spinning disk). The reopened log's files are in the page cache, as after a kill -9; a cold
// cache after a reboot reads the tails from disk.
//
// Usage: npx tsc -b packages/collector && node bench/file-log.mjs [--seconds 10]
//        [--appenders 32] [--bytes 65536] [--partitions 4] [--open-mib 1024]
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FileLog } from '../packages/collector/dist/log/file/file-log.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    appenders: { type: 'string', default: '32' },
    bytes: { type: 'string', default: '65536' },
    partitions: { type: 'string', default: '4' },
    'open-mib': { type: 'string', default: '1024' },
  },
});
const seconds = Number(args.seconds);
const appenders = Number(args.appenders);
const bytes = Number(args.bytes);
const partitions = Number(args.partitions);
const openMiB = Number(args['open-mib']);
const topic = 'events';

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

async function throughput(dir) {
  const log = await FileLog.open({ dir, topic, partitions, fsync: 'always' });
  const value = Buffer.alloc(bytes, 0x61);
  const latencies = [];
  let appends = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: appenders }, async (_, i) => {
      const key = `tenant-${i}/stream-${i}`;
      while (performance.now() < deadline) {
        const sent = performance.now();
        await log.append([{ key, value }]);
        latencies.push(performance.now() - sent);
        appends++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await log.close();
  latencies.sort((a, b) => a - b);
  return {
    appendsPerSecond: Math.round(appends / elapsed),
    mbPerSecond: Math.round((appends * bytes) / elapsed / 1e6),
    p50ms: quantile(latencies, 0.5).toFixed(2),
    p99ms: quantile(latencies, 0.99).toFixed(2),
  };
}

async function openTime(dir) {
  const log = await FileLog.open({ dir, topic, partitions, fsync: 'never' });
  const value = Buffer.alloc(bytes, 0x62);
  const count = Math.ceil((openMiB * 1024 * 1024) / bytes);
  for (let i = 0; i < count; i += appenders) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + appenders); j++) {
      batch.push(log.append([{ key: `stream-${j % 64}`, value }]));
    }
    await Promise.all(batch);
  }
  await log.close();

  let started = performance.now();
  const clean = await FileLog.open({ dir, topic, partitions });
  const cleanMs = performance.now() - started;
  await clean.close();

  // A pid that existed and is gone, as the lock file of a crashed collector holds.
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  await writeFile(path.join(dir, topic, 'lock'), `${pid}\n`);
  started = performance.now();
  const crashed = await FileLog.open({ dir, topic, partitions });
  const crashedMs = performance.now() - started;
  await crashed.close();
  return { mib: Math.round((count * bytes) / 1024 / 1024), cleanMs, crashedMs };
}

const dir = await mkdtemp(path.join(tmpdir(), 'vigil-bench-file-log-'));
try {
  const result = await throughput(path.join(dir, 'throughput'));
  console.log(
    `append, fsync always: ${appenders} appenders x ${bytes} B, ${partitions} partitions, ${seconds} s`,
  );
  console.log(
    `  ${result.appendsPerSecond} appends/s, ${result.mbPerSecond} MB/s, ` +
      `latency p50 ${result.p50ms} ms, p99 ${result.p99ms} ms`,
  );
  if (openMiB > 0) {
    const open = await openTime(path.join(dir, 'open'));
    console.log(`open of a ${open.mib} MiB log (${partitions} partitions):`);
    console.log(`  after a clean close: ${open.cleanMs.toFixed(1)} ms`);
    console.log(`  after a crash (last segments checked in full): ${open.crashedMs.toFixed(1)} ms`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
