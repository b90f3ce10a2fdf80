// Question: how many events per second, and how much CPU per event over all its threads, does
// the collector need to take in sealed events on embedded defaults (full checks, durable
// append), compared with a bare fastify endpoint that only JSON.parses the v1-shaped JSON body of
// the same events? And what is the p99 acknowledgement latency at half that load?
//
//   npm run build && node bench/collector-ingest.mjs [seconds=10] [connections=16] [workers] [runs=3]
//
// The collector gets the SDK's wire form, the sealed framing of PROTOCOL.md §9
// (application/vnd.vigil.sealed.v2); the baseline gets `{"events":[{"record","hash",
// "disclosures"}…]}`. CPU is read from /proc/<pid>/stat of each server process (user + system
// time of every thread: HTTP, check workers, fsync), over the measured seconds only.
// workers: check worker threads of the collector (default: as `vigil start`, one per CPU, ≤ 4).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SEALED_MEDIA_TYPE } from '@vigil/protocol';
import { framedBodies, sealedEventBatches } from './lib/events.mjs';
import { describeResult, load, processCpuMicros, startServer } from './lib/run.mjs';

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 16);
const workers =
  process.argv[4] === undefined || process.argv[4] === '' ? undefined : process.argv[4];
const runs = Number(process.argv[5] ?? 3);
const EVENTS = 100;
const here = new URL('.', import.meta.url).pathname;

console.log(`generating ${600 * EVENTS} sealed events …`);
const batches = sealedEventBatches(600, EVENTS);
const jsonBodies = batches.map((events) => JSON.stringify({ events }));
const framed = framedBodies(batches);
const perEvent = (bodies) =>
  Math.round(bodies.reduce((n, b) => n + Buffer.byteLength(b), 0) / (bodies.length * EVENTS));
console.log(
  `${EVENTS} events per request, 4 personal fields; bytes per event: ${perEvent(framed)} framed (v2), ${perEvent(jsonBodies)} as JSON (v1 shape)`,
);

/** A measured run against a started server: throughput and CPU per event of its process. */
async function measure(server, options) {
  await load({ url: server.url, seconds: 2, connections, ...options });
  const before = processCpuMicros(server.pid);
  const result = describeResult(
    await load({ url: server.url, seconds, connections, ...options }),
    EVENTS,
  );
  const cpu = processCpuMicros(server.pid) - before;
  const events = result.eventsPerSecond * seconds;
  return { ...result, cpuMicrosPerEvent: Number((cpu / events).toFixed(2)) };
}

const summaries = [];
for (let run = 1; run <= runs; run++) {
  const bare = await startServer(join(here, 'servers/bare-fastify.mjs'));
  const baseline = await measure(bare, { bodies: jsonBodies });
  await bare.stop();
  console.log(`run ${run} bare fastify (JSON.parse of the v1-shaped body):`, baseline);

  const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-ingest-'));
  try {
    const vigil = await startServer(join(here, 'servers/collector.mjs'), [
      dir,
      'always',
      ...(workers === undefined ? [] : [workers]),
    ]);
    const options = { key: vigil.extra, bodies: framed, contentType: SEALED_MEDIA_TYPE };
    const full = await measure(vigil, options);
    console.log(`run ${run} vigil collector (framed, checks + fsync append):`, full);
    let halfLoad;
    if (run === runs) {
      const half = Math.max(1, Math.round(full.requestsPerSecond / 2));
      halfLoad = describeResult(
        await load({ url: vigil.url, seconds, connections, rate: half, ...options }),
        EVENTS,
      );
      console.log(`vigil collector at half load (${half} requests/s):`, halfLoad);
    }
    await vigil.stop();
    const summary = {
      run,
      baselineEventsPerSecond: baseline.eventsPerSecond,
      baselineCpuMicrosPerEvent: baseline.cpuMicrosPerEvent,
      vigilEventsPerSecond: full.eventsPerSecond,
      vigilCpuMicrosPerEvent: full.cpuMicrosPerEvent,
      ratio: Number((full.eventsPerSecond / baseline.eventsPerSecond).toFixed(2)),
      ...(halfLoad ? { p99AckMsAtHalfLoad: halfLoad.latencyMs.p99 } : {}),
      failedRequests:
        full.non2xx + full.errors + (halfLoad ? halfLoad.non2xx + halfLoad.errors : 0),
    };
    summaries.push(summary);
    console.log(JSON.stringify(summary));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(JSON.stringify({ eventsPerRequest: EVENTS, runs: summaries }));
