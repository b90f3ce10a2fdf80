/**
 * The event as the detector sees it: the opened view of a stored record (personal values that
 * were disclosed are plain, those that were not are absent), with the enrichment the caller
 * computed from the address and the user agent, and the flags the sink stored beside it.
 *
 * Absent means "not known". Rules never treat two absent values as equal: an event without the
 * field a rule groups by, counts distinct values of, or compares is not counted by that rule.
 */
export interface DetectionParty {
  readonly type: string;
  /** Absent when the id is personal and was not disclosed to the detector. */
  readonly id?: string;
  readonly name?: string;
  readonly email?: string;
}

export interface DetectionEvent {
  readonly tenant: string;
  readonly id: string;
  /** Event time, epoch milliseconds (the record's `time`, not its arrival). */
  readonly time: number;
  readonly action: string;
  readonly category: string;
  readonly outcome: string;
  readonly actor: DetectionParty;
  readonly target?: DetectionParty;
  readonly context?: {
    readonly ip?: string;
    readonly userAgent?: string;
    readonly sessionId?: string;
    readonly requestId?: string;
  };
  readonly access?: {
    readonly change: string;
    readonly subject?: DetectionParty;
    readonly role?: string;
    readonly permission?: string;
    readonly grantedBy?: DetectionParty;
  };
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly enrichment?: {
    readonly geo?: {
      readonly country: string;
      readonly city?: string;
      readonly lat: number;
      readonly lon: number;
    };
    readonly asn?: { readonly number: number; readonly org?: string };
    readonly ua?: { readonly family?: string; readonly os?: string; readonly device?: string };
  };
  readonly stream?: string;
  readonly seq?: number;
  readonly hash?: string;
  /** Integrity flags stored beside the record (PROTOCOL.md §6.2): gap, fork, after_close … */
  readonly flags?: readonly string[];
  /**
   * Set by the engine, never by the caller (a caller's value is discarded): `apikey.allowlist`
   * is `inside` or `outside` for an event whose actor is an API key with a tenant allow-list.
   */
  readonly derived?: { readonly apikey?: { readonly allowlist?: 'inside' | 'outside' } };
}

/** A field's value: a string, number or boolean, a list of them, or undefined when absent. */
export type FieldValue = string | number | boolean | readonly unknown[] | undefined;

/** Reads a field of an event, given the tenant's time zone for derived `time.*` fields. */
export type FieldGetter = (event: DetectionEvent, timeZone: string) => FieldValue;

/** Shorthands for the enrichment, as the rules write them. */
const ALIASES: Readonly<Record<string, string>> = {
  geo: 'enrichment.geo',
  asn: 'enrichment.asn',
  ua: 'enrichment.ua',
  apikey: 'derived.apikey',
};

const WEEKDAYS: Readonly<Record<string, number>> = {
  Mon: 1,
  Tue: 2,
  Wed: 3,
  Thu: 4,
  Fri: 5,
  Sat: 6,
  Sun: 7,
};

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Whether `zone` is an IANA time zone this Node knows. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (f === undefined) {
    // Intl carries the tz database and its DST rules; no hand-written offsets.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      weekday: 'short',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** Local wall-clock parts of `ms` in `zone`; the last answer is kept (events come in runs). */
let lastZone = '';
let lastMinute = NaN;
let lastParts: LocalTime = { hour: 0, minute: 0, weekday: 1 };
export interface LocalTime {
  readonly hour: number;
  readonly minute: number;
  /** ISO weekday: 1 Monday … 7 Sunday. */
  readonly weekday: number;
}

export function localTime(ms: number, zone: string): LocalTime {
  // Offsets change on whole quarter hours at the latest, so a minute bucket is exact.
  // Compared as zone and minute: a key string built per call allocated on every event.
  const minuteOf = Math.floor(ms / 60_000);
  if (minuteOf === lastMinute && zone === lastZone) return lastParts;
  let hour = 0;
  let minute = 0;
  let weekday = 1;
  for (const part of formatter(zone).formatToParts(ms)) {
    if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
    else if (part.type === 'weekday') weekday = WEEKDAYS[part.value] ?? 1;
  }
  lastZone = zone;
  lastMinute = minuteOf;
  lastParts = { hour, minute, weekday };
  return lastParts;
}

/** The field names a rule may use at the top of a path. */
export const FIELD_ROOTS = [
  'tenant',
  'id',
  'time',
  'action',
  'category',
  'outcome',
  'actor',
  'target',
  'context',
  'access',
  'metadata',
  'enrichment',
  'geo',
  'asn',
  'ua',
  'stream',
  'seq',
  'hash',
  'flags',
  'apikey',
] as const;

/**
 * A getter for a dotted path, compiled once per rule (no per-event string splitting).
 * Derived fields: `time.hour`, `time.minute`, `time.weekday` (ISO, 1 = Monday) in the tenant's
 * time zone; `geo.*`, `asn.*`, `ua.*` read the enrichment. Returns undefined for an unknown root.
 */
export function compileField(path: string): FieldGetter | undefined {
  const first = path.split('.')[0] as string;
  if (!(FIELD_ROOTS as readonly string[]).includes(first)) return undefined;
  if (path === 'time.hour') return (e, zone) => localTime(e.time, zone).hour;
  if (path === 'time.minute') return (e, zone) => localTime(e.time, zone).minute;
  if (path === 'time.weekday') return (e, zone) => localTime(e.time, zone).weekday;
  if (first === 'time' && path !== 'time') return undefined;
  const alias = ALIASES[first];
  const full = alias === undefined ? path : alias + path.slice(first.length);
  const keys = full.split('.');
  if (keys.length === 1) {
    const k = keys[0] as string;
    return (e) => scalar((e as unknown as Record<string, unknown>)[k]);
  }
  return (e) => {
    let v: unknown = e;
    for (const k of keys) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
      v = (v as Record<string, unknown>)[k];
    }
    return scalar(v);
  };
}

function scalar(v: unknown): FieldValue {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v as readonly unknown[];
  return undefined;
}
