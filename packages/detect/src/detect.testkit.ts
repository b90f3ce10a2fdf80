import type { DetectionEvent } from './event.js';
import type { BaselineLookup } from './engine/engine.js';

/** A fixed Monday, 2026-01-05 10:00 UTC: tests never depend on today's date. */
export const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
export const MIN = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

let counter = 0;

/** A fresh event id, ordered by creation (ids only need to be unique per tenant). */
export function nextId(): string {
  counter++;
  return `e${String(counter).padStart(8, '0')}`;
}

type Overrides = Partial<Omit<DetectionEvent, 'actor'>> & { actor?: DetectionEvent['actor'] };

/** An event with defaults: tenant t1, at T0, a successful login of user u1 from Paris. */
export function ev(fields: Overrides = {}): DetectionEvent {
  return {
    tenant: 't1',
    id: nextId(),
    time: T0,
    action: 'user.login',
    category: 'authentication',
    outcome: 'success',
    actor: { type: 'user', id: 'u1' },
    context: { ip: '192.0.2.10' },
    enrichment: PARIS,
    ...fields,
  };
}

export const PARIS: NonNullable<DetectionEvent['enrichment']> = {
  geo: { country: 'FR', city: 'Paris', lat: 48.8566, lon: 2.3522 },
  asn: { number: 3215, org: 'Orange' },
};
export const NEW_YORK: NonNullable<DetectionEvent['enrichment']> = {
  geo: { country: 'US', city: 'New York', lat: 40.7128, lon: -74.006 },
  asn: { number: 7922, org: 'Comcast' },
};
export const SYDNEY: NonNullable<DetectionEvent['enrichment']> = {
  geo: { country: 'AU', city: 'Sydney', lat: -33.8688, lon: 151.2093 },
  asn: { number: 1221, org: 'Telstra' },
};
export const LYON: NonNullable<DetectionEvent['enrichment']> = {
  geo: { country: 'FR', city: 'Lyon', lat: 45.764, lon: 4.8357 },
  asn: { number: 3215, org: 'Orange' },
};

/** A baseline held in memory: facet → entity → usual values, and last activity per entity. */
export class MemoryBaseline implements BaselineLookup {
  readonly facets = new Map<string, Map<string, Set<string>>>();
  readonly last = new Map<string, number>();

  learn(facet: string, entity: string, ...values: (string | number)[]): this {
    let byEntity = this.facets.get(facet);
    if (byEntity === undefined) this.facets.set(facet, (byEntity = new Map<string, Set<string>>()));
    let set = byEntity.get(entity);
    if (set === undefined) byEntity.set(entity, (set = new Set()));
    for (const v of values) set.add(String(v));
    return this;
  }

  seen(entity: string, at: number): this {
    this.last.set(entity, at);
    return this;
  }

  usual(_tenant: string, facet: string, entity: string, value: string | number) {
    const set = this.facets.get(facet)?.get(entity);
    if (set === undefined || set.size === 0) return 'no_history' as const;
    return set.has(String(value)) ? ('usual' as const) : ('new' as const);
  }

  lastSeen(_tenant: string, entity: string, before: number): number | undefined {
    const t = this.last.get(entity);
    return t !== undefined && t < before ? t : undefined;
  }
}
