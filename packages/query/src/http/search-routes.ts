import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { KeyRegistry } from '../auth/registry.js';
import { InvalidQueryError, QueryError, QueryErrorCodes } from '../errors.js';
import { MAX_LINK_SECONDS, type LinkSigner } from '../links/signed.js';
import { FACET_FIELDS, facet, histogram, MAX_FACET_SIZE } from '../search/aggregate.js';
import {
  checkExport,
  EXPORT_FORMATS,
  MAX_EXPORT_LIMIT,
  prepareExport,
  type ExportFormat,
} from '../search/export.js';
import { checkFilters, type SearchFilters } from '../search/filters.js';
import type { Store } from '../store/store.js';
import type { ChangeRecorder } from '../system/changes.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { fileAnswer, openAnswer } from './schemas.js';
import {
  filterProperties,
  filtersOfQuery,
  recordSearch,
  SEARCH_ACTIONS,
  searchChange,
} from './search-query.js';
import { incompleteOnError } from './streaming.js';

export interface SearchRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  readonly onAuthFailure?: AuthObserver;
  /** Signs export links (and search cursors). */
  readonly links: LinkSigner;
  /** Where searches and exports are recorded (meta-audit); without it, the server log. */
  readonly recorder?: ChangeRecorder;
  /** Clock of link expiry (tests). */
  readonly now?: () => number;
}

const EXPORT_PATH = '/v1/search/export';
const DEFAULT_LINK_SECONDS = 3600;

const exportProperties = {
  format: { type: 'string', enum: EXPORT_FORMATS, description: 'csv (default) or ndjson' },
  limit: {
    type: 'string',
    description: `most events to write, 1-${MAX_EXPORT_LIMIT} (default 1 000 000); the answer says whether the limit cut the export`,
  },
  bom: {
    type: 'string',
    enum: ['true', 'false'],
    description: 'csv: start with a UTF-8 byte order mark (Excel)',
  },
} as const;

const linkProperties = {
  tenant: { type: 'string', description: 'signed link: the tenant' },
  by: { type: 'string', description: 'signed link: the key that asked for it' },
  expires: { type: 'string', description: 'signed link: expiry, epoch seconds' },
  sig: { type: 'string', description: 'signed link: HMAC-SHA256 of the link' },
} as const;

const restrictedRefused = () =>
  new QueryError(
    QueryErrorCodes.FORBIDDEN,
    'facets, histograms and exports never include events of restricted subjects (GDPR Art. 18); use GET /v1/events with an admin key',
    { status: 403, details: [{ path: '/includeRestricted', message: 'is not allowed here' }] },
  );

/**
 * The analyst side of search: facets, the time histogram, the streamed export and its signed
 * download links. Facets and the histogram are not recorded (one event per user action: the
 * search they accompany is); an export, and each link asked for, is.
 */
export function registerSearchRoutes(app: FastifyInstance, options: SearchRoutesOptions): void {
  const { store, registry, links } = options;
  const now = options.now ?? Date.now;
  const query = requireScope(registry, 'query', options.onAuthFailure);
  const filtersOf = (request: FastifyRequest): SearchFilters => {
    const filters = filtersOfQuery(request.query as Record<string, unknown>);
    if (filters.includeRestricted === true) throw restrictedRefused();
    return filters;
  };
  const key = (request: FastifyRequest) => {
    const k = request.vigilKey;
    if (!k) throw new Error('route reached without authentication');
    return k;
  };

  app.get(
    '/v1/search/facets',
    {
      onRequest: query,
      schema: {
        description:
          "Counts of a search's events by one field, largest first (the search's filters apply). Not recorded: the search it accompanies is.",
        tags: ['query'],
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          required: ['field'],
          additionalProperties: false,
          properties: {
            ...filterProperties,
            field: {
              type: 'string',
              enum: Object.keys(FACET_FIELDS),
              description: 'what to count by',
            },
            size: {
              type: 'string',
              description: `values to return, 1-${MAX_FACET_SIZE} (default 20)`,
            },
          },
        },
        response: {
          200: openAnswer('counts by value', {
            field: { type: 'string', description: 'the field counted by' },
            values: {
              type: 'array',
              description: 'values by count, largest first ("" where an event has none)',
            },
            total: { type: 'integer', description: 'events matched' },
            other: { type: 'integer', description: 'events whose value is beyond size' },
          }),
        },
      },
    },
    async (request) => {
      const q = request.query as Record<string, unknown>;
      const size = q['size'] === undefined ? 20 : Number(q['size']);
      return facet(store, tenantOf(request), filtersOf(request), String(q['field']), size);
    },
  );

  app.get(
    '/v1/search/histogram',
    {
      onRequest: query,
      schema: {
        description:
          "Counts of a search's events per time bucket over [from, to) (default: the last 24 hours); the bucket width (1 minute to 1 day) is chosen from the range so that there are at most 200. Not recorded.",
        tags: ['query'],
        security: [{ bearer: [] }],
        querystring: { type: 'object', additionalProperties: false, properties: filterProperties },
        response: {
          200: openAnswer('counts per bucket', {
            from: { type: 'string', description: 'start of the range (RFC 3339)' },
            to: { type: 'string', description: 'end of the range, exclusive' },
            bucketSeconds: { type: 'integer', description: 'width of every bucket' },
            buckets: {
              type: 'array',
              description: 'every bucket, oldest first: {start, count}, empty ones too',
            },
            total: { type: 'integer', description: 'events in the range' },
          }),
        },
      },
    },
    async (request) => histogram(store, tenantOf(request), filtersOf(request), now()),
  );

  const exportOptions = (q: Record<string, unknown>) => {
    const format = (q['format'] ?? 'csv') as ExportFormat;
    const limitText = q['limit'];
    const limit = typeof limitText === 'string' ? Number(limitText) : undefined;
    return {
      format,
      ...(limit !== undefined ? { limit } : {}),
      bom: q['bom'] === 'true',
    };
  };

  /** Streams an export; `by` asked for it (a key of `tenant`). */
  const sendExport = async (
    request: FastifyRequest,
    reply: FastifyReply,
    tenant: string,
    by: string,
    q: Record<string, unknown>,
    via: 'api' | 'link',
  ) => {
    const filters = filtersOf({ query: q } as FastifyRequest);
    const opts = exportOptions(q);
    const prepared = await prepareExport(store, tenant, filters, opts);
    // Recorded before the first byte: an export that cannot be recorded does not happen.
    await recordSearch(
      options.recorder,
      request,
      tenant,
      by,
      searchChange(SEARCH_ACTIONS.exported, tenant, filters, {
        format: opts.format,
        via,
        events: prepared.count,
        complete: prepared.complete,
        limit: prepared.limit,
      }),
    );
    return reply
      .header('content-type', prepared.contentType)
      .header('content-disposition', `attachment; filename="${prepared.fileName}"`)
      .header('x-vigil-export-complete', String(prepared.complete))
      .header('x-vigil-export-count', String(prepared.count))
      .header('x-vigil-export-limit', String(prepared.limit))
      .header('cache-control', 'no-store')
      .send(Readable.from(incompleteOnError(prepared.stream(), request.log)));
  };

  app.get(
    EXPORT_PATH,
    {
      // A signed link (sig=…) is its own credential, checked in the handler; without one, the
      // request needs a key with scope query like any search.
      onRequest: (request, reply, done) => {
        if (Object.hasOwn(request.query as object, 'sig')) {
          done();
          return;
        }
        query.call(app, request, reply, done);
      },
      schema: {
        description:
          'Every event of a search, streamed as CSV or NDJSON. X-Vigil-Export-Complete says whether the file holds every matching event (true) or was cut by limit (false), X-Vigil-Export-Count how many it holds; an NDJSON export ends with a summary line {"vigilExport":{complete,count,…}}. Recorded (meta-audit). Takes an API key with scope query, or the parameters of a signed link (POST /v1/search/export/link) instead.',
        tags: ['query'],
        security: [{ bearer: [] }, {}],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { ...filterProperties, ...exportProperties, ...linkProperties },
        },
        response: {
          200: fileAnswer('the export', ['text/csv', 'application/x-ndjson']),
        },
      },
    },
    async (request, reply) => {
      const q = request.query as Record<string, unknown>;
      if (Object.hasOwn(q, 'sig')) {
        const grant = links.verify(EXPORT_PATH, q, now());
        // The link is as good as the key that asked for it: revoked key, dead link.
        if (!registry.usable(grant.by, grant.tenant, 'query', now()))
          throw new QueryError(
            QueryErrorCodes.FORBIDDEN,
            'the API key that asked for this link is no longer usable; ask for a new link',
            { status: 403 },
          );
        return sendExport(request, reply, grant.tenant, grant.by, grant.query, 'link');
      }
      return sendExport(request, reply, tenantOf(request), key(request).keyId, q, 'api');
    },
  );

  app.post(
    `${EXPORT_PATH}/link`,
    {
      onRequest: query,
      schema: {
        description:
          "A time-limited signed link to the export of a search: anyone holding it may download the export, without a key, until it expires (default 1 hour, at most 7 days), as long as the key that asked for it stays valid. The filters are the body's members, as in the query string of GET /v1/search/export. Recorded (meta-audit), and the download too.",
        tags: ['query'],
        security: [{ bearer: [] }],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...filterProperties,
            ...exportProperties,
            ttlSeconds: { type: 'integer', minimum: 1, maximum: MAX_LINK_SECONDS },
          },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['url', 'expiresAt'],
            description: 'the link',
            properties: {
              url: { type: 'string', description: 'path and query; append to the server URL' },
              expiresAt: { type: 'string', description: 'RFC 3339' },
            },
          },
        },
      },
    },
    async (request) => {
      const body = { ...((request.body as Record<string, unknown> | undefined) ?? {}) };
      const seconds =
        typeof body['ttlSeconds'] === 'number' ? body['ttlSeconds'] : DEFAULT_LINK_SECONDS;
      delete body['ttlSeconds'];
      const tenant = tenantOf(request);
      const by = key(request).keyId;
      // Checked now, so that a link is never handed out for a download that would be refused.
      if (Array.isArray(body['meta']))
        throw new InvalidQueryError('invalid link parameters', [
          { path: '/meta', message: 'a link takes one meta filter' },
        ]);
      const filters = filtersOf({ query: body } as FastifyRequest);
      checkFilters(filters);
      checkExport(exportOptions(body));
      const own: Record<string, string> = {};
      for (const [k, v] of Object.entries(body)) if (typeof v === 'string') own[k] = v;
      const link = links.sign(EXPORT_PATH, own, { tenant, by, seconds, now: now() });
      await recordSearch(
        options.recorder,
        request,
        tenant,
        by,
        searchChange(SEARCH_ACTIONS.linkCreated, tenant, filters, {
          format: typeof body['format'] === 'string' ? body['format'] : 'csv',
          expiresAt: link.expiresAt,
        }),
      );
      return link;
    },
  );
}
