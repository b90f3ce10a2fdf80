import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { randomSaltSource } from '@vigil/protocol';
import { KeyRegistry, TenantDirectory, type Store } from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import {
  DEFAULT_RETENTION_DAYS,
  type IngestConfig,
  type RateLimitConfig,
} from '../config/config.js';
import { Ingestor } from '@vigil/collector';
import { MemoryLog } from '@vigil/collector/testing';
import { SinkRunner } from '@vigil/collector';
import { SystemRecorder } from '@vigil/collector';
import { buildApp } from './app.js';
import { bootstrapIfEmpty, type BootstrapCredentials } from './bootstrap.js';
import { Metrics } from './metrics.js';

/**
 * The whole HTTP surface of `vigil start` in this process, for integration tests: chDB (a fresh
 * database), a memory log, the system recorder, a running sink, bootstrap credentials, and
 * the app answering through `inject`.
 */
export interface TestApp {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly directory: TenantDirectory;
  readonly registry: KeyRegistry;
  readonly log: MemoryLog;
  readonly recorder: SystemRecorder;
  readonly metrics: Metrics;
  readonly credentials: BootstrapCredentials;
  call(
    method: 'GET' | 'POST' | 'PATCH',
    url: string,
    key: string | undefined,
    body?: unknown,
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export const TEST_INGEST: IngestConfig = {
  maxBodyBytes: 64 * 1024,
  maxEvents: 50,
  maxRecordBytes: 16 * 1024,
  clockSkewMs: 300_000,
  backfillAfterMs: 86_400_000,
  dedupeWindow: 1000,
  maxLagRecords: 0,
  workers: 0,
};

export async function startTestApp(
  options: { rateLimits?: RateLimitConfig; sink?: boolean } = {},
): Promise<TestApp> {
  const ts: TestStore = await openTestStore();
  const dataDir = mkdtempSync(join(tmpdir(), 'vigil-test-app-'));
  const logger = pino({ level: 'silent' });
  const directory = new TenantDirectory(ts.store);
  const registry = new KeyRegistry(directory);
  const log = new MemoryLog('events', 2);
  const recorder = new SystemRecorder(log, { host: 'test-host' });
  const metrics = new Metrics();
  const credentials = await bootstrapIfEmpty(directory, registry, dataDir, recorder);
  if (!credentials) throw new Error('bootstrap did not run on an empty store');
  let sink: SinkRunner | undefined;
  if (options.sink !== false) {
    sink = new SinkRunner({
      store: ts.store,
      log,
      config: { group: 'sink', maxBatchRecords: 50 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      logger,
      salts: randomSaltSource(),
    });
    await sink.start();
  }
  const app = await buildApp({
    logger,
    metrics,
    registry,
    readiness: () => Promise.resolve({ ready: true, checks: {} }),
    ingest: {
      ingestor: new Ingestor(log, TEST_INGEST, { observer: metrics.ingestObserver() }),
      maxBodyBytes: TEST_INGEST.maxBodyBytes,
    },
    query: { store: ts.store },
    admin: { directory, recorder },
    ...(options.rateLimits ? { rateLimits: options.rateLimits } : {}),
    version: 'test',
  });
  return {
    app,
    store: ts.store,
    directory,
    registry,
    log,
    recorder,
    metrics,
    credentials,
    call: (method, url, key, body) =>
      app.inject({
        method,
        url,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      }),
    async close() {
      await app.close();
      await sink?.stop();
      await ts.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
