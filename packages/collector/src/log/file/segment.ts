import path from 'node:path';
import { LogCorruptError } from '../../errors.js';
import type { ConsumedRecord } from '../log.js';
import { ChunkReader } from './chunk-reader.js';
import { asError, isErrorCode, readFileIfExists, writeFully, type FileOps } from './file-ops.js';
import type { FileLogLogger } from './logger.js';
import { INDEX_ENTRY_BYTES, OffsetIndex, type IndexEntry } from './offset-index.js';
import {
  RECORD_HEADER_BYTES,
  RECORD_MAGIC,
  decodeRecord,
  frameBytes,
  headerOffset,
  isIntact,
} from './record-format.js';

/** Read size when scanning a segment at open or looking for intact records after damage. */
const SCAN_CHUNK_BYTES = 1 << 20;
/** Read size when skipping headers from an index entry to the wanted offset. */
const SEEK_CHUNK_BYTES = 64 << 10;
/** Most bytes a consumer read asks the disk for at once. */
const FETCH_CHUNK_BYTES = 1 << 20;

const SEGMENT_FILE = /^(\d{20})\.log$/;

/** `<base offset, 20 digits>.log`, as Kafka names segments, so names sort as offsets do. */
export function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.log`;
}

export function parseSegmentFileName(name: string): number | undefined {
  const match = SEGMENT_FILE.exec(name);
  if (!match?.[1]) return undefined;
  const offset = Number(match[1]);
  return Number.isSafeInteger(offset) ? offset : undefined;
}

interface ScanResult {
  /** Position after the last intact record. */
  readonly end: number;
  /** Offset after the last intact record. */
  readonly nextOffset: number;
  /** Position of the first record that is not intact, if the scan stopped before the end. */
  readonly damagedAt: number | undefined;
}

export interface ReadResult {
  readonly position: number;
  readonly offset: number;
  readonly bytes: number;
}

/**
 * One file of a partition: the records from `baseOffset` to `nextOffset - 1`, and its sparse
 * index. The last segment of a partition is the active one, written by the partition's
 * flusher; the others are sealed and only read, opened on first use.
 */
export class Segment {
  private fd: number | undefined;
  private indexFd: number | undefined;
  private index: OffsetIndex | undefined;
  /** Bytes of whole, acknowledged records; readers never look past it. -1 until opened. */
  size: number;
  /** Offset after the last record. */
  nextOffset: number;
  sealed: boolean;
  removed = false;

  private constructor(
    readonly dir: string,
    readonly baseOffset: number,
    size: number,
    nextOffset: number,
    sealed: boolean,
  ) {
    this.size = size;
    this.nextOffset = nextOffset;
    this.sealed = sealed;
  }

  get logPath(): string {
    return path.join(this.dir, segmentFileName(this.baseOffset));
  }

  get indexPath(): string {
    return path.join(this.dir, `${segmentFileName(this.baseOffset).slice(0, -4)}.index`);
  }

  /** The descriptor of an open segment (the active one always is). */
  get descriptor(): number {
    if (this.fd === undefined) throw new Error(`segment ${this.logPath} is not open`);
    return this.fd;
  }

  /** A new, empty active segment. Truncates a file left behind by a roll that failed. */
  static async create(ops: FileOps, dir: string, baseOffset: number): Promise<Segment> {
    const segment = new Segment(dir, baseOffset, 0, baseOffset, false);
    try {
      segment.fd = await ops.open(segment.logPath, 'w+');
      segment.indexFd = await ops.open(segment.indexPath, 'w+');
      segment.index = new OffsetIndex();
    } catch (error) {
      await segment.close(ops).catch(() => undefined);
      throw error;
    }
    return segment;
  }

  /** A sealed segment found on disk; opened when first read. */
  static sealedOnDisk(dir: string, baseOffset: number, nextOffset: number): Segment {
    return new Segment(dir, baseOffset, -1, nextOffset, true);
  }

  /**
   * Opens the last segment of a partition for appending, after checking the records a crash
   * could have left incomplete.
   *
   * After a clean shutdown the index is trusted and only the records after its last entry
   * are checked. After a crash (the lock file was left behind) the whole segment is checked,
   * since writes that were never fsynced can reach the disk in any order. A record that is
   * not intact is a torn write if no intact record follows it: it and everything after it
   * were never acknowledged, so the file is cut there. If an intact record follows, bytes
   * that were once acknowledged have changed: that is corruption and the log refuses to open.
   */
  static async recover(
    ops: FileOps,
    dir: string,
    baseOffset: number,
    clean: boolean,
    logger: FileLogLogger,
  ): Promise<Segment> {
    const segment = new Segment(dir, baseOffset, 0, baseOffset, false);
    try {
      segment.fd = await ops.open(segment.logPath, 'r+');
      const fileSize = (await ops.fstat(segment.fd)).size;
      const indexData = await readFileIfExists(ops, segment.indexPath);
      segment.indexFd = await ops.open(segment.indexPath, indexData ? 'r+' : 'w+');
      let index = clean && indexData ? OffsetIndex.decode(indexData, fileSize) : new OffsetIndex();
      let start: IndexEntry =
        index.length > 0 ? index.entry(index.length - 1) : { relativeOffset: 0, position: 0 };
      let scan = await scanRecords(ops, segment.fd, fileSize, baseOffset, index, start);
      if (scan.damagedAt === start.position && start.position > 0) {
        logger.warn(
          { file: segment.indexPath, position: start.position },
          'the log index points at no intact record; rebuilding it',
        );
        index = new OffsetIndex();
        start = { relativeOffset: 0, position: 0 };
        scan = await scanRecords(ops, segment.fd, fileSize, baseOffset, index, start);
      }
      if (scan.damagedAt !== undefined) {
        const intact = await findIntactRecordAfter(
          ops,
          segment.fd,
          fileSize,
          scan.damagedAt,
          scan.nextOffset,
        );
        if (intact !== undefined) {
          throw new LogCorruptError(
            `${segment.logPath}: the record at byte ${scan.damagedAt} (offset ${scan.nextOffset}) ` +
              `is damaged, but an intact record follows at byte ${intact}; ` +
              'acknowledged records cannot be trusted. Restore the file from a backup, or cut it ' +
              `at byte ${scan.damagedAt} to keep the records before it`,
          );
        }
        logger.warn(
          {
            file: segment.logPath,
            position: scan.damagedAt,
            droppedBytes: fileSize - scan.damagedAt,
            nextOffset: scan.nextOffset,
          },
          'cut off a torn write at the end of the log (records never acknowledged)',
        );
        await ops.ftruncate(segment.fd, scan.damagedAt);
        await ops.fsync(segment.fd);
      }
      segment.size = scan.end;
      segment.nextOffset = scan.nextOffset;
      segment.index = index;
      const indexFileEntries = indexData ? indexData.length / INDEX_ENTRY_BYTES : 0;
      if (index.persisted !== index.length || index.persisted !== indexFileEntries) {
        // Stale entries past a cut, or entries of a rebuilt index: make the file agree.
        await ops.ftruncate(segment.indexFd, index.persisted * INDEX_ENTRY_BYTES);
        await segment.persistIndex(ops, false);
      }
    } catch (error) {
      await segment.close(ops).catch(() => undefined);
      throw error;
    }
    return segment;
  }

  /** Opens a sealed segment found on disk for reading. */
  async open(ops: FileOps): Promise<void> {
    if (this.fd !== undefined) return;
    const fd = await ops.open(this.logPath, 'r');
    try {
      this.size = (await ops.fstat(fd)).size;
    } catch (error) {
      await ops.close(fd);
      throw error;
    }
    this.fd = fd;
  }

  /** Adds the records of a just-acknowledged write at `position` to the index. */
  indexWrite(buffer: Buffer, position: number, firstOffset: number): void {
    const index = this.index;
    if (!index) return;
    let at = 0;
    let relativeOffset = firstOffset - this.baseOffset;
    while (at < buffer.length) {
      index.offer(relativeOffset, position + at);
      at += buffer.readUInt32BE(at) + 4;
      relativeOffset++;
    }
  }

  /** Writes index entries not yet in the index file. */
  async persistIndex(ops: FileOps, sync: boolean): Promise<void> {
    const index = this.index;
    if (!index || this.indexFd === undefined) return;
    if (index.persisted < index.length) {
      const data = index.encode(index.persisted);
      await writeFully(ops, this.indexFd, [data], data.length, index.persisted * INDEX_ENTRY_BYTES);
      index.persisted = index.length;
    }
    if (sync) await ops.fsync(this.indexFd);
  }

  /** Makes the segment read-only. Its data and index must be durable already. */
  async seal(ops: FileOps): Promise<void> {
    this.sealed = true;
    const fd = this.indexFd;
    this.indexFd = undefined;
    if (fd !== undefined) await ops.close(fd);
  }

  /** Byte position of the record with `offset` (or of the end, for `nextOffset`). */
  async positionOf(
    ops: FileOps,
    offset: number,
    logger: FileLogLogger,
    rebuilt = false,
  ): Promise<number> {
    await this.open(ops);
    const index = await this.loadIndex(ops, logger);
    const entry = index.floor(offset - this.baseOffset);
    const reader = new ChunkReader(ops, this.descriptor, SEEK_CHUNK_BYTES);
    let position = entry.position;
    for (let current = this.baseOffset + entry.relativeOffset; current < offset; current++) {
      const head = await reader.bytes(position, RECORD_HEADER_BYTES, this.size);
      const size = head ? frameBytes(head, 0) : -1;
      if (!head || size < 0 || headerOffset(head, 0) !== current) {
        if (!rebuilt && entry.position > 0) {
          logger.warn(
            { file: this.indexPath, offset },
            'the log index does not match its segment; rebuilding it',
          );
          this.index = undefined;
          await this.rebuildIndex(ops);
          return this.positionOf(ops, offset, logger, true);
        }
        throw this.corrupt(position, `expected the header of offset ${current}`);
      }
      position += size;
    }
    return position;
  }

  /**
   * Reads records from `position` (where `offset` starts) into `out`, up to `endOffset`, the
   * end of the segment, `maxRecords` records in `out`, or `maxBytes` bytes in `out` (of which
   * `bytesBefore` were read from earlier segments; at least one record in all). Every record
   * is checked as it is read. `bytes` in the result counts `out` in all.
   */
  async read(
    ops: FileOps,
    partition: number,
    position: number,
    offset: number,
    endOffset: number,
    maxRecords: number,
    maxBytes: number,
    out: ConsumedRecord[],
    bytesBefore: number,
  ): Promise<ReadResult> {
    await this.open(ops);
    const limit = this.size;
    const reader = new ChunkReader(
      ops,
      this.descriptor,
      Math.min(FETCH_CHUNK_BYTES, Math.max(limit - position, RECORD_HEADER_BYTES)),
    );
    let bytes = bytesBefore;
    while (
      position < limit &&
      offset < endOffset &&
      out.length < maxRecords &&
      (bytes === 0 || bytes < maxBytes)
    ) {
      const head = await reader.bytes(position, 4, limit);
      const size = head ? frameBytes(head, 0) : -1;
      if (size < 0) throw this.corrupt(position, 'bad record length');
      if (bytes > 0 && bytes + size > maxBytes) break;
      const frame = await reader.bytes(position, size, limit);
      if (!frame) throw this.corrupt(position, 'record runs past the end of the segment');
      if (!isIntact(frame, 0, size)) throw this.corrupt(position, 'checksum mismatch');
      const record = decodeRecord(frame, 0, size);
      if (record.offset !== offset) {
        throw this.corrupt(position, `found offset ${record.offset} where ${offset} belongs`);
      }
      out.push({
        partition,
        offset,
        key: record.key,
        value: record.value,
        timestamp: record.timestamp,
      });
      position += size;
      bytes += size;
      offset++;
    }
    return { position, offset, bytes };
  }

  async close(ops: FileOps): Promise<void> {
    const { fd, indexFd } = this;
    this.fd = undefined;
    this.indexFd = undefined;
    let failure: unknown;
    for (const descriptor of [fd, indexFd]) {
      if (descriptor === undefined) continue;
      try {
        await ops.close(descriptor);
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw asError(failure);
  }

  /** Deletes the segment's files. The caller has already taken it out of the partition. */
  async remove(ops: FileOps): Promise<void> {
    this.removed = true;
    await this.close(ops);
    for (const file of [this.logPath, this.indexPath]) {
      try {
        await ops.unlink(file);
      } catch (error) {
        if (!isErrorCode(error, 'ENOENT')) throw error;
      }
    }
  }

  private async loadIndex(ops: FileOps, logger: FileLogLogger): Promise<OffsetIndex> {
    if (this.index) return this.index;
    const data = await readFileIfExists(ops, this.indexPath);
    if (data) {
      this.index = OffsetIndex.decode(data, this.size);
      return this.index;
    }
    logger.warn({ file: this.indexPath }, 'the log index is missing; rebuilding it');
    return this.rebuildIndex(ops);
  }

  /** Scans a sealed segment to rebuild its index; any damaged record is corruption here. */
  private async rebuildIndex(ops: FileOps): Promise<OffsetIndex> {
    const index = new OffsetIndex();
    const scan = await scanRecords(ops, this.descriptor, this.size, this.baseOffset, index, {
      relativeOffset: 0,
      position: 0,
    });
    if (scan.damagedAt !== undefined) throw this.corrupt(scan.damagedAt, 'damaged record');
    if (scan.nextOffset !== this.nextOffset) {
      throw this.corrupt(
        scan.end,
        `the segment ends at offset ${scan.nextOffset}, the next one starts at ${this.nextOffset}`,
      );
    }
    const data = index.encode(0);
    const fd = await ops.open(this.indexPath, 'w');
    try {
      await writeFully(ops, fd, [data], data.length, 0);
    } finally {
      await ops.close(fd);
    }
    index.persisted = index.length;
    this.index = index;
    return index;
  }

  private corrupt(position: number, what: string): LogCorruptError {
    return new LogCorruptError(`${this.logPath}: ${what} at byte ${position}`);
  }
}

/**
 * Checks records from `start` to the end of the file, adding index entries on the way, and
 * stops at the first one that is not intact or does not carry the next offset.
 */
async function scanRecords(
  ops: FileOps,
  fd: number,
  fileSize: number,
  baseOffset: number,
  index: OffsetIndex,
  start: IndexEntry,
): Promise<ScanResult> {
  const reader = new ChunkReader(ops, fd, SCAN_CHUNK_BYTES);
  let position = start.position;
  let offset = baseOffset + start.relativeOffset;
  while (position < fileSize) {
    const head = await reader.bytes(position, 4, fileSize);
    const size = head ? frameBytes(head, 0) : -1;
    const frame = size < 0 ? undefined : await reader.bytes(position, size, fileSize);
    if (!frame || !isIntact(frame, 0, size) || headerOffset(frame, 0) !== offset) {
      return { end: position, nextOffset: offset, damagedAt: position };
    }
    index.offer(offset - baseOffset, position);
    position += size;
    offset++;
  }
  return { end: position, nextOffset: offset, damagedAt: undefined };
}

/**
 * Looks for an intact record anywhere after a damaged one at `damagedAt`, whose offset comes
 * after `expectedOffset` (the damaged record's) by no more than the bytes left could hold.
 * Only a whole record with a matching checksum counts, so bytes of a torn write do not.
 */
async function findIntactRecordAfter(
  ops: FileOps,
  fd: number,
  fileSize: number,
  damagedAt: number,
  expectedOffset: number,
): Promise<number | undefined> {
  const maxOffset = expectedOffset + Math.floor((fileSize - damagedAt) / RECORD_HEADER_BYTES);
  const scanner = new ChunkReader(ops, fd, SCAN_CHUNK_BYTES);
  const checker = new ChunkReader(ops, fd, SEEK_CHUNK_BYTES);
  let from = damagedAt + 1;
  while (from + RECORD_HEADER_BYTES <= fileSize) {
    const window = Math.min(SCAN_CHUNK_BYTES, fileSize - from);
    const chunk = await scanner.bytes(from, window, fileSize);
    if (!chunk) break;
    const last = window - RECORD_HEADER_BYTES;
    for (let i = 0; i <= last; i++) {
      if (chunk[i + 8] !== RECORD_MAGIC) continue;
      const offset = headerOffset(chunk, i);
      if (offset <= expectedOffset || offset > maxOffset) continue;
      const size = frameBytes(chunk, i);
      if (size < 0 || from + i + size > fileSize) continue;
      const frame = await checker.bytes(from + i, size, fileSize);
      if (frame && isIntact(frame, 0, size)) return from + i;
    }
    from += last + 1;
  }
  return undefined;
}
