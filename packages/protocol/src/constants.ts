/** The protocol version carried inside every hashed record (field `v`). Readers refuse any other. */
export const PROTOCOL_VERSION = 2 as const;

/** Request media type of the sealed wire framing (PROTOCOL.md §9): one event per line. */
export const SEALED_MEDIA_TYPE = 'application/vnd.vigil.sealed.v2';

/** `prev` of the first event of a stream: 32 zero bytes, hex. */
export const ZERO_HASH = '0'.repeat(64);

export const CATEGORIES = [
  'authentication',
  'access_change',
  'data_access',
  'data_change',
  'admin',
  'api',
  'security',
  'system',
] as const;
export type Category = (typeof CATEGORIES)[number];

export const OUTCOMES = ['success', 'failure', 'denied', 'error'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const ACCESS_CHANGES = ['grant', 'revoke'] as const;
export type AccessChangeKind = (typeof ACCESS_CHANGES)[number];

/**
 * Party types that are never a person: for actors, access subjects and grantors,
 * every other type is treated as a person, so privacy is the default.
 */
export const NON_PERSON_TYPES: ReadonlySet<string> = new Set([
  'service',
  'system',
  'api_key',
  'job',
  'bot',
  'device',
  'integration',
  'group',
  'team',
  'role',
  'service_account',
]);

/** Target types that are a person. Other targets (documents, projects …) are resources. */
export const PERSON_TARGET_TYPES: ReadonlySet<string> = new Set([
  'user',
  'person',
  'customer',
  'employee',
  'contractor',
  'member',
  'contact',
]);

/** Members of a record that a producer never sends in an unchained event: Vigil sets them. */
export const RESERVED_INPUT_MEMBERS = [
  'v',
  'stream',
  'seq',
  'prev',
  'record',
  'hash',
  'disclosures',
] as const;

/** Stream-id prefixes that only Vigil itself writes (compared case-insensitively). */
export const RESERVED_STREAM_PREFIXES = ['vigil/', 'key/'] as const;

/** Actions that open and close a stream (seq 0 and the last event). */
export const STREAM_OPENED = 'stream.opened';
export const STREAM_CLOSED = 'stream.closed';

export const PATTERNS = {
  /** Lower-case UUIDv7 (RFC 9562 §5.7). */
  uuidV7: /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  /** Two or more dotted lower-case segments: `user.login`, `role.granted`, `api.request`. */
  action: /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/,
  /** Party and resource types: `user`, `service`, `api_key`, `document`. */
  typeName: /^[a-z][a-z0-9_.-]{0,63}$/,
  stream: /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$/,
  hash: /^[0-9a-f]{64}$/,
  /** RFC 3339 in UTC with exactly three fraction digits, the form `Date#toISOString` gives. */
  time: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/,
  /** base64url without padding (RFC 4648 §5). */
  base64url: /^[A-Za-z0-9_-]+$/,
} as const;

export const LIMITS = {
  actionLength: 128,
  idLength: 256,
  nameLength: 256,
  emailLength: 320,
  userAgentLength: 1024,
  contextIdLength: 256,
  reasonLength: 1024,
  metadataKeys: 128,
  personalPaths: 64,
  minSaltBytes: 16,
  maxSaltBytes: 64,
  /**
   * Nesting of any JSON value inside a record or an unchained event (PROTOCOL.md §3.5): the
   * record object is level 1, `metadata` level 2. JSON.parse takes input of any depth, but
   * JSON.stringify, RFC 8785 serialisation and every recursive walker throw RangeError on a few
   * thousand levels; no audit event needs more than a handful.
   */
  jsonDepth: 32,
  /** Members of any one object anywhere inside a record or unchained event. */
  jsonMembers: 256,
  /** Elements of any one array anywhere inside a record or unchained event. */
  jsonElements: 1024,
} as const;
