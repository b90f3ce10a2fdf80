import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import {
  AlertTriage,
  registerAlertRoutes,
  type PrivacyService,
  registerQueryRoutes,
  registerSearchRoutes,
  type LinkSigner,
  registerPrivacyRoutes,
  registerAccessRoutes,
  type PrivacyRoutesOptions,
  registerProofRoutes,
  registerVerifyRoutes,
  registerAdminRoutes,
  registerKeyDirectoryRoutes,
  type ChangeRecorder,
  type TenantDirectory,
  registerRetentionRoutes,
  registerDetectRoutes,
  registerWebhookRoutes,
  type WebhookRoutesOptions,
  type KeyRegistry,
  type RetentionRoutesOptions,
  type Store,
  type ReviewPolicy,
} from '@vigil/query';
import type { EventInput } from '@vigil/protocol';
import { registerIngestRoutes } from '@vigil/collector';
import type { Ingestor, Refusal } from '@vigil/collector';
import { clientErrorHandler, frameworkErrors, installErrorHandling } from './errors-http.js';
import type { HttpConfig, RateLimitConfig } from '../config/config.js';
import { registerRateLimits } from './rate-limit.js';
import type { Metrics } from './metrics.js';

export interface ReadyReport {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, string>>;
}

const readyReportSchema = {
  type: 'object',
  description: 'ready, and per dependency "ok" or what is wrong (503 when not ready)',
  required: ['ready', 'checks'],
  properties: {
    ready: { type: 'boolean' },
    checks: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

export interface AppOptions {
  readonly logger: FastifyBaseLogger;
  readonly metrics: Metrics;
  readonly readiness: () => Promise<ReadyReport>;
  readonly registry?: KeyRegistry;
  readonly ingest?: {
    readonly ingestor: Ingestor;
    readonly maxBodyBytes: number;
    /** Admission control: 503 + Retry-After while the sinks lag or the sink is down. */
    readonly admission?: { enter(): Refusal | undefined; leave(): void };
  };
  /** Server timeouts; absent: fastify's defaults (no request timeout). */
  readonly http?: HttpConfig;
  readonly query?: { readonly store: Store };
  /** Tenants and keys (admin and operator API); changes are recorded through `recorder`. */
  readonly admin?: { readonly directory: TenantDirectory; readonly recorder: ChangeRecorder };
  /** Per-key rate limits; absent: none. */
  readonly rateLimits?: RateLimitConfig;
  /** Serve GET /v1/operator/key-directory (roles with a store) for store-less collectors. */
  readonly keyDirectory?: TenantDirectory;
  /** Retention policies and legal holds (admin API, on the query store). */
  readonly retention?: Pick<RetentionRoutesOptions, 'defaults' | 'recordChange' | 'refreshSeconds'>;
  /**
   * Alerts (`/v1/alerts`, on the query store): triage is recorded through `recorder` (else that
   * of admin or privacy); without any, triage changes are refused. `privacy` shows pseudonyms.
   */
  readonly alerts?: {
    readonly retentionDays?: number;
    readonly recorder?: ChangeRecorder;
    readonly privacy?: PrivacyService;
  };
  /** Data-subject rights and pseudonymisation (admin API on the query store, with a recorder). */
  readonly privacy?: Omit<PrivacyRoutesOptions, 'store' | 'registry' | 'onAuthFailure'>;
  /** Tenants' alert webhooks (admin API; changes recorded through its recorder). */
  readonly webhooks?: Omit<WebhookRoutesOptions, 'registry' | 'onAuthFailure'>;
  /** Access reviews (/v1/access/…); they need the privacy service and the recorder too. */
  readonly access?: { readonly policy: ReviewPolicy };
  /** Analyst search: link signing and the meta-audit recorder (absent: the server log). */
  readonly search?: { readonly links: LinkSigner; readonly recorder?: ChangeRecorder };
  readonly version: string;
}

/**
 * The HTTP surface of a Vigil process. Which routes it has depends on the role: a collector
 * ingests, a query server answers searches, `vigil start` does both; every role has health,
 * readiness, metrics and the OpenAPI description at /docs.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger,
    trustProxy: false,
    // Request ids in logs; honour a caller's X-Request-Id for end-to-end tracing.
    requestIdHeader: 'x-request-id',
    // No log line per request: at thousands of ingest requests a second they would drown the
    // log; /metrics has the request latencies and counts.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: 'idle',
    // Slow clients: the whole request (headers and body) must arrive within requestTimeout
    // (Node answers 408 through clientErrorHandler below), a silent connection is closed after
    // connectionTimeout, an idle keep-alive one after keepAliveTimeout. Node 20 honours
    // requestTimeout only when given to http.createServer (fastify sets it on the server after
    // creating it, which measured here has no effect), hence `http` too. Node checks request
    // timeouts every connectionsCheckingInterval (30 s by default): checked more often here so
    // that the limit holds to within a quarter of itself.
    ...(options.http
      ? {
          requestTimeout: options.http.requestTimeoutMs,
          connectionTimeout: options.http.idleTimeoutMs,
          keepAliveTimeout: options.http.keepAliveTimeoutMs,
          http: {
            requestTimeout: options.http.requestTimeoutMs,
            connectionsCheckingInterval: Math.max(
              100,
              Math.min(30_000, Math.floor(options.http.requestTimeoutMs / 4)),
            ),
          },
        }
      : {}),
    // Unknown query parameters are an error (a typo must not silently widen a search).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    // Errors raised before a route runs (router, Node's HTTP parser) in Vigil's error shape too.
    frameworkErrors,
    clientErrorHandler,
  });
  installErrorHandling(app);
  await app.register(swagger, {
    // Shared schemas (the error body) under their own names in components.schemas.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json['$id'] === 'string' ? json['$id'] : `def-${i}`,
    },
    openapi: {
      info: {
        title: 'Vigil API',
        version: options.version,
        description: 'Audit events in; searches, proofs and exports out.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API key: vgl_<id>_<secret>' },
        },
      },
    },
  });
  // The usual security headers on every answer (helmet's defaults), without
  // upgrade-insecure-requests: a process served over plain HTTP (a laptop, behind a proxy that
  // ends TLS) would otherwise have its /docs page fetch its assets over https and fail. The
  // /docs page loads only its own scripts and styles ('self'), so the default CSP allows it.
  await app.register(helmet, {
    contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  // An answer to a request with credentials is that caller's: no shared or browser cache keeps
  // it (answers carrying a key's secret say so themselves too).
  app.addHook('onSend', (request, reply, _payload, done) => {
    if (request.headers.authorization !== undefined && !reply.hasHeader('cache-control'))
      void reply.header('cache-control', 'no-store');
    done();
  });

  const { metrics } = options;
  app.addHook('onResponse', (request, reply, done) => {
    metrics.requestDuration.observe(
      { route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });
  const onAuthFailure = (status: 401 | 403, scope: string): void => {
    metrics.requestsRefused.inc({ status: String(status), scope });
  };
  // Registered before the routes: the limiter attaches itself to each route as it is added.
  if (options.rateLimits) {
    await registerRateLimits(app, options.rateLimits, (scope) =>
      metrics.requestsRefused.inc({ status: '429', scope: scope ?? 'unknown' }),
    );
  }

  app.get(
    '/healthz',
    {
      schema: {
        description: 'The process is alive.',
        tags: ['operations'],
        response: {
          200: {
            type: 'object',
            description: 'the process is alive',
            properties: { status: { type: 'string', enum: ['ok'] } },
            required: ['status'],
          },
        },
      },
    },
    () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        description: 'Whether this process can do its job now (log, store, sink).',
        tags: ['operations'],
        response: { 200: readyReportSchema, 503: readyReportSchema },
      },
    },
    async (_request, reply) => {
      const report = await options.readiness();
      return reply.status(report.ready ? 200 : 503).send(report);
    },
  );
  app.get(
    '/metrics',
    {
      schema: {
        description: 'Prometheus metrics.',
        tags: ['operations'],
        response: {
          200: {
            description: 'Prometheus text exposition format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (_request, reply) => {
      return reply
        .header('content-type', metrics.registry.contentType)
        .send(await metrics.registry.metrics());
    },
  );

  if (options.ingest && options.registry) {
    registerIngestRoutes(app, {
      ingestor: options.ingest.ingestor,
      registry: options.registry,
      maxBodyBytes: options.ingest.maxBodyBytes,
      onAuthFailure,
      ...(options.ingest.admission
        ? {
            admission: options.ingest.admission,
            onRefused: () => metrics.requestsRefused.inc({ status: '503', scope: 'ingest' }),
          }
        : {}),
    });
  }
  if (options.query && options.registry) {
    const recorder = options.privacy?.recorder;
    registerQueryRoutes(app, {
      store: options.query.store,
      registry: options.registry,
      onAuthFailure,
      // Searches that include restricted subjects' events are recorded (GDPR Art. 18).
      ...(recorder
        ? {
            recordAccess: (tenant: string, keyId: string, event: EventInput) =>
              recorder.record(tenant, keyId, event).then(() => undefined),
          }
        : {}),
      ...(options.search?.recorder ? { recorder: options.search.recorder } : {}),
      ...(options.search ? { links: options.search.links } : {}),
    });
  }
  if (options.query && options.registry && options.search) {
    // Facets, histogram, export and its signed links; searches and exports are recorded.
    registerSearchRoutes(app, {
      store: options.query.store,
      registry: options.registry,
      onAuthFailure,
      links: options.search.links,
      ...(options.search.recorder ? { recorder: options.search.recorder } : {}),
    });
  }
  if (options.query && options.registry && options.privacy) {
    registerPrivacyRoutes(app, {
      ...options.privacy,
      store: options.query.store,
      registry: options.registry,
      onAuthFailure,
    });
  }
  if (options.query && options.registry && options.privacy && options.access) {
    registerAccessRoutes(app, {
      store: options.query.store,
      registry: options.registry,
      privacy: options.privacy.privacy,
      recorder: options.privacy.recorder,
      policy: options.access.policy,
      ...(options.privacy.signer ? { signer: options.privacy.signer } : {}),
      onAuthFailure,
    });
  }
  if (options.query && options.registry) {
    // Public keys, checkpoints, inclusion and consistency proofs (PROTOCOL.md §15.4).
    registerProofRoutes(app, {
      store: options.query.store,
      registry: options.registry,
      onAuthFailure,
    });
  }
  if (options.query && options.registry) {
    // vigil verify, run in this process for a CLI that cannot open the store (PROTOCOL.md §19).
    registerVerifyRoutes(app, {
      store: options.query.store,
      registry: options.registry,
      onAuthFailure,
    });
  }
  if (options.query && options.registry) {
    // Detection backtests over the key's tenant (detect/backtest.ts).
    registerDetectRoutes(app, {
      store: options.query.store,
      registry: options.registry,
      onAuthFailure,
      ...(options.privacy?.privacy ? { privacy: options.privacy.privacy } : {}),
    });
  }
  if (options.query && options.registry && options.retention) {
    const privacy = options.privacy?.privacy;
    registerRetentionRoutes(app, {
      ...options.retention,
      // Holds cover the rows that name a person by pseudonym too.
      ...(privacy
        ? {
            subjectForms: async (tenant: string, subject: string) =>
              (await privacy.subjectForms(tenant, { id: subject })).ids.filter(
                (f) => f !== subject,
              ),
          }
        : {}),
      store: options.query.store,
      registry: options.registry,
      onAuthFailure,
    });
  }
  if (options.webhooks && options.registry) {
    registerWebhookRoutes(app, { ...options.webhooks, registry: options.registry, onAuthFailure });
  }
  if (options.query && options.registry) {
    const recorder =
      options.alerts?.recorder ?? options.admin?.recorder ?? options.privacy?.recorder;
    const privacy = options.alerts?.privacy ?? options.privacy?.privacy;
    const retentionDays = options.alerts?.retentionDays;
    registerAlertRoutes(app, {
      store: options.query.store,
      registry: options.registry,
      ...(recorder ? { recorder } : {}),
      ...(privacy ? { privacy } : {}),
      ...(retentionDays !== undefined ? { retentionDays } : {}),
      onTriage: (state, alerts) => metrics.triageChanges.inc({ state }, alerts),
      onAuthFailure,
    });
    metrics.watchOpenAlerts(new AlertTriage(options.query.store));
  }
  if (options.keyDirectory && options.registry) {
    registerKeyDirectoryRoutes(app, {
      directory: options.keyDirectory,
      registry: options.registry,
      onAuthFailure,
    });
  }
  if (options.admin && options.registry) {
    registerAdminRoutes(app, {
      directory: options.admin.directory,
      registry: options.registry,
      recorder: options.admin.recorder,
      onAuthFailure,
    });
  }
  return app;
}
