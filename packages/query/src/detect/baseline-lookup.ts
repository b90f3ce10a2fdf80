import type { BaselineLookup } from '@vigil/detect';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { pseudonymOf } from '../privacy/pseudonyms.js';
import type { PrivacyService } from '../privacy/service.js';
import type { Store } from '../store/store.js';
import { listGenerations, type GenerationInfo } from './baselines.js';

/**
 * The engine's `BaselineLookup` over the stored baselines (detect/baselines.ts).
 *
 * The engine asks synchronously on its hot path, so baselines are preloaded: the caller awaits
 * `prepare(tenant, from, to)` for the event times of a batch before it processes the batch
 * (the live detector per batch and tenant; a backtest per page). `prepare` re-lists the
 * tenant's generations at most every `listRefreshMs` and loads the generations that answer
 * for [from, to]; a tenant not prepared answers `no_history` (and is counted).
 *
 * Generations: the one that answers for an event at time t is the newest with
 * `effective_from ≤ t`. `lastSeen(…, before)` picks it from `before` (the event's time). The
 * engine's `usual()` carries no time, so the caller sets it with `at(event.time)` before each
 * `engine.process(event)` (or passes it as a fifth argument, which this lookup accepts: see
 * the package README for the engine change that would make `at` unnecessary). The choice
 * depends only on the event's time and the stored generations, never on when the event
 * arrived: a backtest sees what the live detector saw.
 *
 * Bounds: at most `maxTenants` tenants are held (the least recently prepared is evicted,
 * counted); each loaded generation holds at most `maxEntitiesPerTenant` entities, the most
 * recently active (the rest are counted as truncated and answer `no_history`); a tenant keeps
 * only the generations its last prepared range needs.
 */

export interface BaselineLookupOptions {
  readonly maxTenants?: number;
  readonly maxEntitiesPerTenant?: number;
  /** A value is usual once seen this many times in the history window. Default 1. */
  readonly minCount?: number;
  /** How long a tenant's list of generations is used before it is read again. Default 60 s. */
  readonly listRefreshMs?: number;
  /**
   * For tenants that pseudonymise ids: baselines are computed from the stored columns, which
   * hold pseudonyms, while the detector sees plain ids; with the privacy service the lookup
   * asks by the id's pseudonym first, then by the plain id (rows stored before the setting).
   */
  readonly privacy?: PrivacyService;
  /** Rows read per query when a generation loads. Default 50 000. */
  readonly pageRows?: number;
}

export interface EntityRate {
  /** Events per active hour: median, 95th percentile, highest. */
  readonly p50: number;
  readonly p95: number;
  readonly peak: number;
}

interface EntityBaseline {
  readonly facets: Map<string, Map<string, number>>;
  lastSeen?: number;
  rate?: EntityRate;
}

interface LoadedGeneration {
  readonly info: GenerationInfo;
  readonly entities: Map<string, EntityBaseline>;
}

interface TenantState {
  list: GenerationInfo[];
  listedAt: number;
  readonly loaded: Map<number, LoadedGeneration>;
  idKey: Buffer | undefined;
}

export interface BaselineLookupStats {
  readonly tenants: number;
  readonly generations: number;
  readonly entities: number;
  readonly evictedTenants: number;
  readonly truncatedEntities: number;
  readonly generationLoads: number;
  /** Lookups of a tenant not prepared, or at a time no loaded generation covers. */
  readonly unprepared: number;
}

type Verdict = 'usual' | 'new' | 'no_history';

export class StoreBaselines implements BaselineLookup {
  private readonly maxTenants: number;
  private readonly maxEntities: number;
  private readonly minCount: number;
  private readonly listRefreshMs: number;
  private readonly pageRows: number;
  private readonly tenants = new Map<string, TenantState>();
  private time = Number.NaN;
  private counters = {
    evictedTenants: 0,
    truncatedEntities: 0,
    generationLoads: 0,
    unprepared: 0,
  };

  constructor(
    private readonly store: Store,
    private readonly options: BaselineLookupOptions = {},
  ) {
    this.maxTenants = options.maxTenants ?? 1000;
    this.maxEntities = options.maxEntitiesPerTenant ?? 200_000;
    this.minCount = options.minCount ?? 1;
    this.listRefreshMs = options.listRefreshMs ?? 60_000;
    this.pageRows = options.pageRows ?? 50_000;
    for (const [name, v] of [
      ['maxTenants', this.maxTenants],
      ['maxEntitiesPerTenant', this.maxEntities],
      ['minCount', this.minCount],
      ['pageRows', this.pageRows],
    ] as const) {
      if (!Number.isInteger(v) || v < 1)
        throw new QueryError(
          QueryErrorCodes.BASELINE_CONFIG_INVALID,
          `baseline ${name} must be a positive integer, not ${v}`,
        );
    }
  }

  /** The event time `usual()` answers for: call before each engine.process(event). */
  at(ms: number): void {
    this.time = ms;
  }

  /**
   * Loads what answering for events of `tenant` with times in [fromMs, toMs] needs. `now`
   * (epoch ms) decides when the list of generations is read again.
   */
  async prepare(tenant: string, fromMs: number, toMs: number, now = Date.now()): Promise<void> {
    let state = this.tenants.get(tenant);
    if (state === undefined) {
      state = { list: [], listedAt: Number.NEGATIVE_INFINITY, loaded: new Map(), idKey: undefined };
      while (this.tenants.size >= this.maxTenants) {
        const oldest = this.tenants.keys().next().value as string;
        this.tenants.delete(oldest);
        this.counters.evictedTenants++;
      }
    } else {
      this.tenants.delete(tenant); // re-inserted below: most recently prepared last
    }
    this.tenants.set(tenant, state);
    if (now - state.listedAt >= this.listRefreshMs) {
      state.list = await listGenerations(this.store, tenant);
      state.listedAt = now;
      if (this.options.privacy) {
        const privacy = await this.options.privacy.rowPrivacy(tenant, now);
        state.idKey = privacy?.fields.has('id') ? privacy.pseudonymKey : undefined;
      }
    }
    const wanted = state.list.filter((g, i) => {
      const next = state.list[i + 1];
      // Answers for [effectiveFrom, next.effectiveFrom): keep those that meet [from, to].
      return g.effectiveFrom <= toMs && (next === undefined || next.effectiveFrom > fromMs);
    });
    const keep = new Set(wanted.map((g) => g.asOf));
    for (const asOf of state.loaded.keys()) if (!keep.has(asOf)) state.loaded.delete(asOf);
    for (const g of wanted) {
      if (!state.loaded.has(g.asOf)) state.loaded.set(g.asOf, await this.load(g));
    }
  }

  /** Forgets a tenant's generations (after a refresh or an erasure, the next prepare reloads). */
  invalidate(tenant?: string): void {
    if (tenant === undefined) this.tenants.clear();
    else this.tenants.delete(tenant);
  }

  usual(
    tenant: string,
    facet: string,
    entity: string,
    value: string | number,
    at?: number,
  ): Verdict {
    const e = this.entity(tenant, entity, at ?? this.time);
    const values = e?.facets.get(facet);
    if (values === undefined || values.size === 0) return 'no_history';
    return (values.get(String(value)) ?? 0) >= this.minCount ? 'usual' : 'new';
  }

  lastSeen(tenant: string, entity: string, before: number): number | undefined {
    const last = this.entity(tenant, entity, before)?.lastSeen;
    return last !== undefined && last < before ? last : undefined;
  }

  /** Events per active hour of the entity (for API-consumption rules), or undefined. */
  rate(tenant: string, entity: string, at?: number): EntityRate | undefined {
    return this.entity(tenant, entity, at ?? this.time)?.rate;
  }

  /** The generation answering for `tenant` at `ms`, if it is loaded. */
  generationAt(tenant: string, ms: number): GenerationInfo | undefined {
    return this.loadedAt(tenant, ms)?.info;
  }

  stats(): BaselineLookupStats {
    let generations = 0;
    let entities = 0;
    for (const t of this.tenants.values())
      for (const g of t.loaded.values()) {
        generations++;
        entities += g.entities.size;
      }
    return { tenants: this.tenants.size, generations, entities, ...this.counters };
  }

  // ---- internals --------------------------------------------------------------------------

  private loadedAt(tenant: string, ms: number): LoadedGeneration | undefined {
    const state = this.tenants.get(tenant);
    if (state === undefined || !Number.isFinite(ms)) return undefined;
    let info: GenerationInfo | undefined;
    for (const g of state.list) {
      if (g.effectiveFrom <= ms) info = g;
      else break;
    }
    return info === undefined ? undefined : state.loaded.get(info.asOf);
  }

  private entity(tenant: string, entity: string, ms: number): EntityBaseline | undefined {
    const state = this.tenants.get(tenant);
    const generation = this.loadedAt(tenant, ms);
    if (state === undefined || generation === undefined) {
      if (state === undefined || state.list.some((g) => g.effectiveFrom <= ms))
        this.counters.unprepared++;
      return undefined;
    }
    if (state.idKey !== undefined) {
      const pseudonymous = generation.entities.get(pseudonymOf(state.idKey, 'id', entity));
      if (pseudonymous !== undefined) return pseudonymous;
    }
    return generation.entities.get(entity);
  }

  private async load(info: GenerationInfo): Promise<LoadedGeneration> {
    this.counters.generationLoads++;
    const table = this.store.table('baselines');
    const where = 'tenant_id = {tenant:String} AND as_of = fromUnixTimestamp64Milli({asOf:Int64})';
    const params = { tenant: info.tenant, asOf: info.asOf, cap: this.maxEntities };
    if (info.entities > this.maxEntities)
      this.counters.truncatedEntities += info.entities - this.maxEntities;
    // The most recently active entities when there are more than the cap.
    const chosen =
      info.entities > this.maxEntities
        ? `AND entity IN (SELECT entity FROM ${table} FINAL WHERE ${where} AND facet = 'rate'
             ORDER BY last_seen DESC, entity LIMIT {cap:UInt32})`
        : '';
    const entities = new Map<string, EntityBaseline>();
    for (let offset = 0; ; offset += this.pageRows) {
      const rows = await this.store.query<{
        entity: string;
        facet: string;
        vals: string[];
        val_counts: (string | number)[];
        ls: string | number;
        p50: number;
        p95: number;
        peak: number;
      }>(
        `SELECT entity, facet, vals, val_counts, toUnixTimestamp64Milli(last_seen) AS ls, p50, p95, peak
         FROM ${table} FINAL
         WHERE ${where} ${chosen}
         ORDER BY entity, facet
         LIMIT {limit:UInt32} OFFSET {offset:UInt64}`,
        { ...params, limit: this.pageRows, offset },
      );
      for (const r of rows) {
        let e = entities.get(r.entity);
        if (e === undefined) entities.set(r.entity, (e = { facets: new Map() }));
        if (r.facet === 'last_seen') e.lastSeen = Number(r.ls);
        else if (r.facet === 'rate') e.rate = { p50: r.p50, p95: r.p95, peak: r.peak };
        else {
          const values = new Map<string, number>();
          r.vals.forEach((v, i) => values.set(v, Number(r.val_counts[i])));
          e.facets.set(r.facet, values);
        }
      }
      if (rows.length < this.pageRows) break;
    }
    return { info, entities };
  }
}
