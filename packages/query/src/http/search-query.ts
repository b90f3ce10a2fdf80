import type { FastifyRequest } from 'fastify';
import type { JsonObject } from '@vigil/protocol';
import { InvalidQueryError } from '../errors.js';
import { INCLUDES, PERSONAL_FILTERS, type SearchFilters } from '../search/filters.js';
import type { AdminChange, ChangeRecorder } from '../system/changes.js';

/**
 * The query string of a search (`GET /v1/events`, facets, histogram, export): one schema and one
 * parser, so every endpoint takes the same filters with the same names.
 */

const text = (description: string) => ({ type: 'string', description }) as const;
/** A parameter that may be given more than once (`meta=a=1&meta=b=2`). */
const repeatable = (description: string) =>
  ({
    description,
    anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, maxItems: 50 }],
  }) as const;

/** Filters of a search, as query parameters. */
export const filterProperties = {
  from: text('events at or after this time (RFC 3339 UTC, ms)'),
  to: text('events before this time'),
  actor: text('actor id (plain value, or its pseudonym)'),
  action: text('action, or a prefix ending in * (user.*)'),
  category: text('comma-separated categories'),
  outcome: text('comma-separated outcomes'),
  target: text('target id'),
  targetType: text('target type'),
  resource: text('resource id of access events'),
  resourceType: text('resource type of access events'),
  stream: text('stream id'),
  ip: text('an IPv4 or IPv6 address, or a CIDR block (203.0.113.0/24, 2001:db8::/32)'),
  country: text('comma-separated ISO 3166-1 alpha-2 codes of the address (geo enrichment)'),
  asn: text('comma-separated autonomous system numbers of the address'),
  browser: text('comma-separated user agent families (parsed browser name, exact: Chrome)'),
  os: text('comma-separated operating systems of the user agent'),
  session: text('session id (/context/sessionId)'),
  request: text('request id (/context/requestId)'),
  meta: repeatable('key=value on the metadata; the key may be a dotted path; repeat for more'),
  q: text('text anywhere in the metadata as recorded (case-insensitive)'),
  flag: text('comma-separated chain or ingest flags, any of (gap, fork, backfill, …)'),
  includeRestricted: {
    type: 'string',
    enum: ['true', 'false'],
    description:
      'also events of restricted subjects (GDPR Art. 18): needs a key with scope admin too, and is recorded',
  },
} as const;

/** Paging and presentation of `GET /v1/events`. */
export const pageProperties = {
  limit: text('page size, 1-1000 (default 100)'),
  cursor: text('nextCursor of the previous page'),
  order: { type: 'string', enum: ['asc', 'desc'] },
  original: {
    type: 'string',
    enum: ['true', 'false'],
    description: 'events as recorded, without the corrections recorded for them',
  },
  include: text(
    `comma-separated, what each item carries besides the opened event: ${INCLUDES.join(', ')} (PROTOCOL.md §20)`,
  ),
} as const;

const list = (value: unknown): string[] | undefined =>
  typeof value === 'string' && value.length > 0
    ? value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean)
    : undefined;

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 ? value : undefined;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The filters (and paging) of a parsed query string; bad numbers are 400 naming the field. */
export function filtersOfQuery(q: Record<string, unknown>): SearchFilters {
  const filters: Mutable<SearchFilters> = {};
  const texts = [
    'from',
    'to',
    'actor',
    'action',
    'target',
    'targetType',
    'resource',
    'resourceType',
    'stream',
    'ip',
    'session',
    'request',
    'q',
    'cursor',
  ] as const;
  for (const key of texts) {
    const value = str(q[key]);
    if (value !== undefined) filters[key] = value;
  }
  const lists = ['category', 'outcome', 'include', 'country', 'browser', 'os', 'flag'] as const;
  for (const key of lists) {
    const value = list(q[key]);
    if (value) filters[key] = value;
  }
  const meta = q['meta'];
  if (typeof meta === 'string' && meta !== '') filters.meta = [meta];
  else if (Array.isArray(meta))
    filters.meta = meta.filter((m): m is string => typeof m === 'string');
  const numbers = (key: 'asn' | 'limit'): number[] | undefined => {
    const values = list(q[key]);
    if (!values) return undefined;
    const out = values.map(Number);
    if (out.some((n) => !Number.isInteger(n)))
      throw new InvalidQueryError('invalid search parameters', [
        { path: `/${key}`, message: 'must be an integer' },
      ]);
    return out;
  };
  const asn = numbers('asn');
  if (asn) filters.asn = asn;
  const limit = numbers('limit');
  if (limit) filters.limit = limit[0] as number;
  const order = str(q['order']);
  if (order === 'asc' || order === 'desc') filters.order = order;
  if (q['original'] === 'true') filters.original = true;
  return filters;
}

/** The actions of the meta-audit: what an analyst did with the tenant's events. */
export const SEARCH_ACTIONS = {
  searched: 'search.performed',
  exported: 'search.exported',
  linkCreated: 'search.export_link_created',
} as const;

/**
 * The meta-audit event of a search or export (issue 12 item 7): who (the recorder sets the
 * key as actor), what (the filters), with the filter values that may identify a person committed
 * like personal fields (`personal`), so erasing that person erases them here too.
 */
export function searchChange(
  action: string,
  tenant: string,
  filters: SearchFilters,
  extra: JsonObject = {},
): AdminChange {
  const shown: JsonObject = {};
  const personal: string[] = [];
  for (const [key, value] of Object.entries(filters)) {
    if (value === undefined || key === 'cursor' || key === 'limit' || key === 'include') continue;
    shown[key] = value as JsonObject[string];
    if ((PERSONAL_FILTERS as readonly string[]).includes(key))
      personal.push(`/metadata/filters/${key}`);
  }
  return {
    action,
    category: 'data_access',
    outcome: 'success',
    target: { type: 'tenant', id: tenant },
    metadata: { filters: shown, ...extra },
    ...(personal.length > 0 ? { personal } : {}),
  };
}

/**
 * Records a meta-audit event before the answer is given: a search that cannot be recorded is
 * not answered. Without a recorder (a query role with no log) the event goes to the server log.
 */
export async function recordSearch(
  recorder: ChangeRecorder | undefined,
  request: FastifyRequest,
  tenant: string,
  keyId: string,
  change: AdminChange,
): Promise<void> {
  if (recorder) {
    await recorder.record(tenant, keyId, change);
    return;
  }
  request.log.info({ tenant, key: keyId, action: change.action }, 'search (no audit recorder)');
}
