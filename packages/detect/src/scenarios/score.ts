import type { Alert, AlertUpdate } from '../engine/engine.js';
import type { LabelledAttack } from './generate.js';

/** Per-rule counts, each alert counted once in its last (grouped) version. */
export interface RuleScore {
  readonly ruleId: string;
  /** Alerts matched to an expected alert of a labelled attack (the first alert for each). */
  tp: number;
  /** Alerts matched to nothing, and further alerts for an attack already matched (a split). */
  fp: number;
  /** Expected alerts that no alert matched. */
  fn: number;
  precision: number;
  recall: number;
}

export interface ScoreReport {
  readonly rules: RuleScore[];
  /** The unmatched alerts and missed expectations, for diagnosis. */
  readonly falsePositives: Alert[];
  readonly falseNegatives: { attack: LabelledAttack; ruleId: string }[];
}

function sameEntity(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * Matches alerts with labelled attacks: same rule, same tenant, same entity, and the alert's
 * window [firstEventTime, lastEventTime] overlapping the attack's [from, to]. One attack is
 * meant to be one alert: a second alert matching the same expectation counts as a false
 * positive. `ruleIds` lists the rules to report (those of the pack), in order.
 */
export function scoreAlerts(
  updates: readonly AlertUpdate[],
  attacks: readonly LabelledAttack[],
  ruleIds: readonly string[],
): ScoreReport {
  const last = new Map<string, Alert>();
  for (const u of updates) last.set(u.alert.key, u.alert);
  const scores = new Map<string, RuleScore>(
    ruleIds.map((id) => [id, { ruleId: id, tp: 0, fp: 0, fn: 0, precision: 1, recall: 1 }]),
  );
  const score = (id: string): RuleScore => {
    let s = scores.get(id);
    if (s === undefined) {
      s = { ruleId: id, tp: 0, fp: 0, fn: 0, precision: 1, recall: 1 };
      scores.set(id, s);
    }
    return s;
  };
  const matched = new Set<string>();
  const falsePositives: Alert[] = [];
  for (const alert of [...last.values()].sort((a, b) => a.firstEventTime - b.firstEventTime)) {
    let hit: string | undefined;
    for (let i = 0; i < attacks.length && hit === undefined; i++) {
      const a = attacks[i] as LabelledAttack;
      if (a.tenant !== alert.tenant) continue;
      if (alert.lastEventTime < a.from || alert.firstEventTime > a.to) continue;
      a.expect.forEach((x, j) => {
        if (hit === undefined && x.ruleId === alert.ruleId && sameEntity(x.entity, alert.entity))
          hit = `${i}:${j}`;
      });
    }
    const s = score(alert.ruleId);
    if (hit !== undefined && !matched.has(hit)) {
      matched.add(hit);
      s.tp++;
    } else {
      s.fp++;
      falsePositives.push(alert);
    }
  }
  const falseNegatives: ScoreReport['falseNegatives'] = [];
  attacks.forEach((a, i) =>
    a.expect.forEach((x, j) => {
      if (matched.has(`${i}:${j}`)) return;
      score(x.ruleId).fn++;
      falseNegatives.push({ attack: a, ruleId: x.ruleId });
    }),
  );
  for (const s of scores.values()) {
    s.precision = s.tp + s.fp === 0 ? 1 : s.tp / (s.tp + s.fp);
    s.recall = s.tp + s.fn === 0 ? 1 : s.tp / (s.tp + s.fn);
  }
  return { rules: [...scores.values()], falsePositives, falseNegatives };
}

/** Adds up several reports (one per seed) rule by rule. */
export function mergeScores(reports: readonly ScoreReport[]): RuleScore[] {
  const out = new Map<string, RuleScore>();
  for (const r of reports) {
    for (const s of r.rules) {
      const o = out.get(s.ruleId) ?? {
        ruleId: s.ruleId,
        tp: 0,
        fp: 0,
        fn: 0,
        precision: 1,
        recall: 1,
      };
      o.tp += s.tp;
      o.fp += s.fp;
      o.fn += s.fn;
      out.set(s.ruleId, o);
    }
  }
  for (const s of out.values()) {
    s.precision = s.tp + s.fp === 0 ? 1 : s.tp / (s.tp + s.fp);
    s.recall = s.tp + s.fn === 0 ? 1 : s.tp / (s.tp + s.fn);
  }
  return [...out.values()];
}

/** The per-rule table as text (the bench prints it; the test prints it on failure). */
export function formatScores(scores: readonly RuleScore[]): string {
  const rows = scores.map(
    (s) =>
      `${s.ruleId.padEnd(34)} ${String(s.tp).padStart(4)} ${String(s.fp).padStart(4)} ${String(s.fn).padStart(4)}   ${s.precision.toFixed(3)}   ${s.recall.toFixed(3)}`,
  );
  return [`${'rule'.padEnd(34)}   TP   FP   FN   precision recall`, ...rows].join('\n');
}
