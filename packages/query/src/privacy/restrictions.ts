import { randomBytes } from 'node:crypto';
import type { SubjectRef } from '@vigil/protocol';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { updateEvents } from '../retention/expiry.js';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { PrivacyService } from './service.js';
import { subjectParams, SUBJECT_MATCH_SQL } from './subject.js';

/**
 * Restriction of processing (GDPR Art. 18): while a restriction is active, the person's events
 * are kept (for legal claims) but hidden from search, analytics and detection; only an admin
 * asking explicitly (`includeRestricted`, recorded) sees them. A row carries the ids of the
 * restrictions that cover it in `restricted_by`; lifting one removes its id, so a row covered by
 * two restrictions stays hidden until both are lifted. Restrictions name the person only by
 * keyed digests (PROTOCOL.md §17.2): the sink recognises their new events by the same digests.
 */

export interface Restriction {
  readonly id: string;
  readonly tenantId: string;
  /** Keyed digests of the subject's id and addresses. */
  readonly digests: readonly string[];
  readonly reason: string;
  readonly placedBy: string;
  readonly placedAt: number;
  readonly active: boolean;
  readonly liftedBy: string | null;
  readonly liftedAt: number | null;
  readonly liftReason: string | null;
}

/** An active restriction as the sink applies it to new rows. */
export interface ActiveRestriction {
  readonly id: string;
  readonly digests: ReadonlySet<string>;
}

/** Rows a search shows unless restricted ones are asked for. */
export const UNRESTRICTED_SQL = 'empty(restricted_by)';

export function newRestrictionId(): string {
  return `rst_${randomBytes(8).toString('hex')}`;
}

interface Row {
  rid: string;
  tn: string;
  d: string[];
  reason_placed: string;
  by_placed: string;
  at_placed: string;
  lifts: number | string;
  by_lifted: string;
  at_lifted: string;
  reason_lifted: string;
}

function restrictionOf(r: Row): Restriction {
  const lifted = Number(r.lifts) > 0;
  return {
    id: r.rid,
    tenantId: r.tn,
    digests: r.d,
    reason: r.reason_placed,
    placedBy: r.by_placed,
    placedAt: fromChTime(r.at_placed),
    active: !lifted,
    liftedBy: lifted ? r.by_lifted : null,
    liftedAt: lifted ? fromChTime(r.at_lifted) : null,
    liftReason: lifted ? r.reason_lifted : null,
  };
}

export class Restrictions {
  constructor(
    private readonly store: Store,
    private readonly privacy: PrivacyService,
  ) {}

  async list(tenant: string, options: { all?: boolean } = {}): Promise<Restriction[]> {
    return (await this.rows([tenant], options.all === true)).map(restrictionOf);
  }

  async get(tenant: string, id: string): Promise<Restriction | undefined> {
    return (await this.rows([tenant], true, id)).map(restrictionOf)[0];
  }

  /** Active restrictions of tenants (the sink's view). */
  async active(tenants: readonly string[]): Promise<Map<string, ActiveRestriction[]>> {
    const out = new Map<string, ActiveRestriction[]>();
    for (const r of await this.rows(tenants, false)) {
      const list = out.get(r.tn) ?? [];
      list.push({ id: r.rid, digests: new Set(r.d) });
      out.set(r.tn, list);
    }
    return out;
  }

  /** Restricts the subject's stored events at once (a mutation, waited for) and their new ones. */
  async place(
    tenant: string,
    subject: SubjectRef,
    reason: string,
    actorKeyId: string,
    id = newRestrictionId(),
  ): Promise<{ restriction: Restriction; restrictedEvents: number }> {
    await this.store.insert(this.store.table('restrictions'), [
      {
        tenant_id: tenant,
        restriction_id: id,
        change: 'placed',
        subject_digests: this.privacy.digests(tenant, subject),
        reason,
        actor_key_id: actorKeyId,
        at: toChTime(new Date().toISOString()),
      },
    ]);
    const forms = await this.privacy.subjectForms(tenant, subject);
    const params = { tenant, rid: id, ...subjectParams(forms) };
    await updateEvents(
      this.store,
      'restricted_by = arrayDistinct(arrayConcat(restricted_by, [{rid:String}]))',
      `tenant_id = {tenant:String} AND NOT has(restricted_by, {rid:String}) AND ${SUBJECT_MATCH_SQL}`,
      params,
    );
    const restriction = await this.get(tenant, id);
    if (!restriction) throw new Error(`restriction ${id} was written but cannot be read back`);
    return { restriction, restrictedEvents: await this.count(tenant, id) };
  }

  /** Lifts a restriction: its id leaves every row (a mutation, waited for). */
  async lift(
    tenant: string,
    id: string,
    actorKeyId: string,
    reason: string,
  ): Promise<{ restriction: Restriction; stillRestricted: number }> {
    await this.liftable(tenant, id);
    await this.store.insert(this.store.table('restrictions'), [
      {
        tenant_id: tenant,
        restriction_id: id,
        change: 'lifted',
        subject_digests: [],
        reason,
        actor_key_id: actorKeyId,
        at: toChTime(new Date().toISOString()),
      },
    ]);
    await updateEvents(
      this.store,
      'restricted_by = arrayFilter(x -> x != {rid:String}, restricted_by)',
      'tenant_id = {tenant:String} AND has(restricted_by, {rid:String})',
      { tenant, rid: id },
    );
    const restriction = await this.get(tenant, id);
    if (!restriction) throw new Error(`restriction ${id} disappeared while being lifted`);
    return { restriction, stillRestricted: await this.count(tenant, id) };
  }

  /** The active restriction `id`; a 404 or 409 error when there is none to lift. */
  async liftable(tenant: string, id: string): Promise<Restriction> {
    const existing = await this.get(tenant, id);
    if (!existing)
      throw new QueryError(
        QueryErrorCodes.RESTRICTION_NOT_FOUND,
        `no restriction ${id} in this tenant`,
        { status: 404 },
      );
    if (!existing.active)
      throw new QueryError(
        QueryErrorCodes.RESTRICTION_LIFTED,
        `restriction ${id} was already lifted at ${new Date(existing.liftedAt ?? 0).toISOString()}`,
        { status: 409 },
      );
    return existing;
  }

  /** Adds restriction ids to rows a sink just stored (a restriction placed while they were built). */
  async flagRows(tenant: string, flags: ReadonlyMap<string, readonly string[]>): Promise<void> {
    for (const [rid, ids] of flags) {
      if (ids.length === 0) continue;
      await updateEvents(
        this.store,
        'restricted_by = arrayDistinct(arrayConcat(restricted_by, [{rid:String}]))',
        'tenant_id = {tenant:String} AND id IN {ids:Array(UUID)}',
        { tenant, rid, ids: [...ids] },
      );
    }
  }

  private async count(tenant: string, id: string): Promise<number> {
    const rows = await this.store.query<{ n: number | string }>(
      `SELECT count() AS n FROM ${this.store.table('events')} FINAL
       WHERE tenant_id = {tenant:String} AND has(restricted_by, {rid:String})`,
      { tenant, rid: id },
    );
    return Number(rows[0]?.n ?? 0);
  }

  private async rows(tenants: readonly string[], all: boolean, id?: string): Promise<Row[]> {
    if (tenants.length === 0) return [];
    // Aliases differ from column names: ClickHouse resolves aliases in WHERE and HAVING too.
    return this.store.query<Row>(
      `SELECT restriction_id AS rid, tenant_id AS tn,
              anyIf(subject_digests, change = 'placed') AS d,
              anyIf(reason, change = 'placed') AS reason_placed,
              anyIf(actor_key_id, change = 'placed') AS by_placed,
              toString(minIf(at, change = 'placed')) AS at_placed,
              countIf(change = 'lifted') AS lifts,
              anyIf(actor_key_id, change = 'lifted') AS by_lifted,
              toString(minIf(at, change = 'lifted')) AS at_lifted,
              anyIf(reason, change = 'lifted') AS reason_lifted
       FROM ${this.store.table('restrictions')}
       WHERE tenant_id IN {tenants:Array(String)} AND ({id:String} = '' OR restriction_id = {id:String})
       GROUP BY tenant_id, restriction_id
       HAVING countIf(change = 'placed') > 0 AND ({all:UInt8} = 1 OR lifts = 0)
       ORDER BY at_placed, rid`,
      { tenants, id: id ?? '', all: all ? 1 : 0 },
    );
  }
}
