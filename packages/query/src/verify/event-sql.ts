/**
 * The per-event checks of `vigil verify` as one ClickHouse expression per row (PROTOCOL.md §19),
 * so that the store engine does the work over the exact bytes it holds and only the rows that
 * fail, or that it cannot decide, reach the verifier's JavaScript (events.ts), which decides
 * them with the reference code: checkSealedEvent, isCanonicalRecord and eventRow.
 *
 * The engine is Vigil's own in-process code; only the data is untrusted. Every check here is
 * therefore written so that "passes" is sound — a row it passes would pass the reference
 * checks too — and anything unusual (a disclosure that is not a string, a pseudonymised row, a
 * personal path deep in metadata, a duplicate JSON member) is handed to JavaScript rather than
 * judged here:
 *
 * - record hash: SHA-256 of the stored bytes equals `hash` (PROTOCOL.md §4, §8.1 check 2);
 * - leaf: `leaf_hash` equals SHA-256(0x00 || leaf data) of the row's tenant, stream, seq and
 *   hash (PROTOCOL.md §13.2; RFC 9162 §2.1.1);
 * - disclosures: each opens its commitment, SHA-256 of the §5.2 preimage with the value in RFC
 *   8785 form, and names a path the record lists in `personal`;
 * - typed columns: each equals what store/rows.ts eventRow derives from the record and the
 *   disclosures (the same derivation, in SQL: event-sql.test.ts checks that both agree).
 */

/** Bits of the per-row verdict. */
export const ROW_BITS = {
  /** SHA-256 of `record` is not `hash`. */
  hash: 1,
  /** `leaf_hash` does not bind the row's tenant, stream, seq and hash. */
  leaf: 2,
  /** No leaf (`leaf_hash` = ''): stored before trees, or inserted around them. */
  noLeaf: 4,
  /** A typed column differs from its derivation. */
  columns: 8,
  /** A disclosure does not open its commitment. */
  disclosure: 16,
  /** The engine cannot decide: the reference checks in JavaScript do. */
  js: 32,
} as const;

/** The fields of a record the typed columns and commitments need, in one parse. */
const RECORD_TUPLE = `Tuple(id String, time String, stream String, seq String, prev String,
  action String, category String, outcome String,
  actor Tuple(type String, id String, name String, email String),
  target Tuple(type String, id String, name String, email String),
  access Tuple(change String, subject Tuple(type String, id String, name String, email String),
    role String, permission String, resource Tuple(type String, id String),
    grantedBy Tuple(type String, id String, name String, email String)),
  context Tuple(ip String, userAgent String, requestId String, sessionId String),
  personal Array(String))`;

/** The committable paths outside metadata (PROTOCOL.md §5.1) and where the parse holds them. */
const FIXED_PATHS: readonly (readonly [string, string])[] = [
  ['/actor/id', 'r.actor.id'],
  ['/actor/name', 'r.actor.name'],
  ['/actor/email', 'r.actor.email'],
  ['/target/id', 'r.target.id'],
  ['/target/name', 'r.target.name'],
  ['/target/email', 'r.target.email'],
  ['/access/subject/id', 'r.access.subject.id'],
  ['/access/subject/name', 'r.access.subject.name'],
  ['/access/subject/email', 'r.access.subject.email'],
  ['/access/grantedBy/id', 'r.access.grantedBy.id'],
  ['/access/grantedBy/name', 'r.access.grantedBy.name'],
  ['/access/grantedBy/email', 'r.access.grantedBy.email'],
  ['/context/ip', 'r.context.ip'],
  ['/context/userAgent', 'r.context.userAgent'],
  ['/context/requestId', 'r.context.requestId'],
  ['/context/sessionId', 'r.context.sessionId'],
];

/**
 * The typed text columns and their source in the record; with a pointer, the field may be
 * personal, and then the column holds its disclosed value ('' when there is none: erased or
 * withheld). This is eventRow's table (store/rows.ts); `id`, `time`, `seq`, `ip` and `personal`
 * are compared below with their own conversions.
 */
export const TEXT_COLUMNS: readonly (readonly [string, string, string?])[] = [
  ['stream', 'r.stream'],
  ['prev', 'r.prev'],
  ['action', 'r.action'],
  ['category', 'r.category'],
  ['outcome', 'r.outcome'],
  ['actor_type', 'r.actor.type'],
  ['actor_id', 'r.actor.id', '/actor/id'],
  ['actor_name', 'r.actor.name', '/actor/name'],
  ['actor_email', 'r.actor.email', '/actor/email'],
  ['target_type', 'r.target.type'],
  ['target_id', 'r.target.id', '/target/id'],
  ['target_name', 'r.target.name', '/target/name'],
  ['access_change', 'r.access.change'],
  ['subject_type', 'r.access.subject.type'],
  ['subject_id', 'r.access.subject.id', '/access/subject/id'],
  ['access_role', 'r.access.role'],
  ['access_permission', 'r.access.permission'],
  ['resource_type', 'r.access.resource.type'],
  ['resource_id', 'r.access.resource.id'],
  ['granted_by_id', 'r.access.grantedBy.id', '/access/grantedBy/id'],
  ['user_agent', 'r.context.userAgent', '/context/userAgent'],
  ['request_id', 'r.context.requestId', '/context/requestId'],
  ['session_id', 'r.context.sessionId', '/context/sessionId'],
];

/** u32 big-endian bytes of an integer expression (reinterpretAsFixedString is little-endian). */
const be32 = (x: string): string => `reverse(reinterpretAsFixedString(toUInt32(${x})))`;
const be64 = (x: string): string => `reverse(reinterpretAsFixedString(toUInt64(${x})))`;

/**
 * The leaf hash of a row as lower-case hex, in SQL (PROTOCOL.md §13.2, RFC 9162 §2.1.1):
 * SHA-256(0x00 || "vigil.leaf.v1" 0x00 | u32be tenant | u32be stream | u64be seq | event hash).
 * The event-row checks here and the tree join (tree.ts) both bind leaves with it.
 */
export function leafHashSql(eventHashHex: string): string {
  return `lower(hex(SHA256(concat('\\0vigil.leaf.v1\\0',
      ${be32('length(tenant_id)')}, tenant_id, ${be32('length(stream)')}, stream,
      ${be64('seq')}, unhex(${eventHashHex})))))`;
}

/** SQL text of a path literal (paths here are plain ASCII pointers). */
const lit = (text: string): string => `'${text}'`;

/**
 * Whether every disclosure of the row opens its commitment in the record (§5.2):
 * "vigil.commitment.v1" 0x00 | u32be salt | u32be path | u32be RFC 8785 value. A JSON string's
 * RFC 8785 form is its JSON escaping (RFC 8785 §3.2.2.2); toJSONString escapes the same way
 * for ordinary text, and where it differs the commitment fails here and JavaScript decides. A
 * salt must be canonical base64url of 16-64 bytes. `k`, `v`, `s` are a disclosure's path, value
 * and salt, `c` the record's value at the path (the commitment). One lambda over the row's
 * disclosures: with short-circuit evaluation off (EVENT_SQL_SETTINGS), an unrolled check per
 * possible disclosure hashed every slot, used or not, and measured 30 % slower in total.
 */
function allOpen(fixed: string): string {
  const salt = 'tryBase64URLDecode(s)';
  const value = 'toJSONString(v)';
  return `arrayAll((k, v, s, c) -> length(${salt}) BETWEEN 16 AND 64 AND base64URLEncode(${salt}) = s
      AND SHA256(concat('vigil.commitment.v1\\0', ${be32(`length(${salt})`)}, ${salt},
        ${be32('length(k)')}, k, ${be32(`length(${value})`)}, ${value})) = unhex(c),
    dk, dv, ds, arrayMap(k -> rv[indexOf(${fixed}, k)], dk))`;
}

export interface EventSqlOptions {
  /** The table has migration 5's columns (`erased_paths`, `pseudonyms`). */
  readonly privacyColumns: boolean;
}

/**
 * The expressions of one row's verdict, as a subquery over `events` that selects them as
 * `bits` (ROW_BITS), `und` (personal paths without a disclosure) and `ers` (those of them an
 * erasure removed), next to the row's identity. `from` is the FROM clause with its filters.
 * Run it with the settings of EVENT_SQL_SETTINGS.
 */
export function eventCheckSql(from: string, options: EventSqlOptions): string {
  const pseudonymised = options.privacyColumns ? `pseudonyms != ''` : '0';
  const pseudonymPaths = options.privacyColumns
    ? `if(pseudonyms = '', emptyArrayString(), JSONExtractKeys(pseudonyms))`
    : 'emptyArrayString()';
  const erased = options.privacyColumns ? 'erased_paths' : 'emptyArrayString()';
  const fixed = `[${FIXED_PATHS.map(([path]) => lit(path)).join(', ')}]`;
  /** The disclosed value of a pointer, or '' (erased, withheld). */
  const disclosed = (pointer: string): string => `dv[indexOf(dk, ${lit(pointer)})]`;
  const columnChecks = [
    `toString(id) = r.id`,
    // DateTime64(3) text vs the protocol's time form (store/rows.ts toChTime).
    `toString(time) = concat(substring(r.time, 1, 10), ' ', substring(r.time, 12, 12))`,
    `toString(seq) = r.seq`,
    ...TEXT_COLUMNS.map(([column, expr, pointer]) =>
      pointer === undefined
        ? `${column} = ${expr}`
        : `${column} = if(has(r.personal, ${lit(pointer)}), ${disclosed(pointer)}, ${expr})`,
    ),
    // IPv4 is stored mapped into IPv6, an IPv6 zone index left out (store/rows.ts ipColumn);
    // no value is NULL.
    `isNotDistinctFrom(ip, toIPv6OrNull(ipa)) AND (ipv = '' OR toIPv6OrNull(ipa) IS NOT NULL)`,
    `personal = r.personal`,
  ];
  // Disclosures as eventRow wrote them, JSON.stringify of {path: {salt, value}}. The engine
  // judges only the plain shape: every value a JSON string (so that re-escaping it gives the
  // bytes committed to), exactly the members salt and value, no path twice, every path listed
  // in `personal` and a fixed one (not in metadata). Anything else goes
  // to JavaScript, which reads the text as JSON.parse does.
  const guard = `(length(m) = length(arrayDistinct(dk))
    AND countSubstrings(disclosures, '"value":"') = length(m)
    AND countSubstrings(disclosures, '"value":') = length(m)
    AND countSubstrings(disclosures, '"salt":"') = length(m)
    AND countSubstrings(disclosures, '"salt":') = length(m)
    AND arrayAll(x -> length(x) = 2 AND mapContains(x, 'salt') AND mapContains(x, 'value'), mapValues(m))
    AND hasAll(r.personal, dk)
    AND hasAll(${fixed}, dk))`;
  const leaf = leafHashSql('hash');
  const needsJs = `(${pseudonymised} OR has(flags, 'noncanonical') OR NOT ${guard})`;
  return `SELECT toString(id) AS eid, hash AS h, log_partition AS part, leaf_index AS li,
       leaf_hash AS lh, stream AS st, seq AS sq, flags AS fl,
       toUnixTimestamp64Milli(received_at) AS rcv,
       (if(SHA256(record) != unhex(hash), ${ROW_BITS.hash}, 0)
        + if(leaf_hash != '' AND leaf_hash != ${leaf}, ${ROW_BITS.leaf}, 0)
        + if(leaf_hash = '', ${ROW_BITS.noLeaf}, 0)
        + if(${columnChecks.join('\n          AND ')}, 0, ${ROW_BITS.columns})
        + if(js, ${ROW_BITS.js}, if(${allOpen(fixed)}, 0, ${ROW_BITS.disclosure}))) AS bits,
       if(length(r.personal) > length(dk), arrayFilter(p -> NOT has(dk, p) AND NOT has(pk, p), r.personal), emptyArrayString()) AS und,
       if(empty(und), emptyArrayString(), arrayFilter(p -> has(${erased}, p), und)) AS ers
FROM (
  SELECT *,
    JSONExtract(record, '${RECORD_TUPLE.replace(/\s+/g, ' ')}') AS r,
    JSONExtract(disclosures, 'Map(String, Map(String, String))') AS m,
    mapKeys(m) AS dk,
    arrayMap(x -> x['value'], mapValues(m)) AS dv,
    arrayMap(x -> x['salt'], mapValues(m)) AS ds,
    [${FIXED_PATHS.map(([, expr]) => expr).join(', ')}] AS rv,
    if(has(r.personal, '/context/ip'), dv[indexOf(dk, '/context/ip')], r.context.ip) AS ipv,
    if(position(ipv, '%') > 0, substring(ipv, 1, position(ipv, '%') - 1), ipv) AS ipa,
    ${pseudonymPaths} AS pk,
    ${needsJs} AS js
  ${from}
)
WHERE bits != 0 OR notEmpty(und)`;
}

/** Settings the per-row checks need: JSON escaping as RFC 8785 has it, lazy branches. */
export const EVENT_SQL_SETTINGS = {
  output_format_json_escape_forward_slashes: 0,
  // Branches are cheap here; splitting blocks to evaluate them lazily costs more than it saves.
  short_circuit_function_evaluation: 'disable',
  // Granules are never skipped on the strength of an earlier run's result.
  use_query_condition_cache: 0,
  do_not_merge_across_partitions_select_final: 1,
} as const;
