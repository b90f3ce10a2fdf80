// Sink enrichment: what GeoIP and user-agent parsing cost per event.
//
// Question: can the sink enrich every event (GeoIP on the address, parsed user agent) at
// 100k events/s without becoming the bottleneck, and what do the caches buy?
//
// Method: the bundled DB-IP Lite City database (IPv4 and IPv6 files) through GeoIp.lookup, and
// UserAgentParser.parse, each timed over --n calls in one loop after a warm-up:
//   - "distinct": every call a new value (random public IPv4 addresses; user agents made
//     distinct by their version numbers), so every call misses the caches;
//   - "repeated": values drawn from a set of --hot (1000) addresses or 50 user agents, as in
//     an application's real traffic, so nearly every call hits the cache (maxmind's LRU of
//     decoded records, and the parser's LRU of results);
//   - "decorate": the whole plugin on real rows (eventRow() of sealed events with --hot
//     addresses and 50 user agents), minus the time eventRow() alone takes.
// Also the time to open the databases and the process's resident memory after.
//
// Caveats: one core of the development VM; random addresses fall in more distinct networks
// than a real audience does, so "distinct" is the worst case for GeoIP.
//
// Usage: npx turbo run build && node bench/enrichment.mjs [--n 200000] [--hot 1000]
import { parseArgs } from 'node:util';
import { GeoIp } from '../packages/collector/dist/sink/geoip.js';
import { UserAgentParser } from '../packages/collector/dist/sink/user-agent.js';
import { openEnrichment } from '../packages/collector/dist/sink/enrich.js';
import { eventRow } from '../packages/query/dist/index.js';
import { randomSaltSource, sealEvent, ZERO_HASH } from '../packages/protocol/dist/index.js';

const { values: args } = parseArgs({
  options: { n: { type: 'string', default: '200000' }, hot: { type: 'string', default: '1000' } },
});
const n = Number(args.n);
const hot = Number(args.hot);

function randomPublicIPv4() {
  for (;;) {
    const a = 1 + Math.floor(Math.random() * 223);
    if (a === 10 || a === 127 || a === 100 || a === 172 || a === 192 || a === 169) continue;
    return `${a}.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}`;
  }
}
const userAgent = (i) =>
  `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${100 + (i % 40)}.0.${i}.0 Safari/537.36`;

function time(label, count, fn) {
  for (let i = 0; i < Math.min(count, 10_000); i++) fn(i); // warm-up
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) fn(i);
  const us = Number(process.hrtime.bigint() - started) / 1000 / count;
  console.log(
    `${label.padEnd(44)} ${us.toFixed(2).padStart(7)} µs/call  (${Math.round(1e6 / us).toLocaleString('en')} /s)`,
  );
}

const warn = (obj, msg) => console.error(msg, obj);
const opened = performance.now();
const geo = await GeoIp.open({ cityDbs: [], asnDbs: [], warn });
console.log(
  `open bundled DB-IP City (IPv4 + IPv6 files)    ${(performance.now() - opened).toFixed(0)} ms`,
);

const distinct = Array.from({ length: n }, randomPublicIPv4);
const hotSet = Array.from({ length: hot }, randomPublicIPv4);
const v6 = Array.from(
  { length: hot },
  (_, i) => `2a00:1450:${(i % 4096).toString(16)}::${i.toString(16)}`,
);
time('GeoIP lookup, distinct IPv4 (cache misses)', n, (i) => geo.lookup(distinct[i]));
time(`GeoIP lookup, repeated IPv4 (${hot} addresses)`, n, (i) => geo.lookup(hotSet[i % hot]));
time(`GeoIP lookup, repeated IPv6 (${hot} addresses)`, n, (i) => geo.lookup(v6[i % hot]));

const fresh = new UserAgentParser();
const distinctUa = Array.from({ length: n }, (_, i) => userAgent(i));
time('user agent parse, distinct (cache misses)', Math.min(n, 50_000), (i) =>
  fresh.parse(distinctUa[i]),
);
const cached = new UserAgentParser();
time('user agent parse, repeated (50 user agents)', n, (i) => cached.parse(distinctUa[i % 50]));

const plugin = await openEnrichment(
  { geoip: { enabled: true, cityDb: [], asnDb: [] }, userAgent: { enabled: true } },
  { warn },
);
const salts = randomSaltSource();
const sealed = hotSet.map((ip, i) =>
  sealEvent(
    {
      id: '0193a4b2-6c1e-7000-8000-000000000001',
      time: '2026-11-20T10:00:00.000Z',
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: `u-${i}` },
      context: { ip, userAgent: distinctUa[i % 50] },
    },
    { stream: 'bench/1', seq: 0, prev: ZERO_HASH },
    salts,
  ),
);
const meta = {
  tenantId: 'bench',
  receivedAt: Date.now(),
  keyId: 'k',
  source: 'sealed',
  submittedDigest: '',
  logPartition: 0,
  logOffset: 0,
  logIndex: 0,
  expiresAt: 0,
  flags: [],
};
const row = (i) => {
  const s = sealed[i % hot];
  return eventRow(s.event, s.record, s.event.disclosures, meta);
};
time('eventRow() alone (baseline)', n, (i) => row(i));
time('eventRow() + plugin decorate', n, (i) => plugin.decorate(row(i)));
console.log(`resident memory ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
