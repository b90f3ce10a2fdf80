// Question: at a steady ingest rate, does the sink keep up — how far behind the accepted events
// are the stored (queryable) ones? End to end: `vigil start` as a process (collector + log +
// sink + chDB), unique events, autocannon at a fixed rate. The log is the embedded file log
// (fsync before each 202), or with --kafka librdkafka's mock broker (one broker, 4 partitions;
// the mock keeps only ~5 MiB per partition, so the sink must keep up or events are lost there).
//
//   npm run build && node bench/e2e.mjs [eventsPerSecond=20000] [seconds=20] [--kafka] [--cpu-prof=DIR]
//
// --cpu-prof=DIR runs `vigil start` under V8's CPU profiler (one .cpuprofile per thread in DIR,
// written when it exits).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { SEALED_MEDIA_TYPE } from '@vigil/protocol';
import { framedSealedBodies } from './lib/events.mjs';
import { describeResult, load } from './lib/run.mjs';
import { startMockBroker } from './lib/kafka-mock.mjs';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const kafkaMode = process.argv.includes('--kafka');
const profileDir = process.argv
  .find((a) => a.startsWith('--cpu-prof='))
  ?.slice('--cpu-prof='.length);
const rate = Number(positional[0] ?? 20000);
const seconds = Number(positional[1] ?? 20);
const EVENTS = 100;
const cli = new URL('../packages/app/dist/cli/main.js', import.meta.url).pathname;

const total = rate * seconds;
console.log(`generating ${total} unique sealed events, framed as the SDK sends them …`);
const bodies = framedSealedBodies(Math.ceil(total / EVENTS), EVENTS, 'e2e');

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-e2e-'));
const broker = kafkaMode
  ? await startMockBroker([{ name: 'vigil.events', partitions: 4 }])
  : undefined;
const logArgs = broker
  ? ['--log', 'kafka', '--kafka-brokers', broker.brokers, '--kafka-session-timeout-seconds', '6']
  : [];
const child = spawn(
  process.execPath,
  [
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    cli,
    'start',
    '--data-dir',
    dir,
    '--port',
    '0',
    // info: the line that says where it listens (request logging is off).
    '--log-level',
    'info',
    '--rate-limit-ingest-per-minute',
    '0',
    ...logArgs,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let out = '';
child.stdout.on('data', (c) => (out += c.toString()));
const url = await new Promise((resolve, reject) => {
  const timer = setInterval(() => {
    const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
    if (m) {
      clearInterval(timer);
      resolve(m[1]);
    }
  }, 50);
  child.once('exit', (code) => reject(new Error(`vigil exited ${code}: ${out}`)));
});
const creds = JSON.parse(readFileSync(join(dir, 'bootstrap-credentials.json'), 'utf8'));

/**
 * CPU seconds (user + system) of the vigil process so far: in total, and by thread name for the
 * threads alive now (main thread "main"; chDB names its own threads; libuv's pool "libuv-worker").
 * Linux only (/proc); CPU time, unlike wall time and profiles, does not grow when other work on the
 * machine takes the cores.
 */
const TICKS = 100; // USER_HZ on Linux
function cpuOf(pid) {
  const times = (stat) => {
    // comm is in parentheses and may hold spaces: the fields after it start at the last ')'.
    const close = stat.lastIndexOf(')');
    const name = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    return { name, seconds: (Number(f[11]) + Number(f[12])) / TICKS };
  };
  try {
    const total = times(readFileSync(`/proc/${pid}/stat`, 'utf8')).seconds;
    const byThread = {};
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const t = times(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
        const name = Number(tid) === pid ? 'main' : t.name;
        byThread[name] = (byThread[name] ?? 0) + t.seconds;
      } catch {
        // The thread ended meanwhile.
      }
    }
    return { total, byThread };
  } catch {
    return undefined;
  }
}

async function metric(name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(name)) sum += Number(line.split(' ').pop());
  return sum;
}

const samples = [];
const sampler = setInterval(async () => {
  const [accepted, stored] = await Promise.all([
    metric('vigil_events_accepted_total'),
    metric('vigil_sink_rows_total'),
  ]);
  samples.push({ t: Date.now(), accepted, stored });
  process.stderr.write(`  t=${samples.length}s accepted ${accepted} stored ${stored}\n`);
}, 1000);

const started = Date.now();
const cpuBefore = cpuOf(child.pid);
const storedBefore = await metric('vigil_sink_rows_total');
const result = describeResult(
  await load({
    url,
    key: creds.ingestKey,
    bodies,
    seconds,
    connections: 8,
    rate: rate / EVENTS,
    contentType: SEALED_MEDIA_TYPE,
  }),
  EVENTS,
);
// Wait for the sink to drain.
let drained;
for (let i = 0; i < 120; i++) {
  const [accepted, stored] = await Promise.all([
    metric('vigil_events_accepted_total'),
    metric('vigil_sink_rows_total'),
  ]);
  if (stored >= accepted) {
    drained = (Date.now() - started) / 1000 - seconds;
    break;
  }
  await new Promise((r) => setTimeout(r, 500));
}
clearInterval(sampler);
const cpuAfter = cpuOf(child.pid);
const storedDuringRun = (await metric('vigil_sink_rows_total')) - storedBefore;
// CPU per stored event, from the start of the load until drained, by thread (threads that ended
// during the run count in the total only, as "ended threads").
let cpu;
if (cpuBefore && cpuAfter && storedDuringRun > 0) {
  const perEvent = (seconds) => Math.round((seconds * 1e6) / storedDuringRun);
  const threads = {};
  let live = 0;
  for (const [name, seconds] of Object.entries(cpuAfter.byThread)) {
    const spent = seconds - (cpuBefore.byThread[name] ?? 0);
    live += spent;
    if (spent > 0) threads[name] = perEvent(spent);
  }
  threads['ended threads'] = perEvent(Math.max(0, cpuAfter.total - cpuBefore.total - live));
  cpu = {
    microsecondsPerEvent: perEvent(cpuAfter.total - cpuBefore.total),
    byThread: Object.fromEntries(Object.entries(threads).sort((a, b) => b[1] - a[1])),
  };
}
const steady = samples.slice(Math.floor(samples.length / 4), samples.length - 1);
const lags = steady.map((s) => s.accepted - s.stored);
// Lag in time: how long ago the events now stored had all been accepted (the first sample whose
// accepted count reached this sample's stored count), to 1 s resolution.
const lagSeconds = steady.map((s) => {
  const reached = samples.find((r) => r.accepted >= s.stored);
  return reached ? (s.t - reached.t) / 1000 : 0;
});
const summary = {
  log: kafkaMode ? 'kafka (mock broker)' : 'embedded file log',
  targetEventsPerSecond: rate,
  acceptedEventsPerSecond: result.eventsPerSecond,
  failedRequests: result.non2xx + result.errors,
  p99AckMs: result.latencyMs.p99,
  steadyLagEvents: {
    median: lags.sort((a, b) => a - b)[Math.floor(lags.length / 2)] ?? 0,
    max: Math.max(0, ...lags),
  },
  steadyLagSeconds: {
    median: lagSeconds.sort((a, b) => a - b)[Math.floor(lagSeconds.length / 2)] ?? 0,
    max: Math.max(0, ...lagSeconds),
  },
  secondsToDrainAfterLoad: drained ?? 'did not drain in 60 s',
  cpu,
  // Rows per store insert: the sink's batching (one insert costs tens of ms whatever its size).
  eventsPerInsert: Math.round(
    (await metric('vigil_sink_rows_total')) /
      Math.max(1, await metric('vigil_sink_insert_seconds_count')),
  ),
};
console.log(JSON.stringify(summary));
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
await broker?.stop();
rmSync(dir, { recursive: true, force: true });
