import { isUtf8 } from 'node:buffer';
import { stringPath } from './canonical.js';
import type { ErrorDetail } from './errors.js';
import type { SealedEvent } from './types.js';

/*
 * The sealed wire framing (PROTOCOL.md §9): one sealed event per line,
 *
 *   <record bytes> TAB <hash: 64 lower-case hex> TAB <disclosures: a JSON object, or nothing> LF
 *
 * The record bytes appear unescaped, exactly as hashed, so a reader hashes them where they lie
 * (a slice of the body) and decodes them once, to parse them. RFC 8785 text never holds a raw
 * TAB, LF or CR (it escapes control characters), nor does JSON.stringify's output for the
 * disclosures: the first TAB ends the record and the second ends the hash.
 *
 * Written by hand rather than with a CSV/TSV library: those decode the body into strings and
 * unescape quotes, and the point of the framing is that the record bytes are neither decoded
 * nor copied before they are hashed.
 */

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;

/** One line of a framed body, as slices of the body (nothing decoded but the hash). */
export interface Frame {
  /** Zero-based position among the body's non-blank lines: the `index` of error details. */
  readonly index: number;
  /** The whole line without its LF (nor the CR before it): what a log keeps verbatim. */
  readonly line: Buffer;
  /** The record's bytes: what is hashed and stored. */
  readonly record: Buffer;
  /** The claimed SHA-256 of the record bytes, 64 lower-case hex digits (checked here). */
  readonly hash: string;
  /** The disclosures field: a JSON object's bytes, or empty when the record has no `personal`. */
  readonly disclosures: Buffer;
}

export interface FramedBody {
  /** The well-framed lines, in order; a line with a problem is left out. */
  readonly frames: Frame[];
  /** Framing problems, each with the index of its line. */
  readonly details: ErrorDetail[];
  /** Non-blank lines in the body (events claimed by the sender). */
  readonly lines: number;
}

function isLowerHex(bytes: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = bytes[i] as number;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * Splits a framed body into its lines and fields without decoding them (PROTOCOL.md §9). Lines
 * end with LF (the last one may lack it); the CR that ends a line (before its LF, or the last byte
 * of the body) is dropped and any other CR refused; empty lines are skipped. Checked here: three fields per line, the hash text, and that the record and
 * disclosures are UTF-8 (a bad byte is named by its field, down to the member when the field
 * still parses). What the fields say is the reader's to check (checkFramedEvent).
 */
export function parseFramedBody(body: Uint8Array): FramedBody {
  const bytes = asBuffer(body);
  const frames: Frame[] = [];
  const details: ErrorDetail[] = [];
  // isUtf8 over the whole body is simdutf in Node's core: the common, valid case costs one pass.
  const utf8 = isUtf8(bytes);
  let lines = 0;
  let start = 0;
  while (start < bytes.length) {
    let next = bytes.indexOf(LF, start);
    if (next < 0) next = bytes.length;
    let end = next;
    if (end > start && bytes[end - 1] === CR) end--;
    const lineStart = start;
    start = next + 1;
    if (end === lineStart) continue;
    const index = lines++;
    const line = bytes.subarray(lineStart, end);
    const t1 = line.indexOf(TAB);
    const t2 = t1 < 0 ? -1 : line.indexOf(TAB, t1 + 1);
    if (t2 < 0) {
      details.push({
        index,
        path: '',
        message: `has ${t1 < 0 ? 'one field' : 'two fields'}; a line is three fields separated by TAB: record, hash, disclosures (the last may be empty)`,
      });
      continue;
    }
    if (line.indexOf(TAB, t2 + 1) >= 0) {
      let fields = 3;
      for (let i = t2 + 1; i < line.length; i++) if (line[i] === TAB) fields++;
      details.push({
        index,
        path: '',
        message: `has ${fields} TAB-separated fields; a line is exactly three: record, hash, disclosures (a raw TAB inside a record or the disclosures is not allowed: RFC 8785 and JSON write it as \\t)`,
      });
      continue;
    }
    if (t2 - t1 - 1 !== 64 || !isLowerHex(line, t1 + 1, t2)) {
      details.push({ index, path: '/hash', message: 'must be 64 lower-case hex digits (SHA-256)' });
      continue;
    }
    const record = line.subarray(0, t1);
    const disclosures = line.subarray(t2 + 1);
    // Only the CR that ends the line was dropped; no field may hold another (§9): RFC 8785 text
    // never does, and in the disclosures it would be whitespace only some readers accept.
    const cr = line.indexOf(CR);
    if (cr >= 0) {
      details.push({
        index,
        path: cr < t1 ? '/record' : '/disclosures',
        message: `holds a raw CR (byte ${lineStart + cr} of the body); only the one that ends a line is dropped (PROTOCOL.md §9)`,
      });
      continue;
    }
    if (!utf8) {
      const bad =
        badUtf8Detail(record, '/record', index, lineStart) ??
        badUtf8Detail(disclosures, '/disclosures', index, lineStart + t2 + 1);
      if (bad !== undefined) {
        details.push(bad);
        continue;
      }
    }
    frames.push({
      index,
      line,
      record,
      hash: line.toString('latin1', t1 + 1, t2),
      disclosures,
    });
  }
  return { frames, details, lines };
}

/**
 * Marks where a field's first invalid UTF-8 lies, to name the member it is in. It holds
 * noncharacters (U+FDD0, U+FDD1) and no JSON syntax, so inside a string it parses as text.
 */
const BAD_UTF8_MARK = '\uFDD0vigil:bad-utf-8\uFDD1';

/**
 * The first byte of `bytes` that is not part of valid UTF-8 (only called when there is one).
 * Valid UTF-8 decodes and encodes back byte for byte, so the first byte where the lenient
 * decoding, encoded again, differs is at (or within the same bad sequence as) the first bad byte.
 */
export function firstBadUtf8(bytes: Buffer): number {
  const again = Buffer.from(bytes.toString('utf8'), 'utf8');
  let same = 0;
  let differs = Math.min(bytes.length, again.length);
  // Largest prefix length on which both agree (binary search; equality of prefixes is monotone).
  while (same < differs) {
    const mid = (same + differs + 1) >>> 1;
    if (bytes.subarray(0, mid).equals(again.subarray(0, mid))) same = mid;
    else differs = mid - 1;
  }
  return same;
}

/**
 * The member of a JSON text whose string holds the first bad UTF-8 byte, as a JSON pointer
 * below `prefix` (`prefix` itself when the text does not parse or the byte is outside strings).
 */
function badUtf8Path(field: Buffer, at: number, prefix: string): string {
  const text =
    field.subarray(0, at).toString('utf8') + BAD_UTF8_MARK + field.subarray(at).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return prefix;
  }
  const path = stringPath(parsed, (s) => s.includes(BAD_UTF8_MARK));
  // Below /disclosures, the first token is the disclosed field's pointer, escaped once more.
  return path === undefined ? prefix : prefix + path;
}

function badUtf8Detail(
  field: Buffer,
  prefix: string,
  index: number,
  fieldOffset: number,
): ErrorDetail | undefined {
  if (isUtf8(field)) return undefined;
  const at = firstBadUtf8(field);
  return {
    index,
    path: badUtf8Path(field, at, prefix),
    message: `is not valid UTF-8 (byte ${fieldOffset + at} of the body): send UTF-8 text`,
  };
}

/**
 * One sealed event as a line of the framing, LF included. Throws when the record holds a raw
 * TAB, LF or CR: such text is not RFC 8785 and could not be framed (sealEvent never writes it).
 */
export function frameSealedEvent(event: SealedEvent): string {
  const { record, hash, disclosures } = event;
  if (/[\t\n\r]/.test(record))
    throw new Error('a record with a raw TAB, LF or CR is not RFC 8785 text and cannot be framed');
  return `${record}\t${hash}\t${disclosures === undefined ? '' : JSON.stringify(disclosures)}\n`;
}

/** A whole framed body of sealed events (PROTOCOL.md §9). */
export function frameSealedEvents(events: readonly SealedEvent[]): string {
  let out = '';
  for (const e of events) out += frameSealedEvent(e);
  return out;
}
