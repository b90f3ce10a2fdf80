import { DetectionEngine, type AlertUpdate, type EngineStats } from '../engine/engine.js';
import type { CompiledRule } from '../rules/load.js';
import { ScenarioBaseline } from './baseline.js';
import type { Scenario } from './generate.js';
import { scoreAlerts, type ScoreReport } from './score.js';

/**
 * Runs a rule pack over a scenario as a detector would (events in arrival order, the watermark a
 * minute behind the latest arrival every 1 000 events) with the in-memory baseline, and scores
 * every alert (learning period included) against the labels.
 */
export function runScenario(
  scenario: Scenario,
  rules: readonly CompiledRule[],
): { report: ScoreReport; updates: AlertUpdate[]; stats: EngineStats } {
  const engine = new DetectionEngine({
    rules,
    overrides: scenario.overrides,
    baseline: new ScenarioBaseline(scenario),
  });
  const updates: AlertUpdate[] = [];
  let latest = -Infinity;
  scenario.events.forEach((e, i) => {
    for (const u of engine.process(e)) updates.push(u);
    latest = Math.max(latest, e.time);
    if (i % 1_000 === 999) engine.advanceWatermark(latest - 60_000);
  });
  return {
    report: scoreAlerts(
      updates,
      scenario.attacks,
      rules.map((r) => r.id),
    ),
    updates,
    stats: engine.stats(),
  };
}
