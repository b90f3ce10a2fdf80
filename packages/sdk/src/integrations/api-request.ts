import { isIP } from 'node:net';
import type { EventContext, Party } from '@vigil/protocol';
import type { AuditClient } from '../client.js';
import { InvalidOptionsError, SdkError, SdkErrorCodes } from '../errors.js';
import { apiRequest } from '../record/builders.js';

/** Options shared by the fastify plugin and the express middleware. */
export interface ApiRequestAuditOptions<Req> {
  /**
   * Who made the request, called when the response is finished (after authentication ran).
   * Return undefined for anonymous requests, recorded with actor `{ type: 'anonymous', id: 'anonymous' }`.
   */
  readonly actor?: (request: Req) => Party | undefined;
  /** Fraction of requests recorded, 0..1. Default 1 (all). */
  readonly sampleRate?: number;
  /**
   * Paths not recorded: a string matches the path exactly or as a prefix ending in `/`
   * (`/health` excludes `/health` and `/health/live`), a RegExp is tested against the path.
   */
  readonly exclude?: readonly (string | RegExp)[];
  /** Extra metadata per request (tenant, API version …). */
  readonly metadata?: (request: Req) => Record<string, string | number | boolean> | undefined;
}

/** What each framework adapter extracts from a finished request. */
export interface FinishedRequest {
  readonly method: string;
  readonly route: string;
  readonly status: number;
  readonly latencyMs: number;
  readonly requestId: string | undefined;
  readonly ip: string | undefined;
  readonly userAgent: string | undefined;
}

const ANONYMOUS: Party = { type: 'anonymous', id: 'anonymous' };
/** Route recorded when no route matched (404s): never the raw URL, which may hold ids or tokens. */
export const UNMATCHED_ROUTE = '(unmatched)';

/** Checks integration options once and returns the per-request recorder. */
export class ApiRequestRecorder<Req> {
  private readonly sampleRate: number;
  private readonly prefixes: string[] = [];
  private readonly exact = new Set<string>();
  private readonly patterns: RegExp[] = [];

  constructor(
    private readonly client: AuditClient,
    private readonly options: ApiRequestAuditOptions<Req>,
    private readonly random: () => number = Math.random,
  ) {
    const rate = options.sampleRate ?? 1;
    if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
      throw new InvalidOptionsError('sampleRate must be a number between 0 and 1');
    }
    this.sampleRate = rate;
    for (const rule of options.exclude ?? []) {
      if (rule instanceof RegExp) this.patterns.push(rule);
      else if (typeof rule === 'string' && rule.startsWith('/')) {
        this.exact.add(rule);
        this.prefixes.push(rule.endsWith('/') ? rule : `${rule}/`);
      } else
        throw new InvalidOptionsError(
          `exclude entries must be paths starting with / or RegExps, not ${String(rule)}`,
        );
    }
  }

  /** Whether a request to `path` (no query string) is recorded; decided when it starts. */
  wants(path: string): boolean {
    if (this.exact.has(path)) return false;
    for (const prefix of this.prefixes) if (path.startsWith(prefix)) return false;
    for (const pattern of this.patterns) if (pattern.test(path)) return false;
    return this.sampleRate >= 1 || this.random() < this.sampleRate;
  }

  /** Records one finished request; reports problems through the client, never throws. */
  record(request: Req, finished: FinishedRequest): void {
    try {
      const actor = this.options.actor?.(request) ?? ANONYMOUS;
      const context: EventContext = {};
      if (finished.ip !== undefined && isIP(finished.ip) !== 0) context.ip = finished.ip;
      if (finished.userAgent !== undefined && finished.userAgent.length > 0) {
        context.userAgent = finished.userAgent.slice(0, 1024);
      }
      if (finished.requestId !== undefined && finished.requestId.length > 0) {
        context.requestId = finished.requestId.slice(0, 256);
      }
      const extra = this.options.metadata?.(request);
      void this.client.record(
        apiRequest({
          actor,
          method: finished.method,
          route: finished.route,
          status: finished.status,
          latencyMs: finished.latencyMs,
          context,
          ...(extra === undefined ? {} : { metadata: extra }),
        }),
      );
    } catch (error) {
      this.client.reportProblem(
        new SdkError(
          SdkErrorCodes.INTEGRATION,
          `could not record ${finished.method} ${finished.route}: ${(error as Error)?.message ?? String(error)}`,
          { cause: error },
        ),
      );
    }
  }
}

/** The path part of a URL, without the query string. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
