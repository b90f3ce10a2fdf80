import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { rawPublicKey, VigilError } from '@vigil/protocol';
import type { KeyRegistry } from '../auth/registry.js';
import { InvalidQueryError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { TrustedCheckpoint } from '../verify/checkpoints.js';
import type { TenantKeyLookup } from '../verify/events.js';
import { Scope } from '../verify/scope.js';
import { verifyLog, type VerifyProgress } from '../verify/verify.js';
import { requireScope, tenantOf, type AuthObserver } from './auth.js';
import { signedCheckpointSchema } from './proof-routes.js';
import { fileAnswer } from './schemas.js';

export interface VerifyRoutesOptions {
  readonly store: Store;
  readonly registry: KeyRegistry;
  readonly onAuthFailure?: AuthObserver;
  /** Tenant keys of pseudonymised rows, when this process holds the privacy master key. */
  readonly tenantKeys?: TenantKeyLookup;
}

interface VerifyBody {
  keys: string[];
  trusted?: TrustedCheckpoint[];
  from?: string;
  to?: string;
  stream?: string;
  deep?: boolean;
}

/**
 * POST /v1/verify (scope admin): runs `vigil verify` (PROTOCOL.md §19) on the key's tenant in
 * this process, for a CLI that cannot open the store itself (chDB allows one process per data
 * directory). The caller sends the keys it pins and the checkpoints it holds; nothing the store
 * publishes is trusted. The answer is NDJSON: `{"progress": …}` lines while it runs, then one
 * `{"report": …}` (or `{"error": …}`). The report is as trustworthy as this process: for an
 * independent verification, run the CLI where it opens the store (stopped server, a copy of
 * the data directory, or a ClickHouse server).
 */
export function registerVerifyRoutes(app: FastifyInstance, options: VerifyRoutesOptions): void {
  app.post(
    '/v1/verify',
    {
      onRequest: requireScope(options.registry, 'admin', options.onAuthFailure),
      schema: {
        response: {
          200: fileAnswer(
            'NDJSON: progress lines, then the verification report (PROTOCOL.md §19)',
            ['application/x-ndjson'],
          ),
        },
        description:
          "Verify the key's tenant against pinned public keys (PROTOCOL.md §19). NDJSON: progress lines, then the report.",
        tags: ['proofs'],
        security: [{ bearer: [] }],
        body: {
          type: 'object',
          required: ['keys'],
          additionalProperties: false,
          properties: {
            keys: {
              type: 'array',
              minItems: 1,
              maxItems: 32,
              items: { type: 'string', maxLength: 4096 },
              description: 'pinned Ed25519 public keys: raw base64url or PEM',
            },
            trusted: {
              type: 'array',
              maxItems: 100_000,
              items: {
                type: 'object',
                required: ['checkpoint', 'source'],
                additionalProperties: false,
                properties: {
                  checkpoint: signedCheckpointSchema,
                  source: { type: 'string', enum: ['trusted', 'witness'] },
                  origin: { type: 'string', maxLength: 4096 },
                },
              },
            },
            from: { type: 'string' },
            to: { type: 'string' },
            stream: { type: 'string', maxLength: 200 },
            deep: {
              type: 'boolean',
              description:
                'also parse every record and compare each typed column and disclosure with it (vigil verify --deep)',
            },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body as VerifyBody;
      const details: { path: string; message: string }[] = [];
      body.keys.forEach((k, i) => {
        try {
          rawPublicKey(k);
        } catch (error) {
          details.push({ path: `/keys/${i}`, message: (error as Error).message });
        }
      });
      if (details.length > 0) throw new InvalidQueryError('invalid public keys', details);
      const scope = {
        ...(body.from !== undefined ? { from: body.from } : {}),
        ...(body.to !== undefined ? { to: body.to } : {}),
        ...(body.stream !== undefined ? { stream: body.stream } : {}),
      };
      // Refuse a bad scope with a 400 before the answer starts.
      new Scope(scope);
      const out = new PassThrough();
      let last = 0;
      const onProgress = (progress: VerifyProgress): void => {
        const now = Date.now();
        if (now - last < 250 && progress.phase !== 'done') return;
        last = now;
        out.write(JSON.stringify({ progress }) + '\n');
      };
      verifyLog(options.store, {
        tenant: tenantOf(request),
        keys: body.keys,
        trusted: body.trusted ?? [],
        scope,
        onProgress,
        deep: body.deep === true,
        ...(options.tenantKeys ? { tenantKeys: options.tenantKeys } : {}),
      }).then(
        (report) => {
          out.end(JSON.stringify({ report }) + '\n');
        },
        (error: unknown) => {
          request.log.error({ err: error }, 'verification failed');
          const code = error instanceof VigilError ? error.code : 'VIGIL_ERR_STORE_UNAVAILABLE';
          out.end(JSON.stringify({ error: { code, message: (error as Error).message } }) + '\n');
        },
      );
      return reply.header('content-type', 'application/x-ndjson').send(out);
    },
  );
}
