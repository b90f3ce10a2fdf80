import { randomUUID } from 'node:crypto';
import { CATEGORIES, type Category } from '@vigil/protocol';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { EXPIRY_SQL, isCategory, retentionMs, updateEvents, type RetentionDays } from './expiry.js';

/**
 * Retention policies per tenant: how many days each category of events is kept. A tenant
 * without its own value for a category gets the configured default. Every change is a new row
 * of `retention_policies` (who, when, why, the old and new values); nothing is ever updated, so
 * the days in force at any past moment can be shown (daysAt).
 */

/** `tenant_id` of the rows that record the configured defaults. */
export const DEFAULTS_TENANT = '*';

export interface PolicyEntry {
  readonly days: number;
  /** `tenant`: the tenant's own value; `default`: the configured default. */
  readonly source: 'tenant' | 'default';
}

export type TenantPolicy = Readonly<Record<Category, PolicyEntry>>;

/** One change of one category's period, as recorded. null days: no own value (the default). */
export interface PolicyChange {
  readonly tenantId: string;
  readonly category: Category;
  readonly days: number | null;
  readonly effectiveDays: number;
  readonly previousDays: number | null;
  readonly previousEffectiveDays: number;
  readonly changedAt: number;
  readonly changeId: string;
  readonly actorKeyId: string;
  readonly reason: string;
}

/** What re-applying a policy to stored events did. */
export interface AppliedPolicy {
  readonly category: Category;
  readonly days: number;
  readonly seconds: number;
}

/** Changes a caller asks for: days, or null to go back to the default. */
export type PolicyUpdate = Partial<Record<Category, number | null>>;

interface ChangeRow {
  tenant_id: string;
  category: string;
  days: number | string;
  effective_days: number | string;
  previous_days: number | string;
  previous_effective_days: number | string;
  changed_at: string;
  change_id: string;
  actor_key_id: string;
  reason: string;
}

export class RetentionPolicies {
  constructor(
    private readonly store: Store,
    /** The configured defaults (config `retention`). */
    readonly defaults: RetentionDays,
  ) {}

  /** Each tenant's own values (categories without one are absent), in one query. */
  async ownDays(
    tenants: readonly string[],
  ): Promise<Map<string, Partial<Record<Category, number>>>> {
    const out = new Map<string, Partial<Record<Category, number>>>();
    if (tenants.length === 0) return out;
    // Aliases differ from column names: ClickHouse resolves aliases in WHERE and GROUP BY too.
    const rows = await this.store.query<{ tenant: string; cat: string; own: number | string }>(
      `SELECT tenant_id AS tenant, category AS cat, argMax(days, (changed_at, change_id)) AS own
       FROM ${this.store.table('retention_policies')}
       WHERE tenant_id IN {tenants:Array(String)}
       GROUP BY tenant_id, category`,
      { tenants },
    );
    for (const tenant of tenants) out.set(tenant, {});
    for (const r of rows) {
      const own = Number(r.own);
      if (own > 0 && isCategory(r.cat)) (out.get(r.tenant) ?? {})[r.cat] = own;
    }
    return out;
  }

  /** The tenant's days per category, with where each comes from. */
  async policy(tenantId: string): Promise<TenantPolicy> {
    const own = (await this.ownDays([tenantId])).get(tenantId) ?? {};
    return resolvePolicy(own, this.defaults);
  }

  /** Recorded changes of a tenant, newest first. */
  async history(tenantId: string, limit = 1000): Promise<PolicyChange[]> {
    const rows = await this.store.query<ChangeRow>(
      `SELECT tenant_id, category, days, effective_days, previous_days, previous_effective_days,
              changed_at, toString(change_id) AS change_id, actor_key_id, reason
       FROM ${this.store.table('retention_policies')}
       WHERE tenant_id = {tenant:String}
       ORDER BY changed_at DESC, change_id DESC
       LIMIT {limit:UInt32}`,
      { tenant: tenantId, limit },
    );
    return rows.map(changeOf);
  }

  /** Records a change of the tenant's policy: plan() then write(). */
  async change(
    tenantId: string,
    update: PolicyUpdate,
    actorKeyId: string,
    reason = '',
  ): Promise<PolicyChange[]> {
    const changes = await this.plan(tenantId, update, actorKeyId, reason);
    await this.write(changes);
    return changes;
  }

  /**
   * The changes an update makes to the tenant's policy, not yet written: only categories whose
   * value changes (an empty list when nothing does).
   */
  async plan(
    tenantId: string,
    update: PolicyUpdate,
    actorKeyId: string,
    reason = '',
  ): Promise<PolicyChange[]> {
    const own = (await this.ownDays([tenantId])).get(tenantId) ?? {};
    const now = Date.now();
    const changes: PolicyChange[] = [];
    for (const category of CATEGORIES) {
      if (!(category in update)) continue;
      const next = update[category] ?? null;
      const previous = own[category] ?? null;
      if (next === previous) continue;
      changes.push({
        tenantId,
        category,
        days: next,
        effectiveDays: next ?? this.defaults[category],
        previousDays: previous,
        previousEffectiveDays: previous ?? this.defaults[category],
        changedAt: now,
        changeId: randomUUID(),
        actorKeyId,
        reason,
      });
    }
    return changes;
  }

  /**
   * Records the configured defaults where they differ from the last recorded ones, so the
   * history also covers periods that came from the configuration. Sinks call it when they
   * start applying policies.
   */
  async recordDefaults(actor = 'config'): Promise<PolicyChange[]> {
    const recorded = (await this.ownDays([DEFAULTS_TENANT])).get(DEFAULTS_TENANT) ?? {};
    const now = Date.now();
    const changes: PolicyChange[] = [];
    for (const category of CATEGORIES) {
      const days = this.defaults[category];
      const previous = recorded[category] ?? null;
      if (previous === days) continue;
      changes.push({
        tenantId: DEFAULTS_TENANT,
        category,
        days,
        effectiveDays: days,
        previousDays: previous,
        previousEffectiveDays: previous ?? 0,
        changedAt: now,
        changeId: randomUUID(),
        actorKeyId: actor,
        reason: 'configured defaults',
      });
    }
    await this.write(changes);
    return changes;
  }

  /**
   * The days each category of the tenant was kept for at `atMs`, from the recorded history:
   * the tenant's own value then, else the recorded default then; undefined where the history
   * does not reach back that far.
   */
  async daysAt(tenantId: string, atMs: number): Promise<Partial<Record<Category, number>>> {
    const rows = await this.store.query<{ tenant: string; cat: string; own: number | string }>(
      `SELECT tenant_id AS tenant, category AS cat, argMax(days, (changed_at, change_id)) AS own
       FROM ${this.store.table('retention_policies')}
       WHERE tenant_id IN ({tenant:String}, {defaults:String}) AND changed_at <= {at:DateTime64(3)}
       GROUP BY tenant_id, category`,
      { tenant: tenantId, defaults: DEFAULTS_TENANT, at: toChTime(new Date(atMs).toISOString()) },
    );
    const out: Partial<Record<Category, number>> = {};
    for (const r of rows.filter((row) => row.tenant === DEFAULTS_TENANT)) {
      if (isCategory(r.cat) && Number(r.own) > 0) out[r.cat] = Number(r.own);
    }
    for (const r of rows.filter((row) => row.tenant !== DEFAULTS_TENANT)) {
      if (isCategory(r.cat) && Number(r.own) > 0) out[r.cat] = Number(r.own);
    }
    return out;
  }

  /**
   * Re-applies the tenant's current period for `category` (or `days`) to its stored events: one mutation
   * that sets `expires_at` = `received_at` + days on every matching row. It rewrites the
   * `expires_at` column of every part that holds such a row (and drops rows that are then
   * expired and not held), so it is never done implicitly: see README, "Retention and legal
   * holds", for the cost.
   */
  async applyToStored(tenantId: string, category: Category, days?: number): Promise<AppliedPolicy> {
    days ??= (await this.policy(tenantId))[category].days;
    const started = performance.now();
    await updateEvents(
      this.store,
      `expires_at = ${EXPIRY_SQL}`,
      'tenant_id = {tenant:String} AND category = {category:String}',
      { tenant: tenantId, category, retentionMs: retentionMs(days) },
    );
    return { category, days, seconds: (performance.now() - started) / 1000 };
  }

  /** Writes planned changes to the history (never updating a row). */
  async write(changes: readonly PolicyChange[]): Promise<void> {
    if (changes.length === 0) return;
    await this.store.insert(
      this.store.table('retention_policies'),
      changes.map((c) => ({
        tenant_id: c.tenantId,
        category: c.category,
        days: c.days ?? 0,
        effective_days: c.effectiveDays,
        previous_days: c.previousDays ?? 0,
        previous_effective_days: c.previousEffectiveDays,
        changed_at: toChTime(new Date(c.changedAt).toISOString()),
        change_id: c.changeId,
        actor_key_id: c.actorKeyId,
        reason: c.reason,
      })),
    );
  }
}

/** Days per category for a tenant's own values over the defaults. */
export function resolvePolicy(
  own: Partial<Record<Category, number>>,
  defaults: RetentionDays,
): TenantPolicy {
  const out = {} as Record<Category, PolicyEntry>;
  for (const category of CATEGORIES) {
    const days = own[category];
    out[category] =
      days === undefined
        ? { days: defaults[category], source: 'default' }
        : { days, source: 'tenant' };
  }
  return out;
}

/** The days per category a resolved policy gives (what the sink applies). */
export function daysOf(policy: TenantPolicy): RetentionDays {
  const out = {} as Record<Category, number>;
  for (const category of CATEGORIES) out[category] = policy[category].days;
  return out;
}

function changeOf(r: ChangeRow): PolicyChange {
  const days = Number(r.days);
  const previous = Number(r.previous_days);
  return {
    tenantId: r.tenant_id,
    category: r.category as Category,
    days: days > 0 ? days : null,
    effectiveDays: Number(r.effective_days),
    previousDays: previous > 0 ? previous : null,
    previousEffectiveDays: Number(r.previous_effective_days),
    changedAt: fromChTime(r.changed_at),
    changeId: r.change_id,
    actorKeyId: r.actor_key_id,
    reason: r.reason,
  };
}
