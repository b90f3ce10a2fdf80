import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { CATEGORIES, type Category } from '@vigil/protocol';
import { AddressGuard, parsePolicyLists, type ReviewPolicy, type StoreConfig } from '@vigil/query';
import { ConfigError } from '@vigil/collector';
import { DEFAULT_RETENTION_DAYS } from '@vigil/collector';
import type {
  CheckpointConfig,
  EnrichConfig,
  IngestConfig,
  LogConfig,
  SinkConfig,
} from '@vigil/collector';

export type { CheckpointConfig, EnrichConfig, IngestConfig, LogConfig, SinkConfig };
export { DEFAULT_RETENTION_DAYS };
import { OPTIONS, type OptionSpec } from './options.js';

export type Role = 'start' | 'collector' | 'sink' | 'query' | 'detect';

export const DEFAULT_PORTS: Readonly<Record<Role, number>> = {
  start: 8080,
  collector: 8080,
  sink: 8081,
  query: 8082,
  detect: 8083,
};

/** The detector's settings (config `detect.*`). */
export interface DetectConfig {
  readonly enabled: boolean;
  readonly group: string;
  /** Absent: the built-in pack. */
  readonly rulesDir?: string;
  readonly overridesFile?: string;
  readonly latenessMs: number;
  readonly checkpointIntervalMs: number;
  readonly maxBatchRecords: number;
  /** single or rekey (auto resolved: rekey on Kafka). */
  readonly mode: 'single' | 'rekey';
  /** With rekey: which stages run in this process. */
  readonly stage: 'both' | 'rekey' | 'engine';
  /** The re-key topic, its partitions and the retention it must have. */
  readonly topic: string;
  readonly partitions: number;
  readonly retentionMs: number;
  readonly punctuationMs: number;
}

/** Requests per minute per API key and scope, per instance; 0: no limit. */
export interface RateLimitConfig {
  readonly ingestPerMinute: number;
  readonly queryPerMinute: number;
  /** For admin and operator requests. */
  readonly adminPerMinute: number;
}

/** Timeouts of the HTTP server (fastify requestTimeout, connectionTimeout, keepAliveTimeout). */
export interface HttpConfig {
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

export interface Config {
  readonly role: Role;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logLevel: string;
  /** `auto` is decided where the logger is made (roles' stdout). */
  readonly logFormat: 'auto' | 'json' | 'pretty';
  readonly log: LogConfig;
  readonly store: StoreConfig;
  readonly ingest: IngestConfig;
  readonly sink: SinkConfig;
  readonly enrich: EnrichConfig;
  /** The detector (collector/src/detector/). */
  readonly detect: DetectConfig;
  readonly checkpoint: CheckpointConfig;
  readonly retentionDays: Readonly<Record<Category, number>>;
  readonly keysRefreshMs: number;
  /** Where a collector loads keys from when not from the store (keys.url, keys.token). */
  readonly keysFrom?: { readonly url: string; readonly token: string };
  readonly rateLimits: RateLimitConfig;
  readonly http: HttpConfig;
  readonly bootstrap: boolean;
  /** Data-subject rights and pseudonymisation (privacy/). */
  readonly privacy: { readonly keyFile: string };
  /** Detection baselines (query/detect/baselines.ts); refreshMs 0: no schedule. */
  readonly baselines: {
    readonly refreshMs: number;
    readonly historyMs: number;
    readonly keepMs: number;
    readonly activationMs: number;
    readonly maxEntitiesPerTenant: number;
  };
  /** Access reviews (access.*): flags and how use is measured. */
  readonly access: ReviewPolicy;
  /** Alerts of the detector: how long they and their triage are kept. */
  readonly alerts: { readonly retentionDays: number };
  /** Delivery of alerts to tenants' webhooks (server/webhooks.ts). */
  readonly webhooks: WebhooksConfig;
}

export interface WebhooksConfig {
  /** CIDRs, addresses and host names webhooks may reach despite the address guard. */
  readonly allowAddresses: readonly string[];
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly maxAgeMs: number;
  readonly maxQueue: number;
}

type Flat = Record<string, unknown>;

function coerce(spec: OptionSpec, raw: unknown, source: string): unknown {
  if (typeof raw !== 'string') return raw;
  switch (spec.type) {
    case 'integer': {
      const n = Number(raw);
      return Number.isInteger(n) ? n : raw; // zod reports the error with the option's name
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${source}: "${raw}" is not a boolean (use true or false)`);
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    default:
      return raw;
  }
}

function flattenFile(value: unknown, prefix = '', out: Flat = {}): Flat {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (key === 'retention') out[key] = v;
      else flattenFile(v, key, out);
    }
  } else {
    out[prefix] = value;
  }
  return out;
}

const optionSchema = (spec: OptionSpec): z.ZodType => {
  const base: z.ZodType =
    spec.type === 'integer'
      ? z
          .number({ error: `${spec.key} must be a whole number` })
          .int()
          .min(0)
      : spec.type === 'boolean'
        ? z.boolean()
        : spec.type === 'list'
          ? z.array(z.string())
          : spec.choices
            ? z.enum(spec.choices as [string, ...string[]], {
                error: `${spec.key} must be one of: ${spec.choices.join(', ')}`,
              })
            : z.string();
  return spec.default === undefined ? base.optional() : base.default(spec.default as never);
};

const flatSchema = z
  .object(Object.fromEntries(OPTIONS.map((o) => [o.key, optionSchema(o)])))
  .extend({
    retention: z.partialRecord(z.enum(CATEGORIES), z.number().int().min(1).max(36_600)).optional(),
  })
  .strict();

export interface LoadOptions {
  readonly role: Role;
  /** Values from command-line flags, keyed by option key. */
  readonly flags?: Flat;
  readonly env?: NodeJS.ProcessEnv;
  /** Path of a JSON config file. */
  readonly file?: string;
}

/**
 * Builds the configuration once at start from defaults < config file < environment < flags,
 * validates it with zod (messages name the setting and say what to change) and freezes it.
 * Nothing else in Vigil reads process.env.
 */
export function loadConfig(options: LoadOptions): Config {
  const flat: Flat = {};
  if (options.file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(options.file, 'utf8'));
    } catch (error) {
      throw new ConfigError(`config file ${options.file}: ${(error as Error).message}`);
    }
    Object.assign(flat, flattenFile(parsed));
  }
  const env = options.env ?? {};
  for (const spec of OPTIONS) {
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') flat[spec.key] = coerce(spec, fromEnv, spec.env);
    const fromFlag = options.flags?.[spec.key];
    if (fromFlag !== undefined) flat[spec.key] = coerce(spec, fromFlag, `--${spec.flag}`);
  }
  for (const key of Object.keys(flat)) {
    if (key !== 'retention' && !OPTIONS.some((o) => o.key === key)) {
      throw new ConfigError(
        `unknown setting "${key}"${options.file ? ` in ${options.file}` : ''}; run "vigil config" for the list`,
      );
    }
  }
  const result = flatSchema.safeParse(flat);
  if (!result.success) {
    const details = result.error.issues.map((i) => {
      const key = i.path.join('.');
      const spec = OPTIONS.find((o) => o.key === key);
      const where = spec ? `${key} (${spec.env}, --${spec.flag})` : key;
      return { path: where, message: i.message.replace(`${key} `, '') };
    });
    throw new ConfigError('invalid configuration', details);
  }
  return deepFreeze(build(options.role, result.data));
}

function build(role: Role, f: Flat): Config {
  const s = (key: string): string => f[key] as string;
  const n = (key: string): number => f[key] as number;
  const optionalString = (key: string): string | undefined =>
    (f[key] as string | undefined) || undefined;
  const dataDir = resolve(s('dataDir'));
  const problems: string[] = [];

  let log: LogConfig;
  if (s('log.kind') === 'kafka') {
    const brokers = f['kafka.brokers'] as string[];
    if (brokers.length === 0)
      problems.push(
        'log.kind is kafka, so kafka.brokers (VIGIL_KAFKA_BROKERS) must list at least one host:port',
      );
    const mechanism = optionalString('kafka.saslMechanism') as
      'plain' | 'scram-sha-256' | 'scram-sha-512' | undefined;
    const username = optionalString('kafka.username');
    const password = optionalString('kafka.password');
    if (mechanism && (!username || !password))
      problems.push('kafka.saslMechanism needs kafka.username and kafka.password');
    log = {
      kind: 'kafka',
      topic: s('log.topic'),
      partitions: n('log.partitions'),
      brokers,
      clientId: s('kafka.clientId'),
      ssl: f['kafka.ssl'] as boolean,
      ...(mechanism && username && password ? { sasl: { mechanism, username, password } } : {}),
      idempotent: f['kafka.idempotent'] as boolean,
      sessionTimeoutMs: n('kafka.sessionTimeoutSeconds') * 1000,
    };
  } else {
    if (role === 'collector' || role === 'sink' || role === 'detect') {
      problems.push(
        `the ${role} role runs as its own process, so it needs a shared log: set log.kind=kafka (VIGIL_LOG=kafka) or run "vigil start" for everything in one process`,
      );
    }
    log = {
      kind: 'file',
      dir: resolve(dataDir, 'log'),
      topic: s('log.topic'),
      partitions: n('log.partitions'),
      fsync: s('log.fsync') as 'always' | 'interval' | 'never',
      fsyncIntervalMs: n('log.fsyncIntervalMs'),
      segmentBytes: n('log.segmentMiB') * 1024 * 1024,
      retentionMs: n('log.retentionHours') * 3_600_000,
    };
  }
  if (n('log.partitions') < 1 || n('log.partitions') > 1024)
    problems.push('log.partitions must be from 1 to 1024');
  for (const key of [
    'detect.baselines.historyDays',
    'detect.baselines.keepDays',
    'detect.baselines.maxEntitiesPerTenant',
  ])
    if (n(key) < 1) problems.push(`${key} must be at least 1`);

  let store: StoreConfig;
  if (s('store.kind') === 'clickhouse') {
    const cluster = optionalString('clickhouse.cluster');
    const caCert = optionalString('clickhouse.caCert');
    store = {
      kind: 'clickhouse',
      url: s('clickhouse.url'),
      username: s('clickhouse.username'),
      password: s('clickhouse.password'),
      database: s('store.database'),
      ...(cluster ? { cluster } : {}),
      ...(caCert ? { tls: { caCertPath: caCert } } : {}),
    };
  } else {
    if (role === 'sink' || role === 'query' || role === 'detect') {
      problems.push(
        `the ${role} role runs as its own process, so it needs a shared store: set store.kind=clickhouse (VIGIL_STORE=clickhouse) or run "vigil start"`,
      );
    }
    store = {
      kind: 'chdb',
      path: resolve(optionalString('store.path') ?? resolve(dataDir, 'store')),
      database: s('store.database'),
    };
  }
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(s('store.database')))
    problems.push('store.database must be a plain identifier (letters, digits, _)');

  const ingest: IngestConfig = {
    maxBodyBytes: n('ingest.maxBodyKiB') * 1024,
    maxEvents: n('ingest.maxEvents'),
    maxRecordBytes: n('ingest.maxRecordKiB') * 1024,
    clockSkewMs: n('ingest.clockSkewSeconds') * 1000,
    backfillAfterMs: n('ingest.backfillAfterHours') * 3_600_000,
    dedupeWindow: n('ingest.dedupeWindow'),
    maxLagRecords: n('ingest.maxLagRecords'),
    workers:
      (f['ingest.workers'] as number | undefined) ??
      Math.max(1, Math.min(4, availableParallelism())),
  };
  if (ingest.maxEvents < 1) problems.push('ingest.maxEvents must be at least 1');
  if (ingest.maxLagRecords < 0)
    problems.push('ingest.maxLagRecords must be 0 (no bound) or a positive number of records');
  for (const key of [
    'http.requestTimeoutSeconds',
    'http.idleTimeoutSeconds',
    'http.keepAliveTimeoutSeconds',
  ])
    if (n(key) < 1) problems.push(`${key} must be at least 1 second`);
  if (ingest.maxRecordBytes > ingest.maxBodyBytes)
    problems.push('ingest.maxRecordKiB must not exceed ingest.maxBodyKiB');

  const checkpoint = checkpointConfig(f, dataDir, problems);
  const rulesDir = optionalString('detect.rulesDir');
  const overridesFile = optionalString('detect.overridesFile');
  const detect: DetectConfig = {
    enabled: (f['detect.enabled'] as boolean) || role === 'detect',
    group: s('detect.group'),
    ...(rulesDir ? { rulesDir: resolve(rulesDir) } : {}),
    ...(overridesFile ? { overridesFile: resolve(overridesFile) } : {}),
    latenessMs: n('detect.latenessSeconds') * 1000,
    checkpointIntervalMs: n('detect.checkpointIntervalMs'),
    maxBatchRecords: n('detect.maxBatchRecords'),
    mode:
      s('detect.mode') === 'auto'
        ? s('log.kind') === 'kafka'
          ? 'rekey'
          : 'single'
        : (s('detect.mode') as 'single' | 'rekey'),
    stage: s('detect.stage') as 'both' | 'rekey' | 'engine',
    topic: optionalString('detect.topic') ?? `${s('log.topic')}.detect`,
    partitions: n('detect.partitions') || n('log.partitions'),
    retentionMs: n('detect.retentionHours') * 3_600_000,
    punctuationMs: n('detect.punctuationMs'),
  };
  if (detect.mode === 'rekey' && s('log.kind') !== 'kafka')
    problems.push(
      'detect.mode rekey needs log.kind kafka: the embedded log has one detector, which reads every partition',
    );
  if (detect.partitions < 1) problems.push('detect.partitions must be at least 1 (or 0)');
  if (n('detect.retentionHours') < 1) problems.push('detect.retentionHours must be at least 1');
  if (detect.punctuationMs < 10) problems.push('detect.punctuationMs must be at least 10');
  if (detect.latenessMs < 0) problems.push('detect.latenessSeconds must be 0 or more');
  if (detect.checkpointIntervalMs < 0)
    problems.push('detect.checkpointIntervalMs must be 0 (after every batch) or more');
  if (detect.maxBatchRecords < 1) problems.push('detect.maxBatchRecords must be at least 1');

  const keysUrl = optionalString('keys.url');
  const keysToken = optionalString('keys.token');
  let keysFrom: { url: string; token: string } | undefined;
  if (keysUrl !== undefined) {
    if (role !== 'collector')
      problems.push(
        'keys.url is for the collector role only; other roles load keys from their store',
      );
    if (keysToken === undefined)
      problems.push('keys.url needs keys.token (VIGIL_KEYS_TOKEN): an operator key of that node');
    else if (!/^https?:\/\//.test(keysUrl))
      problems.push(`keys.url "${keysUrl}" must be an http(s) URL`);
    else keysFrom = { url: keysUrl, token: keysToken };
  } else if (keysToken !== undefined) {
    problems.push('keys.token is set but keys.url is not');
  }

  const webhooks: WebhooksConfig = {
    allowAddresses: f['webhooks.allowAddresses'] as string[],
    timeoutMs: n('webhooks.timeoutSeconds') * 1000,
    maxAttempts: n('webhooks.maxAttempts'),
    maxAgeMs: n('webhooks.maxAgeHours') * 3_600_000,
    maxQueue: n('webhooks.maxQueue'),
  };
  try {
    new AddressGuard({ allow: webhooks.allowAddresses });
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (webhooks.timeoutMs < 1000) problems.push('webhooks.timeoutSeconds must be at least 1');
  if (webhooks.maxAttempts < 1) problems.push('webhooks.maxAttempts must be at least 1');
  if (webhooks.maxQueue < 1) problems.push('webhooks.maxQueue must be at least 1');
  const accessLists = parsePolicyLists({
    permissionActions: f['access.permissionActions'] as string[],
    sodPairs: f['access.sodPairs'] as string[],
    flags: f['access.flags'] as string[],
  });
  problems.push(...accessLists.problems);

  if (problems.length > 0) {
    throw new ConfigError(
      'invalid configuration',
      problems.map((message) => ({ path: '', message })),
    );
  }
  return {
    role,
    host: s('host'),
    port: (f['port'] as number | undefined) ?? DEFAULT_PORTS[role],
    dataDir,
    logLevel: s('logLevel'),
    logFormat: s('logFormat') as Config['logFormat'],
    log,
    store,
    ingest,
    sink: {
      group: s('sink.group'),
      maxBatchRecords: Math.max(1, n('sink.maxBatchRecords')),
      maxBatchBytes: Math.max(1, n('sink.maxBatchKiB')) * 1024,
      policyRefreshMs: n('sink.policyRefreshSeconds') * 1000,
    },
    enrich: {
      geoip: {
        enabled: f['geoip.enabled'] as boolean,
        cityDb: (f['geoip.cityDb'] as string[]).map((p) => resolve(p)),
        asnDb: (f['geoip.asnDb'] as string[]).map((p) => resolve(p)),
        asn: f['geoip.asn'] as 'off' | 'bundled',
      },
      userAgent: { enabled: f['userAgent.enabled'] as boolean },
    },
    detect,
    checkpoint,
    retentionDays: {
      ...DEFAULT_RETENTION_DAYS,
      ...((f['retention'] as Partial<Record<Category, number>> | undefined) ?? {}),
    },
    keysRefreshMs: n('keys.refreshSeconds') * 1000,
    ...(keysFrom ? { keysFrom } : {}),
    rateLimits: {
      ingestPerMinute: n('rateLimit.ingestPerMinute'),
      queryPerMinute: n('rateLimit.queryPerMinute'),
      adminPerMinute: n('rateLimit.adminPerMinute'),
    },
    http: {
      requestTimeoutMs: n('http.requestTimeoutSeconds') * 1000,
      idleTimeoutMs: n('http.idleTimeoutSeconds') * 1000,
      keepAliveTimeoutMs: n('http.keepAliveTimeoutSeconds') * 1000,
    },
    bootstrap: f['bootstrap'] as boolean,
    baselines: {
      refreshMs: n('detect.baselines.refreshMinutes') * 60_000,
      historyMs: n('detect.baselines.historyDays') * 86_400_000,
      keepMs: n('detect.baselines.keepDays') * 86_400_000,
      activationMs: n('detect.baselines.activationMinutes') * 60_000,
      maxEntitiesPerTenant: n('detect.baselines.maxEntitiesPerTenant'),
    },
    alerts: { retentionDays: Math.max(1, n('alerts.retentionDays')) },
    privacy: {
      keyFile: resolve(
        optionalString('privacy.keyFile') ?? resolve(dataDir, 'keys', 'privacy.key'),
      ),
    },
    webhooks,
    access: {
      dormantDays: n('access.dormantDays'),
      loginActions: f['access.loginActions'] as string[],
      permissionActions: accessLists.permissionActions,
      privileged: f['access.privileged'] as string[],
      sodPairs: accessLists.sodPairs,
      mfaEnrolledActions: f['access.mfaEnrolledActions'] as string[],
      leaverActions: f['access.leaverActions'] as string[],
      flags: accessLists.flags,
    },
  };
}

function checkpointConfig(f: Flat, dataDir: string, problems: string[]): CheckpointConfig {
  const text = (key: string): string | undefined => (f[key] as string | undefined) || undefined;
  const everyEvents = f['checkpoint.events'] as number;
  const intervalSeconds = f['checkpoint.intervalSeconds'] as number;
  if (everyEvents < 1) problems.push('checkpoint.events must be at least 1');
  if (intervalSeconds < 1) problems.push('checkpoint.intervalSeconds must be at least 1');
  let signer: CheckpointConfig['signer'];
  const command = text('checkpoint.signerCommand');
  const publicKey = text('checkpoint.signerPublicKey');
  if (f['checkpoint.signer'] === 'command') {
    if (!command || !publicKey)
      problems.push(
        'checkpoint.signer is command, so set checkpoint.signerCommand (the command that signs) and checkpoint.signerPublicKey (its public key: a PEM file or base64url)',
      );
    signer = { kind: 'command', command: command ?? '', publicKey: publicKey ?? '' };
  } else {
    if (command)
      problems.push(
        'checkpoint.signerCommand is set but checkpoint.signer is file: set checkpoint.signer=command to use it',
      );
    signer = { kind: 'file', dir: resolve(text('checkpoint.keyDir') ?? resolve(dataDir, 'keys')) };
  }
  const webhooks = f['witness.webhooks'] as string[];
  for (const url of webhooks) {
    if (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol))
      problems.push(`witness.webhooks: "${url}" is not an http(s) URL`);
  }
  const dir = text('witness.dir');
  const token = text('witness.webhookToken');
  return {
    everyEvents,
    intervalMs: intervalSeconds * 1000,
    signer,
    witness: {
      ...(dir ? { dir: resolve(dir) } : {}),
      webhooks,
      ...(token ? { webhookToken: token } : {}),
      queue: Math.max(1, f['witness.queue'] as number),
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
