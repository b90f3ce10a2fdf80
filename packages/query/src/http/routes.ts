import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/store.js';
import type { KeyRegistry } from '../auth/registry.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { searchEvents, type SearchFilters } from '../search/search.js';
import type { LinkSigner } from '../links/signed.js';
import type { ChangeRecorder } from '../system/changes.js';
import {
  filterProperties,
  filtersOfQuery,
  pageProperties,
  recordSearch,
  SEARCH_ACTIONS,
  searchChange,
} from './search-query.js';
import { FIELD_STATES } from '../search/item.js';
import { QueryError, QueryErrorCodes } from '../errors.js';
import type { RecordChange } from './retention-routes.js';

export interface QueryRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  readonly onAuthFailure?: AuthObserver;
  /**
   * Records a search that included restricted subjects' events (GDPR Art. 18); without it such
   * searches are refused, since they must not happen unrecorded.
   */
  readonly recordAccess?: RecordChange;
  /** Records each search (meta-audit, http/search-query.ts); without it, the server log. */
  readonly recorder?: ChangeRecorder;
  /** Signs pagination cursors, so that a page is only reached from its recorded search. */
  readonly links?: LinkSigner;
}

const searchQuerySchema = {
  type: 'object',
  properties: { ...filterProperties, ...pageProperties },
  additionalProperties: false,
} as const;

const text = (description: string) => ({ type: 'string', description }) as const;
const number = (description: string) => ({ type: 'number', description }) as const;

/**
 * One search item (PROTOCOL.md §20; search/item.ts). Closed everywhere but in `event`, the
 * producer's record opened, which holds whatever members the producer sent (§3.4): the answer is
 * serialised through this schema, and a member it did not list would be dropped.
 */
export const searchItemSchema = {
  type: 'object',
  description: 'one event: the record opened, apart from what the server adds (PROTOCOL.md §20)',
  required: ['hash', 'event', 'personal', 'server'],
  additionalProperties: false,
  properties: {
    hash: {
      type: 'string',
      pattern: '^[0-9a-f]{64}$',
      description: 'hex SHA-256 of the record bytes',
    },
    event: {
      type: 'object',
      additionalProperties: true,
      description:
        "the record opened: each committed field holds its disclosed value, its pseudonym, or null (see personal); the record's personal list left out; corrections applied unless original=true",
    },
    personal: {
      type: 'object',
      description:
        "the state of each path of the record's personal list; a path not listed is in the clear",
      additionalProperties: { type: 'string', enum: FIELD_STATES },
    },
    server: {
      type: 'object',
      description: 'what the server knows of the event; none of it is part of the hashed record',
      required: ['receivedAt', 'flags', 'source', 'position'],
      additionalProperties: false,
      properties: {
        receivedAt: text('when the collector received the event, RFC 3339 UTC with milliseconds'),
        flags: {
          type: 'array',
          items: { type: 'string' },
          description: 'verdicts of the ingest and chain checks (backfill, gap, fork, …)',
        },
        source: {
          type: 'string',
          enum: ['sealed', 'unchained', 'vigil'],
          description: 'how it arrived',
        },
        position: {
          type: 'object',
          required: ['partition', 'offset'],
          additionalProperties: false,
          description: 'its log partition (the Merkle tree it is a leaf of) and log offset',
          properties: { partition: { type: 'integer' }, offset: { type: 'integer' } },
        },
        restrictedBy: {
          type: 'array',
          items: { type: 'string' },
          description: 'the restrictions covering it (GDPR Art. 18); only with includeRestricted',
        },
        correctedBy: {
          type: 'array',
          items: { type: 'string' },
          description: 'ids of the corrections applied to event, oldest first (PROTOCOL.md §18.2)',
        },
        geo: {
          type: 'object',
          additionalProperties: false,
          description: 'geolocation of /context/ip (derived personal data, erased with it)',
          properties: {
            country: text('ISO 3166-1 alpha-2'),
            region: text('first-level subdivision'),
            city: text('city'),
            latitude: number('degrees'),
            longitude: number('degrees'),
            asn: { type: 'integer', description: 'autonomous system number' },
            asOrganization: text('the network operator'),
          },
        },
        ua: {
          type: 'object',
          additionalProperties: false,
          description: 'what the parsed /context/userAgent says',
          properties: {
            browser: text('browser'),
            browserVersion: text('browser version'),
            os: text('operating system'),
            osVersion: text('its version'),
            device: text('desktop, mobile, tablet, …'),
          },
        },
      },
    },
    record: text(
      'with include=record: the record bytes as stored, decoded as UTF-8; SHA-256 of its UTF-8 encoding is hash',
    ),
    disclosures: {
      type: 'object',
      description:
        'with include=disclosures: salt and value of every disclosed field, by path (PROTOCOL.md §5.3)',
      additionalProperties: {
        type: 'object',
        required: ['salt', 'value'],
        additionalProperties: false,
        properties: {
          salt: text('base64url, 16-64 bytes'),
          value: { description: 'the plain JSON value committed at that path' },
        },
      },
    },
  },
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
          200: {
            type: 'object',
            description: 'a page of events',
            required: ['events'],
            additionalProperties: false,
            properties: {
              events: { type: 'array', description: 'the events', items: searchItemSchema },
              nextCursor: {
                type: 'string',
                description: 'pass as cursor for the next page; absent on the last',
              },
            },
          },
        },
        description: "Search the events of the key's tenant, newest first, with cursor pagination.",
        tags: ['query'],
        querystring: searchQuerySchema,
        security: [{ bearer: [] }],
      },
    },
    async (request) => {
      const q = request.query as Record<string, unknown>;
      const filters: Mutable<SearchFilters> = filtersOfQuery(q);
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
      // One meta-audit event per search: its first page. Later pages need a cursor this server
      // signed for the same filters (search.ts), so they belong to the recorded search. A search
      // of restricted events was recorded above, as that.
      if (filters.cursor === undefined && filters.includeRestricted !== true) {
        const key = request.vigilKey;
        await recordSearch(
          options.recorder,
          request,
          tenant,
          key?.keyId ?? '',
          searchChange(SEARCH_ACTIONS.searched, tenant, filters),
        );
      }
      return searchEvents(
        store,
        tenant,
        filters,
        options.links ? { cursorMac: options.links } : {},
      );
    },
  );
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
