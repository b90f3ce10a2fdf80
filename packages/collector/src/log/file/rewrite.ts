import path from 'node:path';
import zlib from 'node:zlib';
import { ChunkReader } from './chunk-reader.js';
import {
  isErrorCode,
  readFileIfExists,
  syncDirectory,
  writeFileDurably,
  writeFully,
  type FileOps,
} from './file-ops.js';
import type { FileLogLogger } from './logger.js';
import {
  RECORD_HEADER_BYTES,
  decodeRecord,
  encodeRecord,
  frameBytes,
  isIntact,
} from './record-format.js';

/**
 * Rewriting records of the embedded log in place, for erasure (GDPR Art. 17): a record keeps
 * its offset, key, timestamp, length and position; only its value (and so its checksum)
 * changes. Offsets, framing and the sparse index stay valid, readers need no new positions,
 * and the old bytes are overwritten where they were rather than left in freed blocks of a copy
 * (on file systems that write in place: ext4, XFS; a copy-on-write file system or an SSD's
 * flash translation layer may keep old blocks until reused, which is why the README recommends
 * disk encryption).
 *
 * Crash safety: the new bytes of every record of a partition are first written to a journal
 * (`rewrite.journal`, checksummed, fsynced), then written over the records and fsynced, then the
 * journal is deleted. A crash before the journal is complete leaves the segments untouched and
 * a journal whose checksum fails, which is discarded; a crash after leaves a journal that the
 * next open applies again (writing the same bytes twice is harmless) before the segments are
 * checked. So a record is always either wholly old or wholly new.
 *
 *     journal   := count:u32 patch* crc:u32        (crc: CRC-32 of everything before it)
 *     patch     := nameLength:u16 name position:u64 length:u32 bytes
 */

export const JOURNAL_FILE = 'rewrite.journal';

/** A record as a rewrite sees it. */
export interface RewriteRecord {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  readonly timestamp: number;
  readonly value: Buffer;
}

/**
 * Returns the record's new value, of exactly the same length, or undefined to leave it as it is.
 * Called only for records `prefilter` accepts (when given).
 */
export type RecordTransform = (record: RewriteRecord) => Buffer | undefined;

export interface RewriteOptions {
  /** A cheap test on the raw value, so most records are never decoded (a byte search). */
  readonly prefilter?: (value: Buffer) => boolean;
}

export interface SegmentExtent {
  /** Segment file name within the partition directory. */
  readonly name: string;
  readonly file: string;
  /** Bytes holding acknowledged records, or -1 for a sealed segment (its whole file). */
  readonly bytes: number;
}

interface Patch {
  readonly name: string;
  readonly position: number;
  readonly bytes: Buffer;
}

const SCAN_CHUNK_BYTES = 1 << 20;

/**
 * Scans the acknowledged records of segments, from `from` (bytes already scanned per file),
 * and collects the patches `transform` asks for. Returns the patches and the bytes scanned.
 */
export async function collectPatches(
  ops: FileOps,
  partition: number,
  extents: readonly SegmentExtent[],
  transform: RecordTransform,
  options: RewriteOptions,
  from: ReadonlyMap<string, number> = new Map(),
): Promise<{ patches: Patch[]; scanned: Map<string, number>; records: number }> {
  const patches: Patch[] = [];
  const scanned = new Map<string, number>();
  let records = 0;
  for (const extent of extents) {
    let fd: number;
    try {
      fd = await ops.open(extent.file, 'r');
    } catch (error) {
      if (isErrorCode(error, 'ENOENT')) continue; // deleted by retention meanwhile
      throw error;
    }
    try {
      const size = extent.bytes >= 0 ? extent.bytes : (await ops.fstat(fd)).size;
      const reader = new ChunkReader(ops, fd, SCAN_CHUNK_BYTES);
      let position = from.get(extent.name) ?? 0;
      while (position < size) {
        const head = await reader.bytes(position, 4, size);
        const frameSize = head ? frameBytes(head, 0) : -1;
        const frame = frameSize < 0 ? undefined : await reader.bytes(position, frameSize, size);
        // Only whole, intact records are rewritten; anything else is the log's own business.
        if (!frame || !isIntact(frame, 0, frameSize)) break;
        const record = decodeRecord(frame, 0, frameSize);
        records++;
        if (!options.prefilter || options.prefilter(record.value)) {
          const value = transform({ partition, ...record });
          if (value !== undefined && !value.equals(record.value)) {
            if (value.length !== record.value.length)
              throw new RangeError(
                `a rewritten record must keep its length (${record.value.length} bytes, not ${value.length})`,
              );
            const bytes = Buffer.allocUnsafe(frameSize);
            encodeRecord(
              bytes,
              0,
              record.offset,
              record.timestamp,
              Buffer.from(record.key, 'utf8'),
              value,
            );
            patches.push({ name: extent.name, position, bytes });
          }
        }
        position += frameSize;
      }
      scanned.set(extent.name, position);
    } finally {
      await ops.close(fd);
    }
  }
  return { patches, scanned, records };
}

function encodeJournal(patches: readonly Patch[]): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.allocUnsafe(4);
  count.writeUInt32BE(patches.length, 0);
  parts.push(count);
  for (const p of patches) {
    const name = Buffer.from(p.name, 'utf8');
    const head = Buffer.allocUnsafe(2 + name.length + 12);
    head.writeUInt16BE(name.length, 0);
    name.copy(head, 2);
    head.writeBigUInt64BE(BigInt(p.position), 2 + name.length);
    head.writeUInt32BE(p.bytes.length, 10 + name.length);
    parts.push(head, p.bytes);
  }
  const body = Buffer.concat(parts);
  const crc = Buffer.allocUnsafe(4);
  crc.writeUInt32BE(zlib.crc32(body), 0);
  return Buffer.concat([body, crc]);
}

/** The patches of a journal, or undefined when it is incomplete (a crash while writing it). */
function decodeJournal(data: Buffer): Patch[] | undefined {
  if (data.length < 8) return undefined;
  const body = data.subarray(0, data.length - 4);
  if (zlib.crc32(body) !== data.readUInt32BE(data.length - 4)) return undefined;
  const patches: Patch[] = [];
  const count = body.readUInt32BE(0);
  let at = 4;
  for (let i = 0; i < count; i++) {
    const nameLength = body.readUInt16BE(at);
    const name = body.toString('utf8', at + 2, at + 2 + nameLength);
    at += 2 + nameLength;
    const position = Number(body.readBigUInt64BE(at));
    const length = body.readUInt32BE(at + 8);
    at += 12;
    patches.push({ name, position, bytes: Buffer.from(body.subarray(at, at + length)) });
    at += length;
  }
  return patches;
}

/** Writes patches over their records and fsyncs each file, keeping its modification time. */
async function applyPatches(ops: FileOps, dir: string, patches: readonly Patch[]): Promise<void> {
  const byFile = new Map<string, Patch[]>();
  for (const p of patches) {
    const list = byFile.get(p.name) ?? [];
    list.push(p);
    byFile.set(p.name, list);
  }
  for (const [name, list] of byFile) {
    const file = path.join(dir, name);
    let fd: number;
    try {
      fd = await ops.open(file, 'r+');
    } catch (error) {
      if (isErrorCode(error, 'ENOENT')) continue; // removed by retention: nothing left to erase
      throw error;
    }
    try {
      // A segment's age is its modification time (log retention): a rewrite must not renew it.
      const before = await ops.fstat(fd);
      for (const p of list) await writeFully(ops, fd, [p.bytes], p.bytes.length, p.position);
      await ops.fsync(fd);
      await ops.futimes?.(fd, before.mtimeMs / 1000, before.mtimeMs / 1000);
    } finally {
      await ops.close(fd);
    }
  }
}

/** Applies patches crash-safely through the partition's journal (see above). */
export async function rewriteDurably(
  ops: FileOps,
  dir: string,
  patches: readonly Patch[],
): Promise<void> {
  if (patches.length === 0) return;
  const journal = path.join(dir, JOURNAL_FILE);
  await writeFileDurably(ops, journal, encodeJournal(patches));
  await applyPatches(ops, dir, patches);
  await ops.unlink(journal);
  await syncDirectory(ops, dir);
}

/**
 * At open, before the segments are checked: applies a complete journal a crash left behind, or
 * discards an incomplete one (its patches were never applied). Returns the patches applied.
 */
export async function replayJournal(
  ops: FileOps,
  dir: string,
  logger: FileLogLogger,
): Promise<number> {
  const journal = path.join(dir, JOURNAL_FILE);
  const data = await readFileIfExists(ops, journal);
  if (!data) return 0;
  const patches = decodeJournal(data);
  if (patches) {
    await applyPatches(ops, dir, patches);
    logger.warn(
      { dir, patches: patches.length },
      'completed a rewrite of log records that a crash interrupted',
    );
  } else {
    logger.warn({ dir }, 'discarded an incomplete rewrite journal (no record had been changed)');
  }
  await ops.unlink(journal);
  await syncDirectory(ops, dir);
  return patches?.length ?? 0;
}

/** The size of the smallest record, for callers that bound work by bytes. */
export const MIN_RECORD_BYTES = RECORD_HEADER_BYTES;
