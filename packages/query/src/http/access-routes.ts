import type { FastifyInstance, preValidationHookHandler } from 'fastify';
import type { JsonObject } from '@vigil/protocol';
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
import { recordThenApply, type AdminChange, type ChangeRecorder } from '../system/changes.js';
import { parse as parseCsv } from 'csv-parse/sync';
import {
  DECISIONS,
  newCampaignId,
  ReviewCampaigns,
  type Campaign,
  type DecisionInput,
  type StoredDecision,
} from '../access/campaigns.js';
import type { DocumentSigner } from '../privacy/export.js';
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
  /** Signs the manifests of evidence packs; without it a campaign cannot be closed (503). */
  readonly signer?: DocumentSigner;
  readonly onAuthFailure?: AuthObserver;
}

/** A POST without a body validates as `{}`: the body schema then says what may be in it. */
const emptyBodyIsObject: preValidationHookHandler = (request, _reply, done) => {
  if (request.body === undefined || request.body === null) request.body = {};
  done();
};

/** Decisions per request. */
const MAX_DECISIONS = 10_000;
const MAX_CSV_BYTES = 16 * 1024 * 1024;

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

  // ---- campaigns (scope admin) -----------------------------------------------------------------

  const admin = requireScope(options.registry, 'admin', options.onAuthFailure);
  const campaigns = new ReviewCampaigns(options.store, reviewer);
  const reviewTags = ['reviews'];
  const record = (tenant: string, keyId: string, change: AdminChange) =>
    options.recorder.record(tenant, keyId, change);
  const who = (request: { vigilKey?: { keyId: string } }): string => request.vigilKey?.keyId ?? '';
  const found = async (tenant: string, id: string): Promise<Campaign> => {
    const campaign = await campaigns.get(tenant, id);
    if (!campaign)
      throw new QueryError(
        QueryErrorCodes.REVIEW_NOT_FOUND,
        `no review campaign ${id} in this tenant`,
        { status: 404 },
      );
    return campaign;
  };
  const open = (campaign: Campaign): void => {
    if (campaign.status === 'closed')
      throw new QueryError(
        QueryErrorCodes.REVIEW_CLOSED,
        `review campaign ${campaign.id} was closed at ${new Date(campaign.closedAt ?? 0).toISOString()}`,
        { status: 409 },
      );
  };
  const campaignJson = (c: Campaign) => ({
    id: c.id,
    asOf: new Date(c.asOf).toISOString(),
    scope: c.scope,
    status: c.status,
    startedAt: new Date(c.startedAt).toISOString(),
    startedBy: c.startedBy,
    closedAt: c.closedAt === null ? null : new Date(c.closedAt).toISOString(),
  });
  const idParams = {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', pattern: '^rev_[0-9a-f]{16}$' } },
  } as const;

  app.post(
    '/v1/reviews',
    {
      onRequest: admin,
      schema: {
        body: {
          type: 'object',
          required: ['asOf'],
          additionalProperties: false,
          properties: {
            asOf: reviewQuerySchema.properties.asOf,
            right: {
              type: 'array',
              maxItems: 1000,
              items: { type: 'string', minLength: 1, maxLength: 256 },
            },
            resourceType: { type: 'string', minLength: 1, maxLength: 64 },
            resourceId: { type: 'string', minLength: 1, maxLength: 256 },
          },
        },
        response: {
          201: openAnswer('the campaign started', {
            campaign: 'id, asOf, scope, status, startedAt, startedBy',
            items: 'rights in its snapshot',
          }),
        },
        description:
          'Starts an access review campaign: snapshots the rights held at asOf (as GET /v1/access/review) for reviewers to decide on. Recorded as an audit event.',
        tags: reviewTags,
        security,
      },
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const body = request.body as {
        asOf: string;
        right?: string[];
        resourceType?: string;
        resourceId?: string;
      };
      const asOf = parseAsOf(body.asOf);
      if (asOf === undefined)
        throw new QueryError(
          QueryErrorCodes.INVALID_QUERY,
          'asOf must be a date YYYY-MM-DD or a time like 2026-03-31T23:59:59.999Z',
          { status: 400, details: [{ path: '/asOf', message: 'is not a real date or time' }] },
        );
      const scope: ReviewScope = {
        ...(body.right && body.right.length > 0 ? { rights: body.right } : {}),
        ...(body.resourceType !== undefined ? { resourceType: body.resourceType } : {}),
        ...(body.resourceId !== undefined ? { resourceId: body.resourceId } : {}),
      };
      const id = newCampaignId();
      const started = await recordThenApply(
        (c: AdminChange) => record(tenant, who(request), c),
        {
          action: 'access_review.started',
          target: { type: 'access_review', id },
          metadata: {
            campaign: id,
            asOf: new Date(asOf).toISOString(),
            scope: JSON.parse(JSON.stringify(scope)) as JsonObject,
          },
        },
        () => campaigns.start(tenant, asOf, scope, who(request), id),
      );
      return reply
        .status(201)
        .send({ campaign: campaignJson(started.campaign), items: started.snapshot.rows.length });
    },
  );

  app.get(
    '/v1/reviews',
    {
      onRequest: admin,
      schema: {
        querystring: noQuery,
        response: {
          200: openAnswer('the campaigns of the tenant, newest first', { campaigns: 'list' }),
        },
        description: "The tenant's access review campaigns.",
        tags: reviewTags,
        security,
      },
    },
    async (request) => ({
      campaigns: (await campaigns.list(tenantOf(request))).map(campaignJson),
    }),
  );

  app.get(
    '/v1/reviews/:id',
    {
      onRequest: admin,
      schema: {
        params: idParams,
        querystring: noQuery,
        response: {
          200: openAnswer('the campaign and what is still undecided', {
            campaign: 'the campaign',
            items: 'rights in its snapshot',
            decided: 'rights with a decision',
            undecided:
              'the rights still waiting for a decision (item, subjectKey, right, resource)',
          }),
        },
        description:
          'A campaign and its progress: the reminder of what is undecided (subjects by key only).',
        tags: reviewTags,
        security,
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const campaign = await found(tenant, (request.params as { id: string }).id);
      const items = await campaigns.items(tenant, campaign.id);
      const decided = await campaigns.decisions(tenant, campaign.id);
      return {
        campaign: campaignJson(campaign),
        items: items.length,
        decided: items.filter((i) => decided.has(i.itemId)).length,
        undecided: items
          .filter((i) => !decided.has(i.itemId))
          .map((i) => ({
            item: i.itemId,
            subjectKey: i.row.subjectKey,
            right: i.row.right,
            resourceType: i.row.resourceType,
            resourceId: i.row.resourceId,
          })),
      };
    },
  );

  app.get(
    '/v1/reviews/:id/worksheet',
    {
      onRequest: admin,
      schema: {
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { bom: reviewQuerySchema.properties.bom },
        },
        response: {
          200: fileAnswer(
            "the snapshot's rows with item_id, decision, reviewer, justification: fill the last three and upload it to /decisions",
            ['text/csv'],
          ),
        },
        description:
          'The worksheet of a campaign as CSV. Viewing it is recorded as an audit event naming the restricted subjects it shows.',
        tags: reviewTags,
        security,
      },
    },
    async (request, reply) => {
      const tenant = tenantOf(request);
      const campaign = await found(tenant, (request.params as { id: string }).id);
      const items = await campaigns.items(tenant, campaign.id);
      const restricted = [
        ...new Set(
          items.filter((i) => i.row.subjectState === 'restricted').map((i) => i.row.subjectKey),
        ),
      ].sort();
      await record(tenant, who(request), {
        action: 'access_review.viewed',
        category: 'data_access',
        target: { type: 'access_review', id: campaign.id },
        metadata: { campaign: campaign.id, rows: items.length, restrictedSubjects: restricted },
      });
      const bom = (request.query as { bom?: string }).bom === 'true';
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .send(await campaigns.worksheet(tenant, campaign, { bom }));
    },
  );

  void app.register((scoped, _opts, done) => {
    // The worksheet comes back as it was given out (csv-parse reads it: RFC 4180, BOM or not).
    scoped.addContentTypeParser(
      'text/csv',
      { parseAs: 'string', bodyLimit: MAX_CSV_BYTES },
      (_request, body, parsed) => parsed(null, body),
    );
    scoped.post(
      '/v1/reviews/:id/decisions',
      {
        onRequest: admin,
        bodyLimit: MAX_CSV_BYTES,
        schema: {
          params: idParams,
          querystring: noQuery,
          // The JSON form is checked in full by decisionProblems, which names every field.
          body: {
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['decisions'],
                  additionalProperties: false,
                  properties: {
                    decisions: {
                      type: 'array',
                      maxItems: MAX_DECISIONS,
                      items: { type: 'object' },
                      description: 'item, decision, reviewer, justification',
                    },
                  },
                },
              },
              'text/csv': {
                schema: {
                  type: 'string',
                  description: 'the worksheet (GET …/worksheet) with decisions filled in',
                },
              },
            },
          },
          response: {
            200: openAnswer('the decisions stored', {
              decided: 'decisions stored by this request',
              undecided: 'rights of the campaign still without a decision',
            }),
          },
          description: `Decisions on rights of an open campaign: JSON {"decisions":[{"item","decision":"${DECISIONS.join('|')}","reviewer","justification"}]}, or the worksheet as text/csv (rows without a decision are skipped). A revoke or modify needs a justification. Each decision is recorded as an audit event before it is stored; the latest decision on a right counts.`,
          tags: reviewTags,
          security,
        },
      },
      async (request) => {
        const tenant = tenantOf(request);
        const campaign = await found(tenant, (request.params as { id: string }).id);
        open(campaign);
        const input = decisionsOf(request.body, request.headers['content-type'] ?? '');
        const items = new Map(
          (await campaigns.items(tenant, campaign.id)).map((i) => [i.itemId, i.row]),
        );
        const problems = input.flatMap((d, k) =>
          decisionProblems(d.value, d.path ?? `/decisions/${k}`, items),
        );
        if (problems.length > 0)
          throw new QueryError(
            QueryErrorCodes.INVALID_QUERY,
            `${problems.length} decision${problems.length === 1 ? ' is' : 's are'} invalid; nothing was stored`,
            { status: 400, details: problems.slice(0, 100) },
          );
        const stored: StoredDecision[] = [];
        for (const { value } of input) {
          const d = value as DecisionInput;
          const row = items.get(d.item);
          // Each decision is its own audit event, durable before the decision is stored.
          const recorded = await record(tenant, who(request), {
            action: 'access_review.decided',
            target: { type: 'access_review', id: campaign.id },
            metadata: {
              campaign: campaign.id,
              item: d.item,
              subject: row?.subjectKey ?? '',
              right: row?.right ?? '',
              decision: d.decision,
              reviewer: d.reviewer,
              justification: d.justification,
            },
            // A reviewer's name and free text may identify people: committed, so erasable.
            personal: ['/metadata/justification', '/metadata/reviewer'],
          });
          stored.push({ ...d, decidedAt: Date.now(), keyId: who(request), eventId: recorded.id });
        }
        await campaigns.decide(tenant, campaign.id, stored);
        const decided = await campaigns.decisions(tenant, campaign.id);
        return {
          decided: stored.length,
          undecided: [...items.keys()].filter((i) => !decided.has(i)).length,
        };
      },
    );
    done();
  });

  app.post(
    '/v1/reviews/:id/close',
    {
      onRequest: admin,
      preValidation: emptyBodyIsObject,
      schema: {
        params: idParams,
        querystring: noQuery,
        body: { type: 'object', additionalProperties: false, properties: {} },
        response: {
          200: openAnswer('the evidence pack', {
            campaign: 'the campaign, closed',
            manifest: 'manifest.json: the signed SHA-256 of every file',
            files: 'file name → content (CSV)',
          }),
        },
        description:
          'Closes a campaign and returns its evidence pack: the snapshot at launch, the decisions, the state after remediation (revocations that really happened, from later access events, with their times), leavers against their removal, and a manifest with the SHA-256 of every file signed like checkpoints (vigil verify --evidence DIR --key KEY). Recorded as an audit event.',
        tags: reviewTags,
        security,
      },
    },
    async (request) => {
      const tenant = tenantOf(request);
      const campaign = await found(tenant, (request.params as { id: string }).id);
      open(campaign);
      const signer = options.signer;
      if (!signer)
        throw new QueryError(
          QueryErrorCodes.SIGNER_UNAVAILABLE,
          'this process has no signing key for evidence packs (checkpoint.signer); the campaign is still open',
          { status: 503 },
        );
      const now = Date.now();
      const pack = await recordThenApply(
        (c: AdminChange) => record(tenant, who(request), c),
        {
          action: 'access_review.closed',
          target: { type: 'access_review', id: campaign.id },
          metadata: { campaign: campaign.id, closedAt: new Date(now).toISOString() },
        },
        () => campaigns.close(tenant, campaign, signer, now),
      );
      return {
        campaign: campaignJson({ ...campaign, status: 'closed', closedAt: now }),
        manifest: pack.manifest,
        files: pack.files,
      };
    },
  );
}

/** Decisions of a request: JSON {decisions: […]} or the worksheet CSV; each with its path for errors. */
function decisionsOf(body: unknown, contentType: string): { value: unknown; path?: string }[] {
  if (contentType.startsWith('text/csv')) {
    let records: Record<string, string>[];
    try {
      records = parseCsv(String(body), {
        columns: true,
        bom: true,
        skip_empty_lines: true,
      }) as Record<string, string>[];
    } catch (error) {
      throw new QueryError(QueryErrorCodes.INVALID_QUERY, 'the CSV cannot be read', {
        status: 400,
        details: [{ path: '', message: (error as Error).message }],
      });
    }
    if (
      records.length > 0 &&
      !('item_id' in (records[0] ?? {}) && 'decision' in (records[0] ?? {}))
    )
      throw new QueryError(
        QueryErrorCodes.INVALID_QUERY,
        'the CSV has no item_id and decision columns',
        {
          status: 400,
          details: [
            { path: '/0', message: 'needs the columns item_id, decision, reviewer, justification' },
          ],
        },
      );
    // The header is line 1: a record's line number is its index + 2.
    const out = records
      .map((r, k) => ({
        value: {
          item: r['item_id'] ?? '',
          decision: r['decision'] ?? '',
          reviewer: r['reviewer'] ?? '',
          justification: r['justification'] ?? '',
        },
        path: `line ${k + 2}`,
      }))
      .filter((d) => d.value.decision !== '');
    if (out.length > MAX_DECISIONS) throw tooMany(out.length);
    return out;
  }
  const decisions = (body as { decisions?: unknown } | null)?.decisions;
  if (!Array.isArray(decisions))
    throw new QueryError(QueryErrorCodes.INVALID_QUERY, 'the body needs decisions, an array', {
      status: 400,
      details: [{ path: '/decisions', message: 'is required, an array' }],
    });
  if (decisions.length > MAX_DECISIONS) throw tooMany(decisions.length);
  return (decisions as unknown[]).map((value) => ({ value }));
}

function tooMany(n: number): QueryError {
  return new QueryError(
    QueryErrorCodes.INVALID_QUERY,
    `${n} decisions in one request; at most ${MAX_DECISIONS}`,
    { status: 400, details: [{ path: '/decisions', message: `at most ${MAX_DECISIONS}` }] },
  );
}

function decisionProblems(
  value: unknown,
  path: string,
  items: ReadonlyMap<string, unknown>,
): { path: string; message: string }[] {
  const d = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const out: { path: string; message: string }[] = [];
  const text = (name: string, max: number, required: boolean): void => {
    const v = d[name];
    if (v === undefined || v === '') {
      if (required) out.push({ path: `${path}/${name}`, message: 'is required' });
    } else if (typeof v !== 'string' || v.length > max)
      out.push({ path: `${path}/${name}`, message: `must be text of at most ${max} characters` });
  };
  if (typeof d['item'] !== 'string' || !items.has(d['item']))
    out.push({ path: `${path}/item`, message: 'is not a right of this campaign' });
  if (!(DECISIONS as readonly unknown[]).includes(d['decision']))
    out.push({ path: `${path}/decision`, message: `must be one of ${DECISIONS.join(', ')}` });
  text('reviewer', 256, true);
  text('justification', 1000, d['decision'] === 'revoke' || d['decision'] === 'modify');
  for (const k of Object.keys(d))
    if (!['item', 'decision', 'reviewer', 'justification'].includes(k))
      out.push({ path: `${path}/${k}`, message: 'is not allowed here' });
  return out;
}
