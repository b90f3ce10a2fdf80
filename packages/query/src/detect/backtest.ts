import { parseTime, type ErrorDetail } from '@vigil/protocol';
import {
  DetectionEngine,
  type Alert,
  type BaselineLookup,
  type CompiledRule,
  type EngineStats,
} from '@vigil/detect';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { csvHeader, csvRows, csvTime, csvTimeHeader } from '../export/csv.js';
import { UNRESTRICTED_SQL } from '../privacy/restrictions.js';
import type { PrivacyService } from '../privacy/service.js';
import { DERIVED_SELECT, type DerivedColumns } from '../store/derived.js';
import { fromChTime, openRecord } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { StoreBaselines } from './baseline-lookup.js';
import { detectionEvent } from './event-view.js';

/**
 * Backtesting (issue 11 item 7): a rule pack run over stored history, in event time, without
 * delivering anything. Analysts tune a rule with it before enabling it.
 *
 * What it reads: the stored events (FINAL: the newest version of each row) of the tenant (all
 * tenants when none is named: operators only) with `time` in [from − warm-up, to), whenever
 * they were received (events ingested late or as backfill are in), without expired events and
 * events of restricted subjects (as search), in (time, id, tenant, hash) order, in pages (memory
 * does not grow with the range). Each row is opened with its disclosures, the encrypted
 * (pseudonymised) ones decrypted with the tenant key when a privacy service is given, and
 * mapped by `detectionEvent()` with the stored geo and user-agent columns as enrichment: the
 * live detector's mapping.
 *
 * Warm-up: the longest timespan of the pack, so that every window that can end inside the
 * range holds the events before `from` that it would have held live.
 *
 * What it reports: each alert as it stands once every event before `to` is processed, if its
 * last event time lies in [from, to) (its window ends in the range). An alert that began in the
 * warm-up and grew into the range is reported whole, with `startedBefore: true`.
 *
 * Baselines: the stored generation that answers for each event's time (baseline-lookup.ts),
 * the same one the live detector used; a time no stored generation covers (older than the
 * generations kept) answers `no_history`, and the summary lists the generations used.
 */

export type BacktestFormat = 'json' | 'ndjson' | 'csv';
export const BACKTEST_FORMATS: readonly BacktestFormat[] = ['json', 'ndjson', 'csv'];

export interface BacktestOptions {
  readonly store: Store;
  /** Epoch ms, inclusive. */
  readonly from: number;
  /** Epoch ms, exclusive. */
  readonly to: number;
  /** One tenant (API callers always); undefined: every tenant. */
  readonly tenant?: string;
  readonly rules: readonly CompiledRule[];
  /** The detect overrides (thresholds, allow-lists, time zones, action maps). */
  readonly overrides?: unknown;
  /** Opens pseudonymised disclosures, as the live detector sees plain values. */
  readonly privacy?: PrivacyService;
  /** Default: the stored generations (StoreBaselines); false: no baseline at all. */
  readonly baselines?: StoreBaselines | BaselineLookup | false;
  /** Rows per page. Default 5000. */
  readonly pageSize?: number;
  /** Default: the longest timespan of the rules. */
  readonly warmupMs?: number;
  /** Called after each page. */
  readonly onProgress?: (progress: BacktestProgress) => void;
  /** Alerts kept (their latest versions); more is an error. Default 100 000. */
  readonly maxAlerts?: number;
  readonly signal?: AbortSignal;
}

export interface BacktestProgress {
  readonly events: number;
  /** Event time reached, epoch ms. */
  readonly time: number;
  readonly alerts: number;
}

export interface BacktestAlert extends Alert {
  /** The alert's first event lies before `from` (it began in the warm-up). */
  readonly startedBefore: boolean;
}

export interface BacktestSummary {
  readonly tenant: string | null;
  readonly from: number;
  readonly to: number;
  readonly readFrom: number;
  readonly events: number;
  readonly unreadable: number;
  readonly alerts: number;
  readonly rules: number;
  readonly engine: EngineStats;
  /** Generations of the baselines used, per tenant (asOf, epoch ms). */
  readonly baselineGenerations: Readonly<Record<string, readonly number[]>>;
  readonly ms: number;
}

export interface BacktestResult {
  /** Ordered by first event time, then id. */
  readonly alerts: BacktestAlert[];
  readonly summary: BacktestSummary;
}

const HOUR = 3_600_000;
/** The widest slice of event time one page query reads. */
const MAX_SLICE_MS = 7 * 24 * HOUR;

/** At most this range per backtest (the store is scanned once, but windows cost memory). */
export const MAX_BACKTEST_RANGE_MS = 400 * 86_400_000;

/** Checks a backtest's range and format and lists every problem (400 over HTTP). */
export function checkBacktestRequest(input: {
  readonly from?: unknown;
  readonly to?: unknown;
  readonly format?: unknown;
}): { from: number; to: number; format: BacktestFormat } {
  const details: ErrorDetail[] = [];
  const time = (key: 'from' | 'to'): number => {
    const v = input[key];
    const ms = typeof v === 'string' ? (parseTime(v) ?? Date.parse(v)) : Number.NaN;
    if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\d(T|$)/.test(v) || !Number.isFinite(ms)) {
      details.push({
        path: `/${key}`,
        message: 'must be an RFC 3339 time like 2026-11-23T10:50:48.123Z (or a date 2026-11-23)',
      });
      return Number.NaN;
    }
    return ms;
  };
  const from = time('from');
  const to = time('to');
  if (Number.isFinite(from) && Number.isFinite(to)) {
    if (to <= from) details.push({ path: '/to', message: 'must be after from' });
    else if (to - from > MAX_BACKTEST_RANGE_MS)
      details.push({ path: '/to', message: 'the range may be at most 400 days' });
  }
  const format = input.format ?? 'json';
  if (!(BACKTEST_FORMATS as readonly unknown[]).includes(format))
    details.push({ path: '/format', message: `must be one of: ${BACKTEST_FORMATS.join(', ')}` });
  if (details.length > 0)
    throw new QueryError(QueryErrorCodes.BACKTEST_INVALID, 'invalid backtest parameters', {
      status: 400,
      details,
    });
  return { from, to, format: format as BacktestFormat };
}

interface Row extends Partial<Record<keyof DerivedColumns, unknown>> {
  tenant_id: string;
  event_id: string;
  hash: string;
  event_time: string;
  record: string;
  disclosures: string;
  pseudonyms: string;
  pseudonym_key: string;
  protected_disclosures: string;
  flags: string[];
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number | null =>
  v === null || v === undefined || v === '' ? null : Number(v);

function derivedOf(row: Row): Partial<DerivedColumns> {
  return {
    geo_country: text(row.geo_country),
    geo_region: text(row.geo_region),
    geo_city: text(row.geo_city),
    geo_latitude: num(row.geo_latitude),
    geo_longitude: num(row.geo_longitude),
    geo_asn: num(row.geo_asn),
    geo_as_org: text(row.geo_as_org),
    ua_browser: text(row.ua_browser),
    ua_browser_version: text(row.ua_browser_version),
    ua_os: text(row.ua_os),
    ua_os_version: text(row.ua_os_version),
    ua_device: text(row.ua_device),
  };
}

/**
 * Runs the backtest (see the module comment). The entry point for the CLI, the API and the
 * live-versus-backtest test.
 */
export async function runBacktest(options: BacktestOptions): Promise<BacktestResult> {
  const started = performance.now();
  const { store, from, to } = options;
  const warmup = options.warmupMs ?? Math.max(0, ...options.rules.map((r) => r.timespanMs));
  const readFrom = from - warmup;
  const pageSize = options.pageSize ?? 5000;
  const maxAlerts = options.maxAlerts ?? 100_000;
  const stored =
    options.baselines === undefined
      ? new StoreBaselines(store, options.privacy ? { privacy: options.privacy } : {})
      : options.baselines === false
        ? undefined
        : options.baselines;
  const engine = new DetectionEngine({
    rules: options.rules,
    overrides: options.overrides,
    ...(stored ? { baseline: stored } : {}),
  });
  const latest = new Map<string, Alert>();
  const generations = new Map<string, Set<number>>();
  const where = [
    'time >= {lo:DateTime64(3)}',
    'time < {hi:DateTime64(3)}',
    UNRESTRICTED_SQL,
    '(expires_at > now() OR legal_hold = 1)',
  ];
  if (options.tenant !== undefined) where.push('tenant_id = {tenant:String}');
  const chTime = (ms: number): string => new Date(ms).toISOString().slice(0, 23).replace('T', ' ');
  let events = 0;
  let unreadable = 0;
  // The range is read in slices of event time [lo, hi), each in pages by keyset: a page query
  // reads only its slice (the sorting key starts with tenant and time), never the rest of the
  // range again. The slice widens while slices are sparse and narrows after dense ones.
  let span = HOUR;
  for (let lo = readFrom; lo < to;) {
    const hi = Math.min(to, lo + span);
    let cursor: { t: string; id: string; tn: string; h: string } | undefined;
    let inSlice = 0;
    for (;;) {
      options.signal?.throwIfAborted();
      const page = await store.query<Row>(
        `SELECT tenant_id, toString(id) AS event_id, hash, toString(time) AS event_time, record,
                disclosures, pseudonyms, pseudonym_key, protected_disclosures, flags, ${DERIVED_SELECT}
         FROM ${store.table('events')} FINAL
         WHERE ${where.join(' AND ')}
           ${cursor ? 'AND (time, id, tenant_id, hash) > ({ct:DateTime64(3)}, {cid:UUID}, {ctn:String}, {ch:String})' : ''}
         ORDER BY time, id, tenant_id, hash
         LIMIT {limit:UInt32}`,
        {
          lo: chTime(lo),
          hi: chTime(hi),
          limit: pageSize,
          ...(options.tenant !== undefined ? { tenant: options.tenant } : {}),
          ...(cursor ? { ct: cursor.t, cid: cursor.id, ctn: cursor.tn, ch: cursor.h } : {}),
        },
      );
      inSlice += page.length;
      if (page.length > 0) {
        const counts = await processPage(page);
        events += counts.events;
        unreadable += counts.unreadable;
        const last = page[page.length - 1] as Row;
        cursor = { t: last.event_time, id: last.event_id, tn: last.tenant_id, h: last.hash };
        // In time order, the input is complete up to the last event read.
        engine.advanceWatermark(fromChTime(last.event_time));
        options.onProgress?.({ events, time: fromChTime(last.event_time), alerts: latest.size });
      }
      if (page.length < pageSize) break;
    }
    lo = hi;
    if (inSlice > 4 * pageSize) span = Math.max(1000, Math.floor(span / 2));
    else if (inSlice < pageSize / 2) span = Math.min(MAX_SLICE_MS, span * 2);
  }

  async function processPage(
    page: readonly Row[],
  ): Promise<{ events: number; unreadable: number }> {
    let read = 0;
    let bad = 0;
    if (stored instanceof StoreBaselines) {
      const span = new Map<string, [number, number]>();
      for (const r of page) {
        const t = fromChTime(r.event_time);
        const s = span.get(r.tenant_id);
        span.set(r.tenant_id, s ? [Math.min(s[0], t), Math.max(s[1], t)] : [t, t]);
      }
      for (const [tenant, [lo, hi]] of span) await stored.prepare(tenant, lo, hi);
    }
    for (const r of page) {
      const event = await open(r, options.privacy);
      if (event === undefined) {
        bad++;
        continue;
      }
      read++;
      if (stored instanceof StoreBaselines) {
        stored.at(event.time);
        const g = stored.generationAt(event.tenant, event.time);
        if (g) {
          let set = generations.get(event.tenant);
          if (set === undefined) generations.set(event.tenant, (set = new Set()));
          set.add(g.asOf);
        }
      }
      for (const { alert } of engine.process(event)) {
        if (!latest.has(alert.id) && latest.size >= maxAlerts)
          throw new QueryError(
            QueryErrorCodes.BACKTEST_INVALID,
            `the backtest raised more than ${maxAlerts} alerts; narrow the range or the rules`,
            { status: 400, details: [{ path: '/to', message: 'range raises too many alerts' }] },
          );
        latest.set(alert.id, alert);
      }
    }
    return { events: read, unreadable: bad };
  }
  const alerts = [...latest.values()]
    .filter((a) => a.lastEventTime >= from && a.lastEventTime < to)
    .sort((a, b) => a.firstEventTime - b.firstEventTime || (a.id < b.id ? -1 : 1))
    .map((a): BacktestAlert => ({ ...a, startedBefore: a.firstEventTime < from }));
  return {
    alerts,
    summary: {
      tenant: options.tenant ?? null,
      from,
      to,
      readFrom,
      events,
      unreadable,
      alerts: alerts.length,
      rules: options.rules.length,
      engine: engine.stats(),
      baselineGenerations: Object.fromEntries(
        [...generations].map(([t, s]) => [t, [...s].sort((a, b) => a - b)]),
      ),
      ms: Math.round(performance.now() - started),
    },
  };
}

/** The DetectionEvent of a stored row, opened as the live detector sees it. */
async function open(row: Row, privacy: PrivacyService | undefined) {
  try {
    let disclosures = row.disclosures;
    let pseudonyms = row.pseudonyms;
    if (privacy && row.protected_disclosures !== '') {
      const plain = await privacy.plainDisclosures({ ...row, id: row.event_id });
      if (plain.readable) {
        disclosures = JSON.stringify(plain.disclosures);
        pseudonyms = '';
      }
    }
    const view = openRecord(row.record, disclosures, pseudonyms);
    return detectionEvent({
      tenant: row.tenant_id,
      view,
      derived: derivedOf(row),
      flags: row.flags,
    });
  } catch {
    return undefined;
  }
}

// ---- output ---------------------------------------------------------------------------------

const CSV_COLUMNS = [
  'id',
  'rule_id',
  'severity',
  'title',
  'tenant',
  'entity',
  csvTimeHeader('first_event_time'),
  csvTimeHeader('last_event_time'),
  'event_count',
  'event_ids',
  'attack',
  'evidence',
  'version',
  'started_before',
];

/** An alert as JSON output carries it: times in RFC 3339 besides the epoch ms. */
function alertJson(a: BacktestAlert): Record<string, unknown> {
  return {
    ...a,
    firstEventAt: new Date(a.firstEventTime).toISOString(),
    lastEventAt: new Date(a.lastEventTime).toISOString(),
  };
}

/**
 * The result as text chunks of one format: `json` one document {summary, alerts}; `ndjson` one
 * alert per line, then a last line {"summary": …}; `csv` a header and one row per alert (the
 * shared CSV writer; the summary is not part of a CSV file).
 */
export function* formatBacktest(
  result: BacktestResult,
  format: BacktestFormat,
  options: { readonly bom?: boolean } = {},
): Generator<string> {
  if (format === 'json') {
    yield JSON.stringify(
      { summary: result.summary, alerts: result.alerts.map(alertJson) },
      null,
      2,
    );
    yield '\n';
    return;
  }
  if (format === 'ndjson') {
    for (const a of result.alerts) yield JSON.stringify(alertJson(a)) + '\n';
    yield JSON.stringify({ summary: result.summary }) + '\n';
    return;
  }
  yield csvHeader(CSV_COLUMNS, options);
  for (let i = 0; i < result.alerts.length; i += 500) {
    yield csvRows(
      result.alerts.slice(i, i + 500).map((a) => [
        a.id,
        a.ruleId,
        a.severity,
        a.title,
        a.tenant,
        Object.entries(a.entity)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(' '),
        csvTime(a.firstEventTime),
        csvTime(a.lastEventTime),
        a.eventCount,
        a.eventIds.join(' '),
        a.attack.join(' '),
        JSON.stringify(a.evidence),
        a.version,
        a.startedBefore,
      ]),
    );
  }
}
