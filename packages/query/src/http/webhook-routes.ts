import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SEVERITIES, type Severity } from '@vigil/detect';
import type { KeyRegistry } from '../auth/registry.js';
import { QueryError, QueryErrorCodes } from '../errors.js';
import {
  recordThenApply as recordChangeThenApply,
  type AdminChange,
  type ChangeRecorder,
} from '../system/changes.js';
import type { Delivery, DeliveryOutbox } from '../webhooks/outbox.js';
import { renderBody, testEvent } from '../webhooks/payload.js';
import type { WebhookSender } from '../webhooks/sender.js';
import { newWebhookSecret } from '../webhooks/signature.js';
import { UrlRefused, type AddressGuard } from '../webhooks/ssrf.js';
import {
  newWebhookId,
  WEBHOOK_FORMATS,
  type Webhook,
  type WebhookFormat,
  type WebhookStore,
} from '../webhooks/store.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { noQuery, openAnswer, tenantMember } from './schemas.js';

export interface WebhookRoutesOptions {
  readonly registry: KeyRegistry;
  readonly webhooks: WebhookStore;
  readonly outbox: DeliveryOutbox;
  /** Checks URLs when configured (the sender checks again at each connection). */
  readonly guard: AddressGuard;
  /** Sends test deliveries. */
  readonly sender: Pick<WebhookSender, 'send'>;
  /** Every change is an audit event of the tenant, recorded before it is made. */
  readonly recorder: ChangeRecorder;
  /** Called after dead letters were re-driven (wakes the dispatcher). */
  readonly queued?: () => void;
  readonly onAuthFailure?: AuthObserver;
}

const createSchema = {
  type: 'object',
  required: ['url'],
  properties: {
    url: {
      type: 'string',
      minLength: 1,
      maxLength: 2048,
      description: 'http(s) URL on a public address (or one the operator allows)',
    },
    secret: {
      type: 'string',
      minLength: 24,
      maxLength: 256,
      description: 'signing secret; absent: Vigil generates one (shown once in the answer)',
    },
    format: { type: 'string', enum: [...WEBHOOK_FORMATS], description: 'default vigil' },
    minSeverity: { type: 'string', enum: [...SEVERITIES], description: 'default low' },
    enabled: { type: 'boolean', description: 'default true' },
    description: { type: 'string', maxLength: 200 },
  },
  additionalProperties: false,
} as const;

const updateSchema = {
  type: 'object',
  minProperties: 1,
  properties: {
    format: createSchema.properties.format,
    minSeverity: createSchema.properties.minSeverity,
    enabled: createSchema.properties.enabled,
    description: createSchema.properties.description,
  },
  additionalProperties: false,
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^wh_[0-9a-f]{16}$' } },
  additionalProperties: false,
} as const;

const redriveSchema = {
  type: 'object',
  properties: {
    ids: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      uniqueItems: true,
      items: { type: 'string', pattern: '^whd_[0-9a-f]{24}$' },
      description: 'the dead letters to re-drive',
    },
    all: { type: 'boolean', description: 'every dead letter of the tenant (or of webhook)' },
    webhook: { type: 'string', pattern: '^wh_[0-9a-f]{16}$' },
  },
  additionalProperties: false,
} as const;

/** A URL in an audit event: its origin and a digest, never its path (Slack's holds a secret). */
function urlMetadata(url: string): { origin: string; urlSha256: string } {
  return {
    origin: new URL(url).origin,
    urlSha256: createHash('sha256').update(url).digest('hex'),
  };
}

function deliveryView(d: Delivery): Record<string, unknown> {
  return {
    id: d.id,
    webhookId: d.webhookId,
    eventId: d.eventId,
    eventType: d.eventType,
    state: d.state,
    attempts: d.attempts,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    createdAt: new Date(d.createdAt).toISOString(),
    updatedAt: new Date(d.updatedAt).toISOString(),
  };
}

function webhookView(w: Webhook): Record<string, unknown> {
  return {
    id: w.id,
    url: w.url,
    format: w.format,
    minSeverity: w.minSeverity,
    enabled: w.enabled,
    description: w.description,
    createdAt: new Date(w.createdAt).toISOString(),
    createdBy: w.createdBy,
  };
}

/**
 * Webhooks of the key's tenant (scope `admin`): `GET|POST /v1/webhooks`,
 * `PATCH|DELETE /v1/webhooks/:id`, `POST /v1/webhooks/:id/test`, `GET /v1/webhooks/dead-letters`,
 * `POST /v1/webhooks/dead-letters/redrive`. The tenant comes from the key alone; a webhook or
 * delivery of another tenant answers 404. Secrets appear only in the answer that creates them.
 */
export function registerWebhookRoutes(app: FastifyInstance, options: WebhookRoutesOptions): void {
  const { webhooks, outbox, guard, recorder } = options;
  const admin = requireScope(options.registry, 'admin', options.onAuthFailure);
  const tags = ['webhooks'];
  const security = [{ bearer: [] }];

  const who = (request: FastifyRequest): { tenant: string; keyId: string } => ({
    tenant: tenantOf(request),
    keyId: request.vigilKey?.keyId ?? '',
  });

  const recordThenApply = <T>(
    request: FastifyRequest,
    change: AdminChange,
    apply: () => Promise<T>,
  ): Promise<T> => {
    const { tenant, keyId } = who(request);
    return recordChangeThenApply((c) => recorder.record(tenant, keyId, c), change, apply, {
      failed: (recorded) => ({ recordedEventId: recorded.id }),
      unrecorded: (failure) =>
        request.log.error({ err: failure, change: change.action }, 'unrecorded webhook change'),
    });
  };

  app.get(
    '/v1/webhooks',
    {
      onRequest: admin,
      schema: {
        description: "The tenant's webhooks (never their secrets).",
        tags,
        security,
        querystring: noQuery,
        response: {
          200: openAnswer('webhooks', {
            tenant: tenantMember,
            webhooks: { type: 'array', description: 'the webhooks, oldest first' },
          }),
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      return { tenant, webhooks: (await webhooks.list(tenant)).map(webhookView) };
    },
  );

  app.post(
    '/v1/webhooks',
    {
      onRequest: admin,
      schema: {
        description:
          'Adds a webhook: alerts of the tenant at or above minSeverity are POSTed to url, signed (Vigil-Signature). The URL must be http(s) on a public address unless the operator allows it. The secret is in this answer only.',
        tags,
        security,
        body: createSchema,
        response: {
          201: openAnswer('the webhook, and its secret (shown this once)', {
            tenant: tenantMember,
            webhook: 'the webhook',
            secret: { type: 'string', description: 'signs every delivery; shown only here' },
          }),
        },
      },
    },
    async (request, reply) => {
      const { tenant, keyId } = who(request);
      const body = request.body as {
        url: string;
        secret?: string;
        format?: WebhookFormat;
        minSeverity?: Severity;
        enabled?: boolean;
        description?: string;
      };
      try {
        await guard.checkUrl(body.url);
      } catch (error) {
        if (!(error instanceof UrlRefused)) throw error;
        throw new QueryError(
          QueryErrorCodes.WEBHOOK_URL_REFUSED,
          `webhook URL refused: ${error.message}`,
          { status: 400, details: [{ path: '/body/url', message: error.message }] },
        );
      }
      const secret = body.secret ?? newWebhookSecret();
      const id = newWebhookId();
      const spec = {
        url: body.url,
        secret,
        format: body.format ?? 'vigil',
        minSeverity: body.minSeverity ?? 'low',
        enabled: body.enabled ?? true,
        description: body.description ?? '',
      } as const;
      const webhook = await recordThenApply(
        request,
        {
          action: 'webhook.created',
          target: { type: 'webhook', id },
          metadata: {
            ...urlMetadata(spec.url),
            format: spec.format,
            minSeverity: spec.minSeverity,
            enabled: spec.enabled,
            secret: body.secret === undefined ? 'generated' : 'supplied',
          },
        },
        () => webhooks.create(tenant, spec, keyId, id),
      );
      return reply
        .status(201)
        .header('cache-control', 'no-store')
        .send({ tenant, webhook: webhookView(webhook), secret });
    },
  );

  app.patch(
    '/v1/webhooks/:id',
    {
      onRequest: admin,
      schema: {
        description:
          'Changes a webhook: enable or disable it, its minimum severity, format or description (not its URL or secret: create a new webhook for those).',
        tags,
        security,
        params: idParams,
        body: updateSchema,
        response: {
          200: openAnswer('the webhook as it is now', { tenant: tenantMember, webhook: 'it' }),
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const { id } = request.params as { id: string };
      const change = request.body as {
        format?: WebhookFormat;
        minSeverity?: Severity;
        enabled?: boolean;
        description?: string;
      };
      const existing = await webhooks.get(tenant, id);
      const updated = await recordThenApply(
        request,
        {
          action: 'webhook.updated',
          target: { type: 'webhook', id },
          metadata: { ...urlMetadata(existing.url), ...change },
        },
        () => webhooks.update(tenant, id, change),
      );
      return { tenant, webhook: webhookView(updated) };
    },
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      onRequest: admin,
      schema: {
        description:
          'Deletes a webhook: nothing more is sent to it; its queued deliveries become dead letters.',
        tags,
        security,
        params: idParams,
        response: {
          200: openAnswer('the deleted webhook', { tenant: tenantMember, webhook: 'it' }),
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const { id } = request.params as { id: string };
      // Unknown (or another tenant's) ids are refused before anything is recorded.
      const existing = await webhooks.get(tenant, id);
      const deleted = await recordThenApply(
        request,
        {
          action: 'webhook.deleted',
          target: { type: 'webhook', id },
          metadata: urlMetadata(existing.url),
        },
        () => webhooks.delete(tenant, id),
      );
      return { tenant, webhook: webhookView(deleted) };
    },
  );

  app.post(
    '/v1/webhooks/:id/test',
    {
      onRequest: admin,
      schema: {
        description:
          'Sends a signed test event (type webhook.test) to the webhook now, once, and says how the receiver answered.',
        tags,
        security,
        params: idParams,
        body: {
          type: 'object',
          description: 'an empty JSON object',
          properties: {},
          additionalProperties: false,
        },
        response: {
          200: openAnswer('how the receiver answered', {
            tenant: tenantMember,
            delivered: { type: 'boolean', description: 'the receiver answered 2xx' },
            status: { type: 'integer', description: 'its HTTP status (0: no answer)' },
            error: { type: 'string', description: 'why it failed' },
          }),
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const { id } = request.params as { id: string };
      const hook = await webhooks.get(tenant, id);
      const event = testEvent(tenant, id, Date.now());
      // Sending to a URL is an action of the tenant's admin: recorded like a change.
      const result = await recordThenApply(
        request,
        {
          action: 'webhook.tested',
          target: { type: 'webhook', id },
          metadata: urlMetadata(hook.url),
        },
        () =>
          options.sender.send({
            url: hook.url,
            secret: hook.secret,
            body: renderBody(hook.format, event),
            eventId: event.id,
            deliveryId: `whd_test_${id.slice(3)}`,
          }),
      );
      return {
        tenant,
        delivered: result.ok,
        status: result.status,
        ...(result.ok ? {} : { error: result.error }),
      };
    },
  );

  app.get(
    '/v1/webhooks/dead-letters',
    {
      onRequest: admin,
      schema: {
        description:
          'Deliveries that failed every attempt (or were queued while the outbox was full), newest first.',
        tags,
        security,
        querystring: {
          type: 'object',
          properties: {
            webhook: { type: 'string', pattern: '^wh_[0-9a-f]{16}$' },
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
          },
          additionalProperties: false,
        },
        response: {
          200: openAnswer('dead letters', {
            tenant: tenantMember,
            deliveries: { type: 'array', description: 'the dead letters' },
          }),
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const q = request.query as { webhook?: string; limit?: string };
      const deliveries = await outbox.list(tenant, 'dead', {
        ...(q.webhook !== undefined ? { webhookId: q.webhook } : {}),
        limit: q.limit ? Number(q.limit) : 100,
      });
      return { tenant, deliveries: deliveries.map(deliveryView) };
    },
  );

  app.post(
    '/v1/webhooks/dead-letters/redrive',
    {
      onRequest: admin,
      schema: {
        description:
          'Queues dead letters again (ids, or all of the tenant or of one webhook) with a fresh count of attempts.',
        tags,
        security,
        body: redriveSchema,
        response: {
          200: openAnswer('the deliveries queued again', {
            tenant: tenantMember,
            deliveries: { type: 'array', description: 'the deliveries queued again' },
          }),
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const body = request.body as { ids?: string[]; all?: boolean; webhook?: string };
      if ((body.ids === undefined) === (body.all !== true))
        throw new QueryError(QueryErrorCodes.INVALID_QUERY, 'give either ids or all: true', {
          status: 400,
          details: [{ path: '/body/ids', message: 'give either ids or all: true' }],
        });
      const ids = body.ids ?? 'all';
      // Ids that are not dead letters of this tenant are refused before anything is recorded.
      if (ids !== 'all') await outbox.deadLetters(tenant, ids);
      const redriven = await recordThenApply(
        request,
        {
          action: 'webhook.deliveries_redriven',
          target: { type: 'tenant', id: tenant },
          metadata: {
            ids: ids === 'all' ? 'all' : ids,
            ...(body.webhook !== undefined ? { webhook: body.webhook } : {}),
          },
        },
        () => outbox.redrive(tenant, ids, body.webhook),
      );
      if (redriven.length > 0) options.queued?.();
      return { tenant, deliveries: redriven.map(deliveryView) };
    },
  );
}
