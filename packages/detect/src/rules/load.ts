import { isNode, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { compileField, type FieldGetter } from '../event.js';
import { DetectError, DetectErrorCodes } from '../errors.js';
import {
  actionsOf,
  bothActions,
  compileCondition,
  eitherActions,
  compileSelection,
  fieldOrProblem,
  type CompileProblem,
  type Matcher,
} from './match.js';
import {
  parseDuration,
  ruleSchema,
  type CorrelationType,
  type RuleSpec,
  type Severity,
} from './schema.js';

/** One problem of a rule file: where (file, line, rule, field) and what. */
export interface RuleProblem {
  readonly file: string;
  readonly line: number;
  readonly rule: string;
  readonly field: string;
  readonly message: string;
}

export class RuleLoadError extends DetectError {
  readonly problems: readonly RuleProblem[];
  constructor(problems: readonly RuleProblem[]) {
    const lines = problems.map(
      (p) => `${p.file}:${p.line}: rule ${p.rule}: ${p.field || '(rule)'}: ${p.message}`,
    );
    super(
      DetectErrorCodes.RULE_INVALID,
      `invalid detection rules:\n  ${lines.join('\n  ')}`,
      problems.map((p) => ({
        path: `/${p.field.split('.').join('/')}`,
        message: `${p.file}:${p.line}: rule ${p.rule}: ${p.message}`,
      })),
    );
    this.name = 'RuleLoadError';
    this.problems = problems;
  }
}

/** One step of a correlation: the events it takes and how many it needs. */
export interface CompiledStep {
  readonly name: string;
  readonly match: Matcher;
  readonly min: number;
  /** The group-by fields as this step reads them (aliases resolved). */
  readonly groupBy: readonly FieldGetter[];
  /** The actions the step can match, when its selections say; undefined: any. */
  readonly actions: ReadonlySet<string> | undefined;
}

export type CompiledBaseline =
  | {
      readonly kind: 'facet';
      readonly facet: string;
      readonly field: FieldGetter;
      readonly entity: FieldGetter;
      readonly match: 'new' | 'unusual';
    }
  | { readonly kind: 'last_seen'; readonly entity: FieldGetter; readonly idleMs: number };

export interface CompiledRule {
  readonly spec: RuleSpec;
  readonly id: string;
  readonly severity: Severity;
  readonly type: CorrelationType;
  readonly file: string;
  /** The detection condition: every counted event matches it. */
  readonly filter: Matcher;
  readonly steps: readonly CompiledStep[];
  /** Names of the group-by fields, as the alert's entity reports them. */
  readonly groupByNames: readonly string[];
  readonly timespanMs: number;
  /** event_count / value_count: the count the window must reach (gt n is gte n + 1). */
  readonly threshold: number;
  readonly valueField?: FieldGetter;
  readonly also: readonly {
    readonly name: string;
    readonly get: FieldGetter;
    readonly min: number;
  }[];
  readonly differ?: FieldGetter;
  /** The step whose events are counted, and the least share of the window they must be. */
  readonly share?: { readonly step: number; readonly min: number };
  readonly maxSpeedKmh: number;
  readonly minDistanceKm: number;
  readonly skipAsns: ReadonlySet<number>;
  readonly baseline?: CompiledBaseline;
  readonly evidence: readonly { readonly name: string; readonly get: FieldGetter }[];
  /** The actions any step can match (undefined: any): the engine skips the rule on others. */
  readonly actions: ReadonlySet<string> | undefined;
}

export interface RuleSource {
  /** File name, for error messages. */
  readonly file: string;
  readonly text: string;
}

/** Default grouping span of a rule without correlation: each match is an alert, grown for 1 h. */
const SINGLE_EVENT_SPAN_MS = 3_600_000;

function lineOf(doc: Document, counter: LineCounter, path: readonly (string | number)[]): number {
  // The deepest node of the path that exists: a missing key reports its parent's line.
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return 1;
}

/** Parses, validates and compiles rule files; throws {@link RuleLoadError} listing every problem. */
export function loadRules(sources: readonly RuleSource[]): CompiledRule[] {
  const problems: RuleProblem[] = [];
  const rules: CompiledRule[] = [];
  const ids = new Map<string, string>();
  for (const source of sources) {
    const counter = new LineCounter();
    const docs = parseAllDocuments(source.text, { lineCounter: counter, uniqueKeys: true });
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((doc, index) => {
      const fallbackName = `#${index + 1}`;
      if (doc.errors.length > 0) {
        for (const err of doc.errors) {
          problems.push({
            file: source.file,
            line: err.linePos?.[0]?.line ?? 1,
            rule: fallbackName,
            field: '',
            message: err.message.split('\n')[0] ?? err.message,
          });
        }
        return;
      }
      const raw: unknown = doc.toJS({ maxAliasCount: 100 });
      if (raw === null || raw === undefined) return;
      const name =
        typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string'
          ? (raw as { id: string }).id
          : fallbackName;
      const at = (path: readonly (string | number)[], message: string): void => {
        problems.push({
          file: source.file,
          line: lineOf(doc, counter, path),
          rule: name,
          field: path.join('.'),
          message,
        });
      };
      const parsed = ruleSchema.safeParse(raw);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          at(issue.path as (string | number)[], issue.message);
        }
        return;
      }
      const compileProblems: CompileProblem[] = [];
      const rule = compileRule(parsed.data, source.file, compileProblems);
      for (const p of compileProblems) at(p.path, p.message);
      if (compileProblems.length > 0) return;
      const seen = ids.get(rule.id);
      if (seen !== undefined) {
        at(['id'], `duplicate rule id (also in ${seen})`);
        return;
      }
      ids.set(rule.id, source.file);
      rules.push(rule);
    });
  }
  if (problems.length > 0) throw new RuleLoadError(problems);
  return rules;
}

function compileRule(spec: RuleSpec, file: string, problems: CompileProblem[]): CompiledRule {
  const selections = new Map<string, Matcher>();
  let conditionText: string | undefined;
  for (const [name, body] of Object.entries(spec.detection)) {
    if (name === 'condition') {
      if (typeof body !== 'string')
        problems.push({ path: ['detection', 'condition'], message: 'a string' });
      else conditionText = body;
      continue;
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      problems.push({ path: ['detection', name], message: 'a selection name is a word' });
      continue;
    }
    selections.set(name, compileSelection(body, ['detection', name], problems));
  }
  if (conditionText === undefined) {
    problems.push({ path: ['detection'], message: 'detection needs a condition' });
    conditionText = 'x';
  }
  const filter = compileCondition(conditionText, selections, ['detection', 'condition'], problems);
  // A condition that is a plain "a or b or …" holds whenever one of its selections does: a step
  // on one of them need not test the condition again (the hot path tests every step).
  const orNames = /^\s*[A-Za-z_][A-Za-z0-9_]*(\s+or\s+[A-Za-z_][A-Za-z0-9_]*)*\s*$/.test(
    conditionText,
  )
    ? new Set(conditionText.split(/\s+or\s+/).map((n) => n.trim()))
    : undefined;
  const c = spec.correlation;
  const type: CorrelationType = c?.type ?? 'event_count';
  const groupByNames = c?.['group-by'] ?? [];
  const aliases = c?.aliases ?? {};

  const stepSpecs = (c?.rules ?? []).map((s) =>
    typeof s === 'string' ? { rule: s, count: undefined } : s,
  );
  const temporal = type === 'temporal' || type === 'temporal_ordered';
  if (temporal && stepSpecs.length < 2) {
    problems.push({ path: ['correlation', 'rules'], message: `${type} needs at least two steps` });
  }
  const steps: CompiledStep[] = [];
  const named = stepSpecs.length > 0 ? stepSpecs : [{ rule: 'condition', count: undefined }];
  named.forEach((s, i) => {
    const match = s.rule === 'condition' ? filter : selections.get(s.rule);
    if (match === undefined) {
      problems.push({
        path: ['correlation', 'rules', i],
        message: `unknown selection "${s.rule}"`,
      });
      return;
    }
    const groupBy = groupByNames.map((g, gi) => {
      const alias = aliases[g];
      if (alias === undefined) return fieldOrProblem(g, ['correlation', 'group-by', gi], problems);
      const f = alias[s.rule];
      if (f === undefined) {
        problems.push({
          path: ['correlation', 'aliases', g],
          message: `alias "${g}" names no field for selection "${s.rule}"`,
        });
        return () => undefined;
      }
      return fieldOrProblem(f, ['correlation', 'aliases', g, s.rule], problems);
    });
    const min = s.count === undefined ? 1 : (s.count.gte ?? (s.count.gt as number) + 1);
    steps.push({
      name: s.rule,
      match:
        s.rule === 'condition'
          ? filter
          : orNames?.has(s.rule) === true
            ? match
            : (e, z) => match(e, z) && filter(e, z),
      min,
      groupBy,
      actions:
        s.rule === 'condition'
          ? actionsOf(filter)
          : bothActions(actionsOf(match), actionsOf(filter)),
    });
  });
  for (const a of Object.keys(aliases)) {
    if (!groupByNames.includes(a)) {
      problems.push({ path: ['correlation', 'aliases', a], message: 'an alias not in group-by' });
    }
  }

  const cond = c?.condition;
  let threshold = 1;
  if (type === 'event_count' || type === 'value_count') {
    if (
      c !== undefined &&
      (cond === undefined || (cond.gte === undefined) === (cond.gt === undefined))
    ) {
      problems.push({ path: ['correlation', 'condition'], message: 'give exactly one of gte, gt' });
    } else if (cond !== undefined) {
      threshold = cond.gte ?? (cond.gt as number) + 1;
    }
  }
  let valueField: FieldGetter | undefined;
  if (type === 'value_count') {
    if (cond?.field === undefined) {
      problems.push({
        path: ['correlation', 'condition'],
        message: 'value_count needs condition.field',
      });
    } else {
      valueField = fieldOrProblem(cond.field, ['correlation', 'condition', 'field'], problems);
    }
  } else if (cond?.field !== undefined) {
    problems.push({
      path: ['correlation', 'condition', 'field'],
      message: 'only value_count counts a field',
    });
  }
  if (c?.also !== undefined && type !== 'value_count') {
    problems.push({ path: ['correlation', 'also'], message: 'only for value_count' });
  }
  let share: { step: number; min: number } | undefined;
  if (c?.share !== undefined) {
    const step = steps.findIndex((st) => st.name === c.share?.rule);
    if (type !== 'event_count' && type !== 'value_count') {
      problems.push({
        path: ['correlation', 'share'],
        message: 'only for event_count, value_count',
      });
    } else if (step < 0 || steps.length < 2) {
      problems.push({
        path: ['correlation', 'share', 'rule'],
        message: 'name one of correlation.rules, which must list at least two selections',
      });
    } else {
      share = { step, min: c.share.gte };
    }
  }
  if (c?.differ !== undefined && type !== 'temporal_ordered') {
    problems.push({ path: ['correlation', 'differ'], message: 'only for temporal_ordered' });
  }
  const velocityKeys = ['max_speed_kmh', 'min_distance_km', 'skip_asns'] as const;
  for (const k of velocityKeys) {
    if (c?.[k] !== undefined && type !== 'geo_velocity') {
      problems.push({ path: ['correlation', k], message: 'only for geo_velocity' });
    }
  }
  if (type === 'geo_velocity' && c?.max_speed_kmh === undefined) {
    problems.push({ path: ['correlation'], message: 'geo_velocity needs max_speed_kmh' });
  }
  if (type === 'geo_velocity' && groupByNames.length === 0) {
    problems.push({
      path: ['correlation', 'group-by'],
      message: 'geo_velocity needs a group-by (the account)',
    });
  }

  let baseline: CompiledBaseline | undefined;
  const b = spec.baseline;
  if (b !== undefined) {
    const entityPath = b.entity ?? groupByNames[0];
    if (entityPath === undefined) {
      problems.push({ path: ['baseline', 'entity'], message: 'name the entity (or group by it)' });
    } else {
      const entity = fieldOrProblem(entityPath, ['baseline', 'entity'], problems);
      baseline =
        'idle' in b
          ? { kind: 'last_seen', entity, idleMs: parseDuration(b.idle) }
          : {
              kind: 'facet',
              facet: b.facet,
              field: fieldOrProblem(b.field, ['baseline', 'field'], problems),
              entity,
              match: b.match,
            };
    }
  }

  const also = (c?.also ?? []).map((a, i) => ({
    name: a.field,
    get: fieldOrProblem(a.field, ['correlation', 'also', i, 'field'], problems),
    min: a.gte,
  }));
  const evidence = (spec.evidence ?? []).map((f, i) => ({
    name: f,
    get: fieldOrProblem(f, ['evidence', i], problems),
  }));
  const differ =
    c?.differ === undefined
      ? undefined
      : (compileField(c.differ) ?? fieldOrProblem(c.differ, ['correlation', 'differ'], problems));
  return {
    spec,
    id: spec.id,
    severity: spec.severity,
    type,
    file,
    filter,
    steps,
    groupByNames,
    timespanMs: c === undefined ? SINGLE_EVENT_SPAN_MS : parseDuration(c.timespan),
    threshold,
    ...(valueField === undefined ? {} : { valueField }),
    also,
    ...(differ === undefined ? {} : { differ }),
    ...(share === undefined ? {} : { share }),
    maxSpeedKmh: c?.max_speed_kmh ?? Infinity,
    minDistanceKm: c?.min_distance_km ?? 0,
    skipAsns: new Set(c?.skip_asns ?? []),
    ...(baseline === undefined ? {} : { baseline }),
    evidence,
    actions: eitherActions(steps.map((st) => st.actions)),
  };
}
