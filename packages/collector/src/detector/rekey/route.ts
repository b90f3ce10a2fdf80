import {
  compileOverrides,
  type CompiledRule,
  type DetectionEvent,
  type DetectOverrides,
  type FieldValue,
  type TenantSettings,
} from '@vigil/detect';

/**
 * Rules that group their windows by the same fields, read the same way: the unit of the Kafka
 * re-key. Each set's events go to the re-key topic keyed by (tenant, the set's field values), so
 * every event of one (rule, entity) window reaches the same re-key partition, whichever log
 * partition (tenant, stream) it was appended to.
 *
 * - `tenant`: rules without group-by (tenant-wide, e.g. credential stuffing), keyed by tenant;
 * - `by:<fields>`: rules grouping by these fields, no aliases (every step reads the same fields);
 * - `rule:<id>`: a rule with aliases (its steps read different fields, e.g. an API key created
 *   is `target.id`, the key used is `actor.id`) is a set of its own, keyed by the fields of the
 *   step the event matches.
 */
export interface RekeySet {
  readonly id: string;
  readonly rules: readonly CompiledRule[];
}

export function rekeySets(rules: readonly CompiledRule[]): RekeySet[] {
  const sets = new Map<string, CompiledRule[]>();
  for (const rule of rules) {
    const aliased = Object.keys(rule.spec.correlation?.aliases ?? {}).length > 0;
    const id = aliased
      ? `rule:${rule.id}`
      : rule.groupByNames.length === 0
        ? 'tenant'
        : `by:${rule.groupByNames.join(',')}`;
    let list = sets.get(id);
    if (!list) sets.set(id, (list = []));
    list.push(rule);
  }
  return [...sets].map(([id, list]) => ({ id, rules: list }));
}

/** One copy of an event for the re-key topic. */
export interface Routed {
  readonly set: string;
  /** Partitioning key: JSON of [tenant, ...the set's field values]. */
  readonly key: string;
}

function str(v: FieldValue): string | undefined {
  if (v === undefined || Array.isArray(v)) return undefined;
  return String(v);
}

/**
 * Decides where an event goes on the re-key topic: once per set that has a rule whose step
 * matches it, keyed by the entity that rule's engine would group it under. The step and the
 * entity are found as the engine finds them (`DetectionEngine.process`): the tenant's action
 * mapping applied first, the tenant's time zone for `time.*` fields, disabled rules skipped, the
 * first matching step's group-by fields; an event lacking one of them is no entity and is not
 * sent for that set (the engine would skip it too). Events no rule can count are not sent at all,
 * which keeps the topic far smaller than the log.
 */
export class RekeyRouter {
  readonly sets: readonly RekeySet[];
  private readonly defaults: TenantSettings;
  private readonly tenants: ReadonlyMap<string, TenantSettings>;

  constructor(rules: readonly CompiledRule[], overrides?: DetectOverrides) {
    this.sets = rekeySets(rules);
    const compiled = compileOverrides(overrides, new Set(rules.map((r) => r.id)));
    this.defaults = compiled.defaults;
    this.tenants = compiled.tenants;
  }

  route(input: DetectionEvent): Routed[] {
    const settings = this.tenants.get(input.tenant) ?? this.defaults;
    let event = input;
    const mapped = settings.actions.get(input.action);
    if (mapped !== undefined)
      event = { ...input, action: mapped.action, outcome: mapped.outcome ?? input.outcome };
    const zone = settings.timeZone;
    const out: Routed[] = [];
    for (const set of this.sets) {
      const keys = new Set<string>();
      for (const rule of set.rules) {
        if (settings.disabled.has(rule.id)) continue;
        const step = rule.steps.find((s) => s.match(event, zone));
        if (step === undefined) continue;
        const values: string[] = [event.tenant];
        let absent = false;
        for (const get of step.groupBy) {
          const v = str(get(event, zone));
          if (v === undefined) {
            absent = true;
            break;
          }
          values.push(v);
        }
        if (absent) continue;
        keys.add(JSON.stringify(values));
        // Rules of a `by:` or `tenant` set read the same fields: one key for all of them.
        if (!set.id.startsWith('rule:')) break;
      }
      for (const key of keys) out.push({ set: set.id, key });
    }
    return out;
  }
}

/**
 * The overrides restricted to `ruleIds` (the engine of one set refuses overrides that name rules
 * it does not run).
 */
export function overridesFor(
  overrides: DetectOverrides | undefined,
  ruleIds: ReadonlySet<string>,
): DetectOverrides | undefined {
  if (overrides === undefined) return undefined;
  type Tenant = NonNullable<DetectOverrides['defaults']>;
  const pick = <V>(record: Record<string, V> | undefined): Record<string, V> | undefined =>
    record === undefined
      ? undefined
      : Object.fromEntries(Object.entries(record).filter(([id]) => ruleIds.has(id)));
  const tenant = (t: Tenant | undefined): Tenant | undefined => {
    if (t === undefined) return undefined;
    const out: Tenant = { ...t };
    if (t.disable) out.disable = t.disable.filter((id) => ruleIds.has(id));
    if (t.thresholds) out.thresholds = pick(t.thresholds);
    if (t.rules) out.rules = pick(t.rules);
    return out;
  };
  const result: DetectOverrides = {};
  const defaults = tenant(overrides.defaults);
  if (defaults) result.defaults = defaults;
  if (overrides.tenants)
    result.tenants = Object.fromEntries(
      Object.entries(overrides.tenants).map(([id, t]) => [id, tenant(t) as Tenant]),
    );
  return result;
}
