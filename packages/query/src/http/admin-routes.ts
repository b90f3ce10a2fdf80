import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  preValidationHookHandler,
} from 'fastify';
import type { JsonObject } from '@vigil/protocol';
import {
  OPERATOR_SCOPES,
  OPERATOR_TENANT,
  SCOPES,
  TENANT_SCOPES,
  type ApiKeyInfo,
  type KeyOptions,
  type Scope,
  type StoredKey,
  type Tenant,
  type TenantDirectory,
} from '../auth/keys.js';
import type { KeyRegistry } from '../auth/registry.js';
import { QueryError, QueryErrorCodes } from '../errors.js';
import {
  ADMIN_ACTIONS,
  recordThenApply as recordChangeThenApply,
  type AdminChange,
  type ChangeRecorder,
} from '../system/changes.js';
import { requireScope, type AuthObserver } from './auth.js';
import { described } from './schemas.js';

/**
 * The admin API: a tenant's `admin` keys manage that tenant's keys; `operator` keys (of the
 * reserved tenant `_operator`) manage tenants. Every change is recorded as an audit event in
 * the changed tenant's system stream before it is applied, and refused when it cannot be
 * recorded. A key id of another tenant answers exactly like one that does not exist.
 */
export interface AdminRoutesOptions {
  readonly directory: TenantDirectory;
  readonly registry: KeyRegistry;
  readonly recorder: ChangeRecorder;
  readonly onAuthFailure?: AuthObserver;
}

/** A key as the API shows it: never its digest, never its secret. */
export interface KeyView {
  readonly keyId: string;
  readonly tenantId: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly allowedIps: readonly string[];
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
  readonly rateLimitPerMinute: number | null;
  readonly status: 'active' | 'expired' | 'revoked';
}

export interface TenantView {
  readonly id: string;
  readonly name: string;
  readonly status: Tenant['status'];
  readonly createdAt: string;
}

/** Rotation keeps the old key usable this long unless the request says otherwise. */
export const DEFAULT_ROTATION_GRACE_SECONDS = 86_400;
const MAX_ROTATION_GRACE_SECONDS = 30 * 86_400;

const iso = (ms: number): string => new Date(ms).toISOString();

export function keyView(key: ApiKeyInfo, now = Date.now()): KeyView {
  return {
    keyId: key.keyId,
    tenantId: key.tenantId,
    name: key.name,
    scopes: key.scopes,
    allowedIps: key.allowedIps,
    createdAt: iso(key.createdAt),
    expiresAt: key.expiresAt === null ? null : iso(key.expiresAt),
    revokedAt: key.revokedAt === null ? null : iso(key.revokedAt),
    rateLimitPerMinute: key.rateLimitPerMinute,
    status:
      key.revokedAt !== null && key.revokedAt <= now
        ? 'revoked'
        : key.expiresAt !== null && key.expiresAt <= now
          ? 'expired'
          : 'active',
  };
}

export function tenantView(tenant: Tenant): TenantView {
  return {
    id: tenant.id,
    name: tenant.name,
    status: tenant.status,
    createdAt: iso(tenant.createdAt),
  };
}

// ---- JSON schemas: they validate requests (unknown members are refused) and document /docs.

const noQuery = { type: 'object', properties: {}, additionalProperties: false } as const;

const keyIdParams = {
  type: 'object',
  properties: {
    keyId: {
      type: 'string',
      pattern: '^[0-9a-f]{12}$',
      description: 'the key id: the 12 hex digits between vgl_ and the next _ of the key',
    },
  },
  required: ['keyId'],
  additionalProperties: false,
} as const;

const tenantIdParams = {
  type: 'object',
  properties: {
    id: {
      type: 'string',
      pattern: `^(${OPERATOR_TENANT}|[a-z0-9][a-z0-9_-]{0,62})$`,
      description: `tenant id (${OPERATOR_TENANT} for the operator keys themselves)`,
    },
  },
  required: ['id'],
  additionalProperties: false,
} as const;

const nullableTime = { type: ['string', 'null'], description: 'RFC 3339 UTC, or null' } as const;

const keySchema = {
  type: 'object',
  properties: {
    keyId: { type: 'string' },
    tenantId: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string', enum: SCOPES } },
    allowedIps: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string' },
    expiresAt: nullableTime,
    revokedAt: nullableTime,
    rateLimitPerMinute: { type: ['integer', 'null'] },
    status: { type: 'string', enum: ['active', 'expired', 'revoked'] },
  },
  required: [
    'keyId',
    'tenantId',
    'name',
    'scopes',
    'allowedIps',
    'createdAt',
    'expiresAt',
    'revokedAt',
    'rateLimitPerMinute',
    'status',
  ],
} as const;

const tenantSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string', enum: ['active', 'suspended'] },
    createdAt: { type: 'string' },
  },
  required: ['id', 'name', 'status', 'createdAt'],
} as const;

const secretSchema = {
  type: 'string',
  description: 'the API key itself; shown in this response only, Vigil keeps its digest',
} as const;

const createKeyBody = (scopes: readonly string[]) =>
  ({
    type: 'object',
    properties: {
      scopes: {
        type: 'array',
        items: { type: 'string', enum: scopes },
        minItems: 1,
        uniqueItems: true,
      },
      name: { type: 'string', minLength: 1, maxLength: 256 },
      allowedIps: {
        type: 'array',
        items: { type: 'string', minLength: 1, maxLength: 64 },
        maxItems: 64,
        description: 'addresses and CIDR ranges the key may be used from (empty: anywhere)',
      },
      expiresAt: {
        type: 'string',
        format: 'date-time',
        description: 'when the key stops working (RFC 3339); absent: never',
      },
      rateLimitPerMinute: {
        type: 'integer',
        minimum: 1,
        maximum: 10_000_000,
        description: "requests per minute per scope; absent: the server's limit for the scope",
      },
    },
    required: ['scopes'],
    additionalProperties: false,
  }) as const;

const reasonBody = {
  type: 'object',
  properties: {
    reason: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      description: 'why; recorded with the audit event of the change',
    },
  },
  additionalProperties: false,
} as const;

const rotateBody = {
  type: 'object',
  properties: {
    graceSeconds: {
      type: 'integer',
      minimum: 0,
      maximum: MAX_ROTATION_GRACE_SECONDS,
      description: `how long the old key keeps working (default ${DEFAULT_ROTATION_GRACE_SECONDS}, 24 h)`,
    },
    expiresAt: {
      type: 'string',
      format: 'date-time',
      description:
        'expiry of the new key; default: none when the old key had none, else the same lifetime as the old key, from now',
    },
  },
  additionalProperties: false,
} as const;

const createTenantBody = {
  type: 'object',
  properties: {
    id: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9_-]{0,62}$',
      description: 'lower-case letters, digits, _ and -; 1-63 characters',
    },
    name: { type: 'string', minLength: 1, maxLength: 256 },
  },
  required: ['id'],
  additionalProperties: false,
} as const;

const keyResponse = { type: 'object', properties: { key: keySchema }, required: ['key'] } as const;
const createdKeyResponse = {
  type: 'object',
  properties: { key: keySchema, secret: secretSchema },
  required: ['key', 'secret'],
} as const;
const keysResponse = {
  type: 'object',
  properties: { keys: { type: 'array', items: keySchema } },
  required: ['keys'],
} as const;
const tenantResponse = {
  type: 'object',
  properties: { tenant: tenantSchema },
  required: ['tenant'],
} as const;
const tenantsResponse = {
  type: 'object',
  properties: { tenants: { type: 'array', items: tenantSchema } },
  required: ['tenants'],
} as const;

/** A POST without a body validates as `{}`: the body schemas then say what may be in it. */
const emptyBodyIsObject: preValidationHookHandler = (request, _reply, done) => {
  if (request.body === undefined || request.body === null) request.body = {};
  done();
};

interface CreateKeyBody {
  scopes: Scope[];
  name?: string;
  allowedIps?: string[];
  expiresAt?: string;
  rateLimitPerMinute?: number;
}

function keyOf(request: FastifyRequest): ApiKeyInfo {
  const key = request.vigilKey;
  if (!key) throw new Error('route reached without authentication: register requireScope');
  return key;
}

/** An expiry from a request: an RFC 3339 time in the future. */
function expiryOf(text: string | undefined, path: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  const problem = Number.isNaN(ms)
    ? 'is not an RFC 3339 time'
    : ms <= Date.now()
      ? 'must lie in the future'
      : undefined;
  if (problem)
    throw new QueryError(QueryErrorCodes.INVALID_QUERY, `${path} ${problem}`, {
      status: 400,
      details: [{ path, message: problem }],
    });
  return ms;
}

/** What a change event says about a key: its settings, never its secret or digest. */
function keyMetadata(info: ApiKeyInfo): JsonObject {
  return {
    name: info.name,
    scopes: [...info.scopes],
    expiresAt: info.expiresAt === null ? null : iso(info.expiresAt),
    rateLimitPerMinute: info.rateLimitPerMinute,
    ...(info.allowedIps.length > 0 ? { allowedIps: [...info.allowedIps] } : {}),
  };
}

/** Allowed addresses may be a person's own; they enter the record as a commitment. */
function keyPersonal(info: ApiKeyInfo, extra: readonly string[] = []): string[] {
  return [...(info.allowedIps.length > 0 ? ['/metadata/allowedIps'] : []), ...extra];
}

export function registerAdminRoutes(app: FastifyInstance, options: AdminRoutesOptions): void {
  const { directory, registry, recorder } = options;
  // Authentication runs on request, before the body is read or validated: a caller without the
  // scope learns nothing, not even what a valid request would look like. (Rate limits run
  // later, as preHandlers.)
  const admin = requireScope(registry, 'admin', options.onAuthFailure);
  const operator = requireScope(registry, 'operator', options.onAuthFailure);
  const common = { security: [{ bearer: [] }] };

  /**
   * Records the change in `tenantId`'s system stream, then applies it. No change without its
   * event: when recording fails the change is refused. When applying fails after the event is
   * durable, a second event with outcome `error` says so.
   */
  async function recordThenApply<T>(
    request: FastifyRequest,
    tenantId: string,
    change: AdminChange,
    apply: () => Promise<T>,
  ): Promise<T> {
    const actor = keyOf(request);
    const full: AdminChange = {
      ...change,
      metadata: { ...change.metadata, actorScope: request.vigilScope ?? null },
    };
    const result = await recordChangeThenApply(
      (c) => recorder.record(tenantId, actor.keyId, c),
      full,
      apply,
      {
        failed: (recorded) => ({ recordedEventId: recorded.id }),
        unrecorded: (failure) =>
          request.log.error(
            { err: failure, change: full.action },
            'a recorded admin change failed and its failure could not be recorded',
          ),
      },
    );
    // This process applies the change at once; others within keys.refreshSeconds.
    await registry.refresh();
    return result;
  }

  async function createKey(
    request: FastifyRequest,
    reply: FastifyReply,
    tenantId: string,
  ): Promise<unknown> {
    const body = request.body as CreateKeyBody;
    const expiresAt = expiryOf(body.expiresAt, '/body/expiresAt');
    const keyOptions: KeyOptions = {
      tenantId,
      scopes: body.scopes,
      ...(body.name !== undefined ? { name: body.name } : {}),
      ...(body.allowedIps !== undefined ? { allowedIps: body.allowedIps } : {}),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
      ...(body.rateLimitPerMinute !== undefined
        ? { rateLimitPerMinute: body.rateLimitPerMinute }
        : {}),
    };
    const prepared = directory.prepareKey(keyOptions);
    await recordThenApply(
      request,
      tenantId,
      {
        action: ADMIN_ACTIONS.keyCreated,
        target: { type: 'api_key', id: prepared.info.keyId },
        metadata: keyMetadata(prepared.info),
        personal: keyPersonal(prepared.info),
      },
      () => directory.saveKey(prepared),
    );
    // The answer carries the key's secret, shown this once: no cache may keep it.
    return reply
      .status(201)
      .header('cache-control', 'no-store')
      .send({ key: keyView(prepared.info), secret: prepared.secret });
  }

  async function revokeKey(
    request: FastifyRequest,
    keyId: string,
    tenantId: string | undefined,
  ): Promise<{ key: KeyView }> {
    const { reason } = request.body as { reason?: string };
    const key = await directory.requireKey(keyId, tenantId);
    // Revoking twice changes nothing, so it records nothing.
    if (key.revokedAt !== null) return { key: keyView(key) };
    const now = Date.now();
    const revoked = await recordThenApply(
      request,
      key.tenantId,
      {
        action: ADMIN_ACTIONS.keyRevoked,
        target: { type: 'api_key', id: key.keyId },
        metadata: { ...keyMetadata(key), ...(reason !== undefined ? { reason } : {}) },
        personal: keyPersonal(key, reason !== undefined ? ['/metadata/reason'] : []),
      },
      () => directory.updateKey(key, { revokedAt: now }),
    );
    return { key: keyView(revoked) };
  }

  async function setStatus(
    request: FastifyRequest,
    status: Tenant['status'],
  ): Promise<{ tenant: TenantView }> {
    const { id } = request.params as { id: string };
    const { reason } = request.body as { reason?: string };
    const tenant = await directory.getTenant(id);
    if (!tenant)
      throw new QueryError(QueryErrorCodes.TENANT_NOT_FOUND, `no tenant ${id}`, { status: 404 });
    if (tenant.status === status) return { tenant: tenantView(tenant) };
    const next = await recordThenApply(
      request,
      id,
      {
        action:
          status === 'suspended' ? ADMIN_ACTIONS.tenantSuspended : ADMIN_ACTIONS.tenantResumed,
        target: { type: 'tenant', id },
        metadata: { name: tenant.name, ...(reason !== undefined ? { reason } : {}) },
        personal: reason !== undefined ? ['/metadata/reason'] : [],
      },
      () => directory.setTenantStatus(id, status),
    );
    return { tenant: tenantView(next) };
  }

  /** The tenant an operator names in a URL: an existing one, or the operator tenant. */
  async function operatorTarget(id: string): Promise<string> {
    if (id === OPERATOR_TENANT || (await directory.getTenant(id))) return id;
    throw new QueryError(QueryErrorCodes.TENANT_NOT_FOUND, `no tenant ${id}`, { status: 404 });
  }

  // ---- scope admin: the key's own tenant, and nothing else.

  app.get(
    '/v1/admin/tenant',
    {
      onRequest: admin,
      schema: {
        description: "The key's own tenant.",
        tags: ['admin'],
        querystring: noQuery,
        response: { 200: described('the tenant of the key', tenantResponse) },
        ...common,
      },
    },
    async (request) => {
      const id = keyOf(request).tenantId;
      const tenant = await directory.getTenant(id);
      if (!tenant)
        throw new QueryError(QueryErrorCodes.TENANT_NOT_FOUND, `no tenant ${id}`, { status: 404 });
      return { tenant: tenantView(tenant) };
    },
  );

  app.get(
    '/v1/admin/keys',
    {
      onRequest: admin,
      schema: {
        description: "API keys of the key's tenant, revoked and expired ones included.",
        tags: ['admin'],
        querystring: noQuery,
        response: {
          200: described(
            "the tenant's API keys, revoked and expired ones too; never a secret",
            keysResponse,
          ),
        },
        ...common,
      },
    },
    async (request) => {
      const keys = await directory.listKeys(keyOf(request).tenantId);
      const now = Date.now();
      return { keys: keys.map((k) => keyView(k, now)) };
    },
  );

  app.post(
    '/v1/admin/keys',
    {
      onRequest: admin,
      preValidation: emptyBodyIsObject,
      schema: {
        description:
          "Create an API key of the key's tenant. The key itself is in this response only.",
        tags: ['admin'],
        querystring: noQuery,
        body: createKeyBody(TENANT_SCOPES),
        response: {
          201: described('the key created, and its secret (shown this once)', createdKeyResponse),
        },
        ...common,
      },
    },
    (request, reply) => createKey(request, reply, keyOf(request).tenantId),
  );

  app.post(
    '/v1/admin/keys/:keyId/revoke',
    {
      onRequest: admin,
      preValidation: emptyBodyIsObject,
      schema: {
        description: "Revoke an API key of the key's tenant; it is refused from now on.",
        tags: ['admin'],
        params: keyIdParams,
        querystring: noQuery,
        body: reasonBody,
        response: { 200: described('the key, revoked', keyResponse) },
        ...common,
      },
    },
    (request) =>
      revokeKey(request, (request.params as { keyId: string }).keyId, keyOf(request).tenantId),
  );

  app.post(
    '/v1/admin/keys/:keyId/rotate',
    {
      onRequest: admin,
      preValidation: emptyBodyIsObject,
      schema: {
        description:
          'Replace an API key by a new one with the same settings; the old key keeps working for graceSeconds (default 24 h). The new key is in this response only.',
        tags: ['admin'],
        params: keyIdParams,
        querystring: noQuery,
        body: rotateBody,
        response: {
          201: {
            type: 'object',
            description:
              'the new key and its secret (shown this once), and the previous key with the end of its grace period',
            properties: { key: keySchema, secret: secretSchema, previous: keySchema },
            required: ['key', 'secret', 'previous'],
          },
        },
        ...common,
      },
    },
    async (request, reply) => {
      const tenantId = keyOf(request).tenantId;
      const { keyId } = request.params as { keyId: string };
      const body = request.body as { graceSeconds?: number; expiresAt?: string };
      const old: StoredKey = await directory.requireKey(keyId, tenantId);
      const now = Date.now();
      if (keyView(old, now).status !== 'active') {
        throw new QueryError(
          QueryErrorCodes.KEY_INACTIVE,
          `API key ${keyId} is ${keyView(old, now).status}; create a new key instead`,
          { status: 409 },
        );
      }
      const grace = body.graceSeconds ?? DEFAULT_ROTATION_GRACE_SECONDS;
      const oldExpiresAt = Math.min(old.expiresAt ?? Infinity, now + grace * 1000);
      const expiresAt =
        expiryOf(body.expiresAt, '/body/expiresAt') ??
        (old.expiresAt === null ? null : now + (old.expiresAt - old.createdAt));
      const prepared = directory.prepareKey(
        {
          tenantId,
          scopes: old.scopes,
          name: old.name,
          allowedIps: old.allowedIps,
          expiresAt,
          rateLimitPerMinute: old.rateLimitPerMinute,
        },
        now,
      );
      const previous = await recordThenApply(
        request,
        tenantId,
        {
          action: ADMIN_ACTIONS.keyRotated,
          target: { type: 'api_key', id: old.keyId },
          metadata: {
            ...keyMetadata(prepared.info),
            newKeyId: prepared.info.keyId,
            graceSeconds: grace,
            previousKeyExpiresAt: iso(oldExpiresAt),
          },
          personal: keyPersonal(prepared.info),
        },
        async () => {
          await directory.saveKey(prepared);
          return directory.updateKey(old, { expiresAt: oldExpiresAt });
        },
      );
      return reply
        .status(201)
        .header('cache-control', 'no-store')
        .send({
          key: keyView(prepared.info),
          secret: prepared.secret,
          previous: keyView(previous),
        });
    },
  );

  // ---- scope operator: tenants, and the keys of any tenant.

  app.get(
    '/v1/operator/tenants',
    {
      onRequest: operator,
      schema: {
        description: 'Every tenant.',
        tags: ['operator'],
        querystring: noQuery,
        response: { 200: described('every tenant', tenantsResponse) },
        ...common,
      },
    },
    async () => ({ tenants: (await directory.listTenants()).map(tenantView) }),
  );

  app.post(
    '/v1/operator/tenants',
    {
      onRequest: operator,
      schema: {
        description:
          'Create a tenant (then give it keys with POST /v1/operator/tenants/{id}/keys).',
        tags: ['operator'],
        querystring: noQuery,
        body: createTenantBody,
        response: { 201: described('the tenant created', tenantResponse) },
        ...common,
      },
    },
    async (request, reply) => {
      const { id, name } = request.body as { id: string; name?: string };
      await directory.checkNewTenant(id);
      const tenant = await recordThenApply(
        request,
        id,
        {
          action: ADMIN_ACTIONS.tenantCreated,
          target: { type: 'tenant', id },
          metadata: { name: name ?? id },
        },
        () => directory.createTenant(id, name ?? id),
      );
      return reply.status(201).send({ tenant: tenantView(tenant) });
    },
  );

  for (const [verb, status] of [
    ['suspend', 'suspended'],
    ['resume', 'active'],
  ] as const) {
    app.post(
      `/v1/operator/tenants/:id/${verb}`,
      {
        onRequest: operator,
        preValidation: emptyBodyIsObject,
        schema: {
          description:
            verb === 'suspend'
              ? 'Suspend a tenant: every one of its keys is refused (403) until it is resumed. Its data stays.'
              : 'Resume a suspended tenant: its keys work again.',
          tags: ['operator'],
          params: tenantIdParams,
          querystring: noQuery,
          body: reasonBody,
          response: {
            200: described(
              verb === 'suspend' ? 'the tenant, suspended' : 'the tenant, resumed',
              tenantResponse,
            ),
          },
          ...common,
        },
      },
      (request) => setStatus(request, status),
    );
  }

  app.get(
    '/v1/operator/tenants/:id/keys',
    {
      onRequest: operator,
      schema: {
        description: `API keys of a tenant (${OPERATOR_TENANT}: the operator keys).`,
        tags: ['operator'],
        params: tenantIdParams,
        querystring: noQuery,
        response: {
          200: described("the tenant's API keys (the operator keys for _operator)", keysResponse),
        },
        ...common,
      },
    },
    async (request) => {
      const id = await operatorTarget((request.params as { id: string }).id);
      const now = Date.now();
      return { keys: (await directory.listKeys(id)).map((k) => keyView(k, now)) };
    },
  );

  app.post(
    '/v1/operator/tenants/:id/keys',
    {
      onRequest: operator,
      preValidation: emptyBodyIsObject,
      schema: {
        description: `Create an API key of a tenant (scopes ${TENANT_SCOPES.join(', ')}), or an operator key in ${OPERATOR_TENANT} (scopes ${OPERATOR_SCOPES.join(', ')}). The key itself is in this response only.`,
        tags: ['operator'],
        params: tenantIdParams,
        querystring: noQuery,
        body: createKeyBody(SCOPES),
        response: {
          201: described('the key created, and its secret (shown this once)', createdKeyResponse),
        },
        ...common,
      },
    },
    async (request, reply) =>
      createKey(request, reply, await operatorTarget((request.params as { id: string }).id)),
  );

  app.post(
    '/v1/operator/keys/:keyId/revoke',
    {
      onRequest: operator,
      preValidation: emptyBodyIsObject,
      schema: {
        description: 'Revoke an API key of any tenant.',
        tags: ['operator'],
        params: keyIdParams,
        querystring: noQuery,
        body: reasonBody,
        response: { 200: described('the key, revoked', keyResponse) },
        ...common,
      },
    },
    (request) => revokeKey(request, (request.params as { keyId: string }).keyId, undefined),
  );
}
