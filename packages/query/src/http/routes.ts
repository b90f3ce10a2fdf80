import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/store.js';
import type { KeyRegistry } from '../auth/registry.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { searchEvents, type SearchFilters } from '../search/search.js';
import { InvalidQueryError, QueryError, QueryErrorCodes } from '../errors.js';
import type { RecordChange } from './retention-routes.js';
import { openAnswer } from './schemas.js';

export interface QueryRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  readonly onAuthFailure?: AuthObserver;
  /**
   * Records a search that included restricted subjects' events (GDPR Art. 18); without it such
   * searches are refused, since they must not happen unrecorded.
   */
  readonly recordAccess?: RecordChange;
}

const list = (value: unknown): string[] | undefined =>
  typeof value === 'string' && value.length > 0
    ? value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean)
    : undefined;

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 ? value : undefined;

const searchQuerySchema = {
  type: 'object',
  properties: {
    from: { type: 'string', description: 'events at or after this time (RFC 3339 UTC, ms)' },
    to: { type: 'string', description: 'events before this time' },
    actor: { type: 'string', description: 'actor id (plain value)' },
    action: { type: 'string', description: 'action, or a prefix ending in * (user.*)' },
    category: { type: 'string', description: 'comma-separated categories' },
    outcome: { type: 'string', description: 'comma-separated outcomes' },
    target: { type: 'string', description: 'target id' },
    targetType: { type: 'string' },
    stream: { type: 'string' },
    limit: { type: 'string', description: `page size, 1-1000 (default 100)` },
    cursor: { type: 'string', description: 'nextCursor of the previous page' },
    order: { type: 'string', enum: ['asc', 'desc'] },
    includeRestricted: {
      type: 'string',
      enum: ['true', 'false'],
      description:
        'also events of restricted subjects (GDPR Art. 18): needs a key with scope admin too, and is recorded',
    },
    original: {
      type: 'string',
      enum: ['true', 'false'],
      description: 'events as recorded, without the corrections recorded for them',
    },
  },
  additionalProperties: false,
} as const;

/** Read API of one tenant: `GET /v1/events`. */
export function registerQueryRoutes(app: FastifyInstance, options: QueryRoutesOptions): void {
  const { store, registry } = options;
  app.get(
    '/v1/events',
    {
      onRequest: requireScope(registry, 'query', options.onAuthFailure),
      schema: {
        response: {
          200: openAnswer('a page of events', {
            events: {
              type: 'array',
              description: 'the events, each as stored with its proof fields',
              items: { type: 'object', additionalProperties: true },
            },
            nextCursor: {
              type: 'string',
              description: 'pass as cursor for the next page; absent on the last',
            },
          }),
        },
        description: "Search the events of the key's tenant, newest first, with cursor pagination.",
        tags: ['query'],
        querystring: searchQuerySchema,
        security: [{ bearer: [] }],
      },
    },
    async (request) => {
      const q = request.query as Record<string, unknown>;
      const limitText = str(q['limit']);
      const limit = limitText === undefined ? undefined : Number(limitText);
      if (limit !== undefined && !Number.isInteger(limit)) {
        throw new InvalidQueryError('invalid search parameters', [
          { path: '/limit', message: 'must be an integer' },
        ]);
      }
      const order = str(q['order']);
      const filters: Mutable<SearchFilters> = {};
      const text = [
        'from',
        'to',
        'actor',
        'action',
        'target',
        'targetType',
        'stream',
        'cursor',
      ] as const;
      for (const key of text) {
        const value = str(q[key]);
        if (value !== undefined) filters[key] = value;
      }
      const category = list(q['category']);
      if (category) filters.category = category;
      const outcome = list(q['outcome']);
      if (outcome) filters.outcome = outcome;
      if (limit !== undefined) filters.limit = limit;
      if (order === 'asc' || order === 'desc') filters.order = order;
      if (q['original'] === 'true') filters.original = true;
      const tenant = tenantOf(request);
      if (q['includeRestricted'] === 'true') {
        const key = request.vigilKey;
        if (!key?.scopes.includes('admin') || !options.recordAccess)
          throw new QueryError(
            QueryErrorCodes.FORBIDDEN,
            "events of restricted subjects are shown only to a key with scope admin, on a server that records the access (GDPR Art. 18); use the tenant's admin key",
            { status: 403 },
          );
        filters.includeRestricted = true;
        // Recorded before anything is shown: an access that cannot be recorded does not happen.
        await options.recordAccess(tenant, key.keyId, {
          action: 'restricted_events.viewed',
          category: 'data_access',
          outcome: 'success',
          actor: { type: 'api_key', id: key.keyId },
          target: { type: 'tenant', id: tenant },
          metadata: { filters: Object.keys(filters).sort() },
        });
      }
      return searchEvents(store, tenant, filters);
    },
  );
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
