import { createHash } from 'node:crypto';
import type { DetectionEvent, FieldValue } from '../event.js';
import { DetectError, DetectErrorCodes } from '../errors.js';
import {
  allowed,
  compileOverrides,
  isEmptyAllow,
  keyVerdict,
  type TenantSettings,
} from '../overrides.js';
import type { CompiledRule } from '../rules/load.js';
import { haversineKm } from './geo.js';

/**
 * The detection engine: rules in, alerts out, nothing of transport. The caller feeds opened
 * events in any order within the lateness bound, tells it how far the input is complete
 * (`advanceWatermark`), and checkpoints it (`snapshot` / `restore`).
 *
 * State is per tenant, per rule, per group-by entity (never per log partition): one account's
 * logins may arrive from several partitions and streams. Windows are in event time. Every
 * structure is capped, and what a cap drops is counted in `stats()`.
 */

/** What the caller knows of an entity's history (README "Baselines"). Synchronous: the caller
 * loads and caches baselines; the engine asks on the hot path. */
export interface BaselineLookup {
  /** Whether `value` is usual for `entity` under `facet` (countries, asns, hours …). */
  usual(
    tenant: string,
    facet: string,
    entity: string,
    value: string | number,
  ): 'usual' | 'new' | 'no_history';
  /** The entity's last activity strictly before `before` (epoch ms), or undefined if unknown. */
  lastSeen(tenant: string, entity: string, before: number): number | undefined;
}

export interface EngineOptions {
  readonly rules: readonly CompiledRule[];
  /** Per-tenant overrides (validated here; see overridesSchema). */
  readonly overrides?: unknown;
  readonly baseline?: BaselineLookup;
  /** Events older than watermark − lateness are dropped and counted. Default 5 min. */
  readonly latenessMs?: number;
  /** Entities tracked per (tenant, rule); the least recently updated is evicted. Default 10 000. */
  readonly maxGroupsPerRule?: number;
  /** Events kept per entity window; the oldest are evicted. Default 1 000. */
  readonly maxEntriesPerGroup?: number;
  /** Event ids listed per alert. Default 50. */
  readonly maxEventIdsPerAlert?: number;
  /** Distinct values listed per evidence field. Default 20. */
  readonly maxEvidenceValues?: number;
  /** Emitted alert keys remembered (for at-most-once "new" across restarts). Default 100 000. */
  readonly maxAlertKeys?: number;
}

export interface Alert {
  /** Stable id: SHA-256 of the key, 32 hex characters. */
  readonly id: string;
  /** rule | tenant | entity | time of the opening trigger. */
  readonly key: string;
  readonly ruleId: string;
  readonly title: string;
  readonly severity: string;
  readonly attack: readonly string[];
  readonly tenant: string;
  /** The group-by fields and their values (empty for a tenant-wide rule). */
  readonly entity: Readonly<Record<string, string>>;
  readonly firstEventTime: number;
  readonly lastEventTime: number;
  readonly eventIds: readonly string[];
  /** Events that contributed, including those beyond `eventIds`' cap. */
  readonly eventCount: number;
  readonly evidence: Readonly<Record<string, unknown>>;
  /** 1 when raised, +1 on each update. */
  readonly version: number;
}

export interface AlertUpdate {
  readonly status: 'new' | 'updated';
  readonly alert: Alert;
}

export interface EngineStats {
  events: number;
  droppedLate: number;
  evictedGroups: number;
  evictedEntries: number;
  evictedAlertKeys: number;
  alertsRaised: number;
  alertsUpdated: number;
}

interface Geo {
  lat: number;
  lon: number;
  country: string;
  city?: string;
  asn?: number;
  ip?: string;
}

/**
 * One event in a window. Every entry has every field, in this order (absent ones undefined, which
 * JSON leaves out): objects of one shape keep the engine's property accesses monomorphic.
 */
interface Entry {
  t: number;
  id: string;
  step: number;
  /** value_count's value, or temporal_ordered's `differ` value. */
  v: string | undefined;
  also: (string | null)[] | undefined;
  geo: Geo | undefined;
  ev: (string | null)[] | undefined;
  /** Key of the alert this entry was counted in. */
  a: string | undefined;
}

/** An entry of the shape above from a checkpoint's (where JSON dropped the absent fields). */
function entryFrom(e: Partial<Entry> & { t: number; id: string; step: number }): Entry {
  return {
    t: e.t,
    id: e.id,
    step: e.step,
    v: e.v,
    also: e.also,
    geo: e.geo,
    ev: e.ev,
    a: e.a,
  };
}

interface OpenAlert {
  key: string;
  id: string;
  first: number;
  last: number;
  eventIds: string[];
  eventCount: number;
  values: Record<string, string[]>;
  evidence: Record<string, unknown>;
  version: number;
}

const PREV = Symbol('prev');
const NEXT = Symbol('next');
const KEY = Symbol('key');
const START = Symbol('start');
const DISTINCT = Symbol('distinct');
const STEPS = Symbol('steps');
const SHARE = Symbol('share');
const LAST = Symbol('last');

/** Entries of the share step among entries `start`…`end` of a group (see shareCount). */
interface ShareCache {
  start: number;
  end: number;
  n: number;
}

/** Distinct values counted over entries `start`…`end` of a group (see distinctInOrder). */
interface DistinctCache {
  start: number;
  end: number;
  counts: Map<string, number>;
}

/**
 * One entity's window and open alerts. A class, so that every group has one shape (fields added
 * to literals in varying order made every access polymorphic); its symbol-keyed fields are not
 * state and never in a snapshot (structuredClone and JSON skip them).
 */
class Group {
  /** Links of the table's recency list and the group's key. */
  [PREV]: Group | undefined = undefined;
  [NEXT]: Group | undefined = undefined;
  [KEY] = '';
  /** Where the group's last window started (a search hint). */
  [START] = 0;
  /** Derived from the entries, rebuilt on demand: value_count's distinct values of the last
   * window, temporal rules' entries per step in the whole group. */
  [DISTINCT]: DistinctCache | undefined = undefined;
  [STEPS]: number[] | undefined = undefined;
  [SHARE]: ShareCache | undefined = undefined;
  /** The latest entry time while there are entries (read without touching the entries). */
  [LAST] = -Infinity;
  constructor(
    public entity: Record<string, string>,
    public entries: Entry[],
    public alerts: OpenAlert[],
  ) {
    const last = entries[entries.length - 1];
    if (last !== undefined) this[LAST] = last.t;
  }
}

/**
 * The groups of one tenant by entity key, a slot per rule: the rules that group by the same field
 * (most group by the actor) find their groups with one Map lookup per event, where a Map per rule
 * took one lookup per rule. The last key looked up is remembered (the rules of one event ask in
 * turn). Not state: rebuilt with the tables on restore.
 */
class EntityIndex {
  private readonly map = new Map<string, (Group | undefined)[]>();
  private lastKey: string | undefined;
  private lastSlots: (Group | undefined)[] | undefined;

  constructor(private readonly width: number) {}

  get(key: string): (Group | undefined)[] | undefined {
    if (key === this.lastKey) return this.lastSlots;
    const slots = this.map.get(key);
    this.lastKey = key;
    this.lastSlots = slots;
    return slots;
  }

  set(key: string, ri: number, group: Group): void {
    let slots = this.get(key);
    if (slots === undefined) {
      slots = new Array<Group | undefined>(this.width).fill(undefined);
      this.map.set(key, slots);
      this.lastKey = key;
      this.lastSlots = slots;
    }
    slots[ri] = group;
  }

  clear(key: string, ri: number): void {
    const slots = this.get(key);
    if (slots === undefined) return;
    slots[ri] = undefined;
    for (let i = 0; i < slots.length; i++) if (slots[i] !== undefined) return;
    this.map.delete(key);
    this.lastKey = undefined;
    this.lastSlots = undefined;
  }
}

/**
 * The groups of one rule in one tenant: found through the tenant's EntityIndex, and a doubly
 * linked list from the least to the most recently updated (moving a group to the end is two
 * pointer updates, where re-inserting it in a Map hashed its key twice per event and rule). The
 * list order is what a snapshot writes and what eviction takes from.
 */
class GroupTable {
  private count = 0;
  private head: Group | undefined;
  private tail: Group | undefined;
  /**
   * For the sweep (not state): a lower bound of every entry's time and every open alert's
   * last + timespan, and whether a group may be empty. A table whose bound is not behind the
   * sweep's horizon has nothing to free and is not visited.
   */
  low = -Infinity;
  hasEmpty = false;

  note(t: number): void {
    if (t < this.low) this.low = t;
  }

  constructor(
    private readonly index: EntityIndex,
    private readonly ri: number,
  ) {}

  get size(): number {
    return this.count;
  }

  get(key: string): Group | undefined {
    return this.index.get(key)?.[this.ri];
  }

  add(key: string, group: Group): void {
    group[KEY] = key;
    this.index.set(key, this.ri, group);
    this.count++;
    this.append(group);
  }

  /** Marks the group as the most recently updated. */
  touch(group: Group): void {
    if (group === this.tail) return;
    this.unlink(group);
    this.append(group);
  }

  remove(key: string): void {
    const group = this.get(key);
    if (group === undefined) return;
    this.unlink(group);
    this.index.clear(key, this.ri);
    this.count--;
  }

  /** The least recently updated group (then along its links). */
  first(): Group | undefined {
    return this.head;
  }

  /** Removes the least recently updated group. */
  evictOldest(): void {
    const oldest = this.head;
    if (oldest !== undefined) this.remove(oldest[KEY]);
  }

  /** [key, group] from the least to the most recently updated. */
  ordered(): [string, Group][] {
    const out: [string, Group][] = [];
    for (let g = this.head; g !== undefined; g = g[NEXT]) out.push([g[KEY], g]);
    return out;
  }

  private append(group: Group): void {
    group[PREV] = this.tail;
    group[NEXT] = undefined;
    if (this.tail === undefined) this.head = group;
    else this.tail[NEXT] = group;
    this.tail = group;
  }

  private unlink(group: Group): void {
    const prev = group[PREV];
    const next = group[NEXT];
    if (prev === undefined) this.head = next;
    else prev[NEXT] = next;
    if (next === undefined) this.tail = prev;
    else next[PREV] = prev;
    group[PREV] = undefined;
    group[NEXT] = undefined;
  }
}

/** What a checkpoint holds; JSON-serialisable. */
export interface EngineSnapshot {
  readonly format: 'vigil-detect-state';
  readonly version: 1;
  /** Ids of the rules the state was built with. */
  readonly rules: readonly string[];
  readonly watermark: number;
  /** Watermark of the last sweep: when state is freed is state too (it orders evictions). */
  readonly lastSweep: number;
  readonly stats: EngineStats;
  readonly state: [string, [string, [string, Group][]][]][];
  readonly alertKeys: [string, number][];
}

const NO_WATERMARK = -Infinity;
const NO_VALUES: string[] = [];
const MAX_ALERTS_PER_GROUP = 4;
const SWEEP_EVERY_MS = 60_000;
const MAX_CACHED_ACTIONS = 10_000;

function str(v: FieldValue): string | undefined {
  if (v === undefined || Array.isArray(v)) return undefined;
  return String(v);
}

function copyValues(values: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const k of Object.keys(values)) out[k] = [...(values[k] as string[])];
  return out;
}

/** First index in sorted `entries` whose time is ≥ t. */
function lowerBound(entries: readonly Entry[], t: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((entries[mid] as Entry).t < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose time is > t. */
function upperBound(entries: readonly Entry[], t: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((entries[mid] as Entry).t <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * First index of `entries` whose time is ≥ `bound`, searched no further than `end`: the answer
 * given last for the group is tried first and moved forward (windows of events arriving in order
 * start where the previous one did or a little later), checked, and a binary search otherwise.
 */
/**
 * Entries of step `step` among `entries[start…end]`, counted incrementally across events (a
 * tenant-wide window holds hundreds of entries and slides by one or two per event): entries
 * appended since are added, those left behind the start removed; an insertion into the range
 * drops the count (apply), entries leaving the front move it (dropFront).
 */
function shareCount(
  group: Group,
  entries: readonly Entry[],
  start: number,
  end: number,
  step: number,
): number {
  let c = group[SHARE];
  if (c === undefined || c.start > start || c.end < start - 1 || c.end > end) {
    c = { start, end: start - 1, n: 0 };
    group[SHARE] = c;
  }
  while (c.end < end) if ((entries[++c.end] as Entry).step === step) c.n++;
  for (; c.start < start; c.start++) if ((entries[c.start] as Entry).step === step) c.n--;
  return c.n;
}

function windowStart(group: Group, entries: readonly Entry[], bound: number, end: number): number {
  let h = group[START];
  if (h <= end && h >= 0) {
    const limit = Math.min(end, h + 8);
    while (h < limit && (entries[h] as Entry).t < bound) h++;
    if ((entries[h] as Entry).t >= bound && (h === 0 || (entries[h - 1] as Entry).t < bound)) {
      group[START] = h;
      return h;
    }
  }
  h = lowerBound(entries, bound);
  group[START] = h;
  return h;
}

interface Trigger {
  /** Entries of the window that satisfied the rule, in time order. */
  readonly window: readonly Entry[];
  readonly evidence: Record<string, unknown>;
}

export class DetectionEngine {
  private readonly rules: readonly CompiledRule[];
  private readonly defaults: TenantSettings;
  private readonly tenants: ReadonlyMap<string, TenantSettings>;
  private readonly baseline: BaselineLookup | undefined;
  private readonly lateness: number;
  private readonly maxGroups: number;
  private readonly maxEntries: number;
  private readonly maxIds: number;
  private readonly maxValues: number;
  private readonly maxKeys: number;
  private watermark = NO_WATERMARK;
  private state = new Map<string, Map<string, GroupTable>>();
  private alertKeys = new Map<string, number>();
  private lastSweep = NO_WATERMARK;
  private readonly byAction = new Map<string, readonly number[]>();
  /** Per rule (by index): the step minimums without a threshold override, and their sum. */
  private readonly mins: readonly (readonly number[])[];
  private readonly minSums: readonly number[];
  /** Not state (rebuilt on restore): per tenant, the group table of each rule by index. */
  private groupsByTenant = new Map<string, (GroupTable | undefined)[]>();
  /** Not state (rebuilt on restore): per tenant, the groups of every rule by entity key. */
  private indexes = new Map<string, EntityIndex>();
  private counters: EngineStats = {
    events: 0,
    droppedLate: 0,
    evictedGroups: 0,
    evictedEntries: 0,
    evictedAlertKeys: 0,
    alertsRaised: 0,
    alertsUpdated: 0,
  };

  constructor(options: EngineOptions) {
    this.rules = options.rules;
    const compiled = compileOverrides(options.overrides, new Set(options.rules.map((r) => r.id)));
    this.defaults = compiled.defaults;
    this.tenants = compiled.tenants;
    this.baseline = options.baseline;
    this.lateness = options.latenessMs ?? 300_000;
    this.maxGroups = options.maxGroupsPerRule ?? 10_000;
    this.maxEntries = options.maxEntriesPerGroup ?? 1_000;
    this.maxIds = options.maxEventIdsPerAlert ?? 50;
    this.maxValues = options.maxEvidenceValues ?? 20;
    this.maxKeys = options.maxAlertKeys ?? 100_000;
    this.mins = this.rules.map((r) => r.steps.map((st) => st.min));
    this.minSums = this.mins.map((m) => m.reduce((a, b) => a + b, 0));
  }

  stats(): Readonly<EngineStats> {
    return { ...this.counters };
  }

  currentWatermark(): number {
    return this.watermark;
  }

  /** Runs every rule on one event; returns the alerts it raised or grew, in rule order. */
  process(input: DetectionEvent): AlertUpdate[] {
    this.counters.events++;
    if (input.time < this.watermark - this.lateness) {
      this.counters.droppedLate++;
      return [];
    }
    const settings = this.tenants.get(input.tenant) ?? this.defaults;
    let event = input;
    const mapped = settings.actions.get(input.action);
    if (mapped !== undefined) {
      event = { ...input, action: mapped.action, outcome: mapped.outcome ?? input.outcome };
    }
    // Derived fields are the engine's: a caller's are dropped, the key's verdict is computed.
    if (event.derived !== undefined) {
      const { derived: _dropped, ...rest } = event;
      event = rest;
    }
    if (
      settings.apiKeys.size > 0 &&
      event.actor.type === 'api_key' &&
      event.actor.id !== undefined
    ) {
      const list = settings.apiKeys.get(event.actor.id);
      const allowlist = list === undefined ? undefined : keyVerdict(list, event);
      if (allowlist !== undefined) event = { ...event, derived: { apikey: { allowlist } } };
    }
    const zone = settings.timeZone;
    const out: AlertUpdate[] = [];
    // The tenant allow-list's verdict is the same for every rule: computed once, when needed
    // (-1 unknown, 0 no, 1 yes).
    let allowBase = -1;
    let allowService = -1;
    const list = this.rulesFor(event.action);
    for (let k = 0; k < list.length; k++) {
      const ri = list[k] as number;
      const rule = this.rules[ri] as CompiledRule;
      if (settings.disabled.size > 0 && settings.disabled.has(rule.id)) continue;
      let stepIndex = -1;
      for (let i = 0; i < rule.steps.length; i++) {
        if ((rule.steps[i] as (typeof rule.steps)[number]).match(event, zone)) {
          stepIndex = i;
          break;
        }
      }
      if (stepIndex < 0) continue;
      if (rule.spec.allowlists) {
        if (allowBase < 0) allowBase = allowed(settings.allow, event, false) ? 1 : 0;
        if (allowBase === 1) continue;
        if (rule.spec.skip_service_accounts) {
          if (allowService < 0) {
            const actor = event.actor.id;
            allowService = actor !== undefined && settings.allow.serviceAccounts.has(actor) ? 1 : 0;
          }
          if (allowService === 1) continue;
        }
        if (settings.ruleAllow.size > 0) {
          const own = settings.ruleAllow.get(rule.id);
          if (own !== undefined && !isEmptyAllow(own) && allowed(own, event, true)) continue;
        }
      }
      if (rule.baseline !== undefined && !this.passesBaseline(rule, event, zone)) continue;
      const step = rule.steps[stepIndex] as (typeof rule.steps)[number];
      const groupBy = step.groupBy;
      // One group-by field (the common case) keys by its value; several (or none) by their JSON
      // list. An undisclosed (absent) value is no entity: never group unknowns together.
      let groupKey: string;
      let values: string[] | undefined;
      if (groupBy.length === 1) {
        const v = str((groupBy[0] as (typeof groupBy)[number])(event, zone));
        if (v === undefined) continue;
        groupKey = v;
      } else if (groupBy.length === 0) {
        // The whole tenant is one entity (JSON of the empty list, without building it).
        groupKey = '[]';
        values = NO_VALUES;
      } else {
        values = [];
        for (let g = 0; g < groupBy.length; g++) {
          const v = str((groupBy[g] as (typeof groupBy)[number])(event, zone));
          if (v === undefined) break;
          values.push(v);
        }
        if (values.length < groupBy.length) continue;
        groupKey = JSON.stringify(values);
      }
      const update = this.apply(rule, ri, settings, event, zone, stepIndex, groupKey, values);
      if (update !== undefined) out.push(update);
    }
    return out;
  }

  /** The input is complete up to `ms` (event time): expires windows and closed alerts. */
  advanceWatermark(ms: number): void {
    if (ms <= this.watermark) return;
    this.watermark = ms;
    // Dropping late events takes effect at once; freeing memory can wait for a minute of event
    // time, so a caller advancing the watermark on every batch does not rescan every window.
    if (ms - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = ms;
    const horizon = ms - this.lateness;
    const byId = new Map(this.rules.map((r) => [r.id, r]));
    for (const rules of this.state.values()) {
      for (const [ruleId, groups] of rules) {
        const rule = byId.get(ruleId);
        const span = rule?.timespanMs ?? 0;
        // No event at or after the horizon can share a window with an entry older than this.
        const keepFrom = horizon - span;
        if (!groups.hasEmpty && groups.low >= keepFrom) continue;
        let low = Infinity;
        // Along the recency list (the order groups are visited in changes nothing: each is
        // trimmed on its own), the next group read before this one may be removed.
        let next: Group | undefined;
        for (let group = groups.first(); group !== undefined; group = next) {
          next = group[NEXT];
          const entries = group.entries;
          // Usually a minute's worth of entries or none: counted from the front, then searched.
          let cut = 0;
          while (cut < 8 && cut < entries.length && (entries[cut] as Entry).t < keepFrom) cut++;
          if (cut === 8) cut = lowerBound(entries, keepFrom);
          if (cut > 0) this.dropFront(group, cut);
          let stale = false;
          for (const a of group.alerts) if (a.last + span < keepFrom) stale = true;
          if (stale) group.alerts = group.alerts.filter((a) => a.last + span >= keepFrom);
          if (entries.length === 0 && group.alerts.length === 0) {
            groups.remove(group[KEY]);
            continue;
          }
          const first = group.entries[0];
          if (first !== undefined && first.t < low) low = first.t;
          for (const a of group.alerts) if (a.last + span < low) low = a.last + span;
        }
        groups.low = low;
        groups.hasEmpty = false;
      }
    }
    const longest = Math.max(0, ...this.rules.map((r) => r.timespanMs));
    for (const [key, last] of this.alertKeys) {
      if (last + 2 * longest < horizon) this.alertKeys.delete(key);
    }
  }

  /** The whole state, watermark and emitted alert keys, as plain JSON-serialisable data. */
  snapshot(): EngineSnapshot {
    const state: EngineSnapshot['state'] = [];
    for (const [tenant, rules] of this.state) {
      const rs: [string, [string, Group][]][] = [];
      for (const [ruleId, groups] of rules) rs.push([ruleId, structuredClone(groups.ordered())]);
      state.push([tenant, rs]);
    }
    return {
      format: 'vigil-detect-state',
      version: 1,
      rules: this.rules.map((r) => r.id),
      watermark: this.watermark,
      lastSweep: this.lastSweep,
      stats: { ...this.counters },
      state,
      alertKeys: [...this.alertKeys],
    };
  }

  /** Loads a snapshot taken by an engine with the same rules; replaces all state. */
  restore(snapshot: EngineSnapshot): void {
    if (
      snapshot === null ||
      typeof snapshot !== 'object' ||
      snapshot.format !== 'vigil-detect-state' ||
      snapshot.version !== 1
    ) {
      throw new DetectError(DetectErrorCodes.CHECKPOINT_INVALID, 'not a detector checkpoint');
    }
    const ids = this.rules.map((r) => r.id);
    const missing = snapshot.rules.filter((r) => !ids.includes(r));
    if (missing.length > 0) {
      throw new DetectError(
        DetectErrorCodes.CHECKPOINT_INVALID,
        `checkpoint holds state of rules not loaded: ${missing.join(', ')}`,
      );
    }
    // JSON turns -Infinity into null.
    this.watermark = typeof snapshot.watermark === 'number' ? snapshot.watermark : NO_WATERMARK;
    this.counters = { ...snapshot.stats };
    this.indexes = new Map();
    this.state = new Map(
      snapshot.state.map(([tenant, rules]) => [
        tenant,
        new Map(
          rules.map(([ruleId, groups]) => {
            const table = new GroupTable(this.indexOf(tenant), ids.indexOf(ruleId));
            for (const [key, g] of structuredClone(groups)) {
              table.add(key, new Group(g.entity, g.entries.map(entryFrom), g.alerts));
            }
            return [ruleId, table];
          }),
        ),
      ]),
    );
    this.alertKeys = new Map(snapshot.alertKeys);
    this.groupsByTenant = new Map();
    this.lastSweep = typeof snapshot.lastSweep === 'number' ? snapshot.lastSweep : NO_WATERMARK;
  }

  /** The rules an action can match, in pack order (cached per action, the cache capped). */
  private rulesFor(action: string): readonly number[] {
    let list = this.byAction.get(action);
    if (list === undefined) {
      const a = action.toLowerCase();
      const found: number[] = [];
      for (let i = 0; i < this.rules.length; i++) {
        const r = this.rules[i] as CompiledRule;
        if (r.actions === undefined || r.actions.has(a)) found.push(i);
      }
      list = found;
      // Action names come from producers: an unbounded variety must not grow the cache.
      if (this.byAction.size < MAX_CACHED_ACTIONS) this.byAction.set(action, list);
    }
    return list;
  }

  private passesBaseline(rule: CompiledRule, event: DetectionEvent, zone: string): boolean {
    const b = rule.baseline;
    if (b === undefined) return true;
    // Without a baseline source nothing is known to be usual: an "unusual" rule falls back to
    // its fixed conditions, while "new" and "last_seen" rules cannot decide and stay silent.
    if (this.baseline === undefined) return b.kind === 'facet' && b.match === 'unusual';
    const entity = str(b.entity(event, zone));
    if (entity === undefined) return false;
    if (b.kind === 'last_seen') {
      const last = this.baseline.lastSeen(event.tenant, entity, event.time);
      return last !== undefined && event.time - last >= b.idleMs;
    }
    const value = b.field(event, zone);
    if (typeof value !== 'string' && typeof value !== 'number') return false;
    const verdict = this.baseline.usual(event.tenant, b.facet, entity, value);
    return b.match === 'new' ? verdict === 'new' : verdict !== 'usual';
  }

  /** Removes the group's `drop` oldest entries; the derived counts follow. */
  private dropFront(group: Group, drop: number): void {
    const entries = group.entries;
    const steps = group[STEPS];
    if (steps !== undefined) {
      for (let i = 0; i < drop; i++) {
        const st = (entries[i] as Entry).step;
        steps[st] = (steps[st] as number) - 1;
      }
    }
    entries.splice(0, drop);
    const sc = group[SHARE];
    if (sc !== undefined) {
      if (sc.start < drop) group[SHARE] = undefined;
      else {
        sc.start -= drop;
        sc.end -= drop;
      }
    }
    const c = group[DISTINCT];
    if (c === undefined) return;
    if (c.start < drop) {
      // Entries still counted are gone: simplest to rebuild on next use.
      group[DISTINCT] = undefined;
      return;
    }
    c.start -= drop;
    c.end -= drop;
  }

  private groupsOf(tenant: string, ri: number): GroupTable {
    let byRule = this.groupsByTenant.get(tenant);
    if (byRule === undefined) {
      byRule = [];
      this.groupsByTenant.set(tenant, byRule);
    }
    let groups = byRule[ri];
    if (groups !== undefined) return groups;
    const ruleId = (this.rules[ri] as CompiledRule).id;
    let rules = this.state.get(tenant);
    if (rules === undefined) this.state.set(tenant, (rules = new Map<string, GroupTable>()));
    groups = rules.get(ruleId);
    if (groups === undefined)
      rules.set(ruleId, (groups = new GroupTable(this.indexOf(tenant), ri)));
    byRule[ri] = groups;
    return groups;
  }

  private indexOf(tenant: string): EntityIndex {
    let index = this.indexes.get(tenant);
    if (index === undefined) this.indexes.set(tenant, (index = new EntityIndex(this.rules.length)));
    return index;
  }

  private apply(
    rule: CompiledRule,
    ri: number,
    settings: TenantSettings,
    event: DetectionEvent,
    zone: string,
    step: number,
    groupKey: string,
    values: readonly string[] | undefined,
  ): AlertUpdate | undefined {
    const groups = this.groupsOf(event.tenant, ri);
    let group = groups.get(groupKey);
    if (group === undefined) {
      if (groups.size >= this.maxGroups) {
        groups.evictOldest();
        this.counters.evictedGroups++;
      }
      const entity: Record<string, string> = {};
      const names = rule.groupByNames;
      if (values === undefined) entity[names[0] as string] = groupKey;
      else for (let g = 0; g < names.length; g++) entity[names[g] as string] = values[g] as string;
      group = new Group(entity, [], []);
      groups.add(groupKey, group);
    } else {
      groups.touch(group);
    }

    const entries = group.entries;
    // An event seen before (a replay after a restart, an at-least-once redelivery) counts once.
    // An event later than the window's last (the common case) cannot be one: no search.
    const n = entries.length;
    const later = n === 0 || group[LAST] < event.time;
    const pos = later ? n : lowerBound(entries, event.time);
    for (let i = pos; i < entries.length && (entries[i] as Entry).t === event.time; i++) {
      if ((entries[i] as Entry).id === event.id) return undefined;
    }
    const entry = this.entryOf(rule, event, zone, step);
    if (entry === undefined) {
      if (entries.length === 0 && group.alerts.length === 0) groups.hasEmpty = true;
      return undefined;
    }
    groups.note(entry.t);
    let at = pos;
    while (
      at < entries.length &&
      (entries[at] as Entry).t === event.time &&
      (entries[at] as Entry).id < event.id
    )
      at++;
    if (later) group[LAST] = entry.t;
    if (at === entries.length) entries.push(entry);
    else {
      entries.splice(at, 0, entry);
      // The distinct values counted move or count the new entry (kept: rebuilding them costs a
      // pass over a tenant-wide window, and arrival order is rarely exact).
      const c = group[DISTINCT];
      if (c !== undefined) {
        if (at <= c.start) {
          c.start++;
          c.end++;
        } else if (at <= c.end) {
          c.end++;
          if (rule.share === undefined || entry.step === rule.share.step) {
            const v = entry.v as string;
            c.counts.set(v, (c.counts.get(v) ?? 0) + 1);
          }
        }
      }
    }
    const steps = group[STEPS];
    if (steps !== undefined) steps[entry.step] = (steps[entry.step] as number) + 1;
    // An insertion into the share count's range: counted again (the evaluation of an
    // out-of-order entry recounts from its own window anyway).
    const sc = group[SHARE];
    if (sc !== undefined && at <= sc.end) group[SHARE] = undefined;
    if (entries.length > this.maxEntries) {
      const drop = entries.length - this.maxEntries;
      this.dropFront(group, drop);
      this.counters.evictedEntries += drop;
      if (at < drop) return undefined; // the new entry itself was the oldest
      at -= drop;
    }

    const trigger = this.evaluate(rule, ri, settings, group, entry, at, later);
    if (trigger === undefined) return undefined;
    return this.raise(rule, event.tenant, groups, group, entry, trigger);
  }

  private entryOf(
    rule: CompiledRule,
    event: DetectionEvent,
    zone: string,
    step: number,
  ): Entry | undefined {
    const entry: Entry = {
      t: event.time,
      id: event.id,
      step,
      v: undefined,
      also: undefined,
      geo: undefined,
      ev: undefined,
      a: undefined,
    };
    if (rule.type === 'value_count') {
      const v = str((rule.valueField as NonNullable<CompiledRule['valueField']>)(event, zone));
      if (v === undefined) return undefined; // absent values are not a distinct value
      entry.v = v;
      if (rule.also.length > 0) entry.also = rule.also.map((a) => str(a.get(event, zone)) ?? null);
    } else if (rule.type === 'temporal_ordered' && rule.differ !== undefined) {
      const v = str(rule.differ(event, zone));
      if (v !== undefined) entry.v = v;
    } else if (rule.type === 'geo_velocity') {
      const geo = event.enrichment?.geo;
      if (geo === undefined || !Number.isFinite(geo.lat) || !Number.isFinite(geo.lon))
        return undefined;
      const asn = event.enrichment?.asn?.number;
      // Relay, VPN and satellite exits say nothing of where the user is: not a location.
      if (asn !== undefined && rule.skipAsns.has(asn)) return undefined;
      const g: Geo = { lat: geo.lat, lon: geo.lon, country: geo.country };
      if (geo.city !== undefined) g.city = geo.city;
      if (asn !== undefined) g.asn = asn;
      const ip = event.context?.ip;
      if (ip !== undefined) g.ip = ip;
      entry.geo = g;
    }
    const fields = rule.evidence;
    if (fields.length > 0) {
      const ev: (string | null)[] = new Array<string | null>(fields.length);
      for (let i = 0; i < fields.length; i++) {
        const v = (fields[i] as (typeof fields)[number]).get(event, zone);
        ev[i] = Array.isArray(v) ? v.map(String).join(',') : (str(v) ?? null);
      }
      entry.ev = ev;
    }
    return entry;
  }

  private threshold(rule: CompiledRule, settings: TenantSettings): number | undefined {
    return settings.thresholds.size === 0 ? undefined : settings.thresholds.get(rule.id);
  }

  /** Whether a window holding the new entry satisfies the rule; the first such window. */
  private evaluate(
    rule: CompiledRule,
    ri: number,
    settings: TenantSettings,
    group: Group,
    entry: Entry,
    at: number,
    later: boolean,
  ): Trigger | undefined {
    const entries = group.entries;
    const span = rule.timespanMs;
    const override = this.threshold(rule, settings);
    if (rule.type === 'geo_velocity') return this.velocity(rule, override, entries, entry, at);
    // Every window holding the entry can be slid right until it ends on an entry at or after it,
    // so the windows ending on those entries are the only ones to check (one when in order).
    // The entry last and strictly later than the one before (the common case): no search.
    const fast = later;
    const from = fast ? at : lowerBound(entries, entry.t);
    const to = fast ? entries.length : upperBound(entries, entry.t + span);
    const inOrder = to === entries.length && entries[to - 1] === entry;
    const temporal = rule.type === 'temporal' || rule.type === 'temporal_ordered';
    let minSize = 0;
    if (temporal) {
      const mins =
        override === undefined ? (this.mins[ri] as number[]) : this.stepMins(rule, override);
      // No window holds more of a step than the whole group: a step short of its count there
      // (an MFA change never seen, too few failures) refuses every window at once.
      let steps = group[STEPS];
      if (steps === undefined) {
        steps = new Array<number>(rule.steps.length).fill(0);
        for (let i = 0; i < entries.length; i++) {
          const st = (entries[i] as Entry).step;
          steps[st] = (steps[st] as number) + 1;
        }
        group[STEPS] = steps;
      }
      for (let i = 0; i < mins.length; i++)
        if ((steps[i] as number) < (mins[i] as number)) return undefined;
      minSize =
        override === undefined ? (this.minSums[ri] as number) : mins.reduce((a, b) => a + b, 0);
    }
    const share = rule.share;
    for (let end = from; end < to; end++) {
      const start = windowStart(group, entries, (entries[end] as Entry).t - span, end);
      if ((entries[start] as Entry).t > entry.t) continue;
      const size = end - start + 1;
      // Cheap refusals before any window is built (the common case on the hot path).
      if (rule.type === 'event_count' && size < (override ?? rule.threshold)) continue;
      if (size < minSize) continue; // temporal steps need at least their counts together
      if (rule.type === 'value_count') {
        const min = override ?? rule.threshold;
        if (size < min) continue;
        if (inOrder && this.distinctInOrder(rule, group, entries, start) < min) continue;
        if (share !== undefined) {
          // The share, and enough counted events for the distinct count, before any window is
          // built: a busy office address or tenant is refused here without allocating.
          const n = shareCount(group, entries, start, end, share.step);
          if (n < share.min * size || n < min) continue;
        }
      }
      const window = entries.slice(start, end + 1);
      if (share === undefined) {
        const evidence = this.check(rule, override, window);
        if (evidence !== undefined) return { window, evidence };
        continue;
      }
      // Only the share step's events are counted, and they must be enough of the window.
      const counted = window.filter((e) => e.step === share.step);
      if (counted.length < share.min * window.length) continue;
      const evidence = this.check(rule, override, counted);
      if (evidence !== undefined) {
        evidence['share'] = Math.round((100 * counted.length) / window.length) / 100;
        evidence['windowEvents'] = window.length;
        return { window: counted, evidence };
      }
    }
    return undefined;
  }

  /**
   * Distinct values in the window ending on the last entry, kept incrementally while events
   * arrive in order (a tenant-wide credential-stuffing window holds hundreds of entries, and
   * rebuilding a set per event would dominate). Any other change rebuilds it.
   */
  private distinctInOrder(
    rule: CompiledRule,
    group: Group,
    entries: readonly Entry[],
    start: number,
  ): number {
    let c = group[DISTINCT];
    const end = entries.length - 1;
    // Entries appended since the last count are added (an insertion inside the counted range
    // was counted when it happened, see apply); a window starting earlier is counted again.
    if (c === undefined || c.start > start || c.end < start - 1 || c.end >= end) {
      c = { start, end: start - 1, counts: new Map() };
      group[DISTINCT] = c;
    }
    const only = rule.share?.step;
    for (let i = c.end + 1; i <= end; i++) {
      const e = entries[i] as Entry;
      if (only !== undefined && e.step !== only) continue;
      const v = e.v as string;
      c.counts.set(v, (c.counts.get(v) ?? 0) + 1);
    }
    c.end = end;
    for (; c.start < start; c.start++) {
      const e = entries[c.start] as Entry;
      if (only !== undefined && e.step !== only) continue;
      const v = e.v as string;
      const n = (c.counts.get(v) as number) - 1;
      if (n === 0) c.counts.delete(v);
      else c.counts.set(v, n);
    }
    return c.counts.size;
  }

  private check(
    rule: CompiledRule,
    override: number | undefined,
    window: readonly Entry[],
  ): Record<string, unknown> | undefined {
    switch (rule.type) {
      case 'event_count': {
        const min = override ?? rule.threshold;
        return window.length >= min ? { count: window.length, threshold: min } : undefined;
      }
      case 'value_count': {
        const min = override ?? rule.threshold;
        const distinct = new Set(window.map((e) => e.v as string));
        if (distinct.size < min) return undefined;
        const evidence: Record<string, unknown> = {
          count: window.length,
          distinct: distinct.size,
          threshold: min,
        };
        for (let i = 0; i < rule.also.length; i++) {
          const a = rule.also[i] as (typeof rule.also)[number];
          const values = new Set<string>();
          for (const e of window) {
            const v = e.also?.[i];
            if (v !== undefined && v !== null) values.add(v);
          }
          if (values.size < a.min) return undefined;
          evidence[`distinct:${a.name}`] = values.size;
        }
        return evidence;
      }
      case 'temporal': {
        const counts = rule.steps.map(() => 0);
        for (const e of window) counts[e.step] = (counts[e.step] as number) + 1;
        const mins = this.stepMins(rule, override);
        if (!counts.every((c, i) => c >= (mins[i] as number))) return undefined;
        return { steps: Object.fromEntries(rule.steps.map((s, i) => [s.name, counts[i]])) };
      }
      case 'temporal_ordered':
        return this.ordered(rule, override, window);
      default:
        return undefined;
    }
  }

  private minsOf(rule: CompiledRule): readonly number[] {
    return this.mins[this.rules.indexOf(rule)] as readonly number[];
  }

  /** Step minimums; a threshold override replaces the first step that counts more than one. */
  private stepMins(rule: CompiledRule, override: number | undefined): number[] {
    const mins = rule.steps.map((s) => s.min);
    if (override !== undefined) {
      const i = Math.max(
        0,
        mins.findIndex((m) => m > 1),
      );
      mins[i] = override;
    }
    return mins;
  }

  /** Steps in order within the window: the earliest events of each step after the previous. */
  private ordered(
    rule: CompiledRule,
    override: number | undefined,
    window: readonly Entry[],
  ): Record<string, unknown> | undefined {
    const mins = override === undefined ? this.minsOf(rule) : this.stepMins(rule, override);
    const counts: number[] = [];
    const earlier = new Set<string>();
    let i = 0;
    for (let s = 0; s < rule.steps.length; s++) {
      const lastStep = s === rule.steps.length - 1;
      let taken = 0;
      for (; i < window.length && taken < (mins[s] as number); i++) {
        const e = window[i] as Entry;
        if (e.step !== s) continue;
        if (lastStep && rule.differ !== undefined) {
          // Absent is never "different": the source must be known on both sides.
          if (e.v === undefined || earlier.size === 0 || earlier.has(e.v)) continue;
        }
        if (!lastStep && e.v !== undefined) earlier.add(e.v);
        taken++;
      }
      if (taken < (mins[s] as number)) return undefined;
      counts.push(taken);
    }
    return { steps: Object.fromEntries(rule.steps.map((st, k) => [st.name, counts[k]])) };
  }

  private velocity(
    rule: CompiledRule,
    override: number | undefined,
    entries: readonly Entry[],
    entry: Entry,
    at: number,
  ): Trigger | undefined {
    const maxSpeed = override ?? rule.maxSpeedKmh;
    const g = entry.geo as Geo;
    let best: { other: Entry; km: number; speed: number } | undefined;
    // The neighbours in event time (an out-of-order login sits between two others).
    for (let j = at - 1; j <= at + 1; j += 2) {
      const other = entries[j];
      if (other === undefined || other.geo === undefined) continue;
      if (Math.abs(other.t - entry.t) > rule.timespanMs) continue;
      const o = other.geo;
      if (o.ip !== undefined && o.ip === g.ip) continue; // same address: GeoIP moved, not the user
      const km = haversineKm(o.lat, o.lon, g.lat, g.lon);
      if (km < rule.minDistanceKm) continue;
      const hours = Math.abs(other.t - entry.t) / 3_600_000;
      const speed = hours === 0 ? Infinity : km / hours;
      if (speed > maxSpeed && (best === undefined || speed > best.speed))
        best = { other, km, speed };
    }
    if (best === undefined) return undefined;
    const [a, b] = best.other.t <= entry.t ? [best.other, entry] : [entry, best.other];
    const place = (x: Entry): Record<string, unknown> => {
      const p = x.geo as Geo;
      return {
        country: p.country,
        ...(p.city === undefined ? {} : { city: p.city }),
        ...(p.asn === undefined ? {} : { asn: p.asn }),
        time: x.t,
      };
    };
    return {
      window: [a, b],
      evidence: {
        distanceKm: Math.round(best.km),
        speedKmh: Number.isFinite(best.speed) ? Math.round(best.speed) : 'instant',
        maxSpeedKmh: maxSpeed,
        from: place(a),
        to: place(b),
      },
    };
  }

  private raise(
    rule: CompiledRule,
    tenant: string,
    table: GroupTable,
    group: Group,
    entry: Entry,
    trigger: Trigger,
  ): AlertUpdate {
    const span = rule.timespanMs;
    const first = (trigger.window[0] as Entry).t;
    const last = (trigger.window[trigger.window.length - 1] as Entry).t;
    // One attack is one alert: a trigger within a timespan of an open alert grows it.
    let alert = group.alerts.find((a) => entry.t >= a.first - span && entry.t <= a.last + span);
    let status: 'new' | 'updated' = 'updated';
    if (alert === undefined) {
      const key = `${rule.id}|${tenant}|${JSON.stringify(group.entity)}|${entry.t}`;
      alert = {
        key,
        id: createHash('sha256').update(key).digest('hex').slice(0, 32),
        first,
        last,
        eventIds: [],
        eventCount: 0,
        values: {},
        evidence: {},
        version: 0,
      };
      group.alerts.push(alert);
      if (group.alerts.length > MAX_ALERTS_PER_GROUP) group.alerts.shift();
      // A restarted engine replaying events it had already alerted on raises nothing new.
      status = this.alertKeys.has(key) ? 'updated' : 'new';
    }
    alert.first = Math.min(alert.first, first);
    alert.last = Math.max(alert.last, last);
    table.note(alert.last + span);
    alert.version++;
    alert.evidence = trigger.evidence;
    for (const e of trigger.window) {
      if (e.a === alert.key) continue;
      e.a = alert.key;
      alert.eventCount++;
      if (alert.eventIds.length < this.maxIds) alert.eventIds.push(e.id);
      if (e.ev !== undefined) {
        for (let i = 0; i < rule.evidence.length; i++) {
          const v = e.ev[i];
          if (v === undefined || v === null) continue;
          const name = (rule.evidence[i] as (typeof rule.evidence)[number]).name;
          const list = (alert.values[name] ??= []);
          if (list.length < this.maxValues && !list.includes(v)) list.push(v);
        }
      }
    }
    if (this.alertKeys.has(alert.key)) this.alertKeys.delete(alert.key);
    this.alertKeys.set(alert.key, alert.last);
    if (this.alertKeys.size > this.maxKeys) {
      this.alertKeys.delete(this.alertKeys.keys().next().value as string);
      this.counters.evictedAlertKeys++;
    }
    if (status === 'new') this.counters.alertsRaised++;
    else this.counters.alertsUpdated++;
    return {
      status,
      alert: {
        id: alert.id,
        key: alert.key,
        ruleId: rule.id,
        title: rule.spec.title,
        severity: rule.severity,
        attack: rule.spec.attack,
        tenant,
        entity: { ...group.entity },
        firstEventTime: alert.first,
        lastEventTime: alert.last,
        eventIds: [...alert.eventIds],
        eventCount: alert.eventCount,
        evidence: {
          ...alert.evidence,
          ...(rule.evidence.length > 0 ? { values: copyValues(alert.values) } : {}),
        },
        version: alert.version,
      },
    };
  }
}
