import type { BaselineLookup } from '../engine/engine.js';
import { localTime, type DetectionEvent } from '../event.js';
import type { Scenario } from './generate.js';

/**
 * An in-memory baseline learned from a scenario's history, for tests and the scenario bench (the
 * store-backed baseline is the detector's). Learned from the events before `learningEnd`:
 * - `countries`, `asns`: of each actor's successful logins;
 * - `hours`: the hours (tenant time zone) of each actor's events, widened by one hour on each
 *   side (an administrator seen at 18:40 is usual at 19:10);
 * - `lastSeen`: every event of the scenario (strictly before the time asked) and the activity
 *   before the scenario started, per actor.
 */
export class ScenarioBaseline implements BaselineLookup {
  private readonly facets = new Map<string, Set<string>>();
  private readonly seen = new Map<string, number[]>();

  constructor(scenario: Scenario) {
    const zones = new Map<string, string>();
    for (const [tenant, t] of Object.entries(scenario.overrides.tenants ?? {})) {
      if (t.timeZone !== undefined) zones.set(tenant, t.timeZone);
    }
    for (const p of scenario.priorLastSeen) this.times(p.tenant, p.actor).push(p.time);
    for (const e of scenario.events) {
      const actor = e.actor.id;
      if (actor === undefined) continue;
      this.times(e.tenant, actor).push(e.time);
      if (e.time >= scenario.learningEnd) continue;
      this.learn(e, actor, zones.get(e.tenant) ?? 'UTC');
    }
    for (const list of this.seen.values()) list.sort((a, b) => a - b);
  }

  private times(tenant: string, actor: string): number[] {
    const k = `${tenant}\u0000${actor}`;
    let list = this.seen.get(k);
    if (list === undefined) this.seen.set(k, (list = []));
    return list;
  }

  private add(tenant: string, facet: string, entity: string, value: string | number): void {
    const k = `${tenant}\u0000${facet}\u0000${entity}`;
    let set = this.facets.get(k);
    if (set === undefined) this.facets.set(k, (set = new Set()));
    set.add(String(value));
  }

  private learn(e: DetectionEvent, actor: string, zone: string): void {
    const hour = localTime(e.time, zone).hour;
    for (const h of [hour - 1, hour, hour + 1]) this.add(e.tenant, 'hours', actor, (h + 24) % 24);
    if (e.action !== 'user.login' || e.outcome !== 'success') return;
    const geo = e.enrichment?.geo;
    if (geo !== undefined) this.add(e.tenant, 'countries', actor, geo.country);
    const asn = e.enrichment?.asn;
    if (asn !== undefined) this.add(e.tenant, 'asns', actor, asn.number);
  }

  usual(tenant: string, facet: string, entity: string, value: string | number) {
    const set = this.facets.get(`${tenant}\u0000${facet}\u0000${entity}`);
    if (set === undefined || set.size === 0) return 'no_history' as const;
    return set.has(String(value)) ? ('usual' as const) : ('new' as const);
  }

  lastSeen(tenant: string, entity: string, before: number): number | undefined {
    const list = this.seen.get(`${tenant}\u0000${entity}`);
    if (list === undefined) return undefined;
    // Last time strictly before `before` (binary search).
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((list[mid] as number) < before) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : list[lo - 1];
  }
}
