import * as crypto from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { parsePointer } from './pointer.js';

/**
 * The column digest of an event (PROTOCOL.md §13.2): SHA-256 over an injective encoding of the
 * typed clear columns a store derives from the record and that no erasure, pseudonymisation,
 * enrichment, restriction or correction ever changes, and of the commitment of every personal
 * field. The leaf (merkle.ts) binds it, so a verifier checks a stored row's typed columns with
 * one hash of the columns themselves instead of a parse of the record, and a proof or bundle
 * verifier recomputes it from the record alone.
 *
 * Encoding, in the order of COLUMN_FIELDS:
 *
 * ```
 * "vigil.columns.v2" 0x00
 * per text field:      0x00 | u32be(len) UTF-8 value          ('' when the member is absent)
 *                      0x01                                    (the field is personal)
 * seq:                 u64be(seq)
 * ip:                  0x00 | u32be(0)                          (absent)
 *                      0x00 | u32be(16) | 16 bytes of the IPv6 address (IPv4 mapped, zone left out)
 *                      0x01                                    (personal)
 * personal:            u32be(n) | n × (u32be(len) path | u32be(len) commitment)
 * ```
 *
 * A personal field's value is not in the digest (an erasure removes it, a pseudonymisation
 * replaces it); its commitment, which neither changes, is.
 */

export const COLUMNS_DOMAIN = 'vigil.columns.v2';

/** How a digest field is read from the record. */
export type ColumnKind = 'text' | 'seq' | 'ip';

/**
 * The fields of the digest, in order: the store's column, the record member it comes from (a
 * JSON pointer), and its kind. A field with a pointer that `personal` may list is encoded as
 * personal (0x01) when it does.
 */
export const COLUMN_FIELDS: readonly (readonly [
  column: string,
  pointer: string,
  kind: ColumnKind,
])[] = [
  ['id', '/id', 'text'],
  ['time', '/time', 'text'],
  ['stream', '/stream', 'text'],
  ['seq', '/seq', 'seq'],
  ['prev', '/prev', 'text'],
  ['action', '/action', 'text'],
  ['category', '/category', 'text'],
  ['outcome', '/outcome', 'text'],
  ['actor_type', '/actor/type', 'text'],
  ['actor_id', '/actor/id', 'text'],
  ['actor_name', '/actor/name', 'text'],
  ['actor_email', '/actor/email', 'text'],
  ['target_type', '/target/type', 'text'],
  ['target_id', '/target/id', 'text'],
  ['target_name', '/target/name', 'text'],
  ['access_change', '/access/change', 'text'],
  ['subject_type', '/access/subject/type', 'text'],
  ['subject_id', '/access/subject/id', 'text'],
  ['access_role', '/access/role', 'text'],
  ['access_permission', '/access/permission', 'text'],
  ['resource_type', '/access/resource/type', 'text'],
  ['resource_id', '/access/resource/id', 'text'],
  ['granted_by_id', '/access/grantedBy/id', 'text'],
  ['ip', '/context/ip', 'ip'],
  ['user_agent', '/context/userAgent', 'text'],
  ['request_id', '/context/requestId', 'text'],
  ['session_id', '/context/sessionId', 'text'],
  ['corrects_id', '/corrects/event', 'text'],
];

const HEAD = Buffer.from(`${COLUMNS_DOMAIN}\u0000`, 'ascii');

type Obj = Record<string, unknown>;

function at(record: unknown, tokens: readonly string[]): unknown {
  let node = record;
  for (const t of tokens) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
    node = (node as Obj)[t];
  }
  return node;
}

/**
 * The 16 bytes of an address as the store's IPv6 column holds it: an IPv4 address mapped into
 * IPv6 (RFC 4291 §2.5.5.2), an IPv6 zone index (RFC 4007 §11) left out. Written here because
 * Node has no address-to-bytes function; `isIP` has validated the text before it is parsed.
 */
export function ipv6Bytes(text: string): Buffer {
  const zone = text.indexOf('%');
  const address = zone < 0 ? text : text.slice(0, zone);
  const out = Buffer.alloc(16);
  if (isIPv4(address)) {
    out[10] = 0xff;
    out[11] = 0xff;
    address.split('.').forEach((o, i) => (out[12 + i] = Number(o)));
    return out;
  }
  if (!isIPv6(address)) throw new TypeError(`not an IP address: "${text}"`);
  let groups: number[];
  const toGroups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const o = g.split('.').map(Number) as [number, number, number, number];
        out.push(o[0] * 256 + o[1], o[2] * 256 + o[3]);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const gap = address.indexOf('::');
  if (gap < 0) groups = toGroups(address);
  else {
    const left = toGroups(address.slice(0, gap));
    const right = toGroups(address.slice(gap + 2));
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  groups.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

/** Appends encoded parts; sized once at the end. */
class Encoder {
  readonly parts: Buffer[] = [HEAD];
  str(text: string): void {
    const bytes = Buffer.from(text, 'utf8');
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(bytes.length);
    this.parts.push(len, bytes);
  }
  byte(b: number): void {
    this.parts.push(Buffer.from([b]));
  }
  u32(n: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n);
    this.parts.push(b);
  }
  u64(n: number): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(n));
    this.parts.push(b);
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A member's text as the store's column holds it: the string, or '' when absent. */
function textOf(value: unknown, column: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string')
    throw new TypeError(`${column}: the record's value is not a string`);
  return value;
}

/**
 * The bytes the column digest hashes, from a parsed record (a valid record, PROTOCOL.md §3:
 * every field of COLUMN_FIELDS is a string where present, `seq` an integer, every personal
 * path a commitment string). Throws on a record that is not.
 */
export function columnDigestInput(record: unknown): Buffer {
  const r = record as Obj;
  const personal = Array.isArray(r['personal']) ? (r['personal'] as unknown[]) : [];
  const listed = new Set(personal);
  const e = new Encoder();
  for (const [column, pointer, kind] of COLUMN_FIELDS) {
    const tokens = parsePointer(pointer) as readonly string[];
    const value = at(r, tokens);
    if (kind === 'seq') {
      if (!Number.isSafeInteger(value) || (value as number) < 0)
        throw new TypeError('seq: not an integer from 0 to 2^53-1');
      e.u64(value as number);
      continue;
    }
    if (listed.has(pointer)) {
      e.byte(0x01);
      continue;
    }
    e.byte(0x00);
    const text = textOf(value, column);
    if (kind === 'ip') {
      if (text === '') e.u32(0);
      else {
        e.u32(16);
        e.parts.push(ipv6Bytes(text));
      }
    } else e.str(text);
  }
  e.u32(personal.length);
  for (const path of personal) {
    if (typeof path !== 'string') throw new TypeError('personal: a path is not a string');
    const tokens = parsePointer(path);
    const commitment = tokens ? at(r, tokens) : undefined;
    if (typeof commitment !== 'string')
      throw new TypeError(`personal: ${path} does not hold a commitment`);
    e.str(path);
    e.str(commitment);
  }
  return e.bytes();
}

/** The column digest of a parsed record: SHA-256 of columnDigestInput, 32 bytes. */
export function columnDigest(record: unknown): Buffer {
  return crypto.createHash('sha256').update(columnDigestInput(record)).digest();
}

/** The column digest as 64 lower-case hex digits. */
export function columnDigestHex(record: unknown): string {
  return columnDigest(record).toString('hex');
}
