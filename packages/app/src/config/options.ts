/**
 * Every setting of Vigil in one table: its key in a config file, its environment variable, its
 * command-line flag, its default and what it means. The zod schema, `vigil --help`, `vigil
 * config` and the README's configuration table are all generated from this list, so they
 * cannot disagree.
 */
export interface OptionSpec {
  /** Dotted key in the config file (JSON): `log.kind`. */
  readonly key: string;
  readonly env: string;
  readonly flag: string;
  readonly type: 'string' | 'integer' | 'boolean' | 'list';
  readonly default?: string | number | boolean | readonly string[];
  readonly choices?: readonly string[];
  readonly description: string;
  /** Roles the option matters to (for --help). */
  readonly roles: readonly ('start' | 'collector' | 'sink' | 'query' | 'detect')[];
}

const ALL = ['start', 'collector', 'sink', 'query', 'detect'] as const;
const INGEST = ['start', 'collector'] as const;
const SINK = ['start', 'sink'] as const;
const STORE = ['start', 'sink', 'query', 'detect'] as const;
const LOG = ['start', 'collector', 'sink', 'detect'] as const;
/** Enrichment runs in the sink and, identically, in the detector. */
const ENRICH = ['start', 'sink', 'detect'] as const;
const DETECT = ['start', 'detect'] as const;

export const OPTIONS: readonly OptionSpec[] = [
  {
    key: 'host',
    env: 'VIGIL_HOST',
    flag: 'host',
    type: 'string',
    default: '127.0.0.1',
    description: 'Address the HTTP server binds to.',
    roles: ALL,
  },
  {
    key: 'port',
    env: 'VIGIL_PORT',
    flag: 'port',
    type: 'integer',
    description:
      'HTTP port (default: 8080 for start and collector, 8081 for sink, 8082 for query).',
    roles: ALL,
  },
  {
    key: 'dataDir',
    env: 'VIGIL_DATA_DIR',
    flag: 'data-dir',
    type: 'string',
    default: './.vigil',
    description:
      'Directory for the embedded log, the embedded store and the bootstrap credentials.',
    roles: ALL,
  },
  {
    key: 'logLevel',
    env: 'VIGIL_LOG_LEVEL',
    flag: 'log-level',
    type: 'string',
    default: 'info',
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    description: 'Level of the structured (pino) logs on stdout.',
    roles: ALL,
  },
  {
    key: 'logFormat',
    env: 'VIGIL_LOG_FORMAT',
    flag: 'log-format',
    type: 'string',
    default: 'auto',
    choices: ['auto', 'json', 'pretty'],
    description:
      'Format of those logs: one JSON object per line (for log collectors), readable lines (pino-pretty), or auto: readable when stdout is a terminal, JSON otherwise.',
    roles: ALL,
  },

  {
    key: 'log.kind',
    env: 'VIGIL_LOG',
    flag: 'log',
    type: 'string',
    default: 'file',
    choices: ['file', 'kafka'],
    description: 'Where accepted events are written: the embedded on-disk log, or Kafka.',
    roles: LOG,
  },
  {
    key: 'log.topic',
    env: 'VIGIL_LOG_TOPIC',
    flag: 'log-topic',
    type: 'string',
    default: 'vigil.events',
    description: 'Topic of the event log.',
    roles: LOG,
  },
  {
    key: 'log.partitions',
    env: 'VIGIL_LOG_PARTITIONS',
    flag: 'log-partitions',
    type: 'integer',
    default: 4,
    description:
      "Partitions of the event log (Kafka: must equal the topic's). Sinks scale up to this number.",
    roles: LOG,
  },
  {
    key: 'log.fsync',
    env: 'VIGIL_LOG_FSYNC',
    flag: 'log-fsync',
    type: 'string',
    default: 'always',
    choices: ['always', 'interval', 'never'],
    description:
      'Embedded log: fsync before acknowledging (always), every log.fsyncIntervalMs (interval: a crash of the machine can lose that window), or never (benchmarks only).',
    roles: LOG,
  },
  {
    key: 'log.fsyncIntervalMs',
    env: 'VIGIL_LOG_FSYNC_INTERVAL_MS',
    flag: 'log-fsync-interval-ms',
    type: 'integer',
    default: 50,
    description: 'Embedded log: fsync period when log.fsync is interval.',
    roles: LOG,
  },
  {
    key: 'log.segmentMiB',
    env: 'VIGIL_LOG_SEGMENT_MIB',
    flag: 'log-segment-mib',
    type: 'integer',
    default: 64,
    description: 'Embedded log: segment file size.',
    roles: LOG,
  },
  {
    key: 'log.retentionHours',
    env: 'VIGIL_LOG_RETENTION_HOURS',
    flag: 'log-retention-hours',
    type: 'integer',
    default: 168,
    description:
      'Embedded log: keep consumed segments this long (they are deleted only once every consumer group has passed them).',
    roles: LOG,
  },
  {
    key: 'kafka.brokers',
    env: 'VIGIL_KAFKA_BROKERS',
    flag: 'kafka-brokers',
    type: 'list',
    default: [],
    description: 'Kafka bootstrap brokers, comma-separated host:port.',
    roles: LOG,
  },
  {
    key: 'kafka.clientId',
    env: 'VIGIL_KAFKA_CLIENT_ID',
    flag: 'kafka-client-id',
    type: 'string',
    default: 'vigil',
    description: 'Kafka client id.',
    roles: LOG,
  },
  {
    key: 'kafka.ssl',
    env: 'VIGIL_KAFKA_SSL',
    flag: 'kafka-ssl',
    type: 'boolean',
    default: false,
    description: 'Connect to Kafka over TLS.',
    roles: LOG,
  },
  {
    key: 'kafka.saslMechanism',
    env: 'VIGIL_KAFKA_SASL_MECHANISM',
    flag: 'kafka-sasl-mechanism',
    type: 'string',
    choices: ['plain', 'scram-sha-256', 'scram-sha-512'],
    description: 'Kafka SASL mechanism (with kafka.username and kafka.password).',
    roles: LOG,
  },
  {
    key: 'kafka.username',
    env: 'VIGIL_KAFKA_USERNAME',
    flag: 'kafka-username',
    type: 'string',
    description: 'Kafka SASL user.',
    roles: LOG,
  },
  {
    key: 'kafka.password',
    env: 'VIGIL_KAFKA_PASSWORD',
    flag: 'kafka-password',
    type: 'string',
    description: 'Kafka SASL password (prefer the environment variable to the flag).',
    roles: LOG,
  },
  {
    key: 'kafka.idempotent',
    env: 'VIGIL_KAFKA_IDEMPOTENT',
    flag: 'kafka-idempotent',
    type: 'boolean',
    default: false,
    description: 'Idempotent Kafka producer (recommended on a real cluster).',
    roles: LOG,
  },
  {
    key: 'kafka.sessionTimeoutSeconds',
    env: 'VIGIL_KAFKA_SESSION_TIMEOUT_SECONDS',
    flag: 'kafka-session-timeout-seconds',
    type: 'integer',
    default: 30,
    description:
      'Consumer-group session timeout: how long a crashed sink holds its partitions before another sink (or its restart) takes them over.',
    roles: LOG,
  },

  {
    key: 'store.kind',
    env: 'VIGIL_STORE',
    flag: 'store',
    type: 'string',
    default: 'chdb',
    choices: ['chdb', 'clickhouse'],
    description:
      'Embedded ClickHouse engine (chDB, one process per data directory) or a ClickHouse server over HTTP.',
    roles: STORE,
  },
  {
    key: 'store.database',
    env: 'VIGIL_STORE_DATABASE',
    flag: 'store-database',
    type: 'string',
    default: 'vigil',
    description: 'ClickHouse database.',
    roles: STORE,
  },
  {
    key: 'store.path',
    env: 'VIGIL_STORE_PATH',
    flag: 'store-path',
    type: 'string',
    description: 'chDB data directory (default: <dataDir>/store).',
    roles: STORE,
  },
  {
    key: 'clickhouse.url',
    env: 'VIGIL_CLICKHOUSE_URL',
    flag: 'clickhouse-url',
    type: 'string',
    default: 'http://127.0.0.1:8123',
    description: 'ClickHouse HTTP(S) endpoint.',
    roles: STORE,
  },
  {
    key: 'clickhouse.username',
    env: 'VIGIL_CLICKHOUSE_USERNAME',
    flag: 'clickhouse-username',
    type: 'string',
    default: 'default',
    description: 'ClickHouse user.',
    roles: STORE,
  },
  {
    key: 'clickhouse.password',
    env: 'VIGIL_CLICKHOUSE_PASSWORD',
    flag: 'clickhouse-password',
    type: 'string',
    default: '',
    description: 'ClickHouse password (prefer the environment variable).',
    roles: STORE,
  },
  {
    key: 'clickhouse.cluster',
    env: 'VIGIL_CLICKHOUSE_CLUSTER',
    flag: 'clickhouse-cluster',
    type: 'string',
    description: 'Cluster name: DDL runs ON CLUSTER with Replicated + Distributed tables.',
    roles: STORE,
  },
  {
    key: 'clickhouse.caCert',
    env: 'VIGIL_CLICKHOUSE_CA_CERT',
    flag: 'clickhouse-ca-cert',
    type: 'string',
    description: 'PEM file of the CA for a TLS ClickHouse endpoint.',
    roles: STORE,
  },

  {
    key: 'ingest.maxBodyKiB',
    env: 'VIGIL_INGEST_MAX_BODY_KIB',
    flag: 'ingest-max-body-kib',
    type: 'integer',
    default: 5120,
    description: 'Largest request body, after gzip decompression (413 above).',
    roles: INGEST,
  },
  {
    key: 'ingest.maxEvents',
    env: 'VIGIL_INGEST_MAX_EVENTS',
    flag: 'ingest-max-events',
    type: 'integer',
    default: 1000,
    description: 'Most events in one request (413 above).',
    roles: INGEST,
  },
  {
    key: 'ingest.maxRecordKiB',
    env: 'VIGIL_INGEST_MAX_RECORD_KIB',
    flag: 'ingest-max-record-kib',
    type: 'integer',
    default: 32,
    description: 'Largest single event record.',
    roles: INGEST,
  },
  {
    key: 'ingest.clockSkewSeconds',
    env: 'VIGIL_INGEST_CLOCK_SKEW_SECONDS',
    flag: 'ingest-clock-skew-seconds',
    type: 'integer',
    default: 300,
    description: "Events timed further ahead of the collector's clock are refused.",
    roles: INGEST,
  },
  {
    key: 'ingest.backfillAfterHours',
    env: 'VIGIL_INGEST_BACKFILL_AFTER_HOURS',
    flag: 'ingest-backfill-after-hours',
    type: 'integer',
    default: 24,
    description: 'Events older than this when received are accepted and flagged backfill.',
    roles: INGEST,
  },
  {
    key: 'ingest.workers',
    env: 'VIGIL_INGEST_WORKERS',
    flag: 'ingest-workers',
    type: 'integer',
    description:
      'Worker threads that run the per-event checks (hashes, commitments, schema) off the event loop; 0 runs them on it (default: one per CPU, at most 4: on 2 cores, 2 workers took 33 % more events/s than 1 — bench/README.md).',
    roles: INGEST,
  },
  {
    key: 'ingest.dedupeWindow',
    env: 'VIGIL_INGEST_DEDUPE_WINDOW',
    flag: 'ingest-dedupe-window',
    type: 'integer',
    default: 200000,
    description:
      'Event ids per collector remembered to answer replays as duplicates at once (the sink deduplicates beyond it).',
    roles: INGEST,
  },

  {
    key: 'ingest.maxLagRecords',
    env: 'VIGIL_INGEST_MAX_LAG_RECORDS',
    flag: 'ingest-max-lag-records',
    type: 'integer',
    default: 50000,
    description:
      "Refuse events (503 + Retry-After) while the sinks' consumer group lags more than this many log records behind (one record per stream per request: 50 000 records hold up to 5 000 000 events sent by the SDK in batches of 100); 0: no bound. A collector on Kafka reads the group's lag with the admin API every 5 s; the embedded log every second.",
    roles: INGEST,
  },
  {
    key: 'http.requestTimeoutSeconds',
    env: 'VIGIL_HTTP_REQUEST_TIMEOUT_SECONDS',
    flag: 'http-request-timeout-seconds',
    type: 'integer',
    default: 30,
    description:
      'Longest time to receive a whole request, headers and body (408 after it): a client that trickles its body is cut off. Answers may take longer (exports stream).',
    roles: ALL,
  },
  {
    key: 'http.idleTimeoutSeconds',
    env: 'VIGIL_HTTP_IDLE_TIMEOUT_SECONDS',
    flag: 'http-idle-timeout-seconds',
    type: 'integer',
    default: 300,
    description:
      'A connection on which nothing is sent or received for this long is closed (also while the server works on an answer, so keep it above the longest query).',
    roles: ALL,
  },
  {
    key: 'http.keepAliveTimeoutSeconds',
    env: 'VIGIL_HTTP_KEEP_ALIVE_TIMEOUT_SECONDS',
    flag: 'http-keep-alive-timeout-seconds',
    type: 'integer',
    default: 72,
    description:
      'An idle keep-alive connection between requests is closed after this long (above the 60 s idle timeout of common load balancers, so that they close first).',
    roles: ALL,
  },

  {
    key: 'sink.group',
    env: 'VIGIL_SINK_GROUP',
    flag: 'sink-group',
    type: 'string',
    default: 'vigil-sink',
    description: 'Consumer group of the sinks.',
    roles: SINK,
  },
  {
    key: 'sink.maxBatchRecords',
    env: 'VIGIL_SINK_MAX_BATCH_RECORDS',
    flag: 'sink-max-batch-records',
    type: 'integer',
    default: 200,
    description: 'Log records (each a batch of events) per store insert.',
    roles: SINK,
  },
  {
    key: 'sink.maxBatchKiB',
    env: 'VIGIL_SINK_MAX_BATCH_KIB',
    flag: 'sink-max-batch-kib',
    type: 'integer',
    default: 2048,
    description:
      "Bytes of log records per partition in one store insert (at least one record). Bounds the sink's memory whatever its lag: rows, the INSERT body and the store's work on it grow with it (bench/README.md, soak).",
    roles: SINK,
  },
  {
    key: 'sink.policyRefreshSeconds',
    env: 'VIGIL_SINK_POLICY_REFRESH_SECONDS',
    flag: 'sink-policy-refresh-seconds',
    type: 'integer',
    default: 10,
    description:
      'How long a sink uses the retention policies and legal holds it loaded before reloading them: a policy change reaches new events within this time (holds are re-checked after every insert).',
    roles: ['start', 'sink', 'query'],
  },
  {
    key: 'detect.enabled',
    env: 'VIGIL_DETECT_ENABLED',
    flag: 'detect-enabled',
    type: 'boolean',
    default: true,
    description:
      'Run the detector in "vigil start" (the "vigil detect" role always runs it): rules over the log in event time, alerts to the store.',
    roles: DETECT,
  },
  {
    key: 'detect.group',
    env: 'VIGIL_DETECT_GROUP',
    flag: 'detect-group',
    type: 'string',
    default: 'vigil-detector',
    description:
      "Consumer group of the detectors on the log (its offsets and the detector's checkpoint belong to it).",
    roles: DETECT,
  },
  {
    key: 'detect.rulesDir',
    env: 'VIGIL_DETECT_RULES_DIR',
    flag: 'detect-rules-dir',
    type: 'string',
    description:
      'Directory of YAML rule files to run instead of the built-in pack (packages/detect/README.md, "Rule format"); validated at start.',
    roles: DETECT,
  },
  {
    key: 'detect.overridesFile',
    env: 'VIGIL_DETECT_OVERRIDES_FILE',
    flag: 'detect-overrides-file',
    type: 'string',
    description:
      'Per-tenant overrides (YAML or JSON): thresholds, disabled rules, allow-lists, the tenant\'s time zone, action names (packages/detect/README.md, "Overrides"); validated at start.',
    roles: DETECT,
  },
  {
    key: 'detect.latenessSeconds',
    env: 'VIGIL_DETECT_LATENESS_SECONDS',
    flag: 'detect-lateness-seconds',
    type: 'integer',
    default: 300,
    description:
      'How far behind the event-time watermark an event may arrive and still count; later ones are dropped and counted (vigil_detect_dropped_late_total).',
    roles: DETECT,
  },
  {
    key: 'detect.checkpointIntervalMs',
    env: 'VIGIL_DETECT_CHECKPOINT_INTERVAL_MS',
    flag: 'detect-checkpoint-interval-ms',
    type: 'integer',
    default: 200,
    description:
      "Longest time between two checkpoints of the detector's state (with the log offsets it has read); a partition's next batch waits for the checkpoint that covers the last one (0: after every batch), so this bounds the delay a burst of log records adds to alerts. Raise it when the state is large (a checkpoint writes all of it).",
    roles: DETECT,
  },
  {
    key: 'detect.maxBatchRecords',
    env: 'VIGIL_DETECT_MAX_BATCH_RECORDS',
    flag: 'detect-max-batch-records',
    type: 'integer',
    default: 500,
    description: 'Log records per detector batch and partition (bounds the memory of a batch).',
    roles: DETECT,
  },
  {
    key: 'detect.mode',
    env: 'VIGIL_DETECT_MODE',
    flag: 'detect-mode',
    type: 'string',
    default: 'auto',
    choices: ['auto', 'single', 'rekey'],
    description:
      'single: one detector reads every log partition (one per group); rekey: on Kafka, events are re-keyed by (tenant, entity) through the detector\'s own topic so that detectors scale out (README, "Architecture"); auto: single on the embedded log, rekey on Kafka.',
    roles: DETECT,
  },
  {
    key: 'detect.stage',
    env: 'VIGIL_DETECT_STAGE',
    flag: 'detect-stage',
    type: 'string',
    default: 'both',
    choices: ['both', 'rekey', 'engine'],
    description:
      "With detect.mode rekey: run both stages in this process, or only the re-key stage (log to the detector's topic) or only the engine stage (rules over the topic), to scale them apart.",
    roles: DETECT,
  },
  {
    key: 'detect.topic',
    env: 'VIGIL_DETECT_TOPIC',
    flag: 'detect-topic',
    type: 'string',
    description:
      'Kafka topic of the re-key (default: the log topic followed by ".detect"). Created by operations like the log topic, with detect.partitions partitions and a retention of detect.retentionHours: it holds opened events, which are personal data.',
    roles: DETECT,
  },
  {
    key: 'detect.partitions',
    env: 'VIGIL_DETECT_PARTITIONS',
    flag: 'detect-partitions',
    type: 'integer',
    default: 0,
    description:
      'Partitions of the re-key topic: the most engine-stage detectors that share the work (0: as many as log.partitions).',
    roles: DETECT,
  },
  {
    key: 'detect.retentionHours',
    env: 'VIGIL_DETECT_RETENTION_HOURS',
    flag: 'detect-retention-hours',
    type: 'integer',
    default: 24,
    description:
      'Retention the re-key topic must have: its retention.ms, set by operations when they create the topic (a start without the topic fails with the command to create it). Keep it short: the topic holds opened events, and an erasure does not reach copies in it before they expire.',
    roles: DETECT,
  },
  {
    key: 'detect.punctuationMs',
    env: 'VIGIL_DETECT_PUNCTUATION_MS',
    flag: 'detect-punctuation-ms',
    type: 'integer',
    default: 1000,
    description:
      "Period of the re-key stage's watermark messages to every partition of the re-key topic; a re-key stage silent for ten periods no longer holds the engines' watermark back.",
    roles: DETECT,
  },
  {
    key: 'geoip.enabled',
    env: 'VIGIL_GEOIP_ENABLED',
    flag: 'geoip-enabled',
    type: 'boolean',
    default: true,
    description:
      "Add country, region, city, coordinates (and the AS number with geoip.asnDb) of each event's IP address. Derived from a personal field: erased with it.",
    roles: ENRICH,
  },
  {
    key: 'geoip.cityDb',
    env: 'VIGIL_GEOIP_CITY_DB',
    flag: 'geoip-city-db',
    type: 'list',
    default: [],
    description:
      'City database(s), comma-separated mmdb files: a GeoLite2-City or GeoIP2-City file, or the IPv4 and IPv6 files of a database shipped split. Empty: the bundled DB-IP Lite City (CC BY 4.0).',
    roles: ENRICH,
  },
  {
    key: 'geoip.asnDb',
    env: 'VIGIL_GEOIP_ASN_DB',
    flag: 'geoip-asn-db',
    type: 'list',
    default: [],
    description:
      'ASN database(s), comma-separated mmdb files with autonomous_system_number (GeoLite2-ASN). Empty: geoip.asn decides.',
    roles: ENRICH,
  },
  {
    key: 'geoip.asn',
    env: 'VIGIL_GEOIP_ASN',
    flag: 'geoip-asn',
    type: 'string',
    choices: ['off', 'bundled'],
    default: 'off',
    description:
      'Without geoip.asnDb: bundled reads the bundled RouteViews + DB-IP IP-to-ASN table (CC BY 4.0; about 4 s and 40 MB at start), off leaves AS numbers out and the detector reports the rules whose conditions use asn.* as disabled.',
    roles: ENRICH,
  },
  {
    key: 'userAgent.enabled',
    env: 'VIGIL_USER_AGENT_ENABLED',
    flag: 'user-agent-enabled',
    type: 'boolean',
    default: true,
    description:
      "Add browser, OS and device type parsed from each event's user agent. Derived from a personal field: erased with it.",
    roles: ENRICH,
  },

  {
    key: 'rateLimit.ingestPerMinute',
    env: 'VIGIL_RATE_LIMIT_INGEST_PER_MINUTE',
    flag: 'rate-limit-ingest-per-minute',
    type: 'integer',
    default: 6000,
    description:
      "Ingest requests per minute per API key, per instance (429 above; 0: no limit). A key's own rateLimitPerMinute wins.",
    roles: INGEST,
  },
  {
    key: 'rateLimit.queryPerMinute',
    env: 'VIGIL_RATE_LIMIT_QUERY_PER_MINUTE',
    flag: 'rate-limit-query-per-minute',
    type: 'integer',
    default: 600,
    description:
      "Query requests per minute per API key, per instance (429 above; 0: no limit). A key's own rateLimitPerMinute wins.",
    roles: ['start', 'query'],
  },
  {
    key: 'rateLimit.adminPerMinute',
    env: 'VIGIL_RATE_LIMIT_ADMIN_PER_MINUTE',
    flag: 'rate-limit-admin-per-minute',
    type: 'integer',
    default: 60,
    description:
      "Admin and operator requests per minute per API key, per instance (429 above; 0: no limit). A key's own rateLimitPerMinute wins.",
    roles: ['start', 'collector', 'query'],
  },

  {
    key: 'checkpoint.events',
    env: 'VIGIL_CHECKPOINT_EVENTS',
    flag: 'checkpoint-events',
    type: 'integer',
    default: 10000,
    description:
      'Sign a checkpoint of a tenant once this many new events of it are stored (or at checkpoint.intervalSeconds, whichever comes first).',
    roles: SINK,
  },
  {
    key: 'checkpoint.intervalSeconds',
    env: 'VIGIL_CHECKPOINT_INTERVAL_SECONDS',
    flag: 'checkpoint-interval-seconds',
    type: 'integer',
    default: 60,
    description:
      'Sign a checkpoint of every tenant with new events this often: the longest an event waits for a proof.',
    roles: SINK,
  },
  {
    key: 'checkpoint.signer',
    env: 'VIGIL_CHECKPOINT_SIGNER',
    flag: 'checkpoint-signer',
    type: 'string',
    default: 'file',
    choices: ['file', 'command'],
    description:
      'Who signs checkpoints: an Ed25519 key file in checkpoint.keyDir (generated on first start), or an external command (checkpoint.signerCommand), so the key need not sit on the data host.',
    roles: SINK,
  },
  {
    key: 'checkpoint.keyDir',
    env: 'VIGIL_CHECKPOINT_KEY_DIR',
    flag: 'checkpoint-key-dir',
    type: 'string',
    description:
      'Directory of the checkpoint key files (default: <dataDir>/keys); "vigil checkpoints rotate-key" adds a new key there.',
    roles: SINK,
  },
  {
    key: 'checkpoint.signerCommand',
    env: 'VIGIL_CHECKPOINT_SIGNER_COMMAND',
    flag: 'checkpoint-signer-command',
    type: 'string',
    description:
      'External signer (checkpoint.signer=command): a shell command that reads the bytes to sign on stdin and prints the Ed25519 signature (hex, base64 or base64url).',
    roles: SINK,
  },
  {
    key: 'checkpoint.signerPublicKey',
    env: 'VIGIL_CHECKPOINT_SIGNER_PUBLIC_KEY',
    flag: 'checkpoint-signer-public-key',
    type: 'string',
    description:
      "The external signer's Ed25519 public key: a PEM file, or the raw key in base64url. Every signature is checked against it.",
    roles: SINK,
  },
  {
    key: 'witness.dir',
    env: 'VIGIL_WITNESS_DIR',
    flag: 'witness-dir',
    type: 'string',
    description:
      'Directory witness: write every checkpoint as its own file here, never overwriting. Use storage this host cannot rewrite.',
    roles: SINK,
  },
  {
    key: 'witness.webhooks',
    env: 'VIGIL_WITNESS_WEBHOOKS',
    flag: 'witness-webhooks',
    type: 'list',
    default: [],
    description:
      'Webhook witnesses: POST every checkpoint as JSON to these URLs (comma-separated), retried with backoff.',
    roles: SINK,
  },
  {
    key: 'witness.webhookToken',
    env: 'VIGIL_WITNESS_WEBHOOK_TOKEN',
    flag: 'witness-webhook-token',
    type: 'string',
    description: 'Sent to webhook witnesses as Authorization: Bearer <token>.',
    roles: SINK,
  },
  {
    key: 'witness.queue',
    env: 'VIGIL_WITNESS_QUEUE',
    flag: 'witness-queue',
    type: 'integer',
    default: 1000,
    description:
      'Checkpoints waiting per witness while it is unreachable; beyond, the oldest is dropped and counted (later checkpoints cover its events).',
    roles: SINK,
  },
  {
    key: 'webhooks.allowAddresses',
    env: 'VIGIL_WEBHOOKS_ALLOW_ADDRESSES',
    flag: 'webhooks-allow-addresses',
    type: 'list',
    default: [],
    description:
      "Internal addresses tenants' alert webhooks may reach (comma-separated CIDRs, addresses or host names, e.g. 127.0.0.1/32). Loopback, private, link-local, CGNAT, unspecified, multicast and reserved addresses are refused otherwise, when a webhook is created and at every connection.",
    roles: ['start', 'collector', 'detect'],
  },
  {
    key: 'webhooks.timeoutSeconds',
    env: 'VIGIL_WEBHOOKS_TIMEOUT_SECONDS',
    flag: 'webhooks-timeout-seconds',
    type: 'integer',
    default: 10,
    description:
      'How long a webhook receiver has to answer 2xx (connect to last byte); a slower answer is a failed attempt.',
    roles: ['start', 'collector', 'detect'],
  },
  {
    key: 'webhooks.maxAttempts',
    env: 'VIGIL_WEBHOOKS_MAX_ATTEMPTS',
    flag: 'webhooks-max-attempts',
    type: 'integer',
    default: 10,
    description:
      'Attempts per webhook delivery (exponential backoff with jitter, 5 s doubling to at most 1 h) before it becomes a dead letter.',
    roles: ['start', 'collector', 'detect'],
  },
  {
    key: 'webhooks.maxAgeHours',
    env: 'VIGIL_WEBHOOKS_MAX_AGE_HOURS',
    flag: 'webhooks-max-age-hours',
    type: 'integer',
    default: 24,
    description:
      'A webhook delivery still failing this long after it was queued (or re-driven) becomes a dead letter.',
    roles: ['start', 'collector', 'detect'],
  },
  {
    key: 'webhooks.maxQueue',
    env: 'VIGIL_WEBHOOKS_MAX_QUEUE',
    flag: 'webhooks-max-queue',
    type: 'integer',
    default: 10000,
    description:
      'Webhook deliveries waiting in the outbox (all tenants); beyond, new ones become dead letters at once, counted, to re-drive later.',
    roles: ['start', 'collector', 'detect'],
  },
  {
    key: 'privacy.keyFile',
    env: 'VIGIL_PRIVACY_KEY_FILE',
    flag: 'privacy-key-file',
    type: 'string',
    description:
      "Privacy master key (generated on first start, mode 0600; default: <dataDir>/keys/privacy.key): wraps the tenants' pseudonym keys and keys subject digests. Keep it off the store host's backups of the store; every process of a deployment needs the same file.",
    roles: ALL,
  },
  {
    key: 'alerts.retentionDays',
    env: 'VIGIL_ALERTS_RETENTION_DAYS',
    flag: 'alerts-retention-days',
    type: 'integer',
    default: 365,
    description:
      "Days an alert and its triage are kept after the alert's last event (they hold personal data: entity, evidence, notes), whatever the events' own retention.",
    roles: STORE,
  },
  {
    key: 'keys.refreshSeconds',
    env: 'VIGIL_KEYS_REFRESH_SECONDS',
    flag: 'keys-refresh-seconds',
    type: 'integer',
    default: 10,
    description:
      'How often API keys are reloaded from the store (changes made through this process apply at once).',
    roles: ['start', 'collector', 'query'],
  },
  {
    key: 'keys.url',
    env: 'VIGIL_KEYS_URL',
    flag: 'keys-url',
    type: 'string',
    description:
      'Collector only: load API keys from this Vigil node (its GET /v1/operator/key-directory) instead of the store, so the collector needs no database credentials. Needs keys.token.',
    roles: ['collector'],
  },
  {
    key: 'keys.token',
    env: 'VIGIL_KEYS_TOKEN',
    flag: 'keys-token',
    type: 'string',
    description: 'Operator key for keys.url (prefer the environment variable to the flag).',
    roles: ['collector'],
  },
  // Access reviews (packages/query access/): what a review flags and how it measures use.
  {
    key: 'access.dormantDays',
    env: 'VIGIL_ACCESS_DORMANT_DAYS',
    flag: 'access-dormant-days',
    type: 'integer',
    default: 90,
    description:
      'Access reviews: a right not used for this many days before the review date is flagged dormant ("no data" never is).',
    roles: ['start', 'query'],
  },
  {
    key: 'access.loginActions',
    env: 'VIGIL_ACCESS_LOGIN_ACTIONS',
    flag: 'access-login-actions',
    type: 'list',
    default: ['user.login'],
    description:
      'Access reviews: actions that are a login (successful ones count); a pattern ending in * is a prefix.',
    roles: ['start', 'query'],
  },
  {
    key: 'access.permissionActions',
    env: 'VIGIL_ACCESS_PERMISSION_ACTIONS',
    flag: 'access-permission-actions',
    type: 'list',
    default: [],
    description:
      'Access reviews: what a use of a role or permission is, as name=action|action entries (invoice.export=invoice.exported|report.*). A right without an entry is measured by actions on its resource.',
    roles: ['start', 'query'],
  },
  {
    key: 'access.privileged',
    env: 'VIGIL_ACCESS_PRIVILEGED',
    flag: 'access-privileged',
    type: 'list',
    default: [],
    description: 'Access reviews: roles and permissions flagged privileged.',
    roles: ['start', 'query'],
  },
  {
    key: 'access.sodPairs',
    env: 'VIGIL_ACCESS_SOD_PAIRS',
    flag: 'access-sod-pairs',
    type: 'list',
    default: [],
    description:
      'Access reviews: segregation-of-duties pairs, as a|b entries (payment.create|payment.approve); a subject holding both is flagged.',
    roles: ['start', 'query'],
  },
  {
    key: 'access.mfaEnrolledActions',
    env: 'VIGIL_ACCESS_MFA_ENROLLED_ACTIONS',
    flag: 'access-mfa-enrolled-actions',
    type: 'list',
    default: ['mfa.enrolled', 'mfa.enabled'],
    description:
      'Access reviews: mfa.* actions that mean enrolled; a subject whose last mfa.* event is another one, or who has none, is flagged (only in tenants that record mfa.* events).',
    roles: ['start', 'query'],
  },
  {
    key: 'access.leaverActions',
    env: 'VIGIL_ACCESS_LEAVER_ACTIONS',
    flag: 'access-leaver-actions',
    type: 'list',
    default: ['user.deactivated', 'user.offboarded', 'employee.left'],
    description:
      'Actions that say a person left (about the target when it is a person, else the actor). The sink projects them as they are stored: a change applies to events stored afterwards.',
    roles: STORE,
  },
  {
    key: 'access.flags',
    env: 'VIGIL_ACCESS_FLAGS',
    flag: 'access-flags',
    type: 'list',
    default: [
      'dormant',
      'never_used',
      'privileged',
      'self_granted',
      'no_ticket',
      'expired',
      'leaver',
      'sod_conflict',
      'mfa_missing',
    ],
    description: 'Access reviews: the flags to report (remove one to switch it off).',
    roles: ['start', 'query'],
  },
  {
    key: 'bootstrap',
    env: 'VIGIL_BOOTSTRAP',
    flag: 'bootstrap',
    type: 'boolean',
    default: true,
    description:
      'On first start, create tenant "default" with ingest, query and admin keys, print them once and write <dataDir>/bootstrap-credentials.json (mode 0600).',
    roles: ['start', 'query'],
  },
  // ---- detection baselines (packages/query/src/detect/baselines.ts) ----
  {
    key: 'detect.baselines.refreshMinutes',
    env: 'VIGIL_DETECT_BASELINES_REFRESH_MINUTES',
    flag: 'detect-baselines-refresh-minutes',
    type: 'integer',
    default: 60,
    description:
      'How often the detection baselines (usual countries, networks, hours, devices, request rates, last activity per actor and API key) are recomputed from the stored events; each run writes a generation at a multiple of this period, so several processes never compute one twice. 0: never (run vigil detect baselines refresh yourself).',
    roles: ['start', 'sink'],
  },
  {
    key: 'detect.baselines.historyDays',
    env: 'VIGIL_DETECT_BASELINES_HISTORY_DAYS',
    flag: 'detect-baselines-history-days',
    type: 'integer',
    default: 30,
    description: 'Days of events (by event time) each baseline generation learns from.',
    roles: ['start', 'sink'],
  },
  {
    key: 'detect.baselines.keepDays',
    env: 'VIGIL_DETECT_BASELINES_KEEP_DAYS',
    flag: 'detect-baselines-keep-days',
    type: 'integer',
    default: 35,
    description:
      'Days a baseline generation is kept (personal data: its own retention). Backtests further back than this find no baseline and their new-country, new-network and dormant-account rules stay silent.',
    roles: ['start', 'sink'],
  },
  {
    key: 'detect.baselines.activationMinutes',
    env: 'VIGIL_DETECT_BASELINES_ACTIVATION_MINUTES',
    flag: 'detect-baselines-activation-minutes',
    type: 'integer',
    default: 10,
    description:
      'A generation computed as of T answers for events from T plus this delay on, for the live detector and for backtests alike; it must exceed the time a refresh takes plus the detector reload interval.',
    roles: ['start', 'sink'],
  },
  {
    key: 'detect.baselines.maxEntitiesPerTenant',
    env: 'VIGIL_DETECT_BASELINES_MAX_ENTITIES_PER_TENANT',
    flag: 'detect-baselines-max-entities-per-tenant',
    type: 'integer',
    default: 200000,
    description:
      'Entities (actors and API keys) of one tenant a detector holds in memory per generation, the most recently active first; the rest answer as without history (counted).',
    roles: ['start', 'sink'],
  },
];
