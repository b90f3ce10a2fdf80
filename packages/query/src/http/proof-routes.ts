import type { FastifyInstance } from 'fastify';
import type { KeyRegistry } from '../auth/registry.js';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { ProofService } from '../proof/proofs.js';
import type { Store } from '../store/store.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { described } from './schemas.js';

export interface ProofRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  readonly onAuthFailure?: AuthObserver;
  readonly proofs?: ProofService;
}

const hash = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;

/** JSON schemas of PROTOCOL.md §14–§15, for /docs and for serialising the responses. */
export const signedCheckpointSchema = {
  type: 'object',
  description:
    'A signed checkpoint (PROTOCOL.md §14.4): `checkpoint` is the exact signed statement text; verify before use.',
  required: ['id', 'checkpoint', 'signature'],
  properties: {
    id: { ...hash, description: 'hex SHA-256 of the UTF-8 bytes of checkpoint' },
    checkpoint: {
      type: 'string',
      description:
        'RFC 8785 text of {v, tenant, time, keyId, partitions: [{partition, size, root}]}',
    },
    signature: {
      type: 'string',
      description: 'Ed25519 over "vigil.checkpoint.v1" 0x00 || checkpoint, base64url',
    },
  },
} as const;

const publishedKeySchema = {
  type: 'object',
  required: ['keyId', 'algorithm', 'publicKey', 'createdAt', 'retiredAt'],
  properties: {
    keyId: { type: 'string', description: 'first 16 hex digits of SHA-256(raw public key)' },
    algorithm: { type: 'string', enum: ['Ed25519'] },
    publicKey: { type: 'string', description: 'raw 32-byte Ed25519 public key, base64url' },
    createdAt: { type: 'string' },
    retiredAt: { type: 'string', nullable: true, description: 'set once the key no longer signs' },
  },
} as const;

export const inclusionProofSchema = {
  type: 'object',
  description: 'An inclusion proof of one event (PROTOCOL.md §15.1).',
  required: [
    'v',
    'eventId',
    'partition',
    'leafIndex',
    'treeSize',
    'leaf',
    'leafData',
    'leafHash',
    'auditPath',
    'root',
    'checkpoint',
  ],
  properties: {
    v: { type: 'integer', enum: [1] },
    eventId: { type: 'string' },
    record: {
      type: 'string',
      description: 'the exact record bytes, while the store holds the event',
    },
    partition: { type: 'integer' },
    leafIndex: { type: 'integer' },
    treeSize: { type: 'integer' },
    leaf: {
      type: 'object',
      required: ['stream', 'seq', 'eventHash', 'columns'],
      properties: {
        stream: { type: 'string' },
        seq: { type: 'integer' },
        eventHash: hash,
        columns: { ...hash, description: 'the column digest the leaf binds (§13.2.1)' },
      },
    },
    leafData: { type: 'string', description: 'hex of the leaf data bytes (§13.2)' },
    leafHash: hash,
    auditPath: { type: 'array', items: hash, description: 'RFC 9162 inclusion path' },
    root: hash,
    checkpoint: signedCheckpointSchema,
    otherLeaves: {
      type: 'array',
      description: 'other leaves naming this event id (forked or conflicting copies)',
      items: {
        type: 'object',
        properties: {
          partition: { type: 'integer' },
          leafIndex: { type: 'integer' },
          eventHash: hash,
        },
      },
    },
  },
} as const;

export const consistencyProofSchema = {
  type: 'object',
  description: 'A consistency proof between two sizes of a partition tree (PROTOCOL.md §15.2).',
  required: ['v', 'partition', 'fromSize', 'toSize', 'fromRoot', 'toRoot', 'path'],
  properties: {
    v: { type: 'integer', enum: [1] },
    partition: { type: 'integer' },
    fromSize: { type: 'integer' },
    toSize: { type: 'integer' },
    fromRoot: hash,
    toRoot: hash,
    path: { type: 'array', items: hash, description: 'RFC 9162 consistency path' },
    from: signedCheckpointSchema,
    to: signedCheckpointSchema,
  },
} as const;

const checkpointViewSchema = {
  type: 'object',
  required: ['id', 'checkpoint', 'signature', 'time', 'keyId'],
  properties: {
    ...signedCheckpointSchema.properties,
    time: { type: 'string', description: 'the statement time (unverified copy)' },
    keyId: { type: 'string', description: 'the signing key (unverified copy)' },
  },
} as const;

/**
 * Proof API (PROTOCOL.md §15.4): public keys, checkpoints, inclusion and consistency proofs.
 * Everything but the public keys needs the `query` scope, and the tenant comes from the key.
 */
export function registerProofRoutes(app: FastifyInstance, options: ProofRoutesOptions): void {
  const proofs = options.proofs ?? new ProofService(options.store);
  const auth = requireScope(options.registry, 'query', options.onAuthFailure);
  const security = [{ bearer: [] }];

  app.get(
    '/v1/keys/checkpoint',
    {
      schema: {
        description:
          'Public keys that sign checkpoints, current and retired (no key needed: they are public). Pin them out of band; this list is a convenience.',
        tags: ['proofs'],
        response: {
          200: {
            type: 'object',
            description: 'the public keys that sign checkpoints, current and retired',
            properties: { keys: { type: 'array', items: publishedKeySchema } },
          },
        },
      },
    },
    async () => ({ keys: await proofs.checkpoints.keys() }),
  );

  app.get(
    '/v1/checkpoints',
    {
      onRequest: auth,
      schema: {
        description: "The tenant's signed checkpoints, newest first.",
        tags: ['proofs'],
        security,
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'string', description: 'page size, 1-1000 (default 100)' },
            cursor: { type: 'string', description: 'nextCursor of the previous page' },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            description: 'a page of signed checkpoints, newest first',
            properties: {
              checkpoints: { type: 'array', items: checkpointViewSchema },
              nextCursor: { type: 'string' },
            },
          },
        },
      },
    },
    async (request) => {
      const q = request.query as { limit?: string; cursor?: string };
      const limit = q.limit === undefined ? undefined : Number(q.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000))
        throw new QueryError(QueryErrorCodes.INVALID_QUERY, 'invalid parameters', {
          status: 400,
          details: [{ path: '/limit', message: 'must be an integer from 1 to 1000' }],
        });
      return proofs.checkpoints.list(tenantOf(request), {
        ...(limit !== undefined ? { limit } : {}),
        ...(q.cursor ? { cursor: q.cursor } : {}),
      });
    },
  );

  app.get(
    '/v1/checkpoints/latest',
    {
      onRequest: auth,
      schema: {
        description: "The tenant's newest signed checkpoint.",
        tags: ['proofs'],
        security,
        response: {
          200: described('the signed checkpoint (PROTOCOL.md §14.4)', checkpointViewSchema),
        },
      },
    },
    async (request) => {
      const latest = await proofs.checkpoints.latest(tenantOf(request));
      if (!latest)
        throw new QueryError(QueryErrorCodes.CHECKPOINT_NOT_FOUND, 'no checkpoint yet', {
          status: 404,
        });
      return latest;
    },
  );

  app.get(
    '/v1/checkpoints/:id',
    {
      onRequest: auth,
      schema: {
        description: 'One signed checkpoint of the tenant, by id.',
        tags: ['proofs'],
        security,
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: hash },
        },
        response: {
          200: described('the signed checkpoint (PROTOCOL.md §14.4)', checkpointViewSchema),
        },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const found = await proofs.checkpoints.get(tenantOf(request), id);
      if (!found)
        throw new QueryError(QueryErrorCodes.CHECKPOINT_NOT_FOUND, `no checkpoint ${id}`, {
          status: 404,
        });
      return found;
    },
  );

  app.get(
    '/v1/proofs/inclusion',
    {
      onRequest: auth,
      schema: {
        description:
          'Inclusion proof of an event against a signed checkpoint (by default the newest that covers it). Verify it with the public key alone.',
        tags: ['proofs'],
        security,
        querystring: {
          type: 'object',
          required: ['event'],
          properties: {
            event: { type: 'string', description: 'event id' },
            checkpoint: {
              type: 'string',
              description: "a checkpoint id, or the size of the event's partition tree in it",
            },
            hash: {
              type: 'string',
              description: 'the event hash, when several leaves name the id',
            },
          },
          additionalProperties: false,
        },
        response: { 200: inclusionProofSchema },
      },
    },
    async (request) => {
      const q = request.query as { event: string; checkpoint?: string; hash?: string };
      return proofs.inclusion(tenantOf(request), q.event, {
        ...(q.checkpoint !== undefined ? { checkpoint: q.checkpoint } : {}),
        ...(q.hash !== undefined ? { hash: q.hash } : {}),
      });
    },
  );

  app.get(
    '/v1/proofs/consistency',
    {
      onRequest: auth,
      schema: {
        description:
          'Consistency proof between two sizes of a partition tree; from/to are sizes or checkpoint ids (then the checkpoints are included).',
        tags: ['proofs'],
        security,
        querystring: {
          type: 'object',
          required: ['partition', 'from', 'to'],
          properties: {
            partition: { type: 'string' },
            from: { type: 'string', description: 'tree size or checkpoint id' },
            to: { type: 'string', description: 'tree size or checkpoint id' },
          },
          additionalProperties: false,
        },
        response: { 200: consistencyProofSchema },
      },
    },
    async (request) => {
      const q = request.query as { partition: string; from: string; to: string };
      return proofs.consistency(tenantOf(request), q.partition, q.from, q.to);
    },
  );
}
