// Detection engine throughput: events/s through the full built-in pack on one core, against the
// same events JSON-decoded with no rules (same run). The detector role's benchmark (reading and
// decoding log records) builds on this one.
//   npx tsc -b packages/detect && node bench/detect-engine.mjs [events=400000]
import { DetectionEngine, builtinRules } from '@vigil/detect';

const N = Number(process.argv[2] ?? 400_000);
const T0 = Date.UTC(2026, 0, 5, 7, 0); // a Monday, 08:00 in Paris
const ACCOUNTS = 5_000;
const TENANTS = 20;
const GEO = [
  { country: 'FR', city: 'Paris', lat: 48.85, lon: 2.35 },
  { country: 'DE', city: 'Berlin', lat: 52.52, lon: 13.4 },
  { country: 'US', city: 'New York', lat: 40.71, lon: -74.0 },
];
const ACTIONS = [
  ['user.login', 'authentication'],
  ['user.login', 'authentication'],
  ['data.viewed', 'data_access'],
  ['api.request', 'api'],
  ['api.request', 'api'],
  ['api.request', 'api'],
  ['config.changed', 'admin'],
  ['data.exported', 'data_access'],
  ['mfa.challenge', 'authentication'],
  ['role.assigned', 'access_change'],
  ['api_key.used', 'api'],
];
const UAS = [
  ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox'],
  [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36',
    'Chrome',
  ],
  ['Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148', 'Mobile Safari'],
];

// Deterministic pseudo-random numbers, so every run measures the same mix.
let seed = 42;
const rand = (n) => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return Math.floor((seed / 2147483648) * n); // the high bits: an LCG's low bits cycle
};

const events = [];
let newAddresses = 0;
let newAgents = 0;
for (let i = 0; i < N; i++) {
  const u = rand(ACCOUNTS);
  const [action, category] = ACTIONS[rand(ACTIONS.length)];
  const r = rand(100);
  const outcome = r < 3 ? 'failure' : r < 5 ? 'denied' : 'success';
  const fresh = rand(10) === 0; // 10 % of events from an address not seen before
  if (fresh) newAddresses++;
  const freshUa = rand(50) === 0; // 2 % with a user agent not seen before
  if (freshUa) newAgents++;
  const [ua, family] = UAS[u % UAS.length];
  const key = action === 'api_key.used';
  const e = {
    tenant: `t${u % TENANTS}`,
    id: `e${i}`,
    time: T0 + i * 20 - rand(2_000), // slightly out of order
    action,
    category,
    outcome,
    actor: key ? { type: 'api_key', id: `k${u % 500}` } : { type: 'user', id: `u${u}` },
    context: {
      ip: fresh ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` : `192.0.2.${u % 250}`,
      userAgent: freshUa ? `${ua} build/${i}` : ua,
      // Browser events carry the user's session (one a day); API keys none.
      ...(key ? {} : { sessionId: `s${u}-${Math.floor(i / 200_000)}` }),
    },
    enrichment: { geo: GEO[u % 3], asn: { number: 3215 + (u % 7) }, ua: { family } },
    stream: `s${u % 100}`,
  };
  if (category === 'access_change') {
    e.access = { change: 'grant', role: 'viewer', subject: { type: 'user', id: `u${u + 1}` } };
  }
  events.push(e);
  // one brute force of 12 failures every 20 000 events
  if (i % 20_000 === 10_000) {
    for (let k = 0; k < 12; k++) {
      events.push({
        ...e,
        id: `b${i}-${k}`,
        action: 'user.login',
        outcome: 'failure',
        time: e.time + k,
      });
    }
  }
}
const lines = events.map((e) => JSON.stringify(e));
// 1 % of accounts have a login history without their current country.
const baseline = {
  usual: (_t, facet, entity) => (facet === 'countries' && entity.endsWith('37') ? 'new' : 'usual'),
  lastSeen: (_t, _e, before) => before - 86_400_000,
};

// Keys k0–k99 have an allow-list (the bench's addresses 192.0.2.0/24): their uses from a new
// address are outside it.
const apiKeys = Object.fromEntries(
  Array.from({ length: 100 }, (_, k) => [`k${k}`, { cidrs: ['192.0.2.0/24'] }]),
);

function run(rules) {
  const engine = new DetectionEngine({
    rules,
    baseline,
    overrides: { defaults: { timeZone: 'Europe/Paris', apiKeys } },
  });
  const start = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const byRule = {};
  for (let i = 0; i < lines.length; i++) {
    const e = JSON.parse(lines[i]);
    for (const u of engine.process(e)) byRule[u.alert.ruleId] = (byRule[u.alert.ruleId] ?? 0) + 1;
    if (i % 1_000 === 999) engine.advanceWatermark(e.time - 60_000);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  // CPU time of the process (the engine's thread plus the garbage collector's helpers): on a
  // shared machine, wall time also counts the other processes' turns on the cores.
  const cpuSeconds = (used.user + used.system) / 1e6;
  return {
    perSecond: Math.round(lines.length / seconds),
    perCpuSecond: Math.round(lines.length / cpuSeconds),
    byRule,
    stats: engine.stats(),
  };
}

const pack = builtinRules();
run(pack); // warm-up
const base = run([]);
const full = run(pack);
console.log(
  `events: ${lines.length}, ${TENANTS} tenants, ${ACCOUNTS} accounts, ${((100 * newAddresses) / N).toFixed(1)} % from new addresses, ${((100 * newAgents) / N).toFixed(1)} % with a new user agent`,
);
console.log(
  `decode only (no rules): ${base.perSecond} events/s wall, ${base.perCpuSecond} per CPU second`,
);
console.log(
  `full pack (${pack.length} rules):  ${full.perSecond} events/s wall, ${full.perCpuSecond} per CPU second, ratio ${(full.perSecond / base.perSecond).toFixed(2)} (CPU ${(full.perCpuSecond / base.perCpuSecond).toFixed(2)})`,
);
console.log(
  `alerts raised ${full.stats.alertsRaised}, updated ${full.stats.alertsUpdated}, late ${full.stats.droppedLate}, evicted groups ${full.stats.evictedGroups}`,
);
console.log(`alert updates by rule: ${JSON.stringify(full.byRule)}`);
