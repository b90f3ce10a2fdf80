import { createHash, timingSafeEqual } from 'node:crypto';
import { applyCorrections } from '@vigil/protocol';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { fromChTime, toChTime } from '../store/rows.js';
import { DERIVED_SELECT } from '../store/derived.js';
import type { Store } from '../store/store.js';
import { correctionsOf } from '../privacy/corrections.js';
import {
  checkFilters,
  DEFAULT_LIMIT,
  filterSql,
  FINAL_SETTINGS,
  keysetSql,
  MATCH_KEYS,
  type SearchFilters,
} from './filters.js';
import { ITEM_COLUMNS, itemOf, type ItemRow, type SearchItem } from './item.js';

export { checkFilters, DEFAULT_LIMIT, INCLUDES, MAX_LIMIT, type SearchFilters } from './filters.js';

export interface SearchPage {
  readonly events: SearchItem[];
  /** Pass as `cursor` to get the next page; absent on the last page. */
  readonly nextCursor?: string;
}

/**
 * Where a page ended, and the search it belongs to.
 *
 * Why pages are stable under concurrent ingest: the order is the keyset (time, id), unique per
 * event, and a page starts strictly after the last (time, id) of the previous one, so no event
 * is shown twice and none stored before the first page is skipped, whatever arrives meanwhile
 * (an OFFSET would shift). New events could still slip in between pages wherever they sort (a
 * backfilled event, an older time); `s`, the snapshot, stops that: the first page fixes the
 * engine's clock at that moment (or the latest `received_at` of the tenant, if a collector's
 * clock runs ahead: snapshotOf), and every page keeps only events received (`received_at`, set
 * by the collector) at or before it. The events a search pages through are therefore those
 * stored when it started, less any that expire or are erased or restricted meanwhile. (An event
 * received before the snapshot but still in the sink's batch when the first page ran can appear
 * on a later page if it sorts after the cursor: never twice, never in place of another.)
 * `f` binds the cursor to the filters it was issued for.
 */
interface Cursor {
  readonly t: number;
  readonly id: string;
  readonly s: number;
  readonly f: string;
}

/** Signs and checks cursors (links/signed.ts), so that only cursors this server issued are taken. */
export interface CursorMac {
  mac(text: string): string;
}

export interface SearchOptions {
  readonly cursorMac?: CursorMac;
}

/** A digest of the filters that choose the events (not paging or presentation). */
export function filtersDigest(filters: SearchFilters): string {
  const chosen: Record<string, unknown> = {};
  for (const key of MATCH_KEYS) if (filters[key] !== undefined) chosen[key] = filters[key];
  chosen['order'] = filters.order ?? 'desc';
  return createHash('sha256').update(JSON.stringify(chosen)).digest('base64url').slice(0, 22);
}

export function encodeCursor(cursor: Cursor, mac?: CursorMac): string {
  const body = Buffer.from(JSON.stringify(cursor)).toString('base64url');
  return mac ? `${body}.${mac.mac(body)}` : body;
}

function invalidCursor(message: string): QueryError {
  return new QueryError(QueryErrorCodes.INVALID_CURSOR, message, {
    status: 400,
    details: [{ path: '/cursor', message: 'is invalid' }],
  });
}

function decodeCursor(text: string, filters: SearchFilters, mac?: CursorMac): Cursor {
  let body = text;
  if (mac) {
    const dot = text.lastIndexOf('.');
    const given = dot < 0 ? '' : text.slice(dot + 1);
    body = dot < 0 ? '' : text.slice(0, dot);
    const expected = mac.mac(body);
    if (
      given.length !== expected.length ||
      !timingSafeEqual(Buffer.from(given), Buffer.from(expected))
    )
      throw invalidCursor('cursor is not one this server issued; start again without it');
  }
  let c: Partial<Cursor> | undefined;
  try {
    c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<Cursor>;
  } catch {
    c = undefined;
  }
  if (
    c &&
    typeof c.t === 'number' &&
    Number.isFinite(c.t) &&
    typeof c.s === 'number' &&
    Number.isFinite(c.s) &&
    typeof c.f === 'string' &&
    typeof c.id === 'string' &&
    /^[0-9a-f-]{36}$/.test(c.id)
  ) {
    if (c.f !== filtersDigest(filters))
      throw invalidCursor(
        'the cursor belongs to a search with other filters; start again without it',
      );
    return { t: c.t, id: c.id, s: c.s, f: c.f };
  }
  throw invalidCursor('cursor is not one this server issued; start again without it');
}

/**
 * The snapshot a search starts from, epoch ms: the engine's clock, or the latest `received_at`
 * of the tenant when that is later (a collector's clock ahead of the store's must not hide the
 * events it received from every page). Events received after it are left out of the search.
 */
export async function snapshotOf(store: Store, tenantId: string): Promise<number> {
  const [row] = await store.query<{ ms: string | number }>(
    `SELECT greatest(toUnixTimestamp64Milli(now64(3)), toUnixTimestamp64Milli(max(received_at))) AS ms
     FROM ${store.table('events')} WHERE tenant_id = {tenant:String}`,
    { tenant: tenantId },
  );
  return Number(row?.ms);
}

export interface EventRowOut extends ItemRow {
  event_id: string;
  time: string;
}

/**
 * Keyset-paginated search within one tenant, newest first by default. Every value is a bound
 * parameter; only the column list and the fixed clauses are part of the SQL text. `FINAL`
 * collapses byte-identical replays that a merge has not yet removed.
 */
export async function searchEvents(
  store: Store,
  tenantId: string,
  filters: SearchFilters,
  options: SearchOptions = {},
): Promise<SearchPage> {
  checkFilters(filters);
  const limit = filters.limit ?? DEFAULT_LIMIT;
  const cursor =
    filters.cursor === undefined
      ? undefined
      : decodeCursor(filters.cursor, filters, options.cursorMac);
  const snapshot = cursor?.s ?? (await snapshotOf(store, tenantId));
  const page = await fetchRows(store, tenantId, filters, snapshot, limit, cursor);
  const items = await itemsOf(store, tenantId, filters, page.rows);
  const last = page.rows[page.rows.length - 1];
  return page.more && last
    ? {
        events: items,
        nextCursor: encodeCursor(
          { t: fromChTime(last.time), id: last.event_id, s: snapshot, f: filtersDigest(filters) },
          options.cursorMac,
        ),
      }
    : { events: items };
}

/** Where a page of rows starts: strictly after this (time, id) in the search's order. */
export interface RowPosition {
  readonly t: number;
  readonly id: string;
}

/** One page of rows of a search (checkFilters first), and whether more follow. */
export async function fetchRows(
  store: Store,
  tenantId: string,
  filters: SearchFilters,
  snapshot: number,
  limit: number,
  after?: RowPosition,
): Promise<{ rows: EventRowOut[]; more: boolean }> {
  const desc = (filters.order ?? 'desc') === 'desc';
  const { where, params } = filterSql(tenantId, filters, snapshot);
  params['limit'] = limit + 1;
  if (after !== undefined) {
    where.push(keysetSql(desc, 'ct', 'cid'));
    params['ct'] = toChTime(new Date(after.t).toISOString());
    params['cid'] = after.id;
  }
  const dir = desc ? 'DESC' : 'ASC';
  const rows = await store.query<EventRowOut>(
    `SELECT toString(id) AS event_id, time, ${ITEM_COLUMNS}, ${DERIVED_SELECT}
     FROM ${store.table('events')} FINAL
     WHERE ${where.join(' AND ')}
     ORDER BY time ${dir}, id ${dir}
     LIMIT {limit:UInt32}`,
    params,
    FINAL_SETTINGS,
  );
  const more = rows.length > limit;
  return { rows: more ? rows.slice(0, limit) : rows, more };
}

/** The items of rows, with corrections applied unless the search asked for the original. */
export async function itemsOf(
  store: Store,
  tenantId: string,
  filters: SearchFilters,
  rows: readonly EventRowOut[],
): Promise<SearchItem[]> {
  const include = new Set(filters.include ?? []);
  const options = { record: include.has('record'), disclosures: include.has('disclosures') };
  const items = rows.map((row) => itemOf(row, options));
  return filters.original === true ? items : corrected(store, tenantId, rows, items);
}

/**
 * Items with the trusted corrections recorded for them applied to `event`, and their ids in
 * `server.correctedBy` (PROTOCOL.md §18.2); the record, hash and disclosures stay the original's.
 * A correction applies only to the copy whose hash its `corrects` names (§18.1): another copy
 * of the id, a fork, is not meant.
 */
async function corrected(
  store: Store,
  tenantId: string,
  rows: readonly EventRowOut[],
  items: SearchItem[],
): Promise<SearchItem[]> {
  // Corrections are rare: which of these events have any is asked first without FINAL, where
  // the skip index on corrects_id (migration 5) answers without reading the tenant's rows, and
  // only those are looked up in full. Most pages and export batches stop here.
  const candidates = await store.query<{ cid: string }>(
    `SELECT DISTINCT corrects_id AS cid FROM ${store.table('events')}
     WHERE tenant_id = {tenant:String} AND corrects_id IN {ids:Array(String)}`,
    { tenant: tenantId, ids: rows.map((r) => r.event_id) },
  );
  if (candidates.length === 0) return items;
  const byEvent = await correctionsOf(
    store,
    tenantId,
    candidates.map((c) => c.cid),
  );
  if (byEvent.size === 0) return items;
  return items.map((item, i) => {
    const fixes = byEvent
      .get((rows[i] as EventRowOut).event_id)
      ?.filter((f) => f.hash === item.hash);
    if (!fixes || fixes.length === 0) return item;
    return {
      ...item,
      event: applyCorrections(
        item.event,
        fixes.map((f) => f.fields),
      ),
      server: { ...item.server, correctedBy: fixes.map((f) => f.id) },
    };
  });
}
