// Output fingerprint of the detection engine: a SHA-256 over every AlertUpdate's JSON (and over
// the final snapshot's JSON) on the scenario seeds and on the benchmark's mix, with the default
// caps and with small caps that force group, entry and alert-key evictions. A change meant to
// make the engine faster must leave the alert hashes unchanged; it checks too that processing
// half, snapshotting (through JSON), restoring into a new engine and processing the rest gives
// the alerts of one pass.
//   npx tsc -b packages/detect && node bench/detect-fingerprint.mjs [--check]
// With --check it exits 1 when an alert hash differs from the one recorded below.
import { createHash } from 'node:crypto';
import { DetectionEngine, builtinRules } from '@vigil/detect';
import { ScenarioBaseline, generateScenario } from '@vigil/detect/scenarios';
import { detectMix } from './detect-mix.mjs';

// Alert hashes of the engine before its speed-up (commit bf654ed), recorded with this script (snapshots are internal and
// their format may change; their hashes are printed for information).
const RECORDED = {
  'seed 1': 'd3f4e620d3a85512d9df5f43387309d7cf114328dc6d5df9401c47646aaa0811',
  'seed 101': 'ac93fe6df28b03fbb5772b4442eae56ca1d84f819deab446b9d131c2eedf820c',
  'mix 200000': 'dedf929c44defa54679e87981d7d7c61f0a9ac0ac121f886a35065d0731d2349',
  'mix 200000 small caps': 'ce3827a2e5dcd7e25da957a2e2694c55135adec9605522e70fb8b417ee0cdfc8',
};

const rules = builtinRules();
const check = process.argv.includes('--check');
let failed = false;

function run(name, events, options, every = 1_000) {
  const alerts = createHash('sha256');
  const updates = [];
  const make = () => new DetectionEngine({ rules, ...options });
  let engine = make();
  let latest = -Infinity;
  const half = Math.floor(events.length / 2);
  let split;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    for (const u of engine.process(e)) {
      const json = JSON.stringify(u);
      alerts.update(json).update('\n');
      updates.push(json);
    }
    latest = Math.max(latest, e.time);
    if (i % every === every - 1) engine.advanceWatermark(latest - 60_000);
    if (i === half)
      split = { at: i, snapshot: JSON.stringify(engine.snapshot()), n: updates.length };
  }
  const snapshot = createHash('sha256').update(JSON.stringify(engine.snapshot())).digest('hex');
  // The same events again, restored from the checkpoint taken halfway.
  const restored = make();
  restored.restore(JSON.parse(split.snapshot));
  latest = events.slice(0, split.at + 1).reduce((m, e) => Math.max(m, e.time), -Infinity);
  let k = split.n;
  let same = true;
  for (let i = split.at + 1; i < events.length; i++) {
    const e = events[i];
    for (const u of restored.process(e)) if (JSON.stringify(u) !== updates[k++]) same = false;
    latest = Math.max(latest, e.time);
    if (i % every === every - 1) restored.advanceWatermark(latest - 60_000);
  }
  if (k !== updates.length) same = false;
  const restoredSnapshot = createHash('sha256')
    .update(JSON.stringify(restored.snapshot()))
    .digest('hex');
  const hash = alerts.digest('hex');
  const stats = engine.stats();
  const ok = RECORDED[name] === undefined || RECORDED[name] === '' || RECORDED[name] === hash;
  if (!ok || !same || restoredSnapshot !== snapshot) failed = true;
  console.log(
    `${name}: ${events.length} events, ${updates.length} updates, alerts ${hash}${ok ? '' : ' DIFFERS'}, snapshot ${snapshot.slice(0, 16)}, restore ${same && restoredSnapshot === snapshot ? 'same' : 'DIFFERS'}; evicted groups ${stats.evictedGroups}, entries ${stats.evictedEntries}, alert keys ${stats.evictedAlertKeys}`,
  );
  return hash;
}

for (const seed of [1, 101]) {
  const scenario = generateScenario({ seed });
  run(`seed ${seed}`, scenario.events, {
    overrides: scenario.overrides,
    baseline: new ScenarioBaseline(scenario),
  });
}
const mix = detectMix(200_000);
const options = { baseline: mix.baseline, overrides: mix.overrides };
run('mix 200000', mix.events, options);
run('mix 200000 small caps', mix.events, {
  ...options,
  maxGroupsPerRule: 100,
  maxEntriesPerGroup: 8,
});
if (failed) {
  console.log('fingerprint: DIFFERS');
  if (check) process.exit(1);
}
