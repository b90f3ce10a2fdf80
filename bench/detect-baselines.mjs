// Detection baselines and backtests on the embedded store (chDB):
//  1. the refresh (INSERT … SELECT aggregations) over N generated events of 20 tenants and 5 000
//     actors and 200 API keys over 30 days (rows made by the store itself from numbers(): the
//     refresh reads columns only), then the same refresh again (idempotent: skipped), and the
//     load of one tenant's generation into the lookup;
//  2. a backtest of the built-in pack over B sealed events (records opened, mapped and run).
//   npx turbo run build --filter=@vigil/query && node bench/detect-baselines.mjs [N=1000000] [B=100000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtinRules } from '@vigil/detect';
import { derivedEventId, randomSaltSource, sealEvent, ZERO_HASH } from '@vigil/protocol';
import {
  BaselineRefresher,
  StoreBaselines,
  eventRow,
  migrate,
  openStore,
  runBacktest,
} from '@vigil/query';

const N = Number(process.argv[2] ?? 1_000_000);
const B = Number(process.argv[3] ?? 100_000);
const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-baselines-'));
const store = await openStore({ kind: 'chdb', path: dir, database: 'bench' });
await migrate(store);
const [{ ms }] = await store.query('SELECT toUnixTimestamp64Milli(now64(3)) AS ms');
const now = Math.floor(Number(ms) / DAY) * DAY;
const start = now - 30 * DAY;

let t = performance.now();
await store.command(
  `INSERT INTO ${store.table('events')} (tenant_id, id, time, received_at, stream, seq, prev, hash,
     action, category, outcome, actor_type, actor_id, record, disclosures, expires_at,
     geo_country, geo_asn, ua_browser, ua_device)
   SELECT concat('t', toString(number % 20)), generateUUIDv4(),
          fromUnixTimestamp64Milli(toInt64({start:Int64} + intDiv(number * 2592000000, {n:UInt64}))) AS time,
          time, 'bench/1', number, repeat('0', 64), lower(hex(SHA256(toString(number)))),
          if(number % 3 = 0, 'api.request', 'user.login'), 'authentication',
          if(number % 20 = 0, 'failure', 'success'),
          if(number % 25 = 0, 'api_key', 'user'),
          if(number % 25 = 0, concat('key-', toString(number % 200)), concat('u-', toString(cityHash64(number) % 5000))),
          '{}', '', toDateTime({start:Int64} / 1000 + 400 * 86400),
          ['FR','DE','US','GB','ES','IT','NL','BR','IN','JP'][1 + cityHash64(number, 1) % 10],
          [3215, 3320, 7922, 2856, 3352][1 + cityHash64(number, 2) % 5],
          ['Chrome','Firefox','Safari','Edge'][1 + cityHash64(number, 3) % 4],
          ['desktop','mobile'][1 + cityHash64(number, 4) % 2]
   FROM numbers({n:UInt64})`,
  { start, n: N },
);
console.log(`generated ${N} events in ${((performance.now() - t) / 1000).toFixed(1)} s`);

const refresher = new BaselineRefresher(store, { historyMs: 30 * DAY });
for (const [label, asOf] of [
  ['refresh', now],
  ['refresh again (same asOf: skipped)', now],
  ['refresh (next asOf)', now + 3_600_000],
]) {
  t = performance.now();
  const report = await refresher.refresh(asOf);
  const rows = report.generations.reduce((n, g) => n + g.rows, 0);
  console.log(
    `${label}: ${((performance.now() - t) / 1000).toFixed(2)} s, ${report.generations.length} tenants, ${rows} baseline rows, ${report.skipped.length} skipped, steps ${JSON.stringify(report.steps)}`,
  );
}
const lookup = new StoreBaselines(store);
t = performance.now();
await lookup.prepare('t0', now + 3_600_000 + DAY, now + 3_600_000 + DAY);
console.log(
  `load one tenant's generation: ${((performance.now() - t) / 1000).toFixed(2)} s, ${JSON.stringify(lookup.stats())}, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`,
);

// Backtest: B sealed user events of one tenant over 7 days.
const salts = randomSaltSource();
const rows = [];
let prev = ZERO_HASH;
for (let i = 0; i < B; i++) {
  const time = now - 7 * DAY + Math.floor((i * 7 * DAY) / B);
  const input = {
    id: derivedEventId(time, `bt/${i}`),
    time: new Date(time).toISOString(),
    action: i % 3 === 0 ? 'api.request' : 'user.login',
    category: 'authentication',
    outcome: i % 20 === 0 ? 'failure' : 'success',
    actor: { type: 'user', id: `u-${(i * 7919) % 2000}` },
    context: { ip: `198.51.${(i >> 8) % 256}.${i % 256}` },
  };
  const { event, record } = sealEvent(input, { stream: 'bt/1', seq: i, prev }, salts);
  prev = event.hash;
  const row = eventRow(event, record, event.disclosures, {
    tenantId: 'bt',
    receivedAt: time,
    keyId: 'k',
    source: 'sealed',
    submittedDigest: '',
    logPartition: 0,
    logOffset: i,
    logIndex: 0,
    expiresAt: Math.floor(time / 1000) + 400 * 86_400,
    flags: [],
  });
  Object.assign(row, {
    geo_country: 'FR',
    geo_latitude: 48.85,
    geo_longitude: 2.35,
    geo_asn: 3215,
  });
  rows.push(row);
  if (rows.length === 10_000) await store.insert(store.table('events'), rows.splice(0));
}
await store.insert(store.table('events'), rows.splice(0));
t = performance.now();
const result = await runBacktest({
  store,
  tenant: 'bt',
  from: now - 7 * DAY,
  to: now,
  rules: builtinRules(),
  baselines: false,
});
const seconds = (performance.now() - t) / 1000;
console.log(
  `backtest: ${result.summary.events} events, ${result.alerts.length} alerts, ${seconds.toFixed(2)} s (${Math.round(result.summary.events / seconds)} events/s), heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB`,
);
await store.close();
rmSync(dir, { recursive: true, force: true });
