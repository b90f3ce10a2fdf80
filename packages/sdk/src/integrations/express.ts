import type { AuditClient } from '../client.js';
import {
  ApiRequestRecorder,
  pathOf,
  UNMATCHED_ROUTE,
  type ApiRequestAuditOptions,
} from './api-request.js';

/*
 * Structural types of the few express members the middleware uses, so the SDK never imports
 * express. They match express 4 and 5.
 */

export interface ExpressRequestLike {
  readonly method: string;
  readonly originalUrl?: string;
  readonly url: string;
  readonly baseUrl?: string;
  readonly route?: { readonly path?: unknown } | undefined;
  readonly ip?: string | undefined;
  readonly socket?: { readonly remoteAddress?: string | undefined };
  readonly headers: { readonly [name: string]: string | string[] | undefined };
  readonly id?: unknown;
}

export interface ExpressResponseLike {
  readonly statusCode: number;
  once(event: 'finish' | 'close', listener: () => void): unknown;
  getHeader?(name: string): unknown;
}

export type ExpressAuditOptions = ApiRequestAuditOptions<ExpressRequestLike> & {
  /** Header holding the request id (set by a proxy or an earlier middleware). Default `x-request-id`. */
  readonly requestIdHeader?: string;
};

export type ExpressAuditMiddleware = (
  request: ExpressRequestLike,
  response: ExpressResponseLike,
  next: (error?: unknown) => void,
) => void;

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Remembers `req.baseUrl` at the moment express sets `req.route` (when a route matches): by the
 * time the response finishes, routers have restored `baseUrl`, so reading it then would lose
 * the mount path of a sub-router. Returns the pattern (`/api/users/:id`) reader.
 */
function trackRoute(request: ExpressRequestLike): () => string {
  let route: ExpressRequestLike['route'] = request.route;
  let base = request.baseUrl ?? '';
  try {
    Object.defineProperty(request, 'route', {
      configurable: true,
      enumerable: true,
      get: () => route,
      set: (value: ExpressRequestLike['route']) => {
        route = value;
        base = request.baseUrl ?? '';
      },
    });
  } catch {
    // A frozen or exotic request object: fall back to the values at finish time.
  }
  return () => {
    const path = route?.path;
    if (typeof path !== 'string') return UNMATCHED_ROUTE;
    return `${base}${path}` || '/';
  };
}

/**
 * An express middleware recording one `api.request` event per response, when it is finished
 * (`res.on('finish')`), so the response is never delayed. Mount it first:
 *
 *     app.use(vigilExpress(audit, { actor: (req) => req.user && { type: 'user', id: req.user.id } }));
 */
export function vigilExpress(
  client: AuditClient,
  options: ExpressAuditOptions = {},
): ExpressAuditMiddleware {
  const recorder = new ApiRequestRecorder<ExpressRequestLike>(client, options);
  const idHeader = (options.requestIdHeader ?? 'x-request-id').toLowerCase();
  return (request, response, next) => {
    const url = request.originalUrl ?? request.url;
    if (!recorder.wants(pathOf(url))) {
      next();
      return;
    }
    const started = performance.now();
    const routeOf = trackRoute(request);
    // Read now: once the response is finished the socket may be gone, and its address with it.
    const ip = request.ip ?? request.socket?.remoteAddress;
    response.once('finish', () => {
      const id =
        request.id ??
        header(request.headers[idHeader]) ??
        header(response.getHeader?.(idHeader) as string | undefined);
      recorder.record(request, {
        method: request.method,
        route: routeOf(),
        status: response.statusCode,
        latencyMs: performance.now() - started,
        requestId: typeof id === 'string' || typeof id === 'number' ? String(id) : undefined,
        ip,
        userAgent: header(request.headers['user-agent']),
      });
    });
    next();
  };
}
