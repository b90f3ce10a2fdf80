import { DERIVED_COLUMN_TYPES, type DerivedColumns } from './derived.js';

/**
 * The columns of a row of `events`: what store/rows.ts derives from an event and what
 * privacy/pseudonyms.ts rewrites in it. A module of its own so that both can depend on it
 * without depending on each other.
 */

/**
 * A row of `events` as the sink inserts it. The derived columns (enrichment) and `legal_hold`
 * are set by sink plugins after eventRow() builds the rest; a column left out takes its DEFAULT.
 */
export interface EventRow extends Partial<DerivedColumns> {
  legal_hold?: number;
  /** Position of the event's leaf in its (tenant, partition) tree; set by the sink (PROTOCOL.md §13). */
  leaf_index?: number;
  /** hex SHA-256(0x00 || leaf data); '' or absent: no leaf. */
  leaf_hash?: string;
  /** hex column digest the leaf binds (PROTOCOL.md §13.2); set by the sink with the leaf. */
  column_digest?: string;
  /** Pointers whose disclosures an erasure removed (migration 5; PROTOCOL.md §5.4). */
  erased_paths?: string[];
  /** Ids of the active restrictions (GDPR Art. 18) that cover the row; empty: not restricted. */
  restricted_by?: string[];
  /** JSON {pointer: pseudonym} of the pseudonymised paths ('' when none; privacy/pseudonyms.ts). */
  pseudonyms?: string;
  /** The tenant key the pseudonyms and protected disclosures were made with. */
  pseudonym_key?: string;
  /** The disclosures of pseudonymised paths, encrypted with the tenant key. */
  protected_disclosures?: string;
  /** The id of the event a correction corrects (its `corrects.event`), else ''. */
  corrects_id: string;
  tenant_id: string;
  id: string;
  time: string;
  received_at: number;
  stream: string;
  seq: number;
  prev: string;
  hash: string;
  action: string;
  category: string;
  outcome: string;
  actor_type: string;
  actor_id: string;
  actor_name: string;
  actor_email: string;
  target_type: string;
  target_id: string;
  target_name: string;
  access_change: string;
  subject_type: string;
  subject_id: string;
  access_role: string;
  access_permission: string;
  resource_type: string;
  resource_id: string;
  granted_by_id: string;
  ip: string | null;
  user_agent: string;
  request_id: string;
  session_id: string;
  /**
   * The record bytes: as the log record holds them (a slice of it) when the sink has them, so
   * they reach the store without being decoded and encoded again; text otherwise.
   */
  record: string | Buffer;
  disclosures: string;
  personal: string[];
  flags: string[];
  source: string;
  submitted_digest: string;
  key_id: string;
  log_partition: number;
  log_offset: number;
  log_index: number;
  expires_at: number;
}

/**
 * The type of each column of `events` a row sets, as the migrations declare it: what the sink's
 * binary insert encodes (store/row-binary.ts). Every member of EventRow must be here (the type
 * checker says so), and a test compares these with the migrated table, so a column added to one
 * and not the other is caught. Order is the INSERT's column order.
 */
export const EVENT_COLUMN_TYPES = {
  tenant_id: 'LowCardinality(String)',
  id: 'UUID',
  time: "DateTime64(3, 'UTC')",
  received_at: "DateTime64(3, 'UTC')",
  stream: 'String',
  seq: 'UInt64',
  prev: 'FixedString(64)',
  hash: 'FixedString(64)',
  action: 'LowCardinality(String)',
  category: 'LowCardinality(String)',
  outcome: 'LowCardinality(String)',
  actor_type: 'LowCardinality(String)',
  actor_id: 'String',
  actor_name: 'String',
  actor_email: 'String',
  target_type: 'LowCardinality(String)',
  target_id: 'String',
  target_name: 'String',
  access_change: 'LowCardinality(String)',
  subject_type: 'LowCardinality(String)',
  subject_id: 'String',
  access_role: 'String',
  access_permission: 'String',
  resource_type: 'LowCardinality(String)',
  resource_id: 'String',
  granted_by_id: 'String',
  ip: 'Nullable(IPv6)',
  user_agent: 'String',
  request_id: 'String',
  session_id: 'String',
  record: 'String',
  disclosures: 'String',
  personal: 'Array(String)',
  flags: 'Array(LowCardinality(String))',
  source: 'LowCardinality(String)',
  submitted_digest: 'String',
  key_id: 'LowCardinality(String)',
  log_partition: 'UInt32',
  log_offset: 'UInt64',
  log_index: 'UInt32',
  expires_at: "DateTime('UTC')",
  legal_hold: 'UInt8',
  ...DERIVED_COLUMN_TYPES,
  leaf_index: 'UInt64',
  leaf_hash: 'String',
  erased_paths: 'Array(String)',
  restricted_by: 'Array(LowCardinality(String))',
  corrects_id: 'String',
  pseudonyms: 'String',
  pseudonym_key: 'LowCardinality(String)',
  protected_disclosures: 'String',
  column_digest: 'String',
} as const satisfies Record<keyof EventRow, string>;

/** The typed columns that hold a personal field's plain value, by the field's pointer. */
export const PERSONAL_COLUMNS = {
  '/actor/id': 'actor_id',
  '/actor/name': 'actor_name',
  '/actor/email': 'actor_email',
  '/target/id': 'target_id',
  '/target/name': 'target_name',
  '/access/subject/id': 'subject_id',
  '/access/grantedBy/id': 'granted_by_id',
  '/context/ip': 'ip',
  '/context/userAgent': 'user_agent',
  '/context/requestId': 'request_id',
  '/context/sessionId': 'session_id',
} as const satisfies Record<string, keyof EventRow>;

export type PersonalColumn = (typeof PERSONAL_COLUMNS)[keyof typeof PERSONAL_COLUMNS];

/** What eventRow gives a personal column whose disclosure is absent (withheld or erased). */
export function absentValue(column: PersonalColumn): '' | null {
  return column === 'ip' ? null : '';
}
