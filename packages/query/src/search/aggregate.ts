import { parseTime } from '@vigil/protocol';
import { InvalidQueryError } from '../errors.js';
import { fromChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { checkFilters, filterSql, FINAL_SETTINGS, type SearchFilters } from './filters.js';

/**
 * Facets and the time histogram of a search: counts over the same WHERE clause as its pages
 * (search/filters.ts), with `FINAL` so that a replayed event counts once, restricted subjects
 * left out, expired events gone. Counts are over events as recorded: like the filters, they do
 * not see corrections (PROTOCOL.md §18), which search items show applied.
 */

/** The fields a facet counts by, and the column (or expression) of each. */
export const FACET_FIELDS = {
  action: 'action',
  category: 'category',
  outcome: 'outcome',
  actor: 'actor_id',
  actorType: 'actor_type',
  target: 'target_id',
  targetType: 'target_type',
  resourceType: 'resource_type',
  stream: 'stream',
  country: 'geo_country',
  asn: 'toString(geo_asn)',
  browser: 'ua_browser',
  os: 'ua_os',
  device: 'ua_device',
  source: 'source',
  flag: 'arrayJoin(flags)',
} as const;

export type FacetField = keyof typeof FACET_FIELDS;

export const MAX_FACET_SIZE = 1000;

export interface FacetAnswer {
  readonly field: FacetField;
  /** Values by count, largest first; '' where the event has none (no country, say). */
  readonly values: { readonly value: string; readonly count: number }[];
  /** Events matched (each counted once, whatever the field). */
  readonly total: number;
  /** Events whose value is not among `values` (beyond `size`). */
  readonly other: number;
}

export async function facet(
  store: Store,
  tenantId: string,
  filters: SearchFilters,
  field: string,
  size = 20,
): Promise<FacetAnswer> {
  checkFilters(filters);
  if (!Object.hasOwn(FACET_FIELDS, field))
    throw new InvalidQueryError('invalid facet', [
      { path: '/field', message: `must be one of: ${Object.keys(FACET_FIELDS).join(', ')}` },
    ]);
  if (!Number.isInteger(size) || size < 1 || size > MAX_FACET_SIZE)
    throw new InvalidQueryError('invalid facet', [
      { path: '/size', message: `must be an integer from 1 to ${MAX_FACET_SIZE}` },
    ]);
  const name = field as FacetField;
  const { where, params } = filterSql(tenantId, filters);
  params['size'] = size;
  const table = store.table('events');
  const [rows, totals] = await Promise.all([
    store.query<{ value: string; n: string | number }>(
      `SELECT ${FACET_FIELDS[name]} AS value, count() AS n
       FROM ${table} FINAL
       WHERE ${where.join(' AND ')}
       GROUP BY value
       ORDER BY n DESC, value ASC
       LIMIT {size:UInt32}`,
      params,
      FINAL_SETTINGS,
    ),
    // The flag facet counts an event once per flag: `other` is then over flags, not events.
    store.query<{ events: string | number; values: string | number }>(
      `SELECT count() AS events, ${name === 'flag' ? 'sum(length(flags))' : 'count()'} AS values
       FROM ${table} FINAL
       WHERE ${where.join(' AND ')}`,
      params,
      FINAL_SETTINGS,
    ),
  ]);
  const values = rows.map((r) => ({ value: r.value ?? '', count: Number(r.n) }));
  const counted = values.reduce((sum, v) => sum + v.count, 0);
  const total = Number(totals[0]?.events ?? 0);
  return { field: name, values, total, other: Number(totals[0]?.values ?? 0) - counted };
}

/** Bucket widths the histogram chooses from, in seconds: 1 minute to 1 day. */
export const BUCKETS = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400] as const;

/** At most this many buckets before a wider width is taken. */
export const MAX_BUCKETS = 200;

/** Over a range longer than 200 days, 1-day buckets are still used, up to this many. */
export const MAX_DAYS = 3660;

/** The narrowest width that covers `rangeMs` in at most MAX_BUCKETS buckets (1 day at most). */
export function bucketFor(rangeMs: number): number {
  for (const b of BUCKETS) if (rangeMs / (b * 1000) <= MAX_BUCKETS) return b;
  return 86_400;
}

export interface HistogramAnswer {
  readonly from: string;
  readonly to: string;
  /** Width of every bucket, seconds. */
  readonly bucketSeconds: number;
  /** Every bucket of [from, to), the empty ones too, oldest first; `start` is RFC 3339. */
  readonly buckets: { readonly start: string; readonly count: number }[];
  readonly total: number;
}

/**
 * Counts of matching events per bucket of time. `from` and `to` default to the 24 hours before
 * `now`; buckets are aligned to multiples of their width since the epoch (UTC), so the first
 * and last may be partly outside the range and count only what is inside.
 */
export async function histogram(
  store: Store,
  tenantId: string,
  filters: SearchFilters,
  now: number = Date.now(),
): Promise<HistogramAnswer> {
  checkFilters(filters);
  const to = filters.to !== undefined ? (parseTime(filters.to) as number) : now;
  const from = filters.from !== undefined ? (parseTime(filters.from) as number) : to - 86_400_000;
  if (from >= to || to - from > MAX_DAYS * 86_400_000)
    throw new InvalidQueryError('invalid histogram range', [
      { path: '/from', message: `must be before to, at most ${MAX_DAYS} days before it` },
    ]);
  const width = bucketFor(to - from);
  const bounded: SearchFilters = {
    ...filters,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
  };
  const { where, params } = filterSql(tenantId, bounded);
  params['width'] = width;
  const rows = await store.query<{ bucket: string; n: string | number }>(
    `SELECT toStartOfInterval(time, INTERVAL {width:UInt32} SECOND) AS bucket, count() AS n
     FROM ${store.table('events')} FINAL
     WHERE ${where.join(' AND ')}
     GROUP BY bucket
     ORDER BY bucket`,
    params,
    FINAL_SETTINGS,
  );
  const counts = new Map(rows.map((r) => [fromChTime(r.bucket), Number(r.n)]));
  const step = width * 1000;
  const buckets: { start: string; count: number }[] = [];
  let total = 0;
  for (let t = Math.floor(from / step) * step; t < to; t += step) {
    const count = counts.get(t) ?? 0;
    total += count;
    buckets.push({ start: new Date(t).toISOString(), count });
  }
  return {
    from: bounded.from as string,
    to: bounded.to as string,
    bucketSeconds: width,
    buckets,
    total,
  };
}
