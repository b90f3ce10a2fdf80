/**
 * On-disk framing of one record in a segment file (`<base offset>.log`). Segments are a plain
 * concatenation of records; nothing else is in the file. Integers are big-endian.
 *
 *     position  size  field
 *     0         4     length      u32: bytes after this field (26 + key length + value length)
 *     4         4     crc         u32: CRC-32 (ISO-HDLC, as zlib.crc32) of bytes 8 .. 4 + length
 *     8         1     magic       u8: format version, 1
 *     9         1     attributes  u8: 0, reserved (compression, control records)
 *     10        8     offset      u64: the record's offset in its partition
 *     18        8     timestamp   u64: epoch milliseconds
 *     26        4     key length  u32
 *     30        k     key         UTF-8
 *     30 + k    v     value       the rest of the record: v = length - 26 - k
 *
 * Every record carries its own length and checksum, so a reader never depends on what came
 * before it to tell whether it is whole: a write torn by a crash shows up as a record whose
 * header or payload is short, or whose checksum does not match. The offset is inside the
 * checksum, so a record copied to the wrong place is caught too. Like Kafka's record batch v2
 * (KIP-98), the checksum starts after the length and covers every other field.
 */
import zlib from 'node:zlib';

export const RECORD_MAGIC = 1;
/** Bytes before the key. */
export const RECORD_HEADER_BYTES = 30;
/** Bytes covered by `length` in a record with an empty key and value. */
const MIN_LENGTH = RECORD_HEADER_BYTES - 4;
/** Upper bound on one record, so a corrupt length is seen as such before anything is read. */
export const MAX_RECORD_BYTES = 1 << 30;

const TWO_32 = 2 ** 32;
/** Largest high word of a u64 that stays within Number.MAX_SAFE_INTEGER. */
const MAX_SAFE_HIGH = 0x1fffff;

/** Bytes a record with these key and value lengths takes on disk. */
export function recordBytes(keyBytes: number, valueBytes: number): number {
  return RECORD_HEADER_BYTES + keyBytes + valueBytes;
}

/**
 * Encodes one record at `at` in `target` (which must have room: see `recordBytes`) and
 * returns the position after it. The key comes as its UTF-8 bytes, which the caller already
 * needed to pick the partition.
 */
export function encodeRecord(
  target: Buffer,
  at: number,
  offset: number,
  timestamp: number,
  key: Uint8Array,
  value: Uint8Array,
): number {
  const valueAt = at + RECORD_HEADER_BYTES + key.length;
  const end = valueAt + value.length;
  target.writeUInt32BE(end - at - 4, at);
  target[at + 8] = RECORD_MAGIC;
  target[at + 9] = 0;
  writeU64(target, offset, at + 10);
  writeU64(target, timestamp, at + 18);
  target.writeUInt32BE(key.length, at + 26);
  target.set(key, at + RECORD_HEADER_BYTES);
  target.set(value, valueAt);
  target.writeUInt32BE(zlib.crc32(target.subarray(at + 8, end)), at + 4);
  return end;
}

function writeU64(target: Buffer, value: number, at: number): void {
  target.writeUInt32BE(Math.floor(value / TWO_32), at);
  target.writeUInt32BE(value >>> 0, at + 4);
}

function readU64(source: Buffer, at: number): number {
  const high = source.readUInt32BE(at);
  if (high > MAX_SAFE_HIGH) return -1;
  return high * TWO_32 + source.readUInt32BE(at + 4);
}

/**
 * Total size of the record whose first bytes are at `at` (at least 4 must be there), or -1
 * when its length field cannot be right.
 */
export function frameBytes(source: Buffer, at: number): number {
  const length = source.readUInt32BE(at);
  if (length < MIN_LENGTH || length > MAX_RECORD_BYTES) return -1;
  return length + 4;
}

/**
 * The offset in a record header (at least `RECORD_HEADER_BYTES` at `at`), or -1 when the
 * header cannot belong to a record of this format.
 */
export function headerOffset(source: Buffer, at: number): number {
  if (source[at + 8] !== RECORD_MAGIC) return -1;
  return readU64(source, at + 10);
}

/**
 * Whether the whole record at `at` (`size` bytes, from `frameBytes`) is intact: checksum,
 * magic, and a key that fits inside it.
 */
export function isIntact(source: Buffer, at: number, size: number): boolean {
  if (source[at + 8] !== RECORD_MAGIC) return false;
  if (zlib.crc32(source.subarray(at + 8, at + size)) !== source.readUInt32BE(at + 4)) return false;
  if (readU64(source, at + 10) < 0 || readU64(source, at + 18) < 0) return false;
  return source.readUInt32BE(at + 26) <= size - RECORD_HEADER_BYTES;
}

export interface DecodedRecord {
  readonly offset: number;
  readonly timestamp: number;
  readonly key: string;
  /** A copy: the source buffer is reused by readers. */
  readonly value: Buffer;
}

/** Decodes a record already checked with `isIntact`. */
export function decodeRecord(source: Buffer, at: number, size: number): DecodedRecord {
  const keyBytes = source.readUInt32BE(at + 26);
  const keyStart = at + RECORD_HEADER_BYTES;
  return {
    offset: readU64(source, at + 10),
    timestamp: readU64(source, at + 18),
    key: source.toString('utf8', keyStart, keyStart + keyBytes),
    value: Buffer.from(source.subarray(keyStart + keyBytes, at + size)),
  };
}
