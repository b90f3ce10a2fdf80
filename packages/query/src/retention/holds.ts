import { randomBytes } from 'node:crypto';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { updateEvents } from './expiry.js';

/**
 * Legal holds: while a hold is active, the events it covers are not deleted, whatever their
 * expiry. A hold covers a whole tenant, or one subject: a person's id within the tenant, matched
 * in the columns of HOLD_SUBJECT_COLUMNS. Covered rows carry `legal_hold = 1`, which the table's
 * `TTL expires_at DELETE WHERE legal_hold = 0` honours (ClickHouse docs, "TTL for columns and
 * tables": a DELETE TTL with a WHERE clause removes only the expired rows that match it).
 *
 * Placing a hold flags the stored rows it covers with one mutation; the sink flags new rows
 * (sink/retention.ts in the collector). Releasing clears the flag on the rows no other active
 * hold covers. Holds are recorded append-only in `legal_holds`: a `placed` row and, later, a
 * `released` row, each with who, when and why.
 */

/** The columns where a subject hold looks for the person's id. */
export const HOLD_SUBJECT_COLUMNS = ['actor_id', 'target_id', 'subject_id'] as const;

export interface LegalHold {
  readonly id: string;
  readonly tenantId: string;
  /** The person the hold covers; null for the whole tenant. */
  readonly subject: string | null;
  readonly reason: string;
  readonly placedBy: string;
  readonly placedAt: number;
  readonly active: boolean;
  readonly releasedBy: string | null;
  readonly releasedAt: number | null;
  readonly releaseReason: string | null;
}

/** The active holds of one tenant, as the sink applies them to new rows. */
export interface ActiveHolds {
  /** A hold covers the whole tenant. */
  readonly tenant: boolean;
  readonly subjects: ReadonlySet<string>;
  /** The ids of the active holds, sorted and joined: equal strings, equal hold sets. */
  readonly key: string;
}

export const NO_HOLDS: ActiveHolds = { tenant: false, subjects: new Set(), key: '' };

/** A new hold id: `hold_` and 16 hex digits. */
export function newHoldId(): string {
  return `hold_${randomBytes(8).toString('hex')}`;
}

interface HoldRow {
  tenant: string;
  hold: string;
  subject: string;
  placed_reason: string;
  placed_by: string;
  placed_at: string;
  releases: number | string;
  released_by: string;
  released_at: string;
  release_reason: string;
}

/**
 * Matches rows a hold covers; `{all:UInt8}` = 1 for a tenant hold, else `{subject:String}`, or
 * one of `{forms:Array(String)}`: the subject's pseudonyms where the tenant pseudonymises ids
 * (privacy/pseudonyms.ts), so a hold also covers the rows that name the person by pseudonym.
 */
const COVERED = `({all:UInt8} = 1 OR ${HOLD_SUBJECT_COLUMNS.map((c) => `${c} = {subject:String} OR ${c} IN {forms:Array(String)}`).join(' OR ')})`;
/** Matches rows some subject of `{others:Array(String)}` is named in. */
const COVERED_BY_OTHERS = `(${HOLD_SUBJECT_COLUMNS.map((c) => `${c} IN {others:Array(String)}`).join(' OR ')})`;

/**
 * Clears the flag and re-assigns `expires_at` to itself. ClickHouse re-evaluates a part's TTL
 * in a mutation only when the mutation writes a column the TTL expression is computed from
 * (`expires_at`), not one its WHERE reads (`legal_hold`); a part whose TTL was already applied
 * is also not reconsidered by OPTIMIZE … FINAL. Without the re-assignment, released rows past
 * their expiry could stay until a MATERIALIZE TTL; with it, the release itself deletes them
 * (observed on ClickHouse 26; see README, "Retention and legal holds").
 */
const RELEASE = 'legal_hold = 0, expires_at = expires_at';

export class LegalHolds {
  constructor(private readonly store: Store) {}

  /** Holds of a tenant, oldest first; only active ones unless `all`. */
  async list(tenantId: string, options: { all?: boolean } = {}): Promise<LegalHold[]> {
    const rows = await this.rows([tenantId], options.all === true ? 'all' : 'active');
    return rows.map(holdOf);
  }

  async get(tenantId: string, id: string): Promise<LegalHold | undefined> {
    const rows = await this.rows([tenantId], 'all', id);
    const row = rows[0];
    return row ? holdOf(row) : undefined;
  }

  /** The active holds of each tenant (tenants without any get NO_HOLDS), in one query. */
  async active(tenants: readonly string[]): Promise<Map<string, ActiveHolds>> {
    const out = new Map<string, ActiveHolds>();
    for (const t of tenants) out.set(t, NO_HOLDS);
    if (tenants.length === 0) return out;
    const byTenant = new Map<string, HoldRow[]>();
    for (const row of await this.rows(tenants, 'active')) {
      const list = byTenant.get(row.tenant) ?? [];
      list.push(row);
      byTenant.set(row.tenant, list);
    }
    for (const [tenant, rows] of byTenant) {
      out.set(tenant, {
        tenant: rows.some((r) => r.subject === ''),
        subjects: new Set(rows.filter((r) => r.subject !== '').map((r) => r.subject)),
        key: rows
          .map((r) => r.hold)
          .sort()
          .join(','),
      });
    }
    return out;
  }

  /**
   * Places a hold and flags the stored events it covers (one mutation, waited for). Events
   * already past their expiry when the hold is placed are not saved by it: ClickHouse drops
   * them whenever it rewrites their part, and the hold's own mutation is such a rewrite.
   */
  async place(
    tenantId: string,
    options: {
      subject?: string | undefined;
      reason: string;
      /** Other values the subject's id has in stored rows (its pseudonyms). */
      forms?: readonly string[];
    },
    actorKeyId: string,
    id = newHoldId(),
  ): Promise<{ hold: LegalHold; heldEvents: number }> {
    const subject = options.subject ?? '';
    await this.store.insert(this.store.table('legal_holds'), [
      {
        tenant_id: tenantId,
        hold_id: id,
        change: 'placed',
        subject_id: subject,
        reason: options.reason,
        actor_key_id: actorKeyId,
        at: toChTime(new Date().toISOString()),
      },
    ]);
    const params = {
      tenant: tenantId,
      all: subject === '' ? 1 : 0,
      subject,
      forms: [...(options.forms ?? [])],
    };
    await updateEvents(
      this.store,
      'legal_hold = 1',
      `tenant_id = {tenant:String} AND legal_hold = 0 AND ${COVERED}`,
      params,
    );
    const hold = await this.get(tenantId, id);
    if (!hold) throw new Error(`hold ${id} was written but cannot be read back`);
    return { hold, heldEvents: await this.countHeld(tenantId, COVERED, params) };
  }

  /**
   * Releases a hold and clears the flag on the events no other active hold covers (one
   * mutation, waited for). From then on those events expire as their policy says; any already
   * past their expiry go at the next merge of their part.
   */
  async release(
    tenantId: string,
    id: string,
    actorKeyId: string,
    reason = '',
    /** The values a subject's id has in stored rows (its pseudonyms included). */
    formsOf: (subject: string) => Promise<readonly string[]> = (s) => Promise.resolve([s]),
  ): Promise<{ hold: LegalHold; stillHeld: boolean }> {
    const existing = await this.releasable(tenantId, id);
    await this.store.insert(this.store.table('legal_holds'), [
      {
        tenant_id: tenantId,
        hold_id: id,
        change: 'released',
        subject_id: existing.subject ?? '',
        reason,
        actor_key_id: actorKeyId,
        at: toChTime(new Date().toISOString()),
      },
    ]);
    const remaining = (await this.active([tenantId])).get(tenantId) ?? NO_HOLDS;
    // A tenant hold still covers every row: nothing to clear.
    if (!remaining.tenant) {
      await updateEvents(
        this.store,
        RELEASE,
        `tenant_id = {tenant:String} AND legal_hold = 1 AND ${COVERED} AND NOT ${COVERED_BY_OTHERS}`,
        {
          tenant: tenantId,
          all: existing.subject === null ? 1 : 0,
          subject: existing.subject ?? '',
          forms: existing.subject === null ? [] : [...(await formsOf(existing.subject))],
          others: (await Promise.all([...remaining.subjects].map(formsOf))).flat(),
        },
      );
    }
    const hold = await this.get(tenantId, id);
    if (!hold) throw new Error(`hold ${id} disappeared while being released`);
    return { hold, stillHeld: remaining.tenant };
  }

  /** The active hold `id` of the tenant; a 404 or 409 error when there is none to release. */
  async releasable(tenantId: string, id: string): Promise<LegalHold> {
    const existing = await this.get(tenantId, id);
    if (!existing) {
      throw new QueryError(QueryErrorCodes.HOLD_NOT_FOUND, `no legal hold ${id} in this tenant`, {
        status: 404,
      });
    }
    if (!existing.active) {
      throw new QueryError(
        QueryErrorCodes.HOLD_RELEASED,
        `legal hold ${id} was already released at ${new Date(existing.releasedAt ?? 0).toISOString()}`,
        { status: 409 },
      );
    }
    return existing;
  }

  /**
   * Sets `legal_hold` on the given rows of one tenant from `holds` (the sink's repair when the
   * active holds changed between building a batch and storing it).
   */
  async flagRows(tenantId: string, ids: readonly string[], holds: ActiveHolds): Promise<void> {
    if (ids.length === 0) return;
    await updateEvents(
      this.store,
      `legal_hold = ({all:UInt8} = 1 OR ${COVERED_BY_OTHERS}), expires_at = expires_at`,
      'tenant_id = {tenant:String} AND id IN {ids:Array(UUID)}',
      { tenant: tenantId, all: holds.tenant ? 1 : 0, others: [...holds.subjects], ids },
    );
  }

  private async countHeld(
    tenantId: string,
    covered: string,
    params: Record<string, unknown>,
  ): Promise<number> {
    const rows = await this.store.query<{ n: number | string }>(
      `SELECT count() AS n FROM ${this.store.table('events')} FINAL
       WHERE tenant_id = {tenant:String} AND legal_hold = 1 AND ${covered}`,
      { ...params, tenant: tenantId },
    );
    return Number(rows[0]?.n ?? 0);
  }

  private async rows(
    tenants: readonly string[],
    which: 'active' | 'all',
    id?: string,
  ): Promise<HoldRow[]> {
    // Aliases differ from column names: ClickHouse resolves aliases in WHERE and HAVING too.
    return this.store.query<HoldRow>(
      `SELECT tenant_id AS tenant, hold_id AS hold,
              anyIf(subject_id, change = 'placed') AS subject,
              anyIf(reason, change = 'placed') AS placed_reason,
              anyIf(actor_key_id, change = 'placed') AS placed_by,
              minIf(at, change = 'placed') AS placed_at,
              countIf(change = 'released') AS releases,
              anyIf(actor_key_id, change = 'released') AS released_by,
              minIf(at, change = 'released') AS released_at,
              anyIf(reason, change = 'released') AS release_reason
       FROM ${this.store.table('legal_holds')}
       WHERE tenant_id IN {tenants:Array(String)} AND ({id:String} = '' OR hold_id = {id:String})
       GROUP BY tenant_id, hold_id
       HAVING countIf(change = 'placed') > 0 AND ({all:UInt8} = 1 OR releases = 0)
       ORDER BY placed_at, hold`,
      { tenants, id: id ?? '', all: which === 'all' ? 1 : 0 },
    );
  }
}

function holdOf(row: HoldRow): LegalHold {
  const released = Number(row.releases) > 0;
  return {
    id: row.hold,
    tenantId: row.tenant,
    subject: row.subject === '' ? null : row.subject,
    reason: row.placed_reason,
    placedBy: row.placed_by,
    placedAt: fromChTime(row.placed_at),
    active: !released,
    releasedBy: released ? row.released_by : null,
    releasedAt: released ? fromChTime(row.released_at) : null,
    releaseReason: released ? row.release_reason : null,
  };
}
