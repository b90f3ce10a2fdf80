// SDK record() cost, total cost per event, and event-loop stalls while flushing.
// Question, method and caveats: bench/README.md. Run after `npm run build`:
//   node bench/sdk-record.mjs [events=1000000] [batchEvents=1000]
//   node bench/sdk-record.mjs commitments     (what each cut of the commitment cost saves)
import { spawn } from 'node:child_process';
import { createHash, hash as oneShot, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { setImmediate } from 'node:timers';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { COMMITMENT_DOMAIN, commitmentOfCanonical } from '@vigil/protocol';
import { createAuditClient } from '@vigil/sdk';
import { RandomBytes } from '../packages/sdk/dist/chain/ids.js';
import { Sealer } from '../packages/sdk/dist/chain/sealer.js';

const N = Number(process.argv[2] ?? 1_000_000);
const BATCH = Number(process.argv[3] ?? 1000);
const CHUNK = 2_000;

/** ~500 bytes as JSON, 4 personal fields: actor id and email, context ip and user agent. */
function makeEvent(i) {
  return {
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'user', id: `u-${100000 + (i % 5000)}`, email: `user${i % 5000}@example.eu` },
    target: { type: 'document', id: `doc-${i}`, name: 'Quarterly report Q3 2026' },
    context: {
      ip: '203.0.113.7',
      userAgent:
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0',
      requestId: `req-${i.toString(16)}`,
      sessionId: 'sess-1bf0c7d2',
    },
    metadata: {
      tenant: 'acme',
      plan: 'enterprise',
      region: 'eu-west-1',
      bytes: 18231 + (i % 97),
      pages: 12,
    },
  };
}

const events = Array.from({ length: 1024 }, (_, i) => makeEvent(i));
const eventBytes = JSON.stringify(events[0]).length;

function cpuMicros(since) {
  const u = process.cpuUsage(since);
  return u.user + u.system;
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A sink that accepts and discards, in its own process so its CPU is not counted here. It takes
 * only the sealed framing the SDK sends (PROTOCOL.md §9) and answers 415 otherwise, so a bench
 * of the wrong wire form fails instead of measuring it.
 */
async function startSink() {
  const code = `
    const http = require('node:http');
    const server = http.createServer((req, res) => {
      const ok = req.headers['content-type'] === 'application/vnd.vigil.sealed.v2';
      req.on('data', () => {});
      req.on('end', () => {
        res.writeHead(ok ? 202 : 415, { 'content-type': 'application/json' });
        res.end(ok ? '{"accepted":0,"duplicates":0}' : '{"error":{"code":"VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE","message":"not the sealed framing"}}');
      });
    });
    server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));
    process.on('disconnect', () => process.exit(0));
  `;
  const child = spawn(process.execPath, ['-e', code], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('error', reject);
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill() };
}

async function pinoBaseline(sync) {
  const dest = pino.destination({ dest: '/dev/null', sync });
  if (!sync) await once(dest, 'ready');
  const log = pino({ base: undefined }, dest);
  for (let i = 0; i < 50_000; i++) log.info(events[i & 1023]);
  const start = process.cpuUsage();
  for (let i = 0; i < N; i++) log.info(events[i & 1023]);
  dest.flushSync();
  return cpuMicros(start) / N;
}

async function sdkRun(url, gzip) {
  const audit = createAuditClient({
    endpoint: url,
    apiKey: 'bench',
    service: 'bench',
    logger: false,
    gzip,
    batch: { maxEvents: BATCH, maxDelayMs: 50 },
    queue: { maxEvents: 50_000, maxBytes: 128 * 1024 * 1024 },
  });
  // Warm-up, not measured.
  for (let i = 0; i < 20_000; i++) void audit.record(events[i & 1023]);
  await audit.flush({ deadlineMs: 60_000 });
  const sentBefore = audit.stats().sent;

  const start = process.cpuUsage();
  const wallStart = performance.now();
  let recordCpu = 0;
  for (let done = 0; done < N; done += CHUNK) {
    const t = process.cpuUsage();
    for (let i = done; i < done + CHUNK; i++) void audit.record(events[i & 1023]);
    recordCpu += cpuMicros(t);
    // Back-pressure for the bench itself: never let the queue overflow (nothing may be dropped).
    while (audit.stats().queued > 20_000) await tick();
    await tick();
  }
  const delivered = await audit.flush({ deadlineMs: 120_000 });
  const total = cpuMicros(start);
  const wall = performance.now() - wallStart;
  const stats = audit.stats();
  await audit.close({ deadlineMs: 5000 });
  if (!delivered || stats.dropped > 0 || stats.sent - sentBefore < N) {
    throw new Error(`not everything was delivered: ${JSON.stringify(stats)}`);
  }
  return { record: recordCpu / N, total: total / N, rate: N / (wall / 1000) };
}

/**
 * Event-loop stalls caused by the SDK: the application records at a steady pace from a 1 ms
 * timer (about 50 000 events/s, each tick far below 10 ms), so any long delay comes from the
 * SDK's own work (batch assembly, body encoding, responses). Then a 200 000-event backlog is
 * flushed with nothing else running.
 */
async function stallRun(url) {
  const audit = createAuditClient({
    endpoint: url,
    apiKey: 'bench',
    service: 'bench',
    logger: false,
    batch: { maxEvents: BATCH, maxDelayMs: 50 },
    queue: { maxEvents: 250_000, maxBytes: 512 * 1024 * 1024 },
  });
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let n = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      for (let i = 0; i < 50; i++) void audit.record(events[n++ & 1023]);
      if (n >= 200_000) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  await audit.flush({ deadlineMs: 60_000 });
  h.disable();
  const underLoad = h.max / 1e6;

  for (let i = 0; i < 200_000; i += CHUNK) {
    for (let j = i; j < i + CHUNK; j++) void audit.record(events[j & 1023]);
  }
  const g = monitorEventLoopDelay({ resolution: 1 });
  g.enable();
  await audit.flush({ deadlineMs: 60_000 });
  g.disable();
  const stats = audit.stats();
  await audit.close({ deadlineMs: 5000 });
  if (stats.sent !== stats.recorded || stats.deadLettered > 0 || stats.dropped > 0) {
    throw new Error(`not everything was delivered: ${JSON.stringify(stats)}`);
  }
  return {
    underLoad,
    backlog: g.max / 1e6,
    p99: h.percentile(99) / 1e6,
    p999: h.percentile(99.9) / 1e6,
  };
}

/**
 * The four commitments of the bench event (PROTOCOL.md §5), computed the ways the SDK has
 * computed them, each step one cut more; salts and the salt text included. Rounds alternate
 * between variants so that a machine's load spreads over all of them; medians are reported.
 */
function commitmentCuts() {
  const fields = [
    ['/actor/email', JSON.stringify('user17@example.eu')],
    ['/actor/id', JSON.stringify('u-100017')],
    ['/context/ip', JSON.stringify('203.0.113.7')],
    ['/context/userAgent', JSON.stringify(events[0].context.userAgent)],
  ];
  const u32 = (n) => {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n);
    return b;
  };
  const preimage = (path, value, salt) => {
    const p = Buffer.from(path);
    const v = Buffer.from(value);
    return Buffer.concat([
      COMMITMENT_DOMAIN,
      u32(salt.length),
      salt,
      u32(p.length),
      p,
      u32(v.length),
      v,
    ]);
  };
  const pool = new RandomBytes();
  const pooledSalt = () => {
    const at = pool.take(16);
    return Buffer.from(pool.buffer.subarray(at, at + 16));
  };
  // The SDK's Sealer before this cut: preimage in one scratch buffer, salt straight from the
  // pool, but domain, salt length and path written on every call.
  const scratch = Buffer.allocUnsafe(16 * 1024);
  const previousSdk = (path, value) => {
    let at = COMMITMENT_DOMAIN.copy(scratch, 0);
    at = scratch.writeUInt32BE(16, at);
    const from = pool.take(16);
    pool.buffer.copy(scratch, at, from, from + 16);
    const text = scratch.toString('base64url', at, at + 16);
    at += 16;
    const pathBytes = scratch.write(path, at + 4, 'utf8');
    scratch.writeUInt32BE(pathBytes, at);
    at += 4 + pathBytes;
    const valueBytes = scratch.write(value, at + 4, 'utf8');
    scratch.writeUInt32BE(valueBytes, at);
    at += 4 + valueBytes;
    return text.length + oneShot('sha256', scratch.subarray(0, at), 'hex').length;
  };
  const sealer = new Sealer(new RandomBytes(), [], undefined);
  const variants = [
    [
      'a salt from randomBytes(16) per field, preimage by Buffer.concat, createHash',
      (path, value) => {
        const salt = randomBytes(16);
        const h = createHash('sha256')
          .update(preimage(path, value, salt))
          .digest('hex');
        return salt.toString('base64url').length + h.length;
      },
    ],
    [
      '… crypto.hash (one-shot) instead of createHash',
      (path, value) => {
        const salt = randomBytes(16);
        return (
          salt.toString('base64url').length +
          oneShot('sha256', preimage(path, value, salt), 'hex').length
        );
      },
    ],
    [
      '… salts from one pooled randomFillSync (8 KiB), 16 bytes each',
      (path, value) => {
        const salt = pooledSalt();
        return (
          salt.toString('base64url').length +
          oneShot('sha256', preimage(path, value, salt), 'hex').length
        );
      },
    ],
    [
      '… preimage written into one reusable buffer',
      (path, value) => {
        const salt = pooledSalt();
        return salt.toString('base64url').length + commitmentOfCanonical(path, value, salt).length;
      },
    ],
    ['… salt copied from the pool into the preimage (SDK v1)', previousSdk],
    [
      '… domain and salt length written once, path bytes cached (SDK now)',
      (path, value) => sealer['commit'](path, value).length + sealer['saltText'].length,
    ],
  ];
  const n = 100_000;
  const times = variants.map(() => []);
  for (let round = 0; round < 9; round++) {
    variants.forEach(([, fn], k) => {
      let sink = 0;
      const t = process.cpuUsage();
      for (let i = 0; i < n; i++) for (const [path, value] of fields) sink += fn(path, value);
      if (round > 1) times[k].push(cpuMicros(t) / n);
      if (sink === 0) throw new Error('nothing computed');
    });
  }
  let previous;
  variants.forEach(([name], k) => {
    const sorted = times[k].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    const cut = previous === undefined ? '' : `  (${(median - previous).toFixed(2)})`;
    console.log(`${name.padEnd(72)} ${median.toFixed(2)} µs/event${cut}`);
    previous = median;
  });
}

if (process.argv[2] === 'commitments') {
  commitmentCuts();
  process.exit(0);
}

const sink = await startSink();
try {
  const pinoSync = await pinoBaseline(true);
  const pinoAsync = await pinoBaseline(false);
  const plain = await sdkRun(sink.url, false);
  const gzipped = await sdkRun(sink.url, true);
  const stall = await stallRun(sink.url);
  const f = (x) => x.toFixed(2);
  console.log(
    `events: ${N}, ${eventBytes} bytes as JSON, 4 personal fields; node ${process.version}`,
  );
  console.log(`pino to /dev/null (sync destination, pino's default):   ${f(pinoSync)} µs/event`);
  console.log(`pino to /dev/null (async destination):                   ${f(pinoAsync)} µs/event`);
  console.log(
    `SDK record(), caller's thread:                           ${f(plain.record)} µs/event`,
  );
  console.log(
    `SDK total (seal + serialise + HTTP to a local sink):     ${f(plain.total)} µs/event  (${Math.round(plain.rate)} events/s)`,
  );
  console.log(
    `SDK total with gzip:                                     ${f(gzipped.total)} µs/event`,
  );
  console.log(
    `ratio total / pino (sync):                               ${f(plain.total / pinoSync)}×  (bar 3×)`,
  );
  console.log(
    `ratio total / pino (async):                              ${f(plain.total / pinoAsync)}×`,
  );
  console.log(
    `event-loop stall, recording at 50k/s while sending:      p99.9 ${f(stall.p999)} ms (bar 10 ms), max ${f(stall.underLoad)} ms, p99 ${f(stall.p99)} ms`,
  );
  console.log(`max event-loop stall, flushing a 200k backlog:           ${f(stall.backlog)} ms`);
} finally {
  sink.stop();
}
