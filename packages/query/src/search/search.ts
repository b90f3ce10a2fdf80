import { applyCorrections, CATEGORIES, OUTCOMES, PATTERNS, parseTime } from '@vigil/protocol';
import type { ErrorDetail } from '@vigil/protocol';
import { InvalidQueryError, QueryError, QueryErrorCodes } from '../errors.js';
import { fromChTime, toChTime } from '../store/rows.js';
import { DERIVED_SELECT } from '../store/derived.js';
import type { Store } from '../store/store.js';
import { correctionsOf } from '../privacy/corrections.js';
import { UNRESTRICTED_SQL } from '../privacy/restrictions.js';
import { ITEM_COLUMNS, itemOf, type ItemRow, type SearchItem } from './item.js';

/** Filters of an event search; every one narrows the result (AND). */
export interface SearchFilters {
  /** Inclusive lower bound on the event time (protocol time form). */
  readonly from?: string;
  /** Exclusive upper bound on the event time. */
  readonly to?: string;
  readonly actor?: string;
  /** Exact action, or a prefix ending in `*` (`user.*`). */
  readonly action?: string;
  readonly category?: readonly string[];
  readonly outcome?: readonly string[];
  readonly target?: string;
  readonly targetType?: string;
  readonly stream?: string;
  readonly limit?: number;
  readonly cursor?: string;
  readonly order?: 'asc' | 'desc';
  /**
   * Also events of restricted subjects (GDPR Art. 18). Only for an admin path that records the
   * access (http/routes.ts); analysts never see them.
   */
  readonly includeRestricted?: boolean;
  /** Events as recorded, without the corrections recorded for them (PROTOCOL.md §18). */
  readonly original?: boolean;
  /**
   * What each item carries besides the opened event (PROTOCOL.md §20): `record`, the record
   * bytes; `disclosures`, the salts and values of its disclosed fields.
   */
  readonly include?: readonly string[];
}

/** What `include` may ask for. */
export const INCLUDES = ['record', 'disclosures'] as const;

export interface SearchPage {
  readonly events: SearchItem[];
  /** Pass as `cursor` to get the next page; absent on the last page. */
  readonly nextCursor?: string;
}

export const MAX_LIMIT = 1000;
export const DEFAULT_LIMIT = 100;

interface Cursor {
  readonly t: number;
  readonly id: string;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeCursor(text: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Cursor>;
    if (
      typeof c.t === 'number' &&
      Number.isFinite(c.t) &&
      typeof c.id === 'string' &&
      /^[0-9a-f-]{36}$/.test(c.id)
    ) {
      return { t: c.t, id: c.id };
    }
  } catch {
    // fall through
  }
  throw new QueryError(
    QueryErrorCodes.INVALID_CURSOR,
    'cursor is not one this server issued; start again without it',
    {
      status: 400,
      details: [{ path: '/cursor', message: 'is invalid' }],
    },
  );
}

/** Checks the filters and lists every problem, so a caller fixes them all at once. */
export function checkFilters(f: SearchFilters): void {
  const details: ErrorDetail[] = [];
  for (const key of ['from', 'to'] as const) {
    const value = f[key];
    if (value !== undefined && parseTime(value) === undefined) {
      details.push({
        path: `/${key}`,
        message: 'must be RFC 3339 UTC with milliseconds, like 2026-11-23T10:50:48.123Z',
      });
    }
  }
  for (const c of f.category ?? []) {
    if (!(CATEGORIES as readonly string[]).includes(c))
      details.push({ path: '/category', message: `${c} is not one of: ${CATEGORIES.join(', ')}` });
  }
  for (const o of f.outcome ?? []) {
    if (!(OUTCOMES as readonly string[]).includes(o))
      details.push({ path: '/outcome', message: `${o} is not one of: ${OUTCOMES.join(', ')}` });
  }
  if (f.action !== undefined) {
    const exact = f.action.endsWith('*') ? f.action.slice(0, -1).replace(/\.$/, '') : f.action;
    if (!/^[a-z][a-z0-9_.]*$/.test(exact) || exact.length > 128) {
      details.push({
        path: '/action',
        message: 'must be an action like user.login, or a prefix like user.*',
      });
    }
  }
  if (f.limit !== undefined && (!Number.isInteger(f.limit) || f.limit < 1 || f.limit > MAX_LIMIT)) {
    details.push({ path: '/limit', message: `must be an integer from 1 to ${MAX_LIMIT}` });
  }
  for (const i of f.include ?? []) {
    if (!(INCLUDES as readonly string[]).includes(i))
      details.push({ path: '/include', message: `${i} is not one of: ${INCLUDES.join(', ')}` });
  }
  if (f.stream !== undefined && !PATTERNS.stream.test(f.stream))
    details.push({ path: '/stream', message: 'is not a stream id' });
  if (details.length > 0) throw new InvalidQueryError('invalid search parameters', details);
}

interface EventRowOut extends ItemRow {
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
): Promise<SearchPage> {
  checkFilters(filters);
  const limit = filters.limit ?? DEFAULT_LIMIT;
  const desc = (filters.order ?? 'desc') === 'desc';
  // Expired rows stay on disk until ClickHouse merges their part; they are gone for searches
  // from the moment they expire (unless a legal hold keeps them).
  const where: string[] = ['tenant_id = {tenant:String}', '(expires_at > now() OR legal_hold = 1)'];
  // A restricted subject's events are kept but not shown (GDPR Art. 18(1)).
  if (filters.includeRestricted !== true) where.push(UNRESTRICTED_SQL);
  const params: Record<string, unknown> = { tenant: tenantId, limit: limit + 1 };
  if (filters.from !== undefined) {
    where.push('time >= {from:DateTime64(3)}');
    params['from'] = toChTime(filters.from);
  }
  if (filters.to !== undefined) {
    where.push('time < {to:DateTime64(3)}');
    params['to'] = toChTime(filters.to);
  }
  if (filters.actor !== undefined) {
    where.push('actor_id = {actor:String}');
    params['actor'] = filters.actor;
  }
  if (filters.action !== undefined) {
    if (filters.action.endsWith('*')) {
      where.push('startsWith(action, {actionPrefix:String})');
      params['actionPrefix'] = filters.action.slice(0, -1);
    } else {
      where.push('action = {action:String}');
      params['action'] = filters.action;
    }
  }
  if (filters.category && filters.category.length > 0) {
    where.push('category IN {category:Array(String)}');
    params['category'] = filters.category;
  }
  if (filters.outcome && filters.outcome.length > 0) {
    where.push('outcome IN {outcome:Array(String)}');
    params['outcome'] = filters.outcome;
  }
  if (filters.target !== undefined) {
    where.push('target_id = {target:String}');
    params['target'] = filters.target;
  }
  if (filters.targetType !== undefined) {
    where.push('target_type = {targetType:String}');
    params['targetType'] = filters.targetType;
  }
  if (filters.stream !== undefined) {
    where.push('stream = {stream:String}');
    params['stream'] = filters.stream;
  }
  if (filters.cursor !== undefined) {
    const c = decodeCursor(filters.cursor);
    where.push(`(time, id) ${desc ? '<' : '>'} ({ct:DateTime64(3)}, {cid:UUID})`);
    params['ct'] = toChTime(new Date(c.t).toISOString());
    params['cid'] = c.id;
  }
  const dir = desc ? 'DESC' : 'ASC';
  const rows = await store.query<EventRowOut>(
    `SELECT toString(id) AS event_id, time, ${ITEM_COLUMNS}, ${DERIVED_SELECT}
     FROM ${store.table('events')} FINAL
     WHERE ${where.join(' AND ')}
     ORDER BY time ${dir}, id ${dir}
     LIMIT {limit:UInt32}`,
    params,
  );
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const include = new Set(filters.include ?? []);
  const options = { record: include.has('record'), disclosures: include.has('disclosures') };
  const items = page.map((row) => itemOf(row, options));
  const events = filters.original === true ? items : await corrected(store, tenantId, page, items);
  const last = page[page.length - 1];
  return more && last
    ? { events, nextCursor: encodeCursor({ t: fromChTime(last.time), id: last.event_id }) }
    : { events };
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
  const byEvent = await correctionsOf(
    store,
    tenantId,
    rows.map((r) => r.event_id),
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
