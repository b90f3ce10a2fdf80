// The detection benchmark's event mix (bench/README.md "Detection"), shared by detect-engine.mjs
// and detect-fingerprint.mjs: deterministic, so every run measures and checks the same events.

/** The events (plain objects), their counts of new addresses and user agents, the baseline
 * lookup and the tenant overrides the benchmark runs with. */
export function detectMix(N) {
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
  // 1 % of accounts have a login history without their current country.
  const baseline = {
    usual: (_t, facet, entity) =>
      facet === 'countries' && entity.endsWith('37') ? 'new' : 'usual',
    lastSeen: (_t, _e, before) => before - 86_400_000,
  };

  // Keys k0–k99 have an allow-list (the bench's addresses 192.0.2.0/24): their uses from a new
  // address are outside it.
  const apiKeys = Object.fromEntries(
    Array.from({ length: 100 }, (_, k) => [`k${k}`, { cidrs: ['192.0.2.0/24'] }]),
  );
  const overrides = { defaults: { timeZone: 'Europe/Paris', apiKeys } };
  return {
    events,
    newAddresses,
    newAgents,
    baseline,
    overrides,
    tenants: TENANTS,
    accounts: ACCOUNTS,
  };
}
