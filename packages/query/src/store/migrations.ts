import { MIGRATION_TABLE_DDL, type Migration } from './migration-types.js';
import {
  alterColumns,
  alterTable,
  createMaterializedView,
  createTable,
  localName,
} from './schema.js';
import { onCluster, type Store } from './store.js';
import { rollupStatements } from '../rollups/hourly.js';
import { QueryError, QueryErrorCodes } from '../errors.js';

/**
 * The store's schema as versioned migrations, applied in order at start. A migration is a list
 * of idempotent statements (IF NOT EXISTS …), so two processes starting together against one
 * server cannot break each other; the migrations table records what ran. Never edit a released
 * migration: add a new one.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events, stream heads, tenants and keys',
    statements: (store) => [
      ...createTable(store, {
        name: 'events',
        // The exact hashed bytes (`record`) are kept beside typed columns: queries read the
        // columns, verification hashes the bytes (PROTOCOL.md §1). Personal plain values live
        // only in the typed columns and `disclosures`, where an erasure can remove them.
        columns: `
  tenant_id LowCardinality(String),
  id UUID,
  time DateTime64(3, 'UTC'),
  received_at DateTime64(3, 'UTC'),
  stream String,
  seq UInt64,
  prev FixedString(64),
  hash FixedString(64),
  action LowCardinality(String),
  category LowCardinality(String),
  outcome LowCardinality(String),
  actor_type LowCardinality(String),
  actor_id String,
  actor_name String,
  actor_email String,
  target_type LowCardinality(String),
  target_id String,
  target_name String,
  access_change LowCardinality(String),
  subject_type LowCardinality(String),
  subject_id String,
  access_role String,
  access_permission String,
  resource_type LowCardinality(String),
  resource_id String,
  granted_by_id String,
  ip Nullable(IPv6),
  user_agent String,
  request_id String,
  session_id String,
  record String CODEC(ZSTD(3)),
  disclosures String CODEC(ZSTD(3)),
  personal Array(String),
  flags Array(LowCardinality(String)),
  source LowCardinality(String),
  submitted_digest String,
  key_id LowCardinality(String),
  log_partition UInt32,
  log_offset UInt64,
  log_index UInt32,
  expires_at DateTime('UTC'),
  legal_hold UInt8 DEFAULT 0,
  row_version UInt32 DEFAULT 0,
  INDEX idx_actor actor_id TYPE bloom_filter(0.01) GRANULARITY 4,
  INDEX idx_target target_id TYPE bloom_filter(0.01) GRANULARITY 4,
  INDEX idx_subject subject_id TYPE bloom_filter(0.01) GRANULARITY 4,
  INDEX idx_stream stream TYPE bloom_filter(0.01) GRANULARITY 4,
  INDEX idx_id id TYPE bloom_filter(0.001) GRANULARITY 4`,
        engine: 'ReplacingMergeTree',
        // row_version lets a later version of a row replace it (an erasure blanks personal
        // values by writing the row again with a higher version; FINAL reads the newest).
        engineArg: 'row_version',
        // The hash ends the sorting key, so only byte-identical copies of an event (replays)
        // collapse on merge; a forged or forked event with a reused id is kept as evidence.
        tail: `PARTITION BY toYYYYMM(received_at)
ORDER BY (tenant_id, time, id, hash)
TTL expires_at DELETE WHERE legal_hold = 0
SETTINGS index_granularity = 8192`,
        shardingKey: 'cityHash64(tenant_id, id)',
      }),
      ...createTable(store, {
        name: 'stream_heads',
        columns: `
  tenant_id LowCardinality(String),
  stream String,
  seq SimpleAggregateFunction(max, UInt64),
  head AggregateFunction(argMax, FixedString(64), UInt64),
  events SimpleAggregateFunction(sum, UInt64),
  closed SimpleAggregateFunction(max, UInt8),
  last_received SimpleAggregateFunction(max, DateTime64(3, 'UTC'))`,
        engine: 'AggregatingMergeTree',
        tail: 'ORDER BY (tenant_id, stream)',
        shardingKey: 'cityHash64(tenant_id, stream)',
      }),
      // Updated in the same INSERT as the events, so the head the sink reloads after a restart
      // always matches what is stored.
      createMaterializedView(
        store,
        'stream_heads_mv',
        'events',
        'stream_heads',
        // The inner select renames seq so that the `seq` alias of max() does not shadow the
        // column inside argMaxState (ClickHouse resolves aliases before columns).
        `SELECT tenant_id, stream, max(s) AS seq, argMaxState(hash, s) AS head, count() AS events,
       max(action = 'stream.closed') AS closed, max(received_at) AS last_received
FROM (SELECT tenant_id, stream, seq AS s, hash, action, received_at FROM {from})
GROUP BY tenant_id, stream`,
      ),
      ...createTable(store, {
        name: 'rejected_records',
        // Log records a sink could not decode: kept for inspection and replay, never dropped.
        columns: `
  log_partition UInt32,
  log_offset UInt64,
  logged_at DateTime64(3, 'UTC'),
  error String,
  payload String CODEC(ZSTD(3))`,
        engine: 'ReplacingMergeTree',
        tail: 'ORDER BY (log_partition, log_offset)',
        shardingKey: 'log_partition',
      }),
      ...createTable(store, {
        name: 'tenants',
        columns: `
  id String,
  name String,
  status LowCardinality(String),
  created_at DateTime64(3, 'UTC'),
  updated_at DateTime64(3, 'UTC'),
  version UInt64`,
        engine: 'ReplacingMergeTree',
        engineArg: 'version',
        tail: 'ORDER BY id',
        shardingKey: 'cityHash64(id)',
      }),
      ...createTable(store, {
        name: 'api_keys',
        // Keys are stored as SHA-256 digests only; the plain key is shown once at creation.
        columns: `
  key_id String,
  tenant_id String,
  digest FixedString(64),
  name String,
  scopes Array(LowCardinality(String)),
  allowed_ips Array(String),
  created_at DateTime64(3, 'UTC'),
  expires_at Nullable(DateTime64(3, 'UTC')),
  revoked_at Nullable(DateTime64(3, 'UTC')),
  version UInt64`,
        engine: 'ReplacingMergeTree',
        engineArg: 'version',
        tail: 'ORDER BY key_id',
        shardingKey: 'cityHash64(key_id)',
      }),
    ],
  },
  {
    version: 2,
    name: 'enrichment columns, retention policies and legal holds',
    statements: (store) => {
      // Geolocation and parsed user agent, filled by the sink's enrichment. Derived from
      // personal fields, so personal themselves and erased with their source (PROTOCOL.md
      // §5.1): store/derived.ts lists them for erasure; keep it in step with this list.
      const columns = `ADD COLUMN IF NOT EXISTS geo_country LowCardinality(String),
  ADD COLUMN IF NOT EXISTS geo_region String,
  ADD COLUMN IF NOT EXISTS geo_city String,
  ADD COLUMN IF NOT EXISTS geo_latitude Nullable(Float32),
  ADD COLUMN IF NOT EXISTS geo_longitude Nullable(Float32),
  ADD COLUMN IF NOT EXISTS geo_asn Nullable(UInt32),
  ADD COLUMN IF NOT EXISTS geo_as_org String,
  ADD COLUMN IF NOT EXISTS ua_browser LowCardinality(String),
  ADD COLUMN IF NOT EXISTS ua_browser_version String,
  ADD COLUMN IF NOT EXISTS ua_os LowCardinality(String),
  ADD COLUMN IF NOT EXISTS ua_os_version String,
  ADD COLUMN IF NOT EXISTS ua_device LowCardinality(String)`;
      return [
        ...alterColumns(store, 'events', columns),
        ...createTable(store, {
          name: 'retention_policies',
          // Append-only: every change of a tenant's policy is a row, never updated, so the
          // days in force for any category at any past moment can be shown (an event that is
          // missing was removed by the policy of its time). The current policy is the latest
          // row per (tenant, category). tenant_id '*' records the configured defaults, written
          // by the sinks whenever the defaults they run with change. days = 0: no own value,
          // the default applies; effective_days is what applied after the change.
          columns: `
  tenant_id String,
  category LowCardinality(String),
  days UInt32,
  effective_days UInt32,
  previous_days UInt32,
  previous_effective_days UInt32,
  changed_at DateTime64(3, 'UTC'),
  change_id UUID,
  actor_key_id String,
  reason String`,
          engine: 'MergeTree',
          tail: 'ORDER BY (tenant_id, category, changed_at, change_id)',
          shardingKey: 'cityHash64(tenant_id)',
        }),
        ...createTable(store, {
          name: 'legal_holds',
          // Append-only too: a hold is placed by one row and released by a second, each with
          // who, when and why. subject_id names the person a hold protects ('' = the whole
          // tenant); it stays while the hold does, since a hold must say whom it covers.
          columns: `
  tenant_id String,
  hold_id String,
  change LowCardinality(String),
  subject_id String,
  reason String,
  actor_key_id String,
  at DateTime64(3, 'UTC')`,
          engine: 'MergeTree',
          tail: 'ORDER BY (tenant_id, hold_id, at)',
          shardingKey: 'cityHash64(tenant_id)',
        }),
      ];
    },
  },
  {
    version: 3,
    name: 'merkle trees, checkpoints and signing keys',
    statements: (store) => {
      // Position and hash of each event's leaf in the tree of its (tenant, log partition),
      // set by the sink (PROTOCOL.md §13). leaf_hash '' marks a row without a leaf (stored
      // before this migration, or by a sink without the tree plugin).
      const columns = `ADD COLUMN IF NOT EXISTS leaf_index UInt64 DEFAULT 0,
  ADD COLUMN IF NOT EXISTS leaf_hash String DEFAULT ''`;
      return [
        ...alterColumns(store, 'events', columns),
        // Lets the sink find, after a failure, rows whose leaf did not reach merkle_leaves
        // (a table and its views are not written atomically) without reading the tenant.
        alterTable(
          store,
          'events',
          'ADD INDEX IF NOT EXISTS idx_leaf leaf_index TYPE minmax GRANULARITY 1',
        ),
        ...createTable(store, {
          name: 'merkle_leaves',
          // Every leaf, kept without TTL: the tree and the proofs of the other events survive
          // retention deletes and erasure of the events themselves. Nothing here is personal
          // (PROTOCOL.md §13.6). The leaf hash ends the key, so two different leaves claiming
          // one position are both kept as evidence instead of collapsing into one.
          columns: `
  tenant_id LowCardinality(String),
  log_partition UInt32,
  leaf_index UInt64,
  leaf_hash FixedString(64),
  event_id UUID,
  event_hash FixedString(64),
  stream String,
  seq UInt64,
  received_at DateTime64(3, 'UTC'),
  time DateTime64(3, 'UTC'),
  INDEX idx_event event_id TYPE bloom_filter(0.001) GRANULARITY 4`,
          engine: 'ReplacingMergeTree',
          tail: 'ORDER BY (tenant_id, log_partition, leaf_index, leaf_hash)',
          shardingKey: 'cityHash64(tenant_id, log_partition)',
        }),
        // Written in the same INSERT as the events, like stream_heads: a stored event always
        // has its leaf, and a batch delivered again finds both.
        createMaterializedView(
          store,
          'merkle_leaves_mv',
          'events',
          'merkle_leaves',
          `SELECT tenant_id, log_partition, leaf_index, leaf_hash, id AS event_id, hash AS event_hash,
       stream, seq, received_at, time
FROM {from}
WHERE leaf_hash != ''`,
        ),
        ...createTable(store, {
          name: 'merkle_sizes',
          // Stored leaves per tree, in the same INSERT as the events: what checkpoints must
          // eventually cover. Compared with merkle_heads, it shows trees whose newest leaves are
          // not signed yet, e.g. after a crash (checkpoint/tree-writer.ts).
          columns: `
  tenant_id LowCardinality(String),
  log_partition UInt32,
  leaves SimpleAggregateFunction(max, UInt64),
  stored_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))`,
          engine: 'AggregatingMergeTree',
          tail: 'ORDER BY (tenant_id, log_partition)',
          shardingKey: 'cityHash64(tenant_id)',
        }),
        createMaterializedView(
          store,
          'merkle_sizes_mv',
          'events',
          'merkle_sizes',
          `SELECT tenant_id, log_partition, max(leaf_index) + 1 AS leaves, max(now64(3)) AS stored_at
FROM {from}
WHERE leaf_hash != ''
GROUP BY tenant_id, log_partition`,
        ),
        ...createTable(store, {
          name: 'merkle_nodes',
          // Perfect subtrees of level >= 1: node (level, node_index) covers the leaves
          // [node_index * 2^level, (node_index + 1) * 2^level). A function of the leaves, so
          // any process may (re)write one; copies are equal and collapse. Written by the
          // checkpointer before it signs, off the sink's path.
          columns: `
  tenant_id LowCardinality(String),
  log_partition UInt32,
  level UInt8,
  node_index UInt64,
  hash FixedString(64)`,
          engine: 'ReplacingMergeTree',
          tail: 'ORDER BY (tenant_id, log_partition, level, node_index)',
          shardingKey: 'cityHash64(tenant_id, log_partition)',
        }),
        ...createTable(store, {
          name: 'merkle_heads',
          // (size, root) of each tree once its nodes are stored, written by the checkpointer;
          // the largest size wins.
          columns: `
  tenant_id LowCardinality(String),
  log_partition UInt32,
  size UInt64,
  root FixedString(64),
  updated_at DateTime64(3, 'UTC')`,
          engine: 'ReplacingMergeTree',
          engineArg: 'size',
          tail: 'ORDER BY (tenant_id, log_partition)',
          shardingKey: 'cityHash64(tenant_id)',
        }),
        ...createTable(store, {
          name: 'checkpoints',
          // Signed checkpoints, kept without TTL; `body` is the exact signed text
          // (PROTOCOL.md §14). partitions/sizes repeat its heads for lookups.
          columns: `
  tenant_id LowCardinality(String),
  id FixedString(64),
  time DateTime64(3, 'UTC'),
  key_id LowCardinality(String),
  partitions Array(UInt32),
  sizes Array(UInt64),
  body String,
  signature String,
  created_at DateTime64(3, 'UTC')`,
          engine: 'ReplacingMergeTree',
          tail: 'ORDER BY (tenant_id, time, id)',
          shardingKey: 'cityHash64(tenant_id)',
        }),
        ...createTable(store, {
          name: 'signing_keys',
          // Public keys only, current and retired, for GET /v1/keys/checkpoint.
          columns: `
  key_id String,
  purpose LowCardinality(String),
  algorithm LowCardinality(String),
  public_key String,
  created_at DateTime64(3, 'UTC'),
  retired_at Nullable(DateTime64(3, 'UTC')),
  version UInt64`,
          engine: 'ReplacingMergeTree',
          engineArg: 'version',
          tail: 'ORDER BY (purpose, key_id)',
          shardingKey: 'cityHash64(key_id)',
        }),
      ];
    },
  },
  {
    version: 4,
    name: 'per-key rate limits',
    statements: (store) => {
      // NULL: the server's limit for the key's scope applies (rateLimit.*PerMinute).
      const change = 'ADD COLUMN IF NOT EXISTS rate_limit_per_minute Nullable(UInt32)';
      return [...alterColumns(store, 'api_keys', change)];
    },
  },
  {
    version: 5,
    name: 'erasure, restriction, corrections and pseudonyms',
    statements: (store) => {
      // erased_paths: pointers whose disclosures (value and salt) an erasure removed; the
      // erasure writes the row again with row_version + 1, so FINAL reads the erased version at
      // once (PROTOCOL.md §5.4, §17). restricted_by: the active restrictions (GDPR Art. 18) that
      // hide the row from search and analytics. corrects_id: the event a correction corrects
      // (PROTOCOL.md §18). pseudonyms, pseudonym_key, protected_disclosures: the tenant's
      // pseudonymisation (privacy/pseudonyms.ts).
      const columns = `ADD COLUMN IF NOT EXISTS erased_paths Array(String) DEFAULT [],
  ADD COLUMN IF NOT EXISTS restricted_by Array(LowCardinality(String)) DEFAULT [],
  ADD COLUMN IF NOT EXISTS corrects_id String DEFAULT '',
  ADD COLUMN IF NOT EXISTS pseudonyms String DEFAULT '',
  ADD COLUMN IF NOT EXISTS pseudonym_key LowCardinality(String) DEFAULT '',
  ADD COLUMN IF NOT EXISTS protected_disclosures String DEFAULT '' CODEC(ZSTD(3))`;
      // A row written again (an erasure's new version) must not count as a new event: the
      // views that keep stream heads, leaves and tree sizes read first versions only. (A leaf
      // written twice would merge away, but the heads' event count would grow.)
      const views: [string, string][] = [
        [
          'stream_heads_mv',
          `SELECT tenant_id, stream, max(s) AS seq, argMaxState(hash, s) AS head, count() AS events,
       max(action = 'stream.closed') AS closed, max(received_at) AS last_received
FROM (SELECT tenant_id, stream, seq AS s, hash, action, received_at FROM {from} WHERE row_version = 0)
GROUP BY tenant_id, stream`,
        ],
        [
          'merkle_leaves_mv',
          `SELECT tenant_id, log_partition, leaf_index, leaf_hash, id AS event_id, hash AS event_hash,
       stream, seq, received_at, time
FROM {from}
WHERE leaf_hash != '' AND row_version = 0`,
        ],
        [
          'merkle_sizes_mv',
          `SELECT tenant_id, log_partition, max(leaf_index) + 1 AS leaves, max(now64(3)) AS stored_at
FROM {from}
WHERE leaf_hash != '' AND row_version = 0
GROUP BY tenant_id, log_partition`,
        ],
      ];
      return [
        ...alterColumns(store, 'events', columns),
        alterTable(
          store,
          'events',
          'ADD INDEX IF NOT EXISTS idx_corrects corrects_id TYPE bloom_filter(0.01) GRANULARITY 4',
        ),
        ...views.map(
          ([view, select]) =>
            `ALTER TABLE ${store.table(view)}${onCluster(store)} MODIFY QUERY ${select.replaceAll('{from}', store.table(localName(store, 'events')))}`,
        ),
        ...createTable(store, {
          name: 'erasures',
          // One row when an erasure starts (status 'started': the marker a replaying sink
          // honours) and one when it is done (status 'done', with the signed receipt). The
          // subject is there only as keyed digests, never in the clear (PROTOCOL.md §17.2).
          columns: `
  tenant_id String,
  erasure_id String,
  subject_digests Array(String),
  erased_at DateTime64(3, 'UTC'),
  status LowCardinality(String),
  receipt String,
  receipt_id String,
  version UInt64`,
          engine: 'ReplacingMergeTree',
          engineArg: 'version',
          tail: 'ORDER BY (tenant_id, erasure_id)',
          shardingKey: 'cityHash64(tenant_id)',
        }),
        ...createTable(store, {
          name: 'restrictions',
          // Append-only like legal_holds: a restriction is placed by one row and lifted by a
          // second, each with who, when and why; the subject only as keyed digests, so the sink
          // can recognise the person's new events without the table naming them.
          columns: `
  tenant_id String,
  restriction_id String,
  change LowCardinality(String),
  subject_digests Array(String),
  reason String,
  actor_key_id String,
  at DateTime64(3, 'UTC')`,
          engine: 'MergeTree',
          tail: 'ORDER BY (tenant_id, restriction_id, at)',
          shardingKey: 'cityHash64(tenant_id)',
        }),
        ...createTable(store, {
          name: 'privacy_settings',
          // Append-only: which kinds of fields a tenant pseudonymises, every change kept.
          columns: `
  tenant_id String,
  fields Array(LowCardinality(String)),
  changed_at DateTime64(3, 'UTC'),
  change_id UUID,
  actor_key_id String,
  reason String`,
          engine: 'MergeTree',
          tail: 'ORDER BY (tenant_id, changed_at, change_id)',
          shardingKey: 'cityHash64(tenant_id)',
        }),
        ...createTable(store, {
          name: 'tenant_keys',
          // Tenant keys wrapped under the privacy master key (privacy/keys.ts). Destroying one
          // writes a version without the material and deletes every older row.
          columns: `
  tenant_id String,
  key_id String,
  wrapped_key String,
  created_at DateTime64(3, 'UTC'),
  destroyed_at Nullable(DateTime64(3, 'UTC')),
  version UInt64`,
          engine: 'ReplacingMergeTree',
          engineArg: 'version',
          tail: 'ORDER BY (tenant_id, key_id)',
          shardingKey: 'cityHash64(tenant_id)',
        }),
      ];
    },
  },
  {
    version: 6,
    name: 'tenant of rejected log records',
    statements: (store) => {
      // The tenant a set-aside log record names, where it decodes that far ('' when it does
      // not), so erasure and tenant deletion find a tenant's rejected records.
      const change = "ADD COLUMN IF NOT EXISTS tenant_id String DEFAULT '' AFTER log_offset";
      return [...alterColumns(store, 'rejected_records', change)];
    },
  },
  {
    version: 7,
    name: 'column digests of leaves',
    statements: (store) => {
      // The column digest each leaf binds (PROTOCOL.md §13.2), hex, set by the sink with the
      // leaf; merkle_leaves keeps it so that a leaf's data can be rebuilt, and proved, after
      // retention deleted its event.
      const column = "ADD COLUMN IF NOT EXISTS column_digest String DEFAULT ''";
      return [
        ...alterColumns(store, 'events', column),
        ...alterColumns(store, 'merkle_leaves', column),
        `ALTER TABLE ${store.table('merkle_leaves_mv')}${onCluster(store)} MODIFY QUERY SELECT tenant_id, log_partition, leaf_index, leaf_hash, id AS event_id, hash AS event_hash,
       stream, seq, received_at, time, column_digest
FROM ${store.table(localName(store, 'events'))}
WHERE leaf_hash != '' AND row_version = 0`,
      ];
    },
  },
  {
    version: 8,
    name: 'alerts',
    statements: (store) =>
      // One row per version of an alert the detector raised (a grouped alert grows: each
      // update writes the row again with version + 1, and FINAL reads the newest). The entity,
      // the evidence and the event ids hold personal data: an erasure rewrites or deletes the
      // rows that name the person (alerts/store.ts). Alerts have a retention period of their
      // own (expires_at, set by the writer from the configured period).
      createTable(store, {
        name: 'alerts',
        columns: `
  tenant_id String,
  id String,
  alert_key String,
  rule_id LowCardinality(String),
  title String,
  severity LowCardinality(String),
  attack Array(LowCardinality(String)),
  entity String,
  first_event_time DateTime64(3, 'UTC'),
  last_event_time DateTime64(3, 'UTC'),
  event_ids Array(String),
  event_count UInt64,
  evidence String CODEC(ZSTD(3)),
  version UInt32,
  raised_at DateTime64(3, 'UTC'),
  updated_at DateTime64(3, 'UTC'),
  expires_at DateTime('UTC')`,
        engine: 'ReplacingMergeTree',
        engineArg: 'version',
        tail: `ORDER BY (tenant_id, id)
TTL expires_at DELETE`,
        shardingKey: 'cityHash64(tenant_id)',
      }),
  },
  {
    version: 13,
    name: 'detection baselines',
    statements: (store) => [
      // What each actor and API key usually does (countries, networks, hours, devices, request
      // rates, last activity), learned from stored events by the refresher (detect/baselines.ts).
      // Every refresh writes a generation (as_of); older ones are kept so that a backtest uses
      // the baseline the detector had at the time. The entity is a person's id: personal data,
      // deleted with the person (an erasure) and expiring on its own (expires_at).
      ...createTable(store, {
        name: 'baselines',
        columns: `
  tenant_id String,
  as_of DateTime64(3, 'UTC'),
  entity_type LowCardinality(String),
  entity String,
  facet LowCardinality(String),
  count UInt64,
  first_seen DateTime64(3, 'UTC'),
  last_seen DateTime64(3, 'UTC'),
  vals Array(String),
  val_counts Array(UInt64),
  val_last Array(DateTime64(3, 'UTC')),
  p50 Float64 DEFAULT 0,
  p95 Float64 DEFAULT 0,
  peak Float64 DEFAULT 0,
  expires_at DateTime('UTC')`,
        engine: 'ReplacingMergeTree',
        // One row per (entity, facet), its values in parallel arrays: a quarter of the rows of
        // one row per value, which is what a refresh spends its time writing.
        tail: `ORDER BY (tenant_id, as_of, entity, facet)
TTL expires_at DELETE`,
        shardingKey: 'cityHash64(tenant_id)',
      }),
      // One row per complete generation, written after its baselines: a reader loads only
      // generations listed here. effective_from = as_of + the activation delay: the first event
      // time the generation answers for, the same for the live detector and for a backtest.
      ...createTable(store, {
        name: 'baseline_generations',
        columns: `
  tenant_id String,
  as_of DateTime64(3, 'UTC'),
  effective_from DateTime64(3, 'UTC'),
  history_from DateTime64(3, 'UTC'),
  time_zone String,
  entities UInt64,
  rows UInt64,
  events UInt64,
  computed_ms UInt32,
  created_at DateTime64(3, 'UTC'),
  expires_at DateTime('UTC')`,
        engine: 'ReplacingMergeTree',
        tail: `ORDER BY (tenant_id, as_of)
TTL expires_at DELETE`,
        shardingKey: 'cityHash64(tenant_id)',
      }),
    ],
  },
  {
    version: 9,
    name: 'access projection and review campaigns',
    statements: (store) => [
      ...createTable(store, {
        name: 'access_projection',
        // Facts of access/access.ts, one row each, kept without TTL: a right granted years ago
        // still holds after its event expired by retention. Grants and revocations are separate
        // rows joined when read (a revocation may be stored before its grant: other stream, other
        // partition). subject_key is the keyed digest of the subject's plain id (PROTOCOL.md
        // §17.2), the same before and after pseudonymisation and what erasure names a person by;
        // subject_id and subject_name are shown to reviewers (the pseudonym where the tenant
        // pseudonymises ids) and blanked by an erasure, which writes the row again with
        // version + 1 and erased = 1.
        columns: `
  tenant_id LowCardinality(String),
  kind LowCardinality(String),
  subject_key String,
  subject_type LowCardinality(String),
  subject_id String,
  subject_name String,
  right_kind LowCardinality(String),
  right_name String,
  resource_type LowCardinality(String),
  resource_id String,
  at DateTime64(3, 'UTC'),
  received_at DateTime64(3, 'UTC'),
  event_id UUID,
  action LowCardinality(String),
  granted_by_key String,
  granted_by_id String,
  ticket String,
  reason String,
  expires_at Nullable(DateTime64(3, 'UTC')),
  erased UInt8 DEFAULT 0,
  version UInt32 DEFAULT 0`,
        engine: 'ReplacingMergeTree',
        engineArg: 'version',
        tail: 'ORDER BY (tenant_id, subject_key, kind, right_kind, right_name, resource_type, resource_id, at, event_id)',
        shardingKey: 'cityHash64(tenant_id, subject_key)',
      }),
      ...createTable(store, {
        name: 'review_campaigns',
        // One row per state of a campaign (open, then closed with its signed manifest).
        columns: `
  tenant_id String,
  campaign_id String,
  as_of DateTime64(3, 'UTC'),
  tracking_since Nullable(DateTime64(3, 'UTC')),
  scope String,
  status LowCardinality(String),
  started_at DateTime64(3, 'UTC'),
  started_by String,
  closed_at Nullable(DateTime64(3, 'UTC')),
  manifest String,
  version UInt32`,
        engine: 'ReplacingMergeTree',
        engineArg: 'version',
        tail: 'ORDER BY (tenant_id, campaign_id)',
        shardingKey: 'cityHash64(tenant_id)',
      }),
      ...createTable(store, {
        name: 'review_items',
        // The snapshot a campaign was started with, one row per right held. The subject's id and
        // name are columns of their own, so an erasure can blank them (access/campaigns.ts).
        columns: `
  tenant_id String,
  campaign_id String,
  position UInt32,
  item_id String,
  subject_key String,
  subject_id String,
  subject_name String,
  erased UInt8 DEFAULT 0,
  row String CODEC(ZSTD(3))`,
        engine: 'MergeTree',
        tail: 'ORDER BY (tenant_id, campaign_id, position)',
        shardingKey: 'cityHash64(tenant_id)',
      }),
      ...createTable(store, {
        name: 'review_decisions',
        // Append-only: every decision with who took it and why; the latest per item counts.
        columns: `
  tenant_id String,
  campaign_id String,
  item_id String,
  decision LowCardinality(String),
  reviewer String,
  justification String,
  decided_at DateTime64(3, 'UTC'),
  key_id String,
  event_id String`,
        engine: 'MergeTree',
        tail: 'ORDER BY (tenant_id, campaign_id, item_id, decided_at)',
        shardingKey: 'cityHash64(tenant_id)',
      }),
    ],
  },
  {
    version: 11,
    name: 'alert_triage',
    statements: (store) =>
      // Append-only: one row per triage change of an alert (state, assignee, note); reads fold
      // them into the alert's current triage (alerts/triage.ts). Each row names the audit event
      // that recorded it. Notes and assignees may name people: an erasure deletes the rows of
      // the alerts it deletes. Kept as long as alerts are (expires_at from alerts.retentionDays).
      createTable(store, {
        name: 'alert_triage',
        columns: `
  tenant_id String,
  alert_id String,
  change_id String,
  changed_at DateTime64(3, 'UTC'),
  actor_key_id String,
  kind LowCardinality(String),
  state LowCardinality(String),
  until DateTime64(3, 'UTC'),
  assignee String,
  note String,
  reason String,
  event_id String,
  expires_at DateTime('UTC')`,
        engine: 'MergeTree',
        tail: `ORDER BY (tenant_id, alert_id, changed_at, change_id)
TTL expires_at DELETE`,
        shardingKey: 'cityHash64(tenant_id)',
      }),
  },
  {
    version: 14,
    name: 'detector state',
    statements: (store) =>
      // The detector's checkpoint when the store is a ClickHouse server (embedded, it is a file
      // in the data directory): one row per consumer group and checkpoint, the newest version
      // read with FINAL. A row is written whole by one INSERT, so a checkpoint is never half
      // there. The state holds windows of events (personal data, like alerts) for at most the
      // longest rule's timespan; older checkpoints are replaced by merges.
      createTable(store, {
        name: 'detector_state',
        columns: `
  consumer_group String,
  version UInt64,
  state String CODEC(ZSTD(3)),
  written_at DateTime64(3, 'UTC')`,
        engine: 'ReplacingMergeTree',
        engineArg: 'version',
        tail: 'ORDER BY consumer_group',
        shardingKey: 'cityHash64(consumer_group)',
      }),
  },
  {
    version: 12,
    name: 'webhooks and their delivery outbox',
    statements: (store) => [
      // A tenant's webhooks (webhooks/store.ts): each change writes the row again with
      // version + 1; a deletion writes deleted = 1 (FINAL reads the newest). The secret signs
      // deliveries and is shown once, when created; it is kept sealed under a key derived from the
      // privacy master key (webhooks/secrets.ts).
      ...createTable(store, {
        name: 'webhooks',
        columns: `
  tenant_id String,
  id String,
  url String,
  secret String,
  format LowCardinality(String),
  min_severity LowCardinality(String),
  enabled UInt8,
  description String,
  created_at DateTime64(3, 'UTC'),
  created_by String,
  deleted UInt8,
  version UInt64`,
        engine: 'ReplacingMergeTree',
        engineArg: 'version',
        tail: 'ORDER BY (tenant_id, id)',
        shardingKey: 'cityHash64(tenant_id)',
      }),
      // The durable outbox of deliveries (webhooks/outbox.ts): one row per (webhook, alert
      // version), written again with version + 1 at each attempt; pending, delivered, dead
      // (the dead-letter list) or cancelled. The body is the exact bytes signed at each attempt;
      // it names the alert's entity (personal data), so every version of a delivery expires
      // together, expires_at after it was enqueued.
      ...createTable(store, {
        name: 'webhook_deliveries',
        columns: `
  tenant_id String,
  id String,
  webhook_id String,
  event_id String,
  event_type LowCardinality(String),
  body String CODEC(ZSTD(3)),
  state LowCardinality(String),
  attempts UInt32,
  next_attempt_at DateTime64(3, 'UTC'),
  last_status UInt16,
  last_error String,
  created_at DateTime64(3, 'UTC'),
  queued_at DateTime64(3, 'UTC'),
  updated_at DateTime64(3, 'UTC'),
  expires_at DateTime('UTC'),
  version UInt64`,
        engine: 'ReplacingMergeTree',
        engineArg: 'version',
        tail: `ORDER BY (tenant_id, id)
TTL expires_at DELETE`,
        shardingKey: 'cityHash64(tenant_id)',
      }),
    ],
  },
  {
    version: 10,
    name: 'search: hourly rollups and skip indexes',
    statements: (store) => [
      // Counts per tenant, hour, category, action, outcome and country (rollups/hourly.ts).
      ...rollupStatements(store),
      // Selective searches by actor, target, session or request read only the granules that can
      // hold the value (ClickHouse docs, "Data skipping indexes": bloom_filter). Parts written
      // before this migration are not indexed until merged (or MATERIALIZE INDEX).
      ...[
        ['idx_actor', 'actor_id'],
        ['idx_target', 'target_id'],
        ['idx_session', 'session_id'],
        ['idx_request', 'request_id'],
      ].map(([name, column]) =>
        alterTable(
          store,
          'events',
          `ADD INDEX IF NOT EXISTS ${name} ${column} TYPE bloom_filter(0.01) GRANULARITY 4`,
        ),
      ),
    ],
  },
];

export interface MigrationReport {
  readonly applied: number[];
  readonly current: number;
}

export async function migrate(
  store: Store,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationReport> {
  for (const statement of MIGRATION_TABLE_DDL(store)) await store.command(statement);
  const rows = await store.query<{ version: number }>(
    `SELECT DISTINCT version FROM ${store.table('schema_migrations')}`,
  );
  const done = new Set(rows.map((r) => Number(r.version)));
  const applied: number[] = [];
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (done.has(migration.version)) continue;
    try {
      for (const statement of migration.statements(store)) await store.command(statement);
    } catch (error) {
      throw new QueryError(
        QueryErrorCodes.MIGRATION_FAILED,
        `migration ${migration.version} (${migration.name}) failed: ${(error as Error).message}`,
        { cause: error },
      );
    }
    await store.insert(store.table('schema_migrations'), [
      { version: migration.version, name: migration.name, applied_at: Date.now() },
    ]);
    applied.push(migration.version);
  }
  const current = Math.max(0, ...done, ...applied);
  return { applied, current };
}
