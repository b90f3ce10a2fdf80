// Precision and recall of the built-in detection pack per rule, counted per grouped alert, on
// labelled scenarios (normal SaaS traffic with its traps and injected attacks; see the generator's
// doc comment in packages/detect/src/scenarios/generate.ts for the quotas).
//   npx tsc -b packages/detect && node bench/detect-scenarios.mjs [seeds=101,102,103] [--misses]
// Seeds 1–3 are the tuning seeds, 101–103 the evaluation seeds of the test in
// packages/detect/src/scenarios/scenarios.test.ts.
import { builtinRules } from '@vigil/detect';
import { formatScores, generateScenario, mergeScores, runScenario } from '@vigil/detect/scenarios';

const seeds = (process.argv[2] ?? '101,102,103').split(',').map(Number);
const misses = process.argv.includes('--misses');
const rules = builtinRules();
const reports = [];
for (const seed of seeds) {
  const scenario = generateScenario({ seed });
  const started = process.hrtime.bigint();
  const { report, stats } = runScenario(scenario, rules);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(
    `seed ${seed}: ${scenario.events.length} events, ${scenario.attacks.length} attacks, ${stats.alertsRaised} alerts raised (${stats.alertsUpdated} updates), ${Math.round(scenario.events.length / seconds)} events/s`,
  );
  if (misses) {
    for (const a of report.falsePositives) {
      console.log(
        `  FP ${a.ruleId} ${a.tenant} ${JSON.stringify(a.entity)} ${new Date(a.firstEventTime).toISOString()}`,
      );
    }
    for (const f of report.falseNegatives) {
      console.log(
        `  FN ${f.ruleId} ${f.attack.tenant} ${f.attack.kind} ${new Date(f.attack.from).toISOString()}`,
      );
    }
  }
  reports.push(report);
}
console.log(`\nseeds ${seeds.join(', ')}\n${formatScores(mergeScores(reports))}`);
