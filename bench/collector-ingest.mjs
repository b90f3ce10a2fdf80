// Question: how many events per second does the collector take in on embedded defaults, with
// full validation, hash checks and a durable append, compared with a bare fastify endpoint that
// only JSON.parses the same bodies? And what is the p99 acknowledgement latency at half that load?
//
//   npm run build && node bench/collector-ingest.mjs [seconds=10] [connections=16] [workers]
//
// workers: check worker threads of the collector (default: as `vigil start`, one per CPU, ≤ 4).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sealedBatches, eventWireBytes } from './lib/events.mjs';
import { describeResult, load, startServer } from './lib/run.mjs';

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 16);
const workers = process.argv[4];
const EVENTS = 100;
const here = new URL('.', import.meta.url).pathname;

console.log(`generating ${600 * EVENTS} sealed events …`);
const bodies = sealedBatches(600, EVENTS);
const bytes = eventWireBytes(bodies[0], EVENTS);
console.log(
  `${EVENTS} events per request, ${bytes} bytes per event on the wire (record + hash + disclosures), 4 personal fields`,
);

const bare = await startServer(join(here, 'servers/bare-fastify.mjs'));
await load({ url: bare.url, bodies, seconds: 2, connections });
const baseline = describeResult(
  await load({ url: bare.url, bodies, seconds, connections }),
  EVENTS,
);
await bare.stop();
console.log('bare fastify (JSON.parse only):', baseline);

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-ingest-'));
try {
  const vigil = await startServer(join(here, 'servers/collector.mjs'), [
    dir,
    'always',
    ...(workers === undefined ? [] : [workers]),
  ]);
  await load({ url: vigil.url, key: vigil.extra, bodies, seconds: 2, connections });
  const full = describeResult(
    await load({ url: vigil.url, key: vigil.extra, bodies, seconds, connections }),
    EVENTS,
  );
  console.log('vigil collector (checks + fsync append):', full);
  const half = Math.max(1, Math.round(full.requestsPerSecond / 2));
  const halfLoad = describeResult(
    await load({ url: vigil.url, key: vigil.extra, bodies, seconds, connections, rate: half }),
    EVENTS,
  );
  console.log(`vigil collector at half load (${half} requests/s):`, halfLoad);
  await vigil.stop();
  const summary = {
    eventBytes: bytes,
    eventsPerRequest: EVENTS,
    baselineEventsPerSecond: baseline.eventsPerSecond,
    vigilEventsPerSecond: full.eventsPerSecond,
    ratio: Number((full.eventsPerSecond / baseline.eventsPerSecond).toFixed(2)),
    p99AckMsAtHalfLoad: halfLoad.latencyMs.p99,
    failedRequests: full.non2xx + halfLoad.non2xx + full.errors + halfLoad.errors,
  };
  console.log(JSON.stringify(summary));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
