import type { FastifyInstance, FastifyRequest } from 'fastify';
import { CATEGORIES, type Category, type EventInput } from '@vigil/protocol';
import type { KeyRegistry } from '../auth/registry.js';
import type { Store } from '../store/store.js';
import { MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, type RetentionDays } from '../retention/expiry.js';
import { LegalHolds, newHoldId } from '../retention/holds.js';
import {
  RetentionPolicies,
  type AppliedPolicy,
  type PolicyChange,
  type PolicyUpdate,
} from '../retention/policies.js';
import { recordThenApply as recordChangeThenApply } from '../system/changes.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { noQuery, openAnswer, tenantMember } from './schemas.js';

/**
 * Records a change made through the admin API as an audit event of the tenant, on behalf of
 * the key that made it; resolves once the event is durable. The process that serves the API
 * decides where such events go (the system recorder of the collector appends them to the
 * tenant's system stream).
 */
export type RecordChange = (
  tenantId: string,
  actorKeyId: string,
  event: EventInput,
) => Promise<void>;

export interface RetentionRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  /** The configured default days per category (config `retention`). */
  readonly defaults: RetentionDays;
  readonly recordChange: RecordChange;
  /** How long sinks may keep using a policy they loaded (sink.policyRefreshSeconds). */
  readonly refreshSeconds?: number;
  /**
   * The values a person's id has in stored rows besides itself (its pseudonyms, where the tenant
   * pseudonymises ids), so holds cover those rows too.
   */
  readonly subjectForms?: (tenant: string, subject: string) => Promise<readonly string[]>;
  readonly onAuthFailure?: AuthObserver;
}

const daysValue = {
  type: 'integer',
  nullable: true,
  minimum: MIN_RETENTION_DAYS,
  maximum: MAX_RETENTION_DAYS,
} as const;

const putSchema = {
  type: 'object',
  required: ['days'],
  properties: {
    days: {
      type: 'object',
      description: 'days per category; null returns a category to the configured default',
      properties: Object.fromEntries(CATEGORIES.map((c) => [c, daysValue])),
      additionalProperties: false,
    },
    reason: { type: 'string', maxLength: 1000 },
  },
  additionalProperties: false,
} as const;

const applySchema = {
  type: 'object',
  required: ['categories'],
  properties: {
    categories: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', enum: [...CATEGORIES] },
      description: 'the categories whose current period is re-applied to stored events',
    },
  },
  additionalProperties: false,
} as const;

const holdSchema = {
  type: 'object',
  required: ['reason'],
  properties: {
    subject: {
      type: 'string',
      minLength: 1,
      maxLength: 256,
      description: "a person's id (actor, target or access subject); absent: the whole tenant",
    },
    reason: { type: 'string', minLength: 1, maxLength: 1000 },
  },
  additionalProperties: false,
} as const;

const releaseSchema = {
  type: 'object',
  properties: { reason: { type: 'string', maxLength: 1000 } },
  additionalProperties: false,
} as const;

const APPLY_COST =
  'Re-applying rewrites the expires_at column of every stored part holding such events (a ClickHouse mutation, waited for); events then past their expiry and not held are deleted by that rewrite.';

/** The admin key that made a request: its tenant and its id. */
function who(request: FastifyRequest): { tenant: string; keyId: string } {
  const tenant = tenantOf(request);
  return { tenant, keyId: request.vigilKey?.keyId ?? '' };
}

const apiKeyActor = (keyId: string): EventInput['actor'] => ({ type: 'api_key', id: keyId });

/**
 * Retention policies and legal holds of the key's tenant (scope `admin`):
 * `GET|PUT /v1/admin/retention`, `GET /v1/admin/retention/history`,
 * `POST /v1/admin/retention/apply`, `GET|POST /v1/admin/holds`,
 * `POST /v1/admin/holds/:id/release`. Like the tenant and key changes of the admin API, every
 * change is recorded with `recordChange` before it is made, so none happens without its event:
 * when recording fails the change is refused, and when the change fails after its event was
 * recorded, a second event with outcome `error` says so. (The append-only tables
 * `retention_policies` and `legal_holds` keep the changes themselves as well.)
 */
export function registerRetentionRoutes(
  app: FastifyInstance,
  options: RetentionRoutesOptions,
): void {
  const policies = new RetentionPolicies(options.store, options.defaults);
  const holds = new LegalHolds(options.store);
  const admin = requireScope(options.registry, 'admin', options.onAuthFailure);
  const refreshSeconds = options.refreshSeconds ?? 10;
  const tags = ['retention'];
  const security = [{ bearer: [] }];

  const recordThenApply = <T>(
    tenant: string,
    keyId: string,
    event: EventInput,
    apply: () => Promise<T>,
  ): Promise<T> =>
    recordChangeThenApply((e) => options.recordChange(tenant, keyId, e), event, apply);

  const applyAll = async (
    tenant: string,
    keyId: string,
    categories: readonly Category[],
  ): Promise<AppliedPolicy[]> => {
    const policy = await policies.policy(tenant);
    const applied: AppliedPolicy[] = [];
    for (const category of categories) {
      const { days } = policy[category];
      applied.push(
        await recordThenApply(
          tenant,
          keyId,
          {
            action: 'retention.policy_applied',
            category: 'admin',
            outcome: 'success',
            actor: apiKeyActor(keyId),
            target: { type: 'tenant', id: tenant },
            metadata: { category, days },
          },
          () => policies.applyToStored(tenant, category, days),
        ),
      );
    }
    return applied;
  };

  app.get(
    '/v1/admin/retention',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer(
            "retention days per category, and whether each is the tenant's own value or the default",
            {
              tenant: tenantMember,
              policy: 'per category: days and source',
              refreshSeconds: { type: 'number', description: 'how soon a change reaches the sink' },
            },
          ),
        },
        description:
          "The key's tenant's retention: days per category and whether each is the tenant's own value or the configured default.",
        tags,
        security,
        querystring: noQuery,
      },
    },
    async (request) => {
      const { tenant } = who(request);
      return { tenant, policy: await policies.policy(tenant), refreshSeconds };
    },
  );

  app.put(
    '/v1/admin/retention',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('the retention now in force and the changes made', {
            tenant: tenantMember,
            policy: 'per category: days and source',
            changes: { type: 'array', description: 'the changes made' },
            applied: 'with apply: what the new periods removed',
            refreshSeconds: { type: 'number', description: 'how soon a change reaches the sink' },
          }),
        },
        description: `Changes days per category (null: back to the default). New events get the new period within refreshSeconds; stored events keep theirs unless ?apply=stored. ${APPLY_COST}`,
        tags,
        security,
        body: putSchema,
        querystring: {
          type: 'object',
          properties: { apply: { type: 'string', enum: ['stored'] } },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { tenant, keyId } = who(request);
      const body = request.body as { days: PolicyUpdate; reason?: string };
      const changes = await policies.plan(tenant, body.days, keyId, body.reason ?? '');
      if (changes.length > 0) {
        await recordThenApply(
          tenant,
          keyId,
          {
            action: 'retention.policy_changed',
            category: 'admin',
            outcome: 'success',
            actor: apiKeyActor(keyId),
            target: { type: 'tenant', id: tenant },
            metadata: { changes: changes.map(changeMetadata), reason: body.reason ?? '' },
          },
          () => policies.write(changes),
        );
      }
      const apply = (request.query as { apply?: string }).apply === 'stored';
      const applied = apply
        ? await applyAll(
            tenant,
            keyId,
            changes.map((c) => c.category),
          )
        : [];
      return {
        tenant,
        policy: await policies.policy(tenant),
        changes,
        ...(apply ? { applied } : {}),
        refreshSeconds,
      };
    },
  );

  app.get(
    '/v1/admin/retention/history',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('changes of the retention, newest first', {
            tenant: tenantMember,
            changes: { type: 'array', description: 'retention changes' },
          }),
        },
        description:
          "Every recorded change of the tenant's retention policy, newest first (who, when, old and new days, why).",
        tags,
        security,
        querystring: {
          type: 'object',
          properties: { limit: { type: 'string', pattern: '^[1-9][0-9]{0,4}$' } },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const limit = (request.query as { limit?: string }).limit;
      return { tenant, changes: await policies.history(tenant, limit ? Number(limit) : 1000) };
    },
  );

  app.post(
    '/v1/admin/retention/apply',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('what applying the retention removed', {
            tenant: tenantMember,
            applied: 'per category',
          }),
        },
        description: `Re-applies the current period of the given categories to the tenant's stored events. ${APPLY_COST}`,
        tags,
        security,
        body: applySchema,
      },
    },
    async (request) => {
      const { tenant, keyId } = who(request);
      const { categories } = request.body as { categories: Category[] };
      return { tenant, applied: await applyAll(tenant, keyId, categories) };
    },
  );

  app.get(
    '/v1/admin/holds',
    {
      onRequest: admin,
      schema: {
        response: {
          200: openAnswer('legal holds of this tenant', {
            tenant: tenantMember,
            holds: { type: 'array', description: 'active holds, or all' },
          }),
        },
        description: "The tenant's active legal holds (with ?all=true, released ones too).",
        tags,
        security,
        querystring: {
          type: 'object',
          properties: { all: { type: 'string', enum: ['true', 'false'] } },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { tenant } = who(request);
      const all = (request.query as { all?: string }).all === 'true';
      return { tenant, holds: await holds.list(tenant, { all }) };
    },
  );

  app.post(
    '/v1/admin/holds',
    {
      onRequest: admin,
      schema: {
        response: { 201: openAnswer('the legal hold placed', { tenant: tenantMember }) },
        description:
          'Places a legal hold on the whole tenant or on one subject (a person id matched as actor, target or access subject): covered events are not deleted while it is active. Flags the stored events at once (a mutation, waited for); events already past their expiry are not saved.',
        tags,
        security,
        body: holdSchema,
      },
    },
    async (request, reply) => {
      const { tenant, keyId } = who(request);
      const body = request.body as { subject?: string; reason: string };
      const id = newHoldId();
      const placed = await recordThenApply(
        tenant,
        keyId,
        {
          action: 'legal_hold.placed',
          category: 'admin',
          outcome: 'success',
          actor: apiKeyActor(keyId),
          target: holdTarget(tenant, body.subject ?? null),
          metadata: {
            holdId: id,
            scope: body.subject === undefined ? 'tenant' : 'subject',
            reason: body.reason,
          },
        },
        async () =>
          holds.place(
            tenant,
            {
              ...body,
              ...(body.subject !== undefined && options.subjectForms
                ? { forms: await options.subjectForms(tenant, body.subject) }
                : {}),
            },
            keyId,
            id,
          ),
      );
      return reply.status(201).send({ tenant, ...placed });
    },
  );

  app.post(
    '/v1/admin/holds/:id/release',
    {
      onRequest: admin,
      schema: {
        response: { 200: openAnswer('the legal hold, released', { tenant: tenantMember }) },
        description:
          'Releases a legal hold: the events no other active hold covers expire again as their policy says (a mutation, waited for).',
        tags,
        security,
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^hold_[0-9a-f]{16}$' } },
        },
        body: releaseSchema,
      },
    },
    async (request) => {
      const { tenant, keyId } = who(request);
      const { id } = request.params as { id: string };
      const reason = (request.body as { reason?: string } | undefined)?.reason ?? '';
      // A hold that is not there, or no longer active, is refused before anything is recorded.
      const existing = await holds.releasable(tenant, id);
      const released = await recordThenApply(
        tenant,
        keyId,
        {
          action: 'legal_hold.released',
          category: 'admin',
          outcome: 'success',
          actor: apiKeyActor(keyId),
          target: holdTarget(tenant, existing.subject),
          metadata: {
            holdId: id,
            scope: existing.subject === null ? 'tenant' : 'subject',
            reason,
          },
        },
        () =>
          holds.release(tenant, id, keyId, reason, async (subject) => [
            subject,
            ...((await options.subjectForms?.(tenant, subject)) ?? []),
          ]),
      );
      return { tenant, ...released };
    },
  );
}

/** A subject hold is about a person: `person` targets are committed (PROTOCOL.md §5.1). */
function holdTarget(tenant: string, subject: string | null): NonNullable<EventInput['target']> {
  return subject === null ? { type: 'tenant', id: tenant } : { type: 'person', id: subject };
}

function changeMetadata(c: PolicyChange): { [key: string]: string | number | null } {
  return {
    category: c.category,
    previousDays: c.previousEffectiveDays,
    days: c.effectiveDays,
    previousSource: c.previousDays === null ? 'default' : 'tenant',
    source: c.days === null ? 'default' : 'tenant',
  };
}
