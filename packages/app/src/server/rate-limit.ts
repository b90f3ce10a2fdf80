import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Scope } from '@vigil/query';
import type { RateLimitConfig } from '../config/config.js';
import { CollectorError, CollectorErrorCodes } from '@vigil/collector';

const WINDOW_MS = 60_000;

/**
 * Per-key rate limits (@fastify/rate-limit). A bucket belongs to one API key and one scope, so
 * a key that both ingests and queries has a budget for each. The limit is the key's own
 * `rateLimitPerMinute` when it has one, else the server's for the scope. The check runs as the
 * last preHandler, after the route's authentication (`requireScope`), so that it knows the
 * key; requests without a key (health, metrics, docs, refused ones) are not counted. Buckets
 * live in this process: N instances behind a load balancer allow up to N times the limit.
 */
export async function registerRateLimits(
  app: FastifyInstance,
  limits: RateLimitConfig,
  onLimited: (scope: Scope | undefined) => void,
): Promise<void> {
  const perScope = (scope: Scope | undefined): number =>
    scope === 'ingest'
      ? limits.ingestPerMinute
      : scope === 'query'
        ? limits.queryPerMinute
        : limits.adminPerMinute;
  const limitOf = (request: FastifyRequest): number =>
    request.vigilKey?.rateLimitPerMinute ?? perScope(request.vigilScope);
  await app.register(rateLimit, {
    global: true,
    // Appended to each route's preHandlers, so it runs after authentication.
    hook: 'preHandler',
    timeWindow: WINDOW_MS,
    // Buckets kept (least recently used beyond): well above the keys active in a minute.
    cache: 100_000,
    keyGenerator: (request) => `${request.vigilKey?.keyId ?? ''}/${request.vigilScope ?? ''}`,
    allowList: (request) => request.vigilKey === undefined || limitOf(request) === 0,
    max: (request) => limitOf(request),
    onExceeded: (request) => onLimited(request.vigilScope),
    errorResponseBuilder: (request, context) =>
      new CollectorError(
        CollectorErrorCodes.RATE_LIMITED,
        `API key ${request.vigilKey?.keyId ?? '?'} is over its limit of ${context.max} ${request.vigilScope ?? ''} requests a minute; retry in ${context.after}`,
        { status: 429, retriable: true },
      ),
  });
}
