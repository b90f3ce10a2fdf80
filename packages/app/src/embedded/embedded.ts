import type { AuditTransport, OutgoingBatch, TransportResult } from '@vigil/sdk';
import { VigilError } from '@vigil/protocol';
import { pino, type Logger } from 'pino';
import { loadConfig, type Config } from '../config/config.js';
import { runRole, type RunningRole } from '../server/roles.js';

export interface EmbeddedCollectorOptions {
  /** Settings as config-file keys (`dataDir`, `log.fsync`, …); defaults are those of `vigil start`. */
  readonly settings?: Record<string, string | number | boolean>;
  /** Serve the HTTP API too (search, metrics) on settings.host/port. Default false. */
  readonly listen?: boolean;
  readonly logger?: Logger;
}

/**
 * Vigil in the application's own process: the embedded file log, the sink and chDB, with the
 * same checks and guarantees as `vigil start`, and an SDK transport that hands batches to the
 * collector without HTTP. Applications that only send over HTTP never load this module (and so
 * never load chDB); the SDK itself stays light.
 */
export interface EmbeddedCollector {
  readonly role: RunningRole;
  readonly config: Config;
  /** A transport for `createAuditClient({ transport, … })`, acting with the given API key. */
  transport(apiKey: string): AuditTransport;
  close(): Promise<void>;
}

export async function startEmbeddedCollector(
  options: EmbeddedCollectorOptions = {},
): Promise<EmbeddedCollector> {
  const flags: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.settings ?? {})) flags[k] = String(v);
  const config = loadConfig({ role: 'start', flags });
  const logger = options.logger ?? pino({ level: config.logLevel });
  const role = await runRole(config, {
    logger,
    listen: options.listen ?? false,
    print: () => undefined,
  });
  return {
    role,
    config,
    transport: (apiKey) => new EmbeddedTransport(role, apiKey),
    close: () => role.close(),
  };
}

/**
 * Hands SDK batches straight to the collector's checks and the log. The key is checked on every
 * send (it may be revoked meanwhile), and the tenant comes from it, as over HTTP.
 */
export class EmbeddedTransport implements AuditTransport {
  constructor(
    private readonly role: RunningRole,
    private readonly apiKey: string,
  ) {}

  async send(batch: OutgoingBatch, signal: AbortSignal): Promise<TransportResult> {
    if (signal.aborted) return { kind: 'retry', reason: 'aborted' };
    const ingestor = this.role.ingestor;
    if (!ingestor)
      return {
        kind: 'rejected',
        status: 404,
        code: 'VIGIL_ERR_NOT_FOUND',
        message: 'this role does not ingest',
        details: [],
      };
    const auth = this.role.registry.authenticate(`Bearer ${this.apiKey}`, 'ingest', '127.0.0.1');
    if (!auth.ok) {
      return {
        kind: 'rejected',
        status: auth.status,
        code: auth.code,
        message: auth.reason,
        details: [],
      };
    }
    try {
      const result = await ingestor.ingest(
        { tenantId: auth.key.tenantId, keyId: auth.key.keyId },
        batch.events,
      );
      return { kind: 'accepted', accepted: result.accepted, duplicates: result.duplicates };
    } catch (error) {
      if (error instanceof VigilError && error.status < 500 && error.status !== 429) {
        return {
          kind: 'rejected',
          status: error.status,
          code: error.code,
          message: error.message,
          details: error.details,
        };
      }
      const status = error instanceof VigilError ? error.status : 500;
      return {
        kind: 'retry',
        reason: (error as Error).message,
        status,
        ...(status === 503 || status === 429 ? { retryAfterMs: 1000 } : {}),
      };
    }
  }
}
