import type { Category } from '@vigil/protocol';
import {
  daysOf,
  expirySeconds,
  LegalHolds,
  NO_HOLDS,
  resolvePolicy,
  RetentionPolicies,
  type ActiveHolds,
  type EventRow,
  type RetentionDays,
  type Store,
} from '@vigil/query';
import type { BatchContext, RowContext, SinkPlugin } from './plugins.js';

/**
 * Retention at ingest: every row gets `expires_at` = `received_at` + the days its tenant keeps
 * its category (PROTOCOL.md §10: from the collector's clock, never from the event's `time`, so a
 * producer can neither backdate nor extend it), and `legal_hold = 1` when an active legal hold
 * covers it. ClickHouse then deletes by the table's `TTL expires_at DELETE WHERE legal_hold = 0`.
 *
 * Policies and holds are loaded in `prepare` for the batch's tenants and cached for
 * `refreshMs`, so a policy change reaches new events within that time. Holds must be exact: a
 * hold placed while a batch is being built could otherwise miss its rows, since the hold's
 * mutation only touches rows stored before it started. So after every insert `stored` reads the
 * holds again; if they changed since `prepare`, it re-flags the rows it just stored. A hold
 * written after that read has its mutation start after the insert, which then covers the rows.
 */

export const RETENTION_PLUGIN = 'retention';

export interface RetentionPluginOptions {
  readonly store: Store;
  /** Days per category for tenants without their own policy (config `retention`). */
  readonly defaults: RetentionDays;
  /** How long loaded policies and holds are used before reloading (default 10 s). */
  readonly refreshMs?: number;
  readonly logger?: { warn(obj: object, msg: string): void };
}

interface Cached<T> {
  readonly value: T;
  readonly loadedAt: number;
}

export class RetentionPlugin implements SinkPlugin {
  readonly name = RETENTION_PLUGIN;
  private readonly policies: RetentionPolicies;
  private readonly holds: LegalHolds;
  private readonly refreshMs: number;
  /** For a category without days (cannot happen with checked events): keep, never delete early. */
  private readonly longest: number;
  private readonly days = new Map<string, Cached<RetentionDays>>();
  private readonly held = new Map<string, Cached<ActiveHolds>>();
  /**
   * The holds the rows of the batch in flight are built with, by partition then tenant: batches of
   * different partitions are processed concurrently, so this state must be per partition.
   */
  private readonly batchHolds = new Map<number, Map<string, ActiveHolds>>();
  private defaultsRecorded = false;

  constructor(private readonly options: RetentionPluginOptions) {
    this.policies = new RetentionPolicies(options.store, options.defaults);
    this.holds = new LegalHolds(options.store);
    this.refreshMs = options.refreshMs ?? 10_000;
    this.longest = Math.max(...Object.values(options.defaults));
  }

  async prepare(batch: BatchContext): Promise<void> {
    if (!this.defaultsRecorded) {
      // The history of policies covers the configured defaults too (retention_policies, '*').
      await this.policies.recordDefaults();
      this.defaultsRecorded = true;
    }
    const now = Date.now();
    const tenants = [...batch.tenants];
    const stale = <T>(cache: Map<string, Cached<T>>): string[] =>
      tenants.filter((t) => {
        const entry = cache.get(t);
        return entry === undefined || now - entry.loadedAt >= this.refreshMs;
      });
    const policyTenants = stale(this.days);
    if (policyTenants.length > 0) {
      const own = await this.policies.ownDays(policyTenants);
      for (const t of policyTenants) {
        const policy = resolvePolicy(own.get(t) ?? {}, this.options.defaults);
        this.days.set(t, { value: daysOf(policy), loadedAt: now });
      }
    }
    const holdTenants = stale(this.held);
    if (holdTenants.length > 0) {
      for (const [t, holds] of await this.holds.active(holdTenants))
        this.held.set(t, { value: holds, loadedAt: now });
    }
    this.batchHolds.set(
      batch.partition,
      new Map(tenants.map((t) => [t, this.held.get(t)?.value ?? NO_HOLDS])),
    );
  }

  decorate(row: EventRow, context: RowContext): void {
    const days = this.days.get(row.tenant_id)?.value ?? this.options.defaults;
    row.expires_at = expirySeconds(row.received_at, days[row.category as Category] ?? this.longest);
    const holds = this.batchHolds.get(context.partition)?.get(row.tenant_id);
    if (holds !== undefined && covers(holds, row)) row.legal_hold = 1;
  }

  async stored(rows: readonly EventRow[], batch: BatchContext): Promise<void> {
    if (rows.length === 0) return;
    const now = Date.now();
    const fresh = await this.holds.active([...batch.tenants]);
    for (const [tenant, holds] of fresh) {
      this.held.set(tenant, { value: holds, loadedAt: now });
      if ((this.batchHolds.get(batch.partition)?.get(tenant) ?? NO_HOLDS).key === holds.key)
        continue;
      const ids = rows.filter((r) => r.tenant_id === tenant).map((r) => r.id);
      this.options.logger?.warn(
        { tenant, rows: ids.length },
        'legal holds changed while a batch was being stored; re-flagging its rows',
      );
      await this.holds.flagRows(tenant, ids, holds);
    }
  }

  reset(): void {
    this.days.clear();
    this.held.clear();
    this.batchHolds.clear();
  }
}

function covers(holds: ActiveHolds, row: EventRow): boolean {
  if (holds.tenant) return true;
  if (holds.subjects.size === 0) return false;
  // The columns of HOLD_SUBJECT_COLUMNS (packages/query/src/retention/holds.ts).
  return (
    holds.subjects.has(row.actor_id) ||
    holds.subjects.has(row.target_id) ||
    holds.subjects.has(row.subject_id)
  );
}
