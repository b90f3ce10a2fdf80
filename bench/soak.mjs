// Question: under a long steady load below capacity, does `vigil start` keep a flat RSS and a
// bounded lag? Above capacity, does it refuse with 503 + Retry-After instead of growing, and is
// every acknowledged (202) event stored?
//
//   npm run build && node bench/soak.mjs [soak|overload|both] [seconds] [eventsPerSecond]
//
//   soak      (default 600 s) at eventsPerSecond (default: 80 % of the capacity measured by a
//             30 s probe at the start of the run)
//   overload  (default 60 s) at eventsPerSecond (default 3 × the soak rate, or 20 000)
//   both      overload first (its capacity probe is the soak's), then soak
//
// Extra flags after `--` are passed to `vigil start` (e.g. `-- --ingest-max-lag-records 50000`).
//
// One `vigil start` process per phase (collector, embedded file log, sink, chDB), on 127.0.0.1.
// Sealed events (4 personal fields, ~1.4 KB on the wire) in bodies of 100, each body its own
// stream, sealed on the fly by a worker thread of this process (pre-generating 10 minutes of
// events would take gigabytes); a bounded queue of sealed bodies sits between it and the sender.
// Every few seconds: RSS of the vigil process (/proc/<pid>/status), lag (accepted − stored, from
// /metrics). At the end the sink is left to drain, vigil is stopped, and the bench opens the
// store itself (chDB) and checks that every event acknowledged with 202 is there.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { request, Agent } from 'node:http';
import { Worker } from 'node:worker_threads';

const args = process.argv.slice(2);
const dash = args.indexOf('--');
const positional = dash >= 0 ? args.slice(0, dash) : args;
const vigilExtra = dash >= 0 ? args.slice(dash + 1) : [];
const mode = positional[0] ?? 'soak';
const secondsArg = positional[1] === undefined ? undefined : Number(positional[1]);
const rateArg = positional[2] === undefined ? undefined : Number(positional[2]);
const EVENTS = 100;
const SAMPLE_MS = 5000;
const CONNECTIONS = 16;
const cli = new URL('../packages/app/dist/cli/main.js', import.meta.url).pathname;

// ---- sealed bodies, made by a worker thread --------------------------------------------------

const generatorSource = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.events).then(({ sealedBatches }) => {
  let made = 0;
  parentPort.on('message', (want) => {
    const bodies = sealedBatches(want, ${EVENTS}, 'soak-' + workerData.label + '-' + made);
    made += want;
    parentPort.postMessage(bodies);
  });
  parentPort.postMessage('ready');
});`;

class BodySource {
  constructor(label, capacity) {
    this.queue = [];
    this.capacity = capacity;
    this.asked = 0;
    this.worker = new Worker(generatorSource, {
      eval: true,
      workerData: { events: new URL('./lib/events.mjs', import.meta.url).href, label },
    });
    this.ready = new Promise((resolve) => {
      this.worker.on('message', (m) => {
        if (m === 'ready') {
          this.top();
          return resolve();
        }
        this.asked -= m.length;
        this.queue.push(...m);
        this.top();
      });
    });
  }
  top() {
    const want = this.capacity - this.queue.length - this.asked;
    if (want >= 10) {
      this.asked += want;
      this.worker.postMessage(want);
    }
  }
  /** Resolves once the queue is half full, so a phase does not start starved. */
  async filled() {
    while (this.queue.length < this.capacity / 2) await new Promise((r) => setTimeout(r, 50));
  }
  take() {
    const body = this.queue.shift();
    this.top();
    return body;
  }
  close() {
    return this.worker.terminate();
  }
}

/** Event ids of a body without parsing the records: `"id":"…"` inside each record string. */
function idsOf(body) {
  return [...body.matchAll(/\\"id\\":\\"([0-9a-f-]{36})\\"/g)].map((m) => m[1]);
}

// ---- vigil -----------------------------------------------------------------------------------

async function startVigil(dir) {
  const child = spawn(
    process.execPath,
    [
      cli,
      'start',
      '--data-dir',
      dir,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--log-level',
      'info',
      '--rate-limit-ingest-per-minute',
      '0',
      ...vigilExtra,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (c) => {
    out += c.toString();
    if (out.length > 1e6) out = out.slice(-1e5);
  });
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
  return {
    url,
    key: creds.ingestKey,
    pid: child.pid,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

async function metrics(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sum = (name) => {
    let total = 0;
    for (const line of text.split('\n'))
      if (line.startsWith(name + ' ') || line.startsWith(name + '{'))
        total += Number(line.split(' ').pop());
    return total;
  };
  return {
    accepted: sum('vigil_events_accepted_total'),
    stored: sum('vigil_sink_rows_total') + sum('vigil_sink_duplicates_total'),
    heapMiB: Math.round(sum('vigil_process_nodejs_heap_size_used_bytes') / 2 ** 20),
    externalMiB: Math.round(sum('vigil_process_nodejs_external_memory_bytes') / 2 ** 20),
  };
}

// ---- load ------------------------------------------------------------------------------------

/**
 * Offers `rate` events/s in bodies of 100 for `seconds`, at most CONNECTIONS requests in flight
 * (an open-loop generator that cannot send when all connections wait counts the miss).
 */
async function offer({ vigil, source, rate, seconds, onSample }) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const tally = { sent: 0, status: {}, retryAfter: new Set(), missed: 0, starved: 0, errors: 0 };
  const acked = [];
  let inFlight = 0;
  const started = Date.now();
  const send = (body) =>
    new Promise((resolve) => {
      inFlight++;
      tally.sent++;
      const req = request(
        `${vigil.url}/v1/events`,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${vigil.key}`,
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            inFlight--;
            tally.status[res.statusCode] = (tally.status[res.statusCode] ?? 0) + 1;
            if (res.statusCode === 202) acked.push(body);
            else if (res.headers['retry-after'] !== undefined)
              tally.retryAfter.add(res.headers['retry-after']);
            resolve();
          });
        },
      );
      req.on('error', () => {
        inFlight--;
        tally.errors++;
        resolve();
      });
      req.end(body);
    });
  const pending = new Set();
  const sampler = setInterval(() => void onSample(), SAMPLE_MS);
  while (Date.now() - started < seconds * 1000) {
    const due = Math.floor(((Date.now() - started) / 1000) * (rate / EVENTS));
    while (tally.sent + tally.missed + tally.starved < due) {
      if (inFlight >= CONNECTIONS) {
        tally.missed++;
        continue;
      }
      const body = source.take();
      if (body === undefined) {
        tally.starved++;
        continue;
      }
      const p = send(body);
      pending.add(p);
      void p.then(() => pending.delete(p));
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(pending);
  clearInterval(sampler);
  agent.destroy();
  return { tally, acked, elapsed: (Date.now() - started) / 1000 };
}

// ---- one phase -------------------------------------------------------------------------------

async function phase(name, rate, seconds) {
  const dir = mkdtempSync(join(tmpdir(), `vigil-bench-soak-${name}-`));
  const vigil = await startVigil(dir);
  const source = new BodySource(name, Math.max(50, Math.ceil((rate / EVENTS) * 3)));
  await source.ready;
  await source.filled();
  const samples = [];
  const t0 = Date.now();
  const onSample = async () => {
    try {
      const m = await metrics(vigil.url);
      const s = {
        t: Math.round((Date.now() - t0) / 1000),
        rssMiB: rssMiB(vigil.pid),
        heapMiB: m.heapMiB,
        externalMiB: m.externalMiB,
        lag: m.accepted - m.stored,
        accepted: m.accepted,
        stored: m.stored,
      };
      samples.push(s);
      process.stderr.write(
        `  ${name} t=${s.t}s rss ${s.rssMiB} MiB heap ${s.heapMiB} MiB external ${s.externalMiB} MiB lag ${s.lag} accepted ${s.accepted}\n`,
      );
    } catch {
      // a sample missed under load is not a result
    }
  };
  console.log(`${name}: offering ${rate} events/s for ${seconds} s …`);
  const { tally, acked, elapsed } = await offer({ vigil, source, rate, seconds, onSample });
  await source.close();
  // Drain: the sink stores what the log holds.
  const drainStart = Date.now();
  let drained;
  for (let i = 0; i < 600; i++) {
    const m = await metrics(vigil.url);
    if (m.stored >= m.accepted) {
      drained = (Date.now() - drainStart) / 1000;
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  const final = await metrics(vigil.url);
  await vigil.stop();
  const ackedIds = acked.flatMap(idsOf);
  const stored = await countStored(dir, ackedIds);
  rmSync(dir, { recursive: true, force: true });

  // Flat: the last third's median RSS within 15 % of the second third's (the first third is
  // warm-up: chDB's caches, JIT, the dedupe window filling).
  const rss = samples.map((s) => s.rssMiB);
  const third = Math.floor(rss.length / 3);
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;
  const middle = median(rss.slice(third, 2 * third));
  const last = median(rss.slice(2 * third));
  const lags = samples.map((s) => s.lag);
  return {
    phase: name,
    offeredEventsPerSecond: rate,
    seconds: Math.round(elapsed),
    acceptedEventsPerSecond: Math.round(final.accepted / elapsed),
    requests: { sent: tally.sent, byStatus: tally.status, errors: tally.errors },
    generator: { missedNoFreeConnection: tally.missed, starvedNoSealedBody: tally.starved },
    retryAfterValues: [...tally.retryAfter],
    rssMiB: { max: Math.max(...rss), middleThirdMedian: middle, lastThirdMedian: last },
    rssFlat: last <= middle * 1.15,
    lagEvents: { max: Math.max(0, ...lags), last: lags.at(-1) ?? 0 },
    secondsToDrain: drained ?? 'did not drain in 10 min',
    // Events/s stored while the sink had work waiting (lag > 0 at both ends of the span).
    storedPerSecondUnderLag: storedRate(samples),
    acknowledgedEvents: ackedIds.length,
    acknowledgedAndStored: stored,
    everyAcknowledgedEventStored: stored === ackedIds.length,
  };
}

function storedRate(samples) {
  const busy = samples.filter((s) => s.lag > 0);
  const first = busy[0];
  const last = busy.at(-1);
  if (!first || !last || last.t === first.t) return 0;
  return Math.round((last.stored - first.stored) / (last.t - first.t));
}

/** Opens the stopped process's store and counts the acknowledged ids it holds. */
async function countStored(dir, ids) {
  const { Session } = await import('chdb');
  const file = join(dir, 'acked-ids.txt');
  writeFileSync(file, ids.join('\n') + '\n');
  const session = new Session(join(dir, 'store'));
  try {
    const out = session.query(
      `SELECT count() FROM file('${file}', 'LineAsString') WHERE toUUID(line) IN (SELECT id FROM vigil.events)`,
      'CSV',
    );
    return Number(String(out).trim());
  } finally {
    session.cleanup?.();
  }
}

/** Events/s the sink stores when offered more than it can take (30 s, while it lags). */
async function probeCapacity() {
  const r = await phase('probe', 20000, 30);
  const cap = r.storedPerSecondUnderLag;
  console.log(`capacity probe: ${cap} events/s stored`, JSON.stringify(r));
  return cap;
}

const results = [];
let capacity;
if (mode === 'overload' || mode === 'both') {
  const rate = rateArg ?? 20000;
  results.push(await phase('overload', rate, mode === 'both' ? 60 : (secondsArg ?? 60)));
}
if (mode === 'soak' || mode === 'both') {
  if (rateArg === undefined || mode === 'both') capacity = await probeCapacity();
  const rate = mode === 'soak' && rateArg !== undefined ? rateArg : Math.round(capacity * 0.8);
  results.push(await phase('soak', rate, secondsArg ?? 600));
}
for (const r of results) console.log(JSON.stringify(r));
