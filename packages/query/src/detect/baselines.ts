import type { ClickHouseSettings } from '@clickhouse/client';
import { compileOverrides, type CompiledRule } from '@vigil/detect';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { UNRESTRICTED_SQL } from '../privacy/restrictions.js';
import { fromChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';

/**
 * Baselines of the detector (issue 11 item 4): what each actor and each API key of a tenant
 * usually does, learned from the tenant's stored events over a history window, for the rules
 * that compare an event with the entity's history (`baseline:` in @vigil/detect rules).
 *
 * - Entities: the actor of an event (`actor.id`). An actor of type `api_key` (the SDK's
 *   `api_key.used`, and `api.request` sent with a key as the actor) is an API key entity; its
 *   rows say `entity_type = 'api_key'`. Both live in one key space, the actor id, as the engine's
 *   `BaselineLookup` asks by entity only.
 * - Facets, from successful events only (a burst of failed logins from an attacker's country
 *   must not make that country usual): `countries` (geo_country), `asns` (geo_asn), `hours`
 *   (hour of day 0-23 in the tenant's time zone, as the rules' `time.hour`), `devices`
 *   (ua_device), `ua_families` (ua_browser), and `last_seen` (last successful activity, for
 *   dormant accounts). Each row has its count and first and last time seen.
 * - `rate`, from all events: events per active hour of the entity (hours with at least one
 *   event), p50, p95 and peak: the API consumption of a key or a user (seed 001 §4.2).
 *
 * Each refresh writes a **generation**: the rows of every tenant computed from the events with
 * `time` in [asOf − history, asOf), then one row in `baseline_generations` marking it complete.
 * A generation answers for events from `effective_from = asOf + activation` on, until the next
 * one takes over, for the live detector and for a backtest alike (detect/baseline-lookup.ts):
 * so a backtest sees the baseline the detector saw. The activation delay must exceed the time
 * a refresh takes plus the detector's reload interval.
 *
 * Excluded, as search excludes them: events of restricted subjects (GDPR Art. 18) and expired
 * events. Erased values are gone from the events (FINAL reads the erased version), and
 * {@link eraseFromBaselines} deletes the person's rows from every stored generation.
 * Generations expire `keep` after their asOf (TTL): baselines are personal data with their own
 * retention.
 */

export interface BaselineRefreshOptions {
  /** History window each generation learns from. Default 30 days. */
  readonly historyMs?: number;
  /** How long a generation is kept (backtests can use it that far back). Default 35 days. */
  readonly keepMs?: number;
  /** Delay from asOf to the first event time a generation answers for. Default 10 min. */
  readonly activationMs?: number;
  /** The tenant's time zone for `hours` (the detect overrides' timeZone). Default UTC. */
  readonly timeZone?: (tenant: string) => string;
}

export interface RefreshedGeneration {
  readonly tenant: string;
  readonly asOf: number;
  readonly entities: number;
  readonly rows: number;
  readonly events: number;
}

export interface RefreshReport {
  readonly asOf: number;
  readonly generations: readonly RefreshedGeneration[];
  /** Tenants whose generation at this asOf already existed (a refresh run again). */
  readonly skipped: readonly string[];
  readonly ms: number;
  /** Milliseconds of each step: facets, rates, counts (for tuning the schedule). */
  readonly steps: { readonly facets: number; readonly rates: number; readonly counts: number };
}

/** Facets of the baseline and the event column each comes from (successful events only). */
export const BASELINE_FACETS = [
  'countries',
  'asns',
  'hours',
  'devices',
  'ua_families',
  'last_seen',
] as const;
export type BaselineFacet = (typeof BASELINE_FACETS)[number];

const DAY = 86_400_000;
const ENTITY_TYPE = "if(actor_type = 'api_key', 'api_key', 'actor')";

/** ms → ClickHouse DateTime64(3) text. */
function chTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 23).replace('T', ' ');
}

function chSeconds(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

export class BaselineRefresher {
  private readonly historyMs: number;
  private readonly keepMs: number;
  private readonly activationMs: number;
  private readonly timeZone: (tenant: string) => string;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RefreshReport> | undefined;
  private last: RefreshReport | undefined;

  constructor(
    private readonly store: Store,
    options: BaselineRefreshOptions = {},
  ) {
    this.historyMs = options.historyMs ?? 30 * DAY;
    this.keepMs = options.keepMs ?? 35 * DAY;
    this.activationMs = options.activationMs ?? 10 * 60_000;
    this.timeZone = options.timeZone ?? (() => 'UTC');
    if (!(this.historyMs > 0 && this.keepMs > 0 && this.activationMs >= 0))
      throw new QueryError(
        QueryErrorCodes.BASELINE_CONFIG_INVALID,
        'baseline history and keep must be positive, activation not negative',
      );
  }

  /** The report of the last refresh that finished, if any. */
  lastReport(): RefreshReport | undefined {
    return this.last;
  }

  /**
   * Computes the generation at `asOf` (epoch ms) for `tenants` (default: every tenant with
   * events in the window). Idempotent: a tenant whose generation at `asOf` is complete is
   * skipped; one left half-written by a crash is written again (rows replace by key, FINAL).
   */
  async refresh(asOf: number, tenants?: readonly string[]): Promise<RefreshReport> {
    const started = performance.now();
    const from = asOf - this.historyMs;
    const window = { from: chTime(from), asOf: chTime(asOf) };
    const events = this.store.table('events');
    const list =
      tenants ??
      (
        await this.store.query<{ t: string }>(
          `SELECT DISTINCT tenant_id AS t FROM ${events}
           WHERE time >= {from:DateTime64(3)} AND time < {asOf:DateTime64(3)}`,
          window,
        )
      ).map((r) => r.t);
    const done = new Set(
      list.length === 0
        ? []
        : (
            await this.store.query<{ t: string }>(
              `SELECT tenant_id AS t FROM ${this.store.table('baseline_generations')} FINAL
               WHERE tenant_id IN {tenants:Array(String)} AND as_of = {asOf:DateTime64(3)}`,
              { tenants: list, asOf: window.asOf },
            )
          ).map((r) => r.t),
    );
    const todo = list.filter((t) => !done.has(t));
    // One statement per time zone: the zone of toTimeZone must be a constant.
    const byZone = new Map<string, string[]>();
    for (const t of todo) {
      const zone = this.timeZone(t);
      byZone.set(zone, [...(byZone.get(zone) ?? []), t]);
    }
    const expires = chSeconds(asOf + this.keepMs);
    const table = this.store.table('baselines');
    const common = `tenant_id IN {tenants:Array(String)}
         AND time >= {from:DateTime64(3)} AND time < {asOf:DateTime64(3)}
         AND actor_id != '' AND ${UNRESTRICTED_SQL} AND (expires_at > now() OR legal_hold = 1)`;
    const steps = { facets: 0, rates: 0, counts: 0 };
    let mark = performance.now();
    const step = (name: keyof typeof steps): void => {
      const at = performance.now();
      steps[name] += Math.round(at - mark);
      mark = at;
    };
    for (const [zone, group] of byZone) {
      const params = { ...window, tenants: group, tz: zone, expires };
      // Every facet in one scan: each successful event gives one (facet, value) pair per
      // facet; then one row per (entity, facet) with its values, counts and last times.
      await this.store.command(
        `INSERT INTO ${table} (tenant_id, as_of, entity_type, entity, facet, count, first_seen, last_seen, vals, val_counts, val_last, expires_at)
         SELECT tenant_id, {asOf:DateTime64(3)}, et, actor_id, facet, sum(n), min(f), max(l),
                groupArray(v), groupArray(n), groupArray(l), {expires:DateTime}
         FROM (
           SELECT tenant_id, ${ENTITY_TYPE} AS et, actor_id, p.1 AS facet, p.2 AS v,
                  count() AS n, min(time) AS f, max(time) AS l
           FROM ${events} FINAL
           ARRAY JOIN [
             ('countries', geo_country),
             ('asns', if(isNull(geo_asn), '', toString(geo_asn))),
             ('hours', toString(toHour(toTimeZone(time, {tz:String})))),
             ('devices', ua_device),
             ('ua_families', ua_browser),
             ('last_seen', '-')
           ] AS p
           WHERE ${common} AND outcome = 'success' AND p.2 != ''
           GROUP BY tenant_id, et, actor_id, facet, v)
         GROUP BY tenant_id, et, actor_id, facet`,
        params,
      );
      step('facets');
      // Request rates: events per active hour of each entity, every outcome counted.
      await this.store.command(
        `INSERT INTO ${table} (tenant_id, as_of, entity_type, entity, facet, count, first_seen, last_seen, p50, p95, peak, expires_at)
         SELECT tenant_id, {asOf:DateTime64(3)}, et, actor_id, 'rate', sum(n), min(f), max(l),
                quantileExact(0.5)(n), quantileExact(0.95)(n), max(n), {expires:DateTime}
         FROM (
           SELECT tenant_id, ${ENTITY_TYPE} AS et, actor_id, toStartOfHour(time) AS h,
                  count() AS n, min(time) AS f, max(time) AS l
           FROM ${events} FINAL
           WHERE ${common}
           GROUP BY tenant_id, et, actor_id, h)
         GROUP BY tenant_id, et, actor_id`,
        params,
      );
      step('rates');
    }
    const generations: RefreshedGeneration[] = [];
    if (todo.length > 0) {
      const counts = await this.store.query<{
        t: string;
        entities: string | number;
        rows: string | number;
        events: string | number;
      }>(
        // Without FINAL (a generation's rows are fresh): only a run repeated after a crash
        // counts its rows twice here, until they merge; readers read FINAL.
        `SELECT tenant_id AS t, uniqExact(entity) AS entities, count() AS rows,
                sumIf(count, facet = 'rate') AS events
         FROM ${table}
         WHERE tenant_id IN {tenants:Array(String)} AND as_of = {asOf:DateTime64(3)}
         GROUP BY tenant_id`,
        { tenants: todo, asOf: window.asOf },
      );
      step('counts');
      const byTenant = new Map(counts.map((c) => [c.t, c]));
      const ms = Math.round(performance.now() - started);
      const rows = todo.map((t) => {
        const c = byTenant.get(t);
        const g: RefreshedGeneration = {
          tenant: t,
          asOf,
          entities: Number(c?.entities ?? 0),
          rows: Number(c?.rows ?? 0),
          events: Number(c?.events ?? 0),
        };
        generations.push(g);
        return {
          tenant_id: t,
          as_of: window.asOf,
          effective_from: chTime(asOf + this.activationMs),
          history_from: window.from,
          time_zone: this.timeZone(t),
          entities: g.entities,
          rows: g.rows,
          events: g.events,
          computed_ms: ms,
          created_at: chTime(Date.now()),
          expires_at: expires,
        };
      });
      // The marker comes last: a reader loads only complete generations.
      await this.store.insert(this.store.table('baseline_generations'), rows);
    }
    const report: RefreshReport = {
      asOf,
      generations,
      skipped: [...done],
      ms: Math.round(performance.now() - started),
      steps,
    };
    this.last = report;
    return report;
  }

  /**
   * Refreshes every `periodMs`, the first run at once. asOf is the clock rounded down to a
   * multiple of the period, so processes refreshing one store compute each generation once
   * (the others find it done). A run still going when the next is due is not doubled.
   * `onError` hears failures; the schedule goes on.
   */
  start(
    periodMs: number,
    hooks: {
      readonly now?: () => number;
      readonly onRefresh?: (report: RefreshReport) => void;
      readonly onError?: (error: unknown) => void;
    } = {},
  ): void {
    if (this.timer !== undefined) return;
    const tick = (): void => {
      if (this.running !== undefined) return;
      const now = (hooks.now ?? Date.now)();
      this.running = this.refresh(Math.floor(now / periodMs) * periodMs);
      this.running.then(
        (report) => hooks.onRefresh?.(report),
        (error: unknown) => hooks.onError?.(error),
      );
      void this.running
        .catch(() => undefined)
        .finally(() => {
          this.running = undefined;
        });
    };
    tick();
    this.timer = setInterval(tick, periodMs);
    this.timer.unref();
  }

  /** Stops the schedule and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}

/**
 * The time zone of each tenant as the detect overrides set it (`timeZone`, validated by the
 * engine's own compileOverrides), for the `hours` facet: the rules' `time.hour` uses the same.
 */
export function timeZonesOf(
  overrides: unknown,
  rules: readonly CompiledRule[],
): (tenant: string) => string {
  const compiled = compileOverrides(overrides, new Set(rules.map((r) => r.id)));
  return (tenant) => (compiled.tenants.get(tenant) ?? compiled.defaults).timeZone;
}

/** A stored generation, as readers list them. */
export interface GenerationInfo {
  readonly tenant: string;
  readonly asOf: number;
  readonly effectiveFrom: number;
  readonly historyFrom: number;
  readonly timeZone: string;
  readonly entities: number;
  readonly rows: number;
}

/** The tenant's complete generations, oldest first. */
export async function listGenerations(store: Store, tenant: string): Promise<GenerationInfo[]> {
  const rows = await store.query<{
    a: string;
    e: string;
    h: string;
    tz: string;
    entities: string | number;
    rows: string | number;
  }>(
    `SELECT toString(as_of) AS a, toString(effective_from) AS e, toString(history_from) AS h,
            time_zone AS tz, entities, rows
     FROM ${store.table('baseline_generations')} FINAL
     WHERE tenant_id = {tenant:String} AND expires_at > now()
     ORDER BY effective_from, as_of`,
    { tenant },
  );
  return rows.map((r) => ({
    tenant,
    asOf: fromChTime(r.a),
    effectiveFrom: fromChTime(r.e),
    historyFrom: fromChTime(r.h),
    timeZone: r.tz,
    entities: Number(r.entities),
    rows: Number(r.rows),
  }));
}

/**
 * Deletes a person from every stored generation of the tenant's baselines (an erasure):
 * `ids` are the forms their id takes in stored rows (plain and pseudonym, SubjectForms.ids).
 * Returns the number of rows deleted, for the erasure's answer. A mutation, run synchronously,
 * so that the rows are gone when it returns.
 */
export async function eraseFromBaselines(
  store: Store,
  tenant: string,
  ids: readonly string[],
): Promise<number> {
  if (ids.length === 0) return 0;
  const where = 'tenant_id = {tenant:String} AND entity IN {ids:Array(String)}';
  const params = { tenant, ids: [...ids] };
  const found = await store.query<{ n: string | number }>(
    `SELECT count() AS n FROM ${store.table('baselines')} WHERE ${where}`,
    params,
  );
  const n = Number(found[0]?.n ?? 0);
  if (n > 0) {
    const settings: ClickHouseSettings = { mutations_sync: '2' };
    const table = store.table(store.cluster ? 'baselines_local' : 'baselines');
    const cluster = store.cluster ? ` ON CLUSTER ${store.cluster}` : '';
    await store.command(`ALTER TABLE ${table}${cluster} DELETE WHERE ${where}`, params, settings);
  }
  return n;
}
