/**
 * The settings each pipeline stage takes. The application (`@vigil/app`) parses them from flags,
 * environment and file once at start, validates them and passes them down; nothing in this
 * package reads the environment.
 */
import type { Category } from '@vigil/protocol';

/** Days each category is kept by default; tenants can set their own (retention policies). */
export const DEFAULT_RETENTION_DAYS: Readonly<Record<Category, number>> = {
  authentication: 396, // 13 months
  access_change: 1826, // 5 years: access reviews look back years
  data_access: 396,
  data_change: 1096,
  admin: 1826,
  api: 90,
  security: 1096,
  system: 396,
};

export type LogConfig =
  | {
      readonly kind: 'file';
      readonly dir: string;
      readonly topic: string;
      readonly partitions: number;
      readonly fsync: 'always' | 'interval' | 'never';
      readonly fsyncIntervalMs: number;
      readonly segmentBytes: number;
      readonly retentionMs: number;
    }
  | {
      readonly kind: 'kafka';
      readonly topic: string;
      readonly partitions: number;
      readonly brokers: readonly string[];
      readonly clientId: string;
      readonly ssl: boolean;
      readonly sasl?: {
        readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
        readonly username: string;
        readonly password: string;
      };
      readonly idempotent: boolean;
      readonly sessionTimeoutMs: number;
    };

export interface IngestConfig {
  readonly maxBodyBytes: number;
  readonly maxEvents: number;
  readonly maxRecordBytes: number;
  readonly clockSkewMs: number;
  readonly backfillAfterMs: number;
  readonly dedupeWindow: number;
  /** Refuse events while the sinks' group lags more than this many log records; 0: no bound. */
  readonly maxLagRecords: number;
  /** Worker threads for the per-event checks; 0: on the event loop. */
  readonly workers: number;
}

export interface SinkConfig {
  readonly group: string;
  readonly maxBatchRecords: number;
  /**
   * Bytes of log records per batch and partition (absent: the log's own bound). With
   * maxBatchRecords, what bounds the sink's memory whatever its lag: a batch's rows, the
   * INSERT body built from them and the store's work on it all grow with it.
   */
  readonly maxBatchBytes?: number;
  /** How long retention policies and legal holds stay cached in a sink (default 10 s). */
  readonly policyRefreshMs?: number;
}

/** Enrichment by the sink (sink/enrich.ts). Empty database lists: the defaults. */
export interface EnrichConfig {
  readonly geoip: {
    readonly enabled: boolean;
    readonly cityDb: readonly string[];
    readonly asnDb: readonly string[];
    /** Without asnDb: the bundled IP-to-ASN table, or none (absent: none). */
    readonly asn?: 'off' | 'bundled';
  };
  readonly userAgent: { readonly enabled: boolean };
}

/** Checkpoints and witnesses (checkpoint/). */
export interface CheckpointConfig {
  readonly everyEvents: number;
  readonly intervalMs: number;
  readonly signer:
    | { readonly kind: 'file'; readonly dir: string }
    | {
        readonly kind: 'command';
        readonly command: string;
        /** A PEM file path, or the raw key in base64url. */
        readonly publicKey: string;
      };
  readonly witness: {
    readonly dir?: string;
    readonly webhooks: readonly string[];
    readonly webhookToken?: string;
    readonly queue: number;
  };
}
