import { InvalidQueryError } from '../errors.js';
import { csvHeader, csvRows, csvTime, csvTimeHeader } from '../export/csv.js';
import type { Store } from '../store/store.js';
import {
  checkFilters,
  filterSql,
  FINAL_SETTINGS,
  keysetSql,
  type SearchFilters,
} from './filters.js';
import type { SearchItem } from './item.js';
import { DERIVED_SELECT } from '../store/derived.js';
import { fromChTime } from '../store/rows.js';
import { ITEM_COLUMNS } from './item.js';
import { fetchRows, itemsOf, snapshotOf, type EventRowOut, type RowPosition } from './search.js';

/**
 * The export of a search: every matching event, streamed as CSV or NDJSON, read in keyset
 * batches of a snapshot (search.ts explains why that is stable under ingest), so memory stays
 * bounded whatever the size. An export says whether it is complete: every event the search
 * matched at its start, or cut at `limit`, with the counts (see SEARCH_EXPORT below).
 */

export const EXPORT_FORMATS = ['csv', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const DEFAULT_EXPORT_LIMIT = 1_000_000;
export const MAX_EXPORT_LIMIT = 10_000_000;
/** Rows per store query; each batch is turned into text and written before the next is read. */
export const EXPORT_BATCH = 10_000;
/** Rows per store query of the CSV path (rows of typed columns only, ≈ 300 bytes each). */
export const CSV_BATCH = 50_000;

/** The CSV columns of a search export: stable names (a change is a breaking change). */
export const EXPORT_COLUMNS = [
  csvTimeHeader('time'),
  'id',
  'action',
  'category',
  'outcome',
  'actor_type',
  'actor_id',
  'actor_name',
  'target_type',
  'target_id',
  'target_name',
  'ip',
  'country',
  'asn',
  'browser',
  'os',
  'session_id',
  'request_id',
  'stream',
  'seq',
  'flags',
  csvTimeHeader('received_at'),
  'hash',
  'metadata',
] as const;

export interface ExportOptions {
  readonly format: ExportFormat;
  /** Most events to write (default 1 000 000). */
  readonly limit?: number;
  /** CSV only: start with a UTF-8 byte order mark (for Excel). */
  readonly bom?: boolean;
  /** Rows per store query (default: EXPORT_BATCH for NDJSON, CSV_BATCH for CSV); for tests. */
  readonly batchRows?: number;
}

/** What an export is about to write, known before its first byte. */
export interface PreparedExport {
  readonly contentType: string;
  readonly fileName: string;
  /** Events that will be written: min(matched, limit). */
  readonly count: number;
  /** Every matching event will be written (matched ≤ limit). */
  readonly complete: boolean;
  readonly limit: number;
  /** The engine clock (epoch ms) the export reads the store as of. */
  readonly snapshot: number;
  /** The text, chunk by chunk (one per batch). */
  stream(): AsyncGenerator<string>;
}

export function checkExport(options: ExportOptions): void {
  const details = [];
  if (!(EXPORT_FORMATS as readonly string[]).includes(options.format))
    details.push({ path: '/format', message: `must be one of: ${EXPORT_FORMATS.join(', ')}` });
  const limit = options.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > MAX_EXPORT_LIMIT))
    details.push({ path: '/limit', message: `must be an integer from 1 to ${MAX_EXPORT_LIMIT}` });
  if (details.length > 0) throw new InvalidQueryError('invalid export parameters', details);
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};

/** One CSV record of an item: the event as search shows it (pseudonyms, nulls where erased). */
export function csvRecord(item: SearchItem): unknown[] {
  const e = item.event;
  const actor = obj(e['actor']);
  const target = obj(e['target']);
  const context = obj(e['context']);
  const time = typeof e['time'] === 'string' ? Date.parse(e['time']) : undefined;
  return [
    csvTime(time),
    e['id'],
    e['action'],
    e['category'],
    e['outcome'],
    actor['type'],
    actor['id'],
    actor['name'],
    target['type'],
    target['id'],
    target['name'],
    context['ip'],
    item.server.geo?.country,
    item.server.geo?.asn,
    item.server.ua?.browser,
    item.server.ua?.os,
    context['sessionId'],
    context['requestId'],
    e['stream'],
    e['seq'],
    item.server.flags.join(' '),
    csvTime(Date.parse(item.server.receivedAt)),
    item.hash,
    e['metadata'] === undefined ? '' : JSON.stringify(e['metadata']),
  ];
}

/**
 * Prepares the export of a search of `tenantId`: checks the filters, fixes the snapshot and
 * counts what will be written (up to limit + 1, to know whether the limit cuts it), so the
 * answer's headers can state completeness before the body starts.
 */
export async function prepareExport(
  store: Store,
  tenantId: string,
  filters: SearchFilters,
  options: ExportOptions,
): Promise<PreparedExport> {
  // Paging is the export's own: a page size or cursor of the search does not apply.
  const { limit: _pageSize, cursor: _cursor, ...search } = filters;
  checkFilters(search);
  checkExport(options);
  const limit = options.limit ?? DEFAULT_EXPORT_LIMIT;
  const snapshot = await snapshotOf(store, tenantId);
  const { where, params } = filterSql(tenantId, search, snapshot);
  params['cap'] = limit + 1;
  const [row] = await store.query<{ n: string | number }>(
    `SELECT count() AS n FROM (SELECT 1 FROM ${store.table('events')} FINAL WHERE ${where.join(' AND ')} LIMIT {cap:UInt64})`,
    params,
    FINAL_SETTINGS,
  );
  const matched = Number(row?.n ?? 0);
  const complete = matched <= limit;
  const count = Math.min(matched, limit);
  const csv = options.format === 'csv';
  return {
    contentType: csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson',
    fileName: `vigil-search-${complete ? 'complete' : `first-${count}`}.${csv ? 'csv' : 'ndjson'}`,
    count,
    complete,
    limit,
    snapshot,
    async *stream() {
      if (csv) yield csvHeader(EXPORT_COLUMNS, { bom: options.bom === true });
      let written = 0;
      if (csv) {
        for await (const chunk of csvBatches(
          store,
          tenantId,
          search,
          snapshot,
          limit,
          options.batchRows ?? CSV_BATCH,
        )) {
          written += chunk.rows;
          yield chunk.text;
        }
      } else {
        let after: RowPosition | undefined;
        while (written < limit) {
          const size = Math.min(options.batchRows ?? EXPORT_BATCH, limit - written);
          const page = await fetchRows(store, tenantId, search, snapshot, size, after);
          if (page.rows.length === 0) break;
          const items = await itemsOf(store, tenantId, search, page.rows);
          written += items.length;
          yield items.map((i) => JSON.stringify(i)).join('\n') + '\n';
          const last = page.rows[page.rows.length - 1];
          if (!page.more || !last) break;
          after = { t: fromChTime(last.time), id: last.event_id };
        }
      }
      if (!csv) {
        // The last line says what the file holds: a reader that does not find it knows the
        // file was cut short in transfer.
        yield (
          JSON.stringify({
            vigilExport: {
              complete: complete && written === count,
              count: written,
              // When cut, the search matched more than `limit` (how many more is not counted).
              ...(complete ? { matched } : { matchedMoreThan: limit }),
              limit,
              snapshot: new Date(snapshot).toISOString(),
            },
          }) + '\n'
        );
      }
    },
  };
}

/**
 * The cells of the CSV fast path, in EXPORT_COLUMNS order, as SQL text expressions over the
 * typed columns. The typed columns of a personal field hold what search shows of it, the
 * disclosed value, its pseudonym, or '' once erased or withheld (store/rows.ts,
 * privacy/pseudonyms.ts, privacy/erasure.ts), so a record is made of them without opening the
 * record. Two things they cannot give are taken from the item instead (itemOf, csvRecord):
 * personal metadata (a commitment in the record) and corrections.
 */
const FAST_CELLS: readonly (readonly [expression: string, kind: 'safe' | 'json' | 'text'])[] = [
  // 'safe': the protocol's patterns or the column's type leave no quote and no guarded first
  // character (times, ids, hashes, numbers, actions, categories, outcomes, stream ids, country
  // codes, flags); 'json': a JSON object, starting with '{'; 'text': anything a producer sent.
  ["formatDateTime(time, '%Y-%m-%d %H:%i:%S', 'UTC')", 'safe'],
  ['toString(id)', 'safe'],
  ['toString(action)', 'safe'],
  ['toString(category)', 'safe'],
  ['toString(outcome)', 'safe'],
  ['toString(actor_type)', 'text'],
  ['actor_id', 'text'],
  ['actor_name', 'text'],
  ['toString(target_type)', 'text'],
  ['target_id', 'text'],
  ['target_name', 'text'],
  // IPv4 as written (the column keeps it IPv4-mapped, store/rows.ts ipColumn).
  [
    "if(isNull(ip), '', replaceRegexpOne(IPv6NumToString(assumeNotNull(ip)), '^::ffff:([0-9.]+)$', '\\\\1'))",
    'safe',
  ],
  ['toString(geo_country)', 'safe'],
  ["if(isNull(geo_asn), '', toString(geo_asn))", 'safe'],
  ['toString(ua_browser)', 'text'],
  ['toString(ua_os)', 'text'],
  ['session_id', 'text'],
  ['request_id', 'text'],
  ['stream', 'safe'],
  ['toString(seq)', 'safe'],
  ["arrayStringConcat(flags, ' ')", 'safe'],
  ["formatDateTime(received_at, '%Y-%m-%d %H:%i:%S', 'UTC')", 'safe'],
  ['toString(hash)', 'safe'],
  ["JSONExtractRaw(record, 'metadata')", 'json'],
];

/**
 * One CSV record per row, built by the engine exactly as csvRows (export/csv.ts) and the
 * shared writer build it: each cell through the formula guard of safeCell (a leading
 * apostrophe before = + - @ TAB CR, tested on the first byte: all six are ASCII), quoted,
 * quotes doubled, CRLF. Building it there keeps a million rows from becoming 24 million
 * JavaScript strings; a test compares the bytes with the shared writer's.
 */
const FAST_LINE = `concat(${FAST_CELLS.map(([cell, kind]) =>
  kind === 'safe'
    ? `'"', ${cell}, '"'`
    : kind === 'json'
      ? `'"', replaceAll(${cell}, '"', '""'), '"'`
      : `'"', if(has({guard:Array(String)}, substring(${cell}, 1, 1)), '''', ''), replaceAll(${cell}, '"', '""'), '"'`,
).join(", ',', ")}, '\\r\\n')`;

/** Whether a row needs the item view: personal metadata (a commitment), or a correction. */
const SLOW_SQL = `(arrayExists(p -> startsWith(p, '/metadata/'), personal)
  OR has({corrected:Array(String)}, toString(id)))`;

/** The first characters safeCell guards against (export/csv.ts). */
const GUARD = ['=', '+', '-', '@', '\t', '\r'];

/** A row of the fast path: whether it needs the item view, its key, its record, its time. */
type FastRow = [slow: number, id: string, hash: string, line: string, time: string];

/**
 * The CSV records of a search, batch by batch: built by the engine for most rows, from the item
 * view for rows with personal metadata or a correction, in the search's order.
 */
async function* csvBatches(
  store: Store,
  tenantId: string,
  search: SearchFilters,
  snapshot: number,
  limit: number,
  batch: number,
): AsyncGenerator<{ text: string; rows: number }> {
  const table = store.table('events');
  // The events that have corrections, once: few, and read without FINAL through a column that
  // is '' on every other row.
  const corrected =
    search.original === true
      ? []
      : (
          await store.query<{ cid: string }>(
            `SELECT DISTINCT corrects_id AS cid FROM ${table}
             WHERE tenant_id = {tenant:String} AND corrects_id != ''`,
            { tenant: tenantId },
          )
        ).map((c) => c.cid);
  const desc = (search.order ?? 'desc') === 'desc';
  const dir = desc ? 'DESC' : 'ASC';
  let written = 0;
  let after: { t: string; id: string } | undefined;
  while (written < limit) {
    const { where, params } = filterSql(tenantId, search, snapshot);
    const size = Math.min(batch, limit - written);
    params['limit'] = size;
    params['guard'] = GUARD;
    params['corrected'] = corrected;
    if (after !== undefined) {
      where.push(keysetSql(desc, 'ct', 'cid'));
      params['ct'] = after.t;
      params['cid'] = after.id;
    }
    // Where this batch ends, found first from the sorting key alone: the records are then built
    // for the rows of that range only, not for every row the engine reads before the LIMIT
    // (measured on 1 000 000 events: 1.6 s a batch of 50 000 without the bound, 1.1 s with it).
    const [end] = await store.query<{ bt: string; bid: string }>(
      `SELECT toString(time) AS bt, toString(id) AS bid FROM ${table} FINAL
       WHERE ${where.join(' AND ')}
       ORDER BY time ${dir}, id ${dir} LIMIT 1 OFFSET {offset:UInt32}`,
      { ...params, offset: size - 1 },
      FINAL_SETTINGS,
    );
    const bounded = end ? [...where, keysetSql(!desc, 'bt', 'bid', true)] : where;
    if (end) {
      params['bt'] = end.bt;
      params['bid'] = end.bid;
    }
    const order = `ORDER BY time ${dir}, id ${dir} LIMIT {limit:UInt32}`;
    if (end) {
      // Most batches have no row that needs the item view: then the engine's text is the
      // batch's CSV as it is (FORMAT RawBLOB writes the values one after the other, nothing
      // between), and Node neither parses nor joins 50 000 rows. Which batches, and how many
      // rows, is counted first over the same range from narrow columns. Measured on 1 000 000
      // events: ≈ 0.4 s of a 1.1 s batch was Node reading JSONCompactEachRow and joining.
      const [tally] = await store.query<{ n: string | number; slow: string | number }>(
        `SELECT count() AS n, countIf(slow) AS slow FROM (
           SELECT ${SLOW_SQL} AS slow FROM ${table} FINAL WHERE ${bounded.join(' AND ')} ${order})`,
        params,
        FINAL_SETTINGS,
      );
      if (Number(tally?.slow ?? 1) === 0) {
        const chunks: Buffer[] = [];
        for await (const chunk of await store.stream(
          `SELECT ${FAST_LINE} FROM ${table} FINAL WHERE ${bounded.join(' AND ')} ${order}
           FORMAT RawBLOB`,
          params,
          FINAL_SETTINGS,
        ))
          chunks.push(chunk);
        const n = Number(tally?.n ?? 0);
        written += n;
        yield { text: Buffer.concat(chunks).toString('utf8'), rows: n };
        // The range ends at `end` whatever it held (a row restricted meanwhile is not written).
        after = { t: end.bt, id: end.bid };
        continue;
      }
    }
    const rows = await fastRows(
      store,
      `SELECT ${SLOW_SQL} AS slow, toString(id), toString(hash), ${FAST_LINE}, toString(time)
       FROM ${table} FINAL WHERE ${bounded.join(' AND ')}
       ORDER BY time ${dir}, id ${dir} LIMIT {limit:UInt32} FORMAT JSONCompactEachRow`,
      params,
    );
    if (rows.length === 0) return;
    const slow = rows.filter((r) => Number(r[0]) === 1);
    const items = new Map<string, SearchItem>();
    if (slow.length > 0) {
      const full = await store.query<EventRowOut>(
        `SELECT toString(id) AS event_id, time, ${ITEM_COLUMNS}, ${DERIVED_SELECT}
         FROM ${table} FINAL WHERE ${where.join(' AND ')} AND id IN {ids:Array(UUID)}`,
        { ...params, ids: slow.map((r) => r[1]) },
        FINAL_SETTINGS,
      );
      const opened = await itemsOf(store, tenantId, search, full);
      full.forEach((f, i) => items.set(`${f.event_id}/${f.hash}`, opened[i] as SearchItem));
    }
    let text = '';
    for (const r of rows) {
      const item = Number(r[0]) === 1 ? items.get(`${r[1]}/${r[2]}`) : undefined;
      text += item ? csvRows([csvRecord(item)]) : r[3];
    }
    written += rows.length;
    yield { text, rows: rows.length };
    if (rows.length < size) return;
    const last = rows[rows.length - 1] as FastRow;
    after = { t: last[4], id: last[1] };
  }
}

/**
 * Rows of a statement in JSONCompactEachRow (one JSON array per line), read from the raw
 * answer: measured here 2-3 times faster than JSONEachRow through the client's json().
 */
async function fastRows(
  store: Store,
  sql: string,
  params: Record<string, unknown>,
): Promise<FastRow[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.stream(sql, params, FINAL_SETTINGS)) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  const rows: FastRow[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if (end > start) rows.push(JSON.parse(text.slice(start, end)) as FastRow);
    start = end + 1;
  }
  return rows;
}
