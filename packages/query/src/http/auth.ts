import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { VigilError } from '@vigil/protocol';
import type { ApiKeyInfo, Scope } from '../auth/keys.js';
import type { KeyRegistry } from '../auth/registry.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key that authenticated this request; its tenant scopes everything it does. */
    vigilKey?: ApiKeyInfo;
    /** The scope the route demanded of that key (rate limits are kept per key and scope). */
    vigilScope?: Scope;
  }
}

/** Observes refused requests (for metrics). */
export type AuthObserver = (status: 401 | 403, scope: Scope) => void;

/**
 * An onRequest hook that admits only requests whose key has `scope`. The tenant comes from the
 * key alone; nothing in the body or query string can choose it. Register it as the route's
 * `onRequest`: that runs before fastify reads the body, so a caller without a valid key gets
 * 401/403 without any of its body being read or parsed (a keyless client cannot make the
 * server wait on a slow body, and broken JSON without a key is 401, not 400).
 */
export function requireScope(
  registry: KeyRegistry,
  scope: Scope,
  observe?: AuthObserver,
): onRequestHookHandler {
  return function authenticate(
    request: FastifyRequest,
    _reply: FastifyReply,
    done: (error?: Error) => void,
  ): void {
    const result = registry.authenticate(request.headers.authorization, scope, request.ip);
    if (result.ok) {
      request.vigilKey = result.key;
      request.vigilScope = scope;
      done();
      return;
    }
    observe?.(result.status, scope);
    done(new VigilError(result.code, result.reason, { status: result.status }));
  };
}

export function tenantOf(request: FastifyRequest): string {
  const key = request.vigilKey;
  if (!key) throw new Error('route reached without authentication: register requireScope');
  return key.tenantId;
}
