/**
 * `@vigil/detect/scenarios`: the labelled scenario generator, the in-memory baseline learned
 * from a scenario's history, and the scorer of alerts against the labels (precision and recall
 * per rule, counted per grouped alert). README "Scenarios".
 */
export { generateScenario, ATTACK_KINDS, SCENARIO_START } from './generate.js';
export type {
  AttackKind,
  ExpectedAlert,
  LabelledAttack,
  Scenario,
  ScenarioOptions,
} from './generate.js';
export { ScenarioBaseline } from './baseline.js';
export { scoreAlerts, mergeScores, formatScores } from './score.js';
export type { RuleScore, ScoreReport } from './score.js';
export { runScenario } from './run.js';
