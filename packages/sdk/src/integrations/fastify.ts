import type { Party } from '@vigil/protocol';
import type { AuditClient } from '../client.js';
import {
  ApiRequestRecorder,
  pathOf,
  UNMATCHED_ROUTE,
  type ApiRequestAuditOptions,
} from './api-request.js';

/*
 * Structural types of the few fastify members the plugin uses, so the SDK never imports fastify
 * (an application that does not use it does not install it). They match fastify 4 and 5.
 */

/** The parts of a fastify request the plugin reads. */
export interface FastifyRequestLike {
  readonly id: string | number;
  readonly method: string;
  readonly url: string;
  readonly ip: string;
  readonly headers: { readonly [name: string]: string | string[] | undefined };
  readonly routeOptions?: { readonly url?: string | undefined };
}

export interface FastifyReplyLike {
  readonly statusCode: number;
  /** fastify 5 (ms since the request arrived). */
  readonly elapsedTime?: number;
  /** fastify 4. */
  getResponseTime?(): number;
}

export interface FastifyInstanceLike {
  addHook(
    name: 'onResponse',
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike, done: () => void) => void,
  ): unknown;
}

export type FastifyAuditOptions = ApiRequestAuditOptions<FastifyRequestLike>;

export type FastifyAuditPlugin = ((
  instance: FastifyInstanceLike,
  options: unknown,
  done: (error?: Error) => void,
) => void) & { [key: symbol]: unknown };

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A fastify plugin recording one `api.request` event per response (hook `onResponse`, so the
 * response is never delayed). Marked with `skip-override` so it hooks the whole application,
 * not just its own encapsulated context.
 *
 *     app.register(vigilFastify(audit, { actor: (req) => req.user && { type: 'user', id: req.user.id } }));
 */
export function vigilFastify(
  client: AuditClient,
  options: FastifyAuditOptions = {},
): FastifyAuditPlugin {
  const recorder = new ApiRequestRecorder<FastifyRequestLike>(client, options);
  const plugin = ((
    instance: FastifyInstanceLike,
    _options: unknown,
    done: (error?: Error) => void,
  ) => {
    instance.addHook('onResponse', (request, reply, hookDone) => {
      try {
        if (recorder.wants(pathOf(request.url))) {
          const latency = reply.elapsedTime ?? reply.getResponseTime?.() ?? 0;
          recorder.record(request, {
            method: request.method,
            route: request.routeOptions?.url ?? UNMATCHED_ROUTE,
            status: reply.statusCode,
            latencyMs: latency,
            requestId: String(request.id),
            ip: request.ip,
            userAgent: header(request.headers['user-agent']),
          });
        }
      } finally {
        hookDone();
      }
    });
    done();
  }) as FastifyAuditPlugin;
  // fastify-plugin's marker: do not encapsulate, so the hook sees every route of the app.
  plugin[Symbol.for('skip-override')] = true;
  plugin[Symbol.for('fastify.display-name')] = 'vigil-audit';
  return plugin;
}

export type { Party };
