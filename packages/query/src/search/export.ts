import { InvalidQueryError } from '../errors.js';
import { csvHeader, csvRows, csvTime, csvTimeHeader } from '../export/csv.js';
import type { Store } from '../store/store.js';
import { checkFilters, filterSql, type SearchFilters } from './filters.js';
import type { SearchItem } from './item.js';
import { fetchRows, itemsOf, snapshotOf, type RowPosition } from './search.js';

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
function csvRecord(item: SearchItem): unknown[] {
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
      let after: RowPosition | undefined;
      while (written < limit) {
        const size = Math.min(EXPORT_BATCH, limit - written);
        const page = await fetchRows(store, tenantId, search, snapshot, size, after);
        if (page.rows.length === 0) break;
        const items = await itemsOf(store, tenantId, search, page.rows);
        written += items.length;
        yield csv
          ? csvRows(items.map(csvRecord))
          : items.map((i) => JSON.stringify(i)).join('\n') + '\n';
        const last = page.rows[page.rows.length - 1];
        if (!page.more || !last) break;
        after = { t: Date.parse(last.time.replace(' ', 'T') + 'Z'), id: last.event_id };
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
