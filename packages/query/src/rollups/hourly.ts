import { InvalidQueryError } from '../errors.js';
import { createMaterializedView, createTable } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { toChTime } from '../store/rows.js';
import { parseTime } from '@vigil/protocol';

/**
 * Hourly rollups for dashboards: the number of events per tenant, hour (of the event time, UTC),
 * category, action, outcome and country, kept by a materialised view as events are inserted,
 * so a dashboard over months reads thousands of rows instead of millions.
 *
 * What a rollup keeps: counts only. No identifier, no address, no free text: the country is the
 * only enrichment, as a two-letter code beside a count. Hence:
 * - erasure does not change it: an erasure blanks values in an event but the event stays, and
 *   so does its count (the view reads first versions only, `row_version = 0`, so the erasure's
 *   rewrite of a row is not counted again);
 * - retention: counts outlive the events they count (a dashboard of last year's logins), for
 *   ROLLUP_DAYS, after which ClickHouse's TTL deletes them;
 * - restriction (GDPR Art. 18) applies to events, which stay hidden from search; the anonymous
 *   count of an event restricted later is not taken back;
 * - an event inserted twice (a replay the sink did not recognise) counts twice, as it does in the
 *   stream heads' event counts; search, which reads with FINAL, shows it once.
 */

/** How long hourly counts are kept, in days. */
export const ROLLUP_DAYS = 800;

export function rollupStatements(store: Store): string[] {
  return [
    ...createTable(store, {
      name: 'rollup_hourly',
      columns: `
  tenant_id LowCardinality(String),
  hour DateTime('UTC'),
  category LowCardinality(String),
  action LowCardinality(String),
  outcome LowCardinality(String),
  country LowCardinality(String),
  events SimpleAggregateFunction(sum, UInt64)`,
      engine: 'AggregatingMergeTree',
      tail: `PARTITION BY toYYYYMM(hour)
ORDER BY (tenant_id, hour, category, action, outcome, country)
TTL hour + INTERVAL ${ROLLUP_DAYS} DAY DELETE`,
      shardingKey: 'cityHash64(tenant_id)',
    }),
    createMaterializedView(
      store,
      'rollup_hourly_mv',
      'events',
      'rollup_hourly',
      `SELECT tenant_id, toStartOfHour(time) AS hour, category, action, outcome,
       geo_country AS country, count() AS events
FROM {from}
WHERE row_version = 0
GROUP BY tenant_id, hour, category, action, outcome, country`,
    ),
  ];
}

export const ROLLUP_DIMENSIONS = ['category', 'action', 'outcome', 'country'] as const;
export type RollupDimension = (typeof ROLLUP_DIMENSIONS)[number];

export interface RollupRow {
  /** RFC 3339, the start of the hour. */
  readonly hour: string;
  readonly category?: string;
  readonly action?: string;
  readonly outcome?: string;
  readonly country?: string;
  readonly events: number;
}

/**
 * Counts per hour of [from, to) for `tenantId`, split by `by` (none: one total per hour); only
 * hours with events are returned. `sum` merges the rows a background merge has not yet merged.
 */
export async function hourlyCounts(
  store: Store,
  tenantId: string,
  range: { from: string; to: string; by?: readonly string[] },
): Promise<RollupRow[]> {
  const from = parseTime(range.from);
  const to = parseTime(range.to);
  const by = range.by ?? [];
  const details = [];
  if (from === undefined) details.push({ path: '/from', message: 'must be RFC 3339 UTC with ms' });
  if (to === undefined) details.push({ path: '/to', message: 'must be RFC 3339 UTC with ms' });
  for (const d of by)
    if (!(ROLLUP_DIMENSIONS as readonly string[]).includes(d))
      details.push({ path: '/by', message: `${d} is not one of: ${ROLLUP_DIMENSIONS.join(', ')}` });
  if (details.length > 0) throw new InvalidQueryError('invalid rollup parameters', details);
  // The dimensions are checked against a fixed list above: only those names reach the SQL.
  const keys = ['hour', ...by].join(', ');
  const rows = await store.query<Record<string, string | number>>(
    `SELECT ${keys}, sum(events) AS events
     FROM ${store.table('rollup_hourly')}
     WHERE tenant_id = {tenant:String} AND hour >= {from:DateTime64(3)} AND hour < {to:DateTime64(3)}
     GROUP BY ${keys}
     ORDER BY ${keys}`,
    { tenant: tenantId, from: toChTime(range.from), to: toChTime(range.to) },
  );
  return rows.map((r) => {
    const out: Record<string, string | number> = {
      hour: new Date(Date.parse(String(r['hour']).replace(' ', 'T') + 'Z')).toISOString(),
      events: Number(r['events']),
    };
    for (const d of by) out[d] = String(r[d]);
    return out as unknown as RollupRow;
  });
}
