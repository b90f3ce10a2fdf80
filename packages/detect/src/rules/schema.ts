import { z } from 'zod';

/**
 * The rule file format (README "Rule format"): Sigma's detection block (named selections and a
 * condition) and Sigma correlation (event_count, value_count, temporal, temporal_ordered) in one
 * document, plus `geo_velocity` and a `baseline` filter, which Sigma has no form for.
 */

export const SEVERITIES = ['informational', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const CORRELATION_TYPES = [
  'event_count',
  'value_count',
  'temporal',
  'temporal_ordered',
  'geo_velocity',
] as const;
export type CorrelationType = (typeof CORRELATION_TYPES)[number];

const DURATION = /^(\d{1,9})(ms|s|m|h|d)$/;
const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Milliseconds of a Sigma timespan (`30s`, `5m`, `1h`, `45d`). */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

const duration = z
  .string()
  .regex(DURATION, 'a duration such as 30s, 5m, 1h or 45d')
  .refine((s) => !DURATION.test(s) || parseDuration(s) > 0, 'must be longer than 0');
const fieldPath = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/, 'a dotted field');
const count = z.number().int().min(1).max(1_000_000);

/** A threshold: `gte` or `gt` (an alert needs a lower bound: a window cannot prove "fewer"). */
const threshold = z
  .strictObject({ gte: count.optional(), gt: z.number().int().min(0).optional() })
  .refine((c) => (c.gte === undefined) !== (c.gt === undefined), 'give exactly one of gte, gt');

const step = z.union([
  z.string().min(1),
  z.strictObject({ rule: z.string().min(1), count: threshold.optional() }),
]);

export const correlationSchema = z.strictObject({
  type: z.enum(CORRELATION_TYPES),
  /** Selections counted (temporal, temporal_ordered: the steps); default: the detection condition. */
  rules: z.array(step).min(1).max(16).optional(),
  'group-by': z.array(z.string().min(1)).max(8).default([]),
  /** Sigma aliases: one group-by name read from a different field in each selection. */
  aliases: z.record(z.string().min(1), z.record(z.string().min(1), fieldPath)).optional(),
  timespan: duration,
  condition: z
    .strictObject({
      gte: count.optional(),
      gt: z.number().int().min(0).optional(),
      field: fieldPath.optional(),
    })
    .optional(),
  /** value_count: further distinct counts that must also be reached. */
  also: z
    .array(z.strictObject({ field: fieldPath, gte: count }))
    .max(4)
    .optional(),
  /**
   * event_count, value_count: the count (or distinct count) is taken over this selection's events
   * only, and they must be at least `gte` of all the window's events (failures among attempts).
   */
  share: z.strictObject({ rule: z.string().min(1), gte: z.number().gt(0).max(1) }).optional(),
  /** temporal_ordered: the last step's value of this field must differ from the earlier steps'. */
  differ: fieldPath.optional(),
  /** geo_velocity: speed above which travel is impossible. */
  max_speed_kmh: z.number().positive().optional(),
  /** geo_velocity: shorter distances are GeoIP noise. */
  min_distance_km: z.number().min(0).optional(),
  /** geo_velocity: relay, VPN or satellite networks whose location says nothing of the user. */
  skip_asns: z.array(z.number().int().min(0)).max(1000).optional(),
});
export type CorrelationSpec = z.infer<typeof correlationSchema>;

export const baselineSchema = z.union([
  z.strictObject({
    facet: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/),
    field: fieldPath,
    entity: fieldPath.optional(),
    /** new: only an entity with history and a value not in it; unusual: also an entity without history. */
    match: z.enum(['new', 'unusual']),
  }),
  z.strictObject({
    facet: z.literal('last_seen'),
    entity: fieldPath.optional(),
    idle: duration,
  }),
]);
export type BaselineSpec = z.infer<typeof baselineSchema>;

export const ruleSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,127}$/, 'lower-case letters, digits, _ . -'),
  title: z.string().min(1).max(200),
  description: z.string().min(1).max(4000),
  severity: z.enum(SEVERITIES),
  /** MITRE ATT&CK technique ids. */
  attack: z.array(z.string().regex(/^T\d{4}(\.\d{3})?$/, 'an ATT&CK technique id')).min(1),
  /** Where the threshold comes from: the public detection content it is taken from. */
  source: z.string().min(1).max(2000),
  falsepositives: z.array(z.string()).optional(),
  detection: z.record(z.string(), z.unknown()),
  correlation: correlationSchema.optional(),
  baseline: baselineSchema.optional(),
  /** Fields whose distinct values (capped) go into the alert's evidence. */
  evidence: z.array(fieldPath).max(8).optional(),
  /** Whether the tenant's `serviceAccounts` allow-list applies (behaviour and volume rules). */
  skip_service_accounts: z.boolean().default(false),
  /** Whether the tenant's allow-lists apply at all (chain integrity findings ignore them). */
  allowlists: z.boolean().default(true),
});
export type RuleSpec = z.infer<typeof ruleSchema>;
