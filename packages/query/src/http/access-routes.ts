import type { FastifyInstance } from 'fastify';
import { REVIEW_FLAG_MEANINGS, REVIEW_FLAGS, type ReviewPolicy } from '../access/policy.js';
import { AccessReviewer, type ReviewScope } from '../access/review.js';
import {
  parseAsOf,
  REVIEW_COLUMNS,
  REVIEW_FORMATS,
  reviewFile,
  type ReviewFormat,
} from '../access/export.js';
import type { KeyRegistry } from '../auth/registry.js';
import { QueryError, QueryErrorCodes } from '../errors.js';
import type { PrivacyService } from '../privacy/service.js';
import type { Store } from '../store/store.js';
import type { ChangeRecorder } from '../system/changes.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { fileAnswer, noQuery, openAnswer } from './schemas.js';

/**
 * Access reviews over HTTP (scope `query`; the tenant comes from the key): the rights held at an
 * instant, with use and flags, as CSV, JSON or NDJSON (access/export.ts). Every review is an
 * audit event of the tenant, recorded before anything is shown; it names the restricted subjects
 * it shows (GDPR Art. 18: each view of a restricted person is recorded) by their keyed digests.
 */

export interface AccessRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  readonly privacy: PrivacyService;
  readonly recorder: ChangeRecorder;
  readonly policy: ReviewPolicy;
  readonly onAuthFailure?: AuthObserver;
}

const reviewQuerySchema = {
  type: 'object',
  required: ['asOf'],
  additionalProperties: false,
  properties: {
    asOf: {
      type: 'string',
      description:
        'the instant: YYYY-MM-DD (the end of that day, UTC) or an RFC 3339 UTC time with milliseconds',
    },
    format: { type: 'string', enum: [...REVIEW_FORMATS], description: 'default csv' },
    bom: {
      type: 'string',
      enum: ['true', 'false'],
      description: 'CSV: start with a UTF-8 byte order mark (for Excel)',
    },
    right: { type: 'string', maxLength: 2048, description: 'comma-separated roles or permissions' },
    resourceType: { type: 'string', maxLength: 64 },
    resourceId: { type: 'string', maxLength: 256 },
  },
} as const;

export function registerAccessRoutes(app: FastifyInstance, options: AccessRoutesOptions): void {
  const query = requireScope(options.registry, 'query', options.onAuthFailure);
  const reviewer = new AccessReviewer(options.store, options.privacy, options.policy);
  const tags = ['access'];
  const security = [{ bearer: [] }];

  app.get(
    '/v1/access/review',
    {
      onRequest: query,
      schema: {
        querystring: reviewQuerySchema,
        response: {
          200: fileAnswer('the review: who held which right at asOf, its use and its flags', [
            'text/csv',
            'application/json',
            'application/x-ndjson',
          ]),
        },
        description:
          'An access review as of an instant: every role and permission held then (from the access projection, kept past the events’ retention), how it was granted, its last use (used / not_used since tracking began / no_data) and its flags with their explanations. The review is recorded as an audit event of the tenant; restricted subjects are shown, marked, and named in that event.',
        tags,
        security,
      },
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const q = request.query as Record<string, string | undefined>;
      const asOf = parseAsOf(q['asOf'] ?? '');
      if (asOf === undefined)
        throw new QueryError(
          QueryErrorCodes.INVALID_QUERY,
          'asOf must be a date YYYY-MM-DD or a time like 2026-03-31T23:59:59.999Z',
          { status: 400, details: [{ path: '/asOf', message: 'is not a real date or time' }] },
        );
      const rights = (q['right'] ?? '')
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean);
      const scope: ReviewScope = {
        ...(rights.length > 0 ? { rights } : {}),
        ...(q['resourceType'] !== undefined ? { resourceType: q['resourceType'] } : {}),
        ...(q['resourceId'] !== undefined ? { resourceId: q['resourceId'] } : {}),
      };
      const format = (q['format'] ?? 'csv') as ReviewFormat;
      const snapshot = await reviewer.snapshot(tenant, asOf, scope);
      // Recorded before anything is shown: a review that cannot be recorded is not answered.
      await options.recorder.record(tenant, request.vigilKey?.keyId ?? '', {
        action: 'access_review.viewed',
        category: 'data_access',
        target: { type: 'tenant', id: tenant },
        metadata: {
          asOf: new Date(asOf).toISOString(),
          format,
          scope: {
            rights,
            resourceType: q['resourceType'] ?? null,
            resourceId: q['resourceId'] ?? null,
          },
          rows: snapshot.rows.length,
          restrictedSubjects: [...snapshot.restrictedSubjects],
        },
      });
      const file = reviewFile(snapshot, format, { bom: q['bom'] === 'true' });
      return reply
        .header('content-type', file.contentType)
        .header('x-vigil-rows', String(snapshot.rows.length))
        .send(file.body);
    },
  );

  app.get(
    '/v1/access/columns',
    {
      onRequest: query,
      schema: {
        querystring: noQuery,
        response: {
          200: openAnswer('the columns of the review CSV and the meaning of each flag', {
            columns: 'name and meaning of each CSV column, in order',
            flags: 'each flag and what it means',
            enabled: 'the flags this server reports (access.flags)',
          }),
        },
        description: 'What the columns and flags of an access review mean.',
        tags,
        security,
      },
    },
    () => ({
      columns: REVIEW_COLUMNS.map(([name, meaning]) => ({ name, meaning })),
      flags: REVIEW_FLAGS.map((f) => ({ flag: f, meaning: REVIEW_FLAG_MEANINGS[f] })),
      enabled: [...options.policy.flags],
    }),
  );
}
