import type { FastifyInstance } from 'fastify';
import type { TenantDirectory } from '../auth/keys.js';
import type { KeyRegistry } from '../auth/registry.js';
import type { KeyDirectory } from '../auth/http-source.js';
import { requireScope, type AuthObserver } from './auth.js';

export interface KeyDirectoryRoutesOptions {
  readonly directory: TenantDirectory;
  readonly registry: KeyRegistry;
  readonly onAuthFailure?: AuthObserver;
}

/**
 * `GET /v1/operator/key-directory`: tenants and key digests for collectors that authenticate
 * requests without a store of their own (setting `keys.url`). Operator scope; digests only —
 * a key cannot be recovered from its SHA-256.
 */
export function registerKeyDirectoryRoutes(
  app: FastifyInstance,
  options: KeyDirectoryRoutesOptions,
): void {
  app.get(
    '/v1/operator/key-directory',
    {
      onRequest: requireScope(options.registry, 'operator', options.onAuthFailure),
      schema: {
        description:
          'Tenants and API key digests, for collectors configured with keys.url instead of a store (operator scope).',
        tags: ['operator'],
        security: [{ bearer: [] }],
        response: {
          200: {
            type: 'object',
            description: 'every tenant and every API key digest, never a secret',
            required: ['tenants', 'keys'],
            properties: {
              tenants: { type: 'array', items: { type: 'object', additionalProperties: true } },
              keys: { type: 'array', items: { type: 'object', additionalProperties: true } },
            },
          },
        },
      },
    },
    async (_request) => {
      const [tenants, keys] = await Promise.all([
        options.directory.listTenants(),
        options.directory.listKeys(),
      ]);
      const body: KeyDirectory = { tenants, keys };
      return body;
    },
  );
}
