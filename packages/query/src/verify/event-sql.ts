import { COLUMN_FIELDS } from '@vigil/protocol';

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
 * - leaf and columns: `leaf_hash` equals SHA-256(0x00 || leaf data) of the row's tenant, stream,
 *   seq, hash and the column digest computed from the row's own typed columns and the
 *   commitments its disclosures open to (PROTOCOL.md §13.2; RFC 9162 §2.1.1). The sink computed
 *   the digest from the record, so equality shows, with one hash and no parse of the record,
 *   that every clear typed column is what the record says and that every disclosure opens the
 *   commitment the record holds at its path;
 * - personal columns: each holds its disclosed value ('' when there is none);
 * - deep (`vigil verify --deep`): besides, the record is parsed and every typed column compared
 *   with what store/rows.ts eventRow derives from it, and every disclosure with the commitment
 *   read from the record (the same derivation, in SQL: event-sql.integration.test.ts checks
 *   that both agree).
 */

/** Bits of the per-row verdict. */
export const ROW_BITS = {
  /** SHA-256 of `record` is not `hash`. */
  hash: 1,
  /**
   * `leaf_hash` does not bind the row's tenant, stream, seq, hash and the column digest of its
   * typed columns and disclosures: a record, column, disclosure or leaf was changed.
   */
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
 * SHA-256(0x00 || "vigil.leaf.v2" 0x00 | u32be tenant | u32be stream | u64be seq | event hash |
 * column digest). `digest` is an expression of the digest's 32 bytes. The event-row checks here
 * and the tree join (tree.ts) both bind leaves with it.
 */
export function leafHashSql(eventHashHex: string, digest: string): string {
  return `lower(hex(SHA256(concat('\\0vigil.leaf.v2\\0',
      ${be32('length(tenant_id)')}, tenant_id, ${be32('length(stream)')}, stream,
      ${be64('seq')}, unhex(${eventHashHex}), ${digest}))))`;
}

/** A text field of the column digest: 0x00 | u32be(length) | bytes. */
const textField = (x: string): string => `'\\0', ${be32(`length(${x})`)}, ${x}`;

/**
 * The column digest of a row (PROTOCOL.md §13.2.1) from its typed columns, as 32 raw bytes.
 * `commitments` is an expression of the commitments (64 hex) of the paths of `personal`, in
 * its order. Each field
 * of COLUMN_FIELDS comes from the column of its name: `time` back in the record's text form,
 * `ip` as its 16 bytes, and a field `personal` lists as 0x01.
 */
export function columnDigestSql(commitments: string): string {
  const parts: string[] = [`'vigil.columns.v2\\0'`];
  for (const [column, pointer, kind] of COLUMN_FIELDS) {
    if (kind === 'seq') {
      parts.push(be64('seq'));
      continue;
    }
    let clear: string;
    if (kind === 'ip')
      clear = `if(isNull(ip), concat('\\0', ${be32('0')}), concat('\\0', ${be32('16')}, reinterpretAsFixedString(assumeNotNull(ip))))`;
    else if (column === 'id') clear = `concat(${textField('toString(id)')})`;
    else if (column === 'time')
      clear = `concat(${textField(
        "concat(substring(toString(time), 1, 10), 'T', substring(toString(time), 12, 12), 'Z')",
      )})`;
    else clear = `concat(${textField(`toString(${column})`)})`;
    // Fields that can never be personal (§5.1) skip the test.
    const personalCapable = PERSONAL_POINTERS.has(pointer);
    parts.push(personalCapable ? `if(has(personal, ${lit(pointer)}), '\\x01', ${clear})` : clear);
  }
  parts.push(be32('length(personal)'));
  parts.push(
    `arrayStringConcat(arrayMap((p, c) -> concat(${be32('length(p)')}, p, ${be32('length(c)')}, c), personal, ${commitments}))`,
  );
  return `SHA256(concat(${parts.join(',\n    ')}))`;
}

/** SQL text of a path literal (paths here are plain ASCII pointers). */
const lit = (text: string): string => `'${text}'`;

/** The pointers a record may list as personal among the digest's fields (§5.1). */
const PERSONAL_POINTERS = new Set(FIXED_PATHS.map(([path]) => path));

export interface EventSqlOptions {
  /** The table has migration 5's columns (`erased_paths`, `pseudonyms`). */
  readonly privacyColumns: boolean;
  /**
   * Also parse every record and compare each typed column and disclosure with it (`vigil
   * verify --deep`). Without it, columns and disclosures are checked through the column digest
   * the leaf binds, one hash per row.
   */
  readonly deep?: boolean;
}

/**
 * The commitment a disclosure opens to (§5.2), 64 hex; `k` its path, `j` its value in RFC 8785
 * form, `b` its salt decoded.
 */
const OPENED = `lower(hex(SHA256(concat('vigil.commitment.v1\\0', ${be32('length(b)')}, b,
    ${be32('length(k)')}, k, ${be32('length(j)')}, j))))`;

/**
 * The expressions of one row's verdict, as a subquery over `events` that selects them as
 * `bits` (ROW_BITS), `und` (personal paths without a disclosure) and `ers` (those of them an
 * erasure removed), next to the row's identity. `from` is the FROM clause with its filters.
 * Run it with the settings of EVENT_SQL_SETTINGS.
 */
export function eventCheckSql(from: string, options: EventSqlOptions): string {
  const deep = options.deep ?? false;
  const pseudonymised = options.privacyColumns ? `pseudonyms != ''` : '0';
  const pseudonymPaths = options.privacyColumns
    ? `if(pseudonyms = '', emptyArrayString(), JSONExtractKeys(pseudonyms))`
    : 'emptyArrayString()';
  const erased = options.privacyColumns ? 'erased_paths' : 'emptyArrayString()';
  const fixed = `[${FIXED_PATHS.map(([path]) => lit(path)).join(', ')}]`;
  /** The disclosed value of a pointer, or '' (erased, withheld). */
  const disclosed = (pointer: string): string => `dv[indexOf(dk, ${lit(pointer)})]`;
  // Personal columns hold their disclosed value, '' when there is none; clear ones are in the
  // column digest. IPv4 is stored mapped into IPv6, an IPv6 zone index left out (store/rows.ts
  // ipColumn); no value is NULL.
  const ipCheck = `isNotDistinctFrom(ip, toIPv6OrNull(ipa)) AND (ipv = '' OR toIPv6OrNull(ipa) IS NOT NULL)`;
  const personalChecks = [
    ...TEXT_COLUMNS.filter(([, , pointer]) => pointer !== undefined).map(
      ([column, , pointer]) =>
        `(NOT has(personal, ${lit(pointer as string)}) OR ${column} = ${disclosed(pointer as string)})`,
    ),
    `(NOT has(personal, '/context/ip') OR (${ipCheck}))`,
  ];
  const deepChecks = [
    `toString(id) = r.id`,
    // DateTime64(3) text vs the protocol's time form (store/rows.ts toChTime).
    `toString(time) = concat(substring(r.time, 1, 10), ' ', substring(r.time, 12, 12))`,
    `toString(seq) = r.seq`,
    ...TEXT_COLUMNS.map(([column, expr, pointer]) =>
      pointer === undefined
        ? `${column} = ${expr}`
        : `${column} = if(has(r.personal, ${lit(pointer)}), ${disclosed(pointer)}, ${expr})`,
    ),
    ipCheck,
    `personal = r.personal`,
  ];
  // Disclosures as eventRow wrote them, JSON.stringify of {path: {salt, value}}. The engine
  // judges only the plain shape: every value a JSON string (so that re-escaping it gives the
  // bytes committed to), exactly the members salt and value, no path twice, every path listed
  // in `personal`, and every listed path disclosed (the digest needs each one's commitment;
  // with --deep, the record gives those of the fixed paths). Anything else goes to
  // JavaScript, which reads the text as JSON.parse does.
  const guard = `(length(m) = length(arrayDistinct(dk))
    AND countSubstrings(disclosures, '"value":"') = length(m)
    AND countSubstrings(disclosures, '"value":') = length(m)
    AND countSubstrings(disclosures, '"salt":"') = length(m)
    AND countSubstrings(disclosures, '"salt":') = length(m)
    AND arrayAll(x -> length(x) = 2 AND mapContains(x, 'salt') AND mapContains(x, 'value'), mapValues(m))
    AND hasAll(personal, dk)
    AND hasAll(${deep ? `arrayConcat(dk, ${fixed})` : 'dk'}, personal))`;
  // The commitment of a listed path: what its disclosure opens to; with --deep, for a fixed
  // path, the record's value (the disclosure is then checked against it on its own).
  const commitment = deep
    ? (p: string): string =>
        `if(indexOf(${fixed}, ${p}) > 0, rv[indexOf(${fixed}, ${p})], dc[indexOf(dk, ${p})])`
    : (p: string): string => `dc[indexOf(dk, ${p})]`;
  const leaf = leafHashSql('hash', 'cd');
  // A row without a leaf has nothing to bind its columns: the reference code checks it whole.
  const needsJs = `(${pseudonymised} OR has(flags, 'noncanonical') OR leaf_hash = '' OR NOT ${guard})`;
  const salts = `arrayAll((s, b) -> length(b) BETWEEN 16 AND 64 AND base64URLEncode(b) = s, ds, sb)`;
  const disclosureCheck = deep
    ? `${salts} AND arrayAll((k, c) -> indexOf(${fixed}, k) = 0 OR c = rv[indexOf(${fixed}, k)], dk, dc)`
    : salts;
  const recordParse = deep
    ? `JSONExtract(record, '${RECORD_TUPLE.replace(/\s+/g, ' ')}') AS r,
    [${FIXED_PATHS.map(([, expr]) => expr).join(', ')}] AS rv,`
    : '';
  return `SELECT toString(id) AS eid, hash AS h, log_partition AS part, leaf_index AS li,
       leaf_hash AS lh, stream AS st, seq AS sq, flags AS fl,
       toUnixTimestamp64Milli(received_at) AS rcv,
       (if(SHA256(record) != unhex(hash), ${ROW_BITS.hash}, 0)
        + if(js OR leaf_hash = ${leaf}, 0, ${ROW_BITS.leaf})
        + if(leaf_hash = '', ${ROW_BITS.noLeaf}, 0)
        + if(${[...personalChecks, ...(deep ? deepChecks : [])].join('\n          AND ')}, 0, ${ROW_BITS.columns})
        + if(js, ${ROW_BITS.js}, if(${disclosureCheck}, 0, ${ROW_BITS.disclosure}))) AS bits,
       if(length(personal) > length(dk), arrayFilter(p -> NOT has(dk, p) AND NOT has(pk, p), personal), emptyArrayString()) AS und,
       if(empty(und), emptyArrayString(), arrayFilter(p -> has(${erased}, p), und)) AS ers
FROM (
  SELECT *,
    ${recordParse}
    JSONExtract(disclosures, 'Map(String, Map(String, String))') AS m,
    mapKeys(m) AS dk,
    arrayMap(x -> x['value'], mapValues(m)) AS dv,
    arrayMap(x -> x['salt'], mapValues(m)) AS ds,
    arrayMap(s -> tryBase64URLDecode(s), ds) AS sb,
    arrayMap((k, j, b) -> ${OPENED}, dk, arrayMap(v -> toJSONString(v), dv), sb) AS dc,
    arrayMap(p -> ${commitment('p')}, personal) AS pc,
    ${columnDigestSql('pc')} AS cd,
    if(has(personal, '/context/ip'), ${disclosed('/context/ip')}, ${deep ? 'r.context.ip' : "''"}) AS ipv,
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
