import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import {
  HttpKeySource,
  LinkSigner,
  KeyRegistry,
  TenantDirectory,
  migrate,
  openStore,
  timeZonesOf,
  type RecordChange,
  type Store,
} from '@vigil/query';
import type { Config } from '../config/config.js';
import { Ingestor } from '@vigil/collector';
import { CheckPool } from '@vigil/collector';
import { Admission } from '@vigil/collector';
import type { Log } from '@vigil/collector';
import { openLog } from '@vigil/collector';
import { SinkRunner } from '@vigil/collector';
import { loadDetectorOverrides, loadDetectorRules } from '@vigil/collector';
import { defaultSinkPlugins } from './default-plugins.js';
import { openCheckpointing, type Checkpointing } from '@vigil/collector';
import { buildApp, type ReadyReport } from './app.js';
import {
  bootstrapIfEmpty,
  credentialsPath,
  formatCredentials,
  type BootstrapCredentials,
} from './bootstrap.js';
import { Metrics } from './metrics.js';
import { startBaselineRefresh } from './baselines.js';
import { SystemRecorder } from '@vigil/collector';
import { openPrivacyService, privacyRoutes } from '../privacy/setup.js';
import { VERSION } from '@vigil/collector';
import { openEnrichment, type EnrichmentPlugin } from '@vigil/collector';
import { openDetector, type DetectorHandle } from './detector.js';
import { openWebhooks, type Webhooks } from './webhooks.js';

export interface RunningRole {
  readonly app: FastifyInstance;
  /** Base URL the HTTP server listens on. */
  readonly url: string;
  /** Absent on a collector that loads keys over HTTP (keys.url). */
  readonly store: Store | undefined;
  readonly log: Log | undefined;
  readonly ingestor: Ingestor | undefined;
  readonly sink: SinkRunner | undefined;
  /** The detector (detect role, and start unless detect.enabled is false). */
  readonly detector: DetectorHandle | undefined;
  /** Admission control of ingest (roles that ingest): the lag it judges by. */
  readonly admission: Admission | undefined;
  /** The sink's signer, checkpointer and witnesses (roles that run a sink). */
  readonly checkpointing: Checkpointing | undefined;
  readonly registry: KeyRegistry;
  readonly directory: TenantDirectory | undefined;
  /** Records changes to tenants, keys and retention as audit events (roles with a log). */
  readonly recorder: SystemRecorder | undefined;
  readonly metrics: Metrics;
  /**
   * Alert webhooks (roles with a store): `webhooks.output` is the detector's second alert
   * output; the dispatcher runs where the detector runs, and in `start`.
   */
  readonly webhooks: Webhooks | undefined;
  /** Set on the first start of an empty store (role start or query). */
  readonly credentials: BootstrapCredentials | undefined;
  /** Graceful stop: no new requests, in-flight requests and the sink's batch finish. */
  close(): Promise<void>;
}

export interface RoleIo {
  readonly logger: Logger;
  /** Where one-time output (the bootstrap keys) goes; stdout by default. */
  readonly print?: (text: string) => void;
  /** Listen on config.host:port (default). Off for an in-process API used by the CLI. */
  readonly listen?: boolean;
  /** Run the sink where the role has one (default). */
  readonly sink?: boolean;
  /** Run the detector where the role has one (default). */
  readonly detector?: boolean;
}

/**
 * Runs one role in this process. `start` is everything on embedded defaults; `collector`,
 * `sink` and `query` are the scale-out roles, each with its own port, each depending only on
 * what its job needs (see /readyz).
 */
export async function runRole(config: Config, io: RoleIo): Promise<RunningRole> {
  const { role } = config;
  const logger = io.logger;
  const metrics = new Metrics();
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (error) {
        logger.error({ err: error }, 'error while shutting down');
      }
    }
  };
  try {
    // A collector given keys.url needs no store: it authenticates with key digests from another
    // node's key directory and only appends to the log.
    let store: Store | undefined;
    let directory: TenantDirectory | undefined;
    if (!config.keysFrom) {
      const opened = await openStore(config.store);
      store = opened;
      closers.push(() => opened.close());
      const report = await migrate(opened);
      if (report.applied.length > 0)
        logger.info({ applied: report.applied, version: report.current }, 'store migrated');
      directory = new TenantDirectory(opened);
    }
    const registry = new KeyRegistry(
      directory ??
        new HttpKeySource(
          (config.keysFrom as { url: string }).url,
          (config.keysFrom as { token: string }).token,
        ),
    );
    await registry.refresh();
    const refresh = setInterval(() => {
      registry
        .refresh()
        .catch((error: unknown) =>
          logger.warn({ err: error }, 'could not reload API keys; keeping the last ones'),
        );
    }, config.keysRefreshMs);
    refresh.unref();
    closers.push(() => {
      clearInterval(refresh);
      return Promise.resolve();
    });

    let log: Log | undefined;
    if (role === 'start' || role === 'collector' || role === 'sink' || role === 'detect') {
      log = await openLog(config.log, logger);
      const opened = log;
      closers.push(() => opened.close());
    }
    // Changes to tenants and keys are audit events: where this role has a log, they are sealed
    // into the changed tenant's system stream and appended to the log (system/recorder.ts).
    const recorder = log ? new SystemRecorder(log) : undefined;
    let credentials: BootstrapCredentials | undefined;
    if (directory && config.bootstrap && (role === 'start' || role === 'query')) {
      credentials = await bootstrapIfEmpty(directory, registry, config.dataDir, recorder);
      if (credentials)
        (io.print ?? ((t: string) => process.stdout.write(t + '\n')))(
          formatCredentials(credentials, credentialsPath(config.dataDir)),
        );
    }
    let ingestor: Ingestor | undefined;
    if (log && (role === 'start' || role === 'collector')) {
      const pool =
        config.ingest.workers > 0
          ? new CheckPool(config.ingest.workers, config.ingest, 32, logger)
          : undefined;
      if (pool) closers.push(() => pool.close());
      ingestor = new Ingestor(log, config.ingest, {
        observer: metrics.ingestObserver(),
        ...(pool ? { pool } : {}),
      });
    }
    // Erasure markers, restrictions and pseudonyms (privacy/): the sink applies them to new
    // rows, the admin API serves the data-subject rights.
    const privacy = store ? openPrivacyService(config, store, logger) : undefined;
    const runSink = store && log && (role === 'start' || role === 'sink') && io.sink !== false;
    const runDetector =
      store &&
      log &&
      (role === 'detect' || (role === 'start' && config.detect.enabled)) &&
      io.detector !== false;
    // One enrichment (GeoIP databases opened once) for the sink and the detector of a process:
    // the detector must see the values the sink stores.
    let enrichment: EnrichmentPlugin | undefined;
    if (runSink || runDetector)
      enrichment = await openEnrichment(config.enrich, logger.child({ component: 'enrich' }));
    let sink: SinkRunner | undefined;
    let checkpointing: Checkpointing | undefined;
    if (store && log && runSink) {
      const opened = await openCheckpointing({
        config: config.checkpoint,
        store,
        registry: metrics.registry,
        logger: logger.child({ component: 'checkpoint' }),
      });
      checkpointing = opened;
      // Closers run in reverse: this one after the sink has stopped, so the leaves of its last
      // batch are signed before the process exits.
      closers.push(() => opened.close());
      const runner = new SinkRunner({
        store,
        log,
        plugins: await defaultSinkPlugins({
          config,
          store,
          logger,
          trees: opened.checkpointer,
          ...(privacy ? { privacy } : {}),
          ...(enrichment ? { enrichment } : {}),
        }),
        config: config.sink,
        retentionDays: config.retentionDays,
        observer: metrics.sinkObserver(),
        logger: logger.child({ component: 'sink' }),
        metrics,
      });
      // Not awaited: joining a consumer group can take a session timeout (a crashed predecessor
      // still holds the partitions), and the HTTP server — health, readiness, the API — must
      // answer meanwhile; /readyz reports the sink until it runs.
      runner
        .start()
        .catch((error: unknown) => logger.error({ err: error }, 'the sink could not start'));
      closers.push(() => runner.stop());
      sink = runner;
    }
    // Detection baselines, recomputed on a schedule where the store is written.
    // Each tenant's `hours` are counted in its time zone from the detect overrides.
    if (store && (role === 'start' || role === 'sink'))
      closers.push(
        startBaselineRefresh(
          config,
          store,
          logger,
          timeZonesOf(
            loadDetectorOverrides(config.detect.overridesFile),
            loadDetectorRules(config.detect.rulesDir),
          ),
        ),
      );

    // Alert webhooks: the detector's second output (after the alerts table) queues deliveries
    // in the store's outbox; the dispatcher sends from it where the detector runs, and in
    // `start` (re-driven dead letters), never in a CLI's in-process API. The configuration API
    // is on the roles where changes can be recorded (start, collector).
    const webhooks = store
      ? openWebhooks(config.webhooks, config.privacy.keyFile, store, metrics, logger)
      : undefined;
    if (webhooks && (runDetector || (role === 'start' && io.sink !== false))) {
      webhooks.dispatcher.start();
      closers.push(() => webhooks.dispatcher.stop());
    }

    let detector: DetectorHandle | undefined;
    if (store && log && runDetector) {
      const runner = openDetector({
        config,
        store,
        log,
        enrichment,
        metrics,
        logger,
        privacy,
        ...(webhooks ? { outputs: [webhooks.output] } : {}),
      });
      // Not awaited, like the sink: /readyz reports it until it runs.
      runner
        .start()
        .catch((error: unknown) => logger.error({ err: error }, 'the detector could not start'));
      closers.push(() => runner.stop());
      detector = runner;
    }

    // Admission control of ingest: 503 + Retry-After while the sink of this process has failed
    // or stopped, or while the sinks' group lags more than ingest.maxLagRecords behind the log
    // (read from the log every second; on Kafka through the admin API every 5 s, since a
    // collector there runs no consumer of the group).
    let admission: Admission | undefined;
    if (log && ingestor) {
      const runner = sink;
      const opened = new Admission({
        log,
        group: config.sink.group,
        maxLagRecords: config.ingest.maxLagRecords,
        refreshMs: config.log.kind === 'kafka' ? 5000 : 1000,
        ...(runner ? { sinkState: () => runner.state } : {}),
        // Twice what the check workers take at once (32 each, check-pool.ts): enough to keep
        // them busy while bodies arrive, and a bound on the bodies held in memory.
        maxInFlight: Math.max(64, 2 * 32 * config.ingest.workers),
        logger: logger.child({ component: 'admission' }),
      });
      await opened.start();
      closers.push(() => {
        opened.stop();
        return Promise.resolve();
      });
      metrics.watchIngestLag(() => opened.lag);
      admission = opened;
    }

    // Each retention or legal-hold change made through the admin API is handed to
    // recordChange as an audit event of its tenant. The change itself is already kept by then
    // in the append-only tables retention_policies and legal_holds; the system recorder
    // (system/recorder.ts) writes such events to the tenant's system stream. A role without a
    // log (query) has no recorder and writes each change to its own log.
    const recordRetentionChange: RecordChange = (tenantId, actorKeyId, event) => {
      if (recorder) return recorder.record(tenantId, actorKeyId, event).then(() => undefined);
      logger.info({ tenant: tenantId, key: actorKeyId, event }, 'retention change');
      return Promise.resolve();
    };

    let storeOk = true;
    let storeCheckedAt = 0;
    const readiness = async (): Promise<ReadyReport> => {
      const checks: Record<string, string> = {};
      if (store) {
        if (Date.now() - storeCheckedAt > 2000) {
          storeOk = await store.ping();
          storeCheckedAt = Date.now();
        }
        checks['store'] = storeOk ? 'ok' : 'unreachable';
      }
      if (log) checks['log'] = log.ready() ? 'ok' : 'unavailable';
      if (sink) {
        const state = sink.state;
        checks['sink'] =
          state === 'running'
            ? 'ok'
            : state === 'starting'
              ? 'starting: joining the consumer group'
              : `${state}${sink.error ? `: ${sink.error.message}` : ''}`;
      }
      if (detector) {
        const state = detector.state;
        checks['detector'] =
          state === 'running'
            ? 'ok'
            : state === 'starting'
              ? 'starting: restoring its checkpoint and joining the consumer group'
              : `${state}${detector.error ? `: ${detector.error.message}` : ''}`;
      }
      if (admission && config.ingest.maxLagRecords > 0)
        checks['lag'] =
          admission.lag > config.ingest.maxLagRecords
            ? `behind: the sinks lag ${admission.lag} log records, more than ingest.maxLagRecords`
            : 'ok';
      checks['keys'] =
        registry.size === 0
          ? 'none loaded'
          : Date.now() - registry.lastRefresh > 3 * config.keysRefreshMs + 5000
            ? 'stale: the key source has not answered for a while'
            : 'ok';
      const ready = Object.entries(checks).every(
        ([name, v]) => v === 'ok' || (name === 'keys' && (role === 'sink' || role === 'detect')),
      );
      return { ready, checks };
    };

    const app = await buildApp({
      logger,
      metrics,
      readiness,
      registry,
      ...(ingestor
        ? {
            ingest: {
              ingestor,
              maxBodyBytes: config.ingest.maxBodyBytes,
              ...(admission ? { admission } : {}),
            },
          }
        : {}),
      http: config.http,
      ...(store && (role === 'start' || role === 'query') ? { query: { store } } : {}),
      ...(store && (role === 'start' || role === 'query')
        ? {
            search: {
              links: LinkSigner.ofDataDir(config.dataDir),
              ...(recorder ? { recorder } : {}),
            },
          }
        : {}),
      ...(directory && recorder && (role === 'start' || role === 'collector')
        ? { admin: { directory, recorder } }
        : {}),
      ...(directory ? { keyDirectory: directory } : {}),
      ...(store && privacy && recorder && (role === 'start' || role === 'collector')
        ? {
            privacy: await privacyRoutes({
              config,
              store,
              service: privacy,
              recorder,
              log,
              checkpointing,
            }),
          }
        : {}),
      ...(webhooks && recorder && (role === 'start' || role === 'collector')
        ? { webhooks: webhooks.routes(recorder) }
        : {}),
      access: { policy: config.access },
      rateLimits: config.rateLimits,
      // Alerts and their triage; triage is recorded through the system recorder (a role
      // without a log has none, and refuses triage changes).
      alerts: {
        retentionDays: config.alerts.retentionDays,
        ...(recorder ? { recorder } : {}),
        ...(privacy ? { privacy } : {}),
      },
      retention: {
        defaults: config.retentionDays,
        refreshSeconds: (config.sink.policyRefreshMs ?? 10_000) / 1000,
        recordChange: recordRetentionChange,
      },
      version: VERSION,
    });
    // Closed first: stop taking requests and let in-flight ones (and their appends) finish.
    closers.push(() => app.close());
    let url = 'inject://local';
    if (io.listen === false) {
      await app.ready();
    } else {
      url = await app.listen({ host: config.host, port: config.port });
      logger.info(
        {
          url,
          log: config.log.kind,
          store: config.keysFrom ? 'none' : config.store.kind,
          version: VERSION,
        },
        `vigil ${role} listening`,
      );
    }
    return {
      app,
      url,
      store,
      log,
      ingestor,
      sink,
      detector,
      admission,
      checkpointing,
      registry,
      directory,
      recorder,
      metrics,
      webhooks,
      credentials,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
