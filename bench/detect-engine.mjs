// Detection engine throughput: events/s through the full built-in pack on one core, against the
// same events JSON-decoded with no rules (same run). The detector role's benchmark (reading and
// decoding log records) builds on this one.
//   npx tsc -b packages/detect && node bench/detect-engine.mjs [events=400000]
import { DetectionEngine, builtinRules } from '@vigil/detect';
import { detectMix } from './detect-mix.mjs';

const N = Number(process.argv[2] ?? 400_000);
const {
  events,
  newAddresses,
  newAgents,
  baseline,
  overrides,
  tenants: TENANTS,
  accounts: ACCOUNTS,
} = detectMix(N);
const lines = events.map((e) => JSON.stringify(e));

function run(rules) {
  const engine = new DetectionEngine({
    rules,
    baseline,
    overrides,
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
