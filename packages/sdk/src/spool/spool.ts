import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { open, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex, STREAM_CLOSED } from '@vigil/protocol';
import { HASH_HEX_LENGTH, TAB } from '../deliver/framing.js';
import { SdkError, SdkErrorCodes } from '../errors.js';
import type { ResolvedSpool } from '../options.js';
import { isProcessAlive } from '@vigil/protocol/process';
import { Entry } from '../queue/entry.js';

/*
 * The durable spool: an append-only log of sealed events in numbered segment files.
 *
 *   <dir>/lock                  pid of the process using the directory
 *   <dir>/seg-0000000001.log    {"vigilSpool":2,"stream":"…","firstSeq":N}\n  (header)
 *                               <seq>\t<wire line>                           (one line per event)
 *   <dir>/acked.json            {"streams":{"<stream>":<highest acknowledged seq>}}
 *
 * A wire line is the event's line of the sealed framing (PROTOCOL.md §9), `record TAB hash TAB
 * disclosures LF`, the very bytes queued and sent: the spool never re-encodes an event.
 * A segment holds events of one stream in seq order. Events are appended in groups; a group is
 * written with one write() and, per the fsync policy, one fdatasync(); `record()` resolves when
 * its group is done. Segments whose events are all acknowledged are deleted, except the newest,
 * which keeps the chain head (stream, seq, hash) for the next start. `acked.json` is written
 * lazily: if it is stale after a crash, some events are sent twice and the collector counts them
 * as duplicates.
 */

export interface SpoolHead {
  readonly stream: string;
  readonly seq: number;
  readonly hash: string;
  /** The last event is `stream.closed`: the next client starts a new stream. */
  readonly closed: boolean;
}

interface Segment {
  readonly num: number;
  readonly path: string;
  readonly stream: string;
  readonly firstSeq: number;
  /** firstSeq - 1 while empty. */
  lastSeq: number;
  /** Bytes written and complete. */
  size: number;
}

export interface SpoolHooks {
  /** Some events became durable (or failed to and stay in memory): time to send. */
  onDurable(): void;
  onError(error: SdkError): void;
}

export interface SpoolReadResult {
  readonly entries: Entry[];
  /** Every event on disk has been read and no write is pending: memory can take over again. */
  readonly caughtUp: boolean;
}

export interface DroppedRange {
  readonly stream: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

const SEGMENT = /^seg-(\d{10})\.log$/;
/** Format of the segment files (header `vigilSpool`); 1 held JSON events of protocol v1. */
const SPOOL_FORMAT = 2;
/**
 * The spool holds whole events, personal values and salts included, in plain text: owner-only
 * directory and files whatever the umask (a umask only removes bits). A directory that exists
 * already keeps its mode.
 */
const PRIVATE_DIR_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;
const TAIL_BYTES = 256 * 1024;
const READ_CHUNK = 1024 * 1024;
const ACKED_WRITE_DELAY_MS = 1000;

/** Directories held by this process, so two clients in one process cannot share one either. */
const heldDirs = new Set<string>();

function segmentName(num: number): string {
  return `seg-${String(num).padStart(10, '0')}.log`;
}

function ioError(message: string, cause: unknown): SdkError {
  return new SdkError(SdkErrorCodes.SPOOL_IO, `${message}: ${(cause as Error).message}`, {
    cause,
    retriable: true,
  });
}

interface SpoolLine {
  readonly seq: number;
  /** Where the wire line starts (after `<seq>\t`) and where its record ends (the first TAB). */
  readonly lineStart: number;
  readonly recordEnd: number;
}

/**
 * A spool line `<seq>\t<record>\t<hash>\t<disclosures>` in buf[start, end) (LF excluded) if
 * it is whole and its record's hash checks, for the tail scan.
 */
function parseLine(buf: Buffer, start: number, end: number): SpoolLine | undefined {
  const tab = buf.indexOf(TAB, start);
  if (tab <= start || tab >= end || tab - start > 16) return undefined;
  const seq = Number(buf.toString('latin1', start, tab));
  if (!Number.isSafeInteger(seq) || seq < 0) return undefined;
  const recordEnd = buf.indexOf(TAB, tab + 1);
  const hashEnd = recordEnd + 1 + HASH_HEX_LENGTH;
  if (recordEnd < 0 || hashEnd >= end || buf[hashEnd] !== TAB) return undefined;
  if (
    sha256Hex(buf.subarray(tab + 1, recordEnd)) !== buf.toString('latin1', recordEnd + 1, hashEnd)
  )
    return undefined;
  return { seq, lineStart: tab + 1, recordEnd };
}

export class Spool {
  readonly head: SpoolHead | undefined;
  /** Problems found while opening (torn tails cut off); reported once the client can emit. */
  readonly openWarnings: SdkError[] = [];

  private readonly segments: Segment[] = [];
  private readonly acked = new Map<string, number>();
  private nextNum = 1;
  private current: { segment: Segment; handle: FileHandle } | undefined;
  private committedBytes = 0;
  private pending: Entry[] = [];
  private pendingBytes = 0;
  private groupDone: Promise<void> | undefined;
  private resolveGroup: (() => void) | undefined;
  private writing = false;
  private commitTimer: NodeJS.Timeout | undefined;
  private commitScheduled = false;
  private ackedTimer: NodeJS.Timeout | undefined;
  private readHint: { num: number; offset: number } | undefined;
  private closed = false;

  private constructor(
    private readonly options: ResolvedSpool,
    private readonly hooks: SpoolHooks,
  ) {
    this.head = this.load();
  }

  /**
   * Opens (creating if needed) and locks the directory, cuts torn tails, and finds the chain
   * head. Synchronous so that `createAuditClient` can seal the first event at once; it reads
   * only segment headers and tails, never whole segments.
   */
  static open(options: ResolvedSpool, hooks: SpoolHooks): Spool {
    try {
      mkdirSync(options.dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    } catch (error) {
      throw ioError(`cannot create spool directory ${options.dir}`, error);
    }
    lock(options.dir);
    try {
      return new Spool(options, hooks);
    } catch (error) {
      unlock(options.dir);
      throw error instanceof SdkError ? error : ioError(`cannot open spool ${options.dir}`, error);
    }
  }

  /** Bytes on disk plus bytes waiting to be written. */
  get bytes(): number {
    return this.committedBytes + this.pendingBytes;
  }

  /** Whether appending `bytes` more would pass `maxBytes`. */
  wouldOverflow(bytes: number): boolean {
    return this.committedBytes + this.pendingBytes + bytes > this.options.maxBytes;
  }

  /** Whether events on disk have not been acknowledged (after a restart, or while catching up). */
  hasBacklog(loaded: ReadonlyMap<string, number>): boolean {
    return this.segments.some((s) => s.lastSeq > (loaded.get(s.stream) ?? -1));
  }

  /** Highest acknowledged seq per stream, as known at open. */
  ackedPositions(): Map<string, number> {
    return new Map(this.acked);
  }

  private load(): SpoolHead | undefined {
    const dir = this.options.dir;
    const names = readdirSync(dir)
      .filter((n) => SEGMENT.test(n))
      .sort();
    for (const name of names) {
      const num = Number((SEGMENT.exec(name) as RegExpExecArray)[1]);
      this.nextNum = Math.max(this.nextNum, num + 1);
      const segment = this.scan(join(dir, name), num);
      if (segment === undefined) continue;
      this.segments.push(segment);
      this.committedBytes += segment.size;
    }
    try {
      const state = JSON.parse(readFileSync(join(dir, 'acked.json'), 'utf8')) as {
        streams?: Record<string, number>;
      };
      for (const [stream, seq] of Object.entries(state.streams ?? {})) {
        if (Number.isSafeInteger(seq) && this.segments.some((s) => s.stream === stream)) {
          this.acked.set(stream, seq);
        }
      }
    } catch {
      // No acknowledgement recorded (new spool, or lost in a crash): everything on disk is resent.
    }
    return this.findHead();
  }

  /** The last whole event of the newest segment that has one. */
  private findHead(): SpoolHead | undefined {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const segment = this.segments[i] as Segment;
      if (segment.lastSeq < segment.firstSeq) continue;
      const last = this.lastLine(segment);
      if (last === undefined) continue;
      return { stream: segment.stream, ...last };
    }
    return undefined;
  }

  private lastLine(segment: Segment): Omit<SpoolHead, 'stream'> | undefined {
    const fd = openSync(segment.path, 'r');
    try {
      const from = Math.max(0, segment.size - TAIL_BYTES);
      const buf = Buffer.allocUnsafe(segment.size - from);
      readSync(fd, buf, 0, buf.length, from);
      let nlAt = buf.lastIndexOf(10);
      while (nlAt >= 0) {
        const start = nlAt === 0 ? 0 : buf.lastIndexOf(10, nlAt - 1) + 1;
        const parsed = parseLine(buf, start, nlAt);
        if (parsed !== undefined) {
          const { lineStart, recordEnd } = parsed;
          const record = JSON.parse(buf.toString('utf8', lineStart, recordEnd)) as {
            action?: unknown;
          };
          return {
            seq: parsed.seq,
            hash: buf.toString('latin1', recordEnd + 1, recordEnd + 1 + HASH_HEX_LENGTH),
            closed: record.action === STREAM_CLOSED,
          };
        }
        nlAt = start - 1;
      }
      return undefined;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Reads a segment's header and checks its tail. A write torn by a machine crash leaves a
   * partial or garbled last line (or zeros); the file is cut after the last whole line with a
   * valid hash, so appends continue on a clean line boundary.
   */
  private scan(path: string, num: number): Segment | undefined {
    const fd = openSync(path, 'r+');
    try {
      const size = fstatSync(fd).size;
      const headBuf = Buffer.allocUnsafe(Math.min(size, 4096));
      readSync(fd, headBuf, 0, headBuf.length, 0);
      const headText = headBuf.toString('utf8');
      const nl = headText.indexOf('\n');
      let header: { vigilSpool?: unknown; stream?: unknown; firstSeq?: unknown } | undefined;
      try {
        header = nl > 0 ? (JSON.parse(headText.slice(0, nl)) as typeof header) : undefined;
      } catch {
        header = undefined;
      }
      if (
        header?.vigilSpool !== SPOOL_FORMAT ||
        typeof header.stream !== 'string' ||
        !Number.isSafeInteger(header.firstSeq)
      ) {
        // A segment whose creation was torn holds no event that was ever reported durable.
        closeSync(fd);
        unlinkSync(path);
        if (size > 0) {
          this.openWarnings.push(
            new SdkError(
              SdkErrorCodes.SPOOL_CORRUPT,
              header?.vigilSpool === 1
                ? `spool file ${path} holds protocol v1 events, which collectors no longer accept; removed`
                : `spool file ${path} had no valid header; removed`,
            ),
          );
        }
        return undefined;
      }
      const headerBytes = Buffer.byteLength(headText.slice(0, nl + 1));
      const firstSeq = header.firstSeq as number;
      // Walk back from the end, a window at a time, to the last whole line with a valid hash.
      let end = headerBytes;
      let lastSeq = firstSeq - 1;
      let pos = size;
      search: while (pos > headerBytes) {
        const from = Math.max(headerBytes, pos - TAIL_BYTES);
        const buf = Buffer.allocUnsafe(pos - from);
        readSync(fd, buf, 0, buf.length, from);
        let nlAt = buf.lastIndexOf(10);
        while (nlAt >= 0) {
          const start = nlAt === 0 ? 0 : buf.lastIndexOf(10, nlAt - 1) + 1;
          // A line that may begin before this window is judged with the next, earlier window.
          if (start === 0 && from > headerBytes) break;
          const parsed = parseLine(buf, start, nlAt);
          if (parsed !== undefined) {
            lastSeq = parsed.seq;
            end = from + nlAt + 1;
            break search;
          }
          nlAt = start - 1;
        }
        const firstNl = buf.indexOf(10);
        pos =
          from > headerBytes && firstNl >= 0 && from + firstNl + 1 < pos
            ? from + firstNl + 1
            : from;
      }
      const cut = end !== size;
      if (cut) {
        ftruncateSync(fd, end);
        this.openWarnings.push(
          new SdkError(
            SdkErrorCodes.SPOOL_CORRUPT,
            `spool file ${path} ended with ${size - end} bytes of a torn write; cut after seq ${lastSeq}`,
          ),
        );
      }
      return { num, path, stream: header.stream, firstSeq, lastSeq, size: end };
    } finally {
      try {
        closeSync(fd);
      } catch {
        // Already closed after removing a headerless segment.
      }
    }
  }

  /**
   * Adds an entry to the next group write. Returns the promise of that group (shared by every
   * entry of the group, so recording costs no promise per event).
   */
  append(entry: Entry): Promise<void> {
    this.pending.push(entry);
    this.pendingBytes += entry.bytes + 22;
    if (this.groupDone === undefined) {
      this.groupDone = new Promise<void>((resolve) => {
        this.resolveGroup = resolve;
      });
    }
    this.schedule();
    return this.groupDone;
  }

  private schedule(): void {
    if (this.writing || this.commitScheduled || this.closed) return;
    this.commitScheduled = true;
    const fsync = this.options.fsync;
    if (typeof fsync === 'object') {
      this.commitTimer = setTimeout(() => this.startCommit(), fsync.groupCommitMs);
      this.commitTimer.unref();
    } else {
      // Everything recorded in this tick shares one write (and one sync).
      setImmediate(() => this.startCommit());
    }
  }

  private startCommit(): void {
    this.commitScheduled = false;
    this.commitTimer = undefined;
    if (this.writing || this.pending.length === 0) return;
    void this.commit(this.options.fsync !== 'none');
  }

  /** Writes the pending group; never rejects (problems are reported through hooks.onError). */
  private async commit(sync: boolean): Promise<void> {
    this.writing = true;
    const group = this.pending;
    const resolve = this.resolveGroup;
    this.pending = [];
    this.pendingBytes = 0;
    this.groupDone = undefined;
    this.resolveGroup = undefined;
    try {
      let chunk: Entry[] = [];
      let chunkBytes = 0;
      let target = this.current;
      for (const entry of group) {
        const lineBytes = entry.bytes + String(entry.seq).length + 1;
        if (
          target === undefined ||
          target.segment.stream !== entry.stream ||
          (target.segment.size + chunkBytes + lineBytes > this.options.segmentBytes &&
            (chunkBytes > 0 || target.segment.lastSeq >= target.segment.firstSeq))
        ) {
          if (target !== undefined && chunkBytes > 0)
            await this.write(target, chunk, chunkBytes, sync);
          target = await this.roll(entry, sync);
          chunk = [];
          chunkBytes = 0;
        }
        chunk.push(entry);
        chunkBytes += lineBytes;
        target.segment.lastSeq = entry.seq;
      }
      if (target !== undefined && chunkBytes > 0) await this.write(target, chunk, chunkBytes, sync);
    } catch (error) {
      // The events stay in memory and are still sent; only their survival of a crash is lost.
      this.hooks.onError(ioError(`spool write failed in ${this.options.dir}`, error));
    }
    for (const entry of group) entry.durable = true;
    this.writing = false;
    resolve?.();
    this.hooks.onDurable();
    if (this.pending.length > 0) this.schedule();
  }

  /** Appends `<seq>\t<wire line>` for each entry, in one write. */
  private async write(
    target: { segment: Segment; handle: FileHandle },
    entries: readonly Entry[],
    bytes: number,
    sync: boolean,
  ): Promise<void> {
    const chunk = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (const entry of entries) {
      at += chunk.write(String(entry.seq), at, 'latin1');
      chunk[at++] = TAB;
      at += entry.copyTo(chunk, at);
    }
    await target.handle.write(chunk);
    if (sync) await target.handle.datasync();
    target.segment.size += bytes;
    this.committedBytes += bytes;
  }

  /** Starts a new segment for `first`, syncing and closing the previous one. */
  private async roll(
    first: Entry,
    sync: boolean,
  ): Promise<{ segment: Segment; handle: FileHandle }> {
    const previous = this.current;
    this.current = undefined;
    if (previous !== undefined) {
      if (sync) await previous.handle.datasync();
      await previous.handle.close();
    }
    const num = this.nextNum++;
    const path = join(this.options.dir, segmentName(num));
    const handle = await open(path, 'a', PRIVATE_FILE_MODE);
    const header = `${JSON.stringify({ vigilSpool: SPOOL_FORMAT, stream: first.stream, firstSeq: first.seq })}\n`;
    const headerBytes = Buffer.byteLength(header);
    await handle.write(header);
    if (sync) {
      // The new file's directory entry must survive a crash too (fsync(2): syncing a file does
      // not sync the directory that names it).
      const dir = await open(this.options.dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    }
    const segment: Segment = {
      num,
      path,
      stream: first.stream,
      firstSeq: first.seq,
      lastSeq: first.seq - 1,
      size: headerBytes,
    };
    this.committedBytes += headerBytes;
    this.segments.push(segment);
    this.current = { segment, handle };
    return this.current;
  }

  /** Everything up to `seq` of `stream` is acknowledged (delivered, dead-lettered or dropped). */
  ack(stream: string, seq: number): void {
    if ((this.acked.get(stream) ?? -1) >= seq) return;
    this.acked.set(stream, seq);
    this.trim();
    if (this.ackedTimer === undefined && !this.closed) {
      this.ackedTimer = setTimeout(() => {
        this.ackedTimer = undefined;
        void this.writeAcked();
      }, ACKED_WRITE_DELAY_MS);
      this.ackedTimer.unref();
    }
  }

  /** Deletes fully acknowledged segments, keeping the newest (it holds the chain head). */
  private trim(): void {
    for (let i = 0; i < this.segments.length - 1;) {
      const segment = this.segments[i] as Segment;
      if (
        segment !== this.current?.segment &&
        segment.lastSeq <= (this.acked.get(segment.stream) ?? -1)
      ) {
        this.remove(i);
      } else {
        i++;
      }
    }
  }

  private remove(index: number): Segment {
    const [segment] = this.segments.splice(index, 1) as [Segment];
    this.committedBytes -= segment.size;
    unlink(segment.path).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.hooks.onError(ioError(`cannot delete spool file ${segment.path}`, error));
      }
    });
    if (!this.segments.some((s) => s.stream === segment.stream)) this.acked.delete(segment.stream);
    return segment;
  }

  /** Drops the oldest segment not being written, for the drop-oldest policy; undefined if none. */
  dropOldest(): DroppedRange | undefined {
    const index = this.segments.findIndex((s) => s !== this.current?.segment);
    if (index < 0 || index === this.segments.length - 1) return undefined;
    const segment = this.remove(index);
    return { stream: segment.stream, firstSeq: segment.firstSeq, lastSeq: segment.lastSeq };
  }

  private async writeAcked(): Promise<void> {
    const streams: Record<string, number> = {};
    for (const [stream, seq] of this.acked) streams[stream] = seq;
    const path = join(this.options.dir, 'acked.json');
    try {
      // Write then rename, so a crash leaves the old file or the new one, never half of one.
      await writeFile(`${path}.tmp`, JSON.stringify({ streams }), { mode: PRIVATE_FILE_MODE });
      await rename(`${path}.tmp`, path);
    } catch (error) {
      this.hooks.onError(ioError(`cannot record acknowledgements in ${path}`, error));
    }
  }

  /**
   * Reads events that are on disk but not in memory: those after `loaded` (highest seq per stream
   * already handed to the queue), up to `maxEvents`/`maxBytes`, in spool order.
   */
  async read(
    loaded: ReadonlyMap<string, number>,
    maxEvents: number,
    maxBytes: number,
  ): Promise<SpoolReadResult> {
    const entries: Entry[] = [];
    let bytes = 0;
    // Positions are segment numbers, not list indexes: segments may be trimmed while we read.
    let num = this.readHint?.num ?? 0;
    let offset = this.readHint?.offset ?? 0;
    let exhausted = false;
    while (entries.length < maxEvents && bytes < maxBytes) {
      const segment = this.segments.find((s) => s.num >= num);
      if (segment === undefined) {
        exhausted = true;
        break;
      }
      if (segment.num !== num) {
        num = segment.num;
        offset = 0;
      }
      const after = loaded.get(segment.stream) ?? -1;
      // The newest segment may still grow: stay on it, at the offset reached.
      const newest = segment === this.segments[this.segments.length - 1];
      if (offset >= segment.size || segment.lastSeq <= after) {
        if (newest) {
          exhausted = true;
          break;
        }
        num = segment.num + 1;
        offset = 0;
        continue;
      }
      let handle: FileHandle;
      try {
        handle = await open(segment.path, 'r');
      } catch (error) {
        // Dropped or trimmed meanwhile: carry on with the next segment.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        num = segment.num + 1;
        offset = 0;
        continue;
      }
      try {
        while (offset < segment.size && entries.length < maxEvents && bytes < maxBytes) {
          const length = Math.min(READ_CHUNK, segment.size - offset);
          const buf = Buffer.allocUnsafe(length);
          const { bytesRead } = await handle.read(buf, 0, length, offset);
          const last = buf.lastIndexOf(10, bytesRead - 1);
          if (last < 0) {
            // A line longer than a chunk cannot be an event the SDK wrote: skip past it.
            this.hooks.onError(
              new SdkError(
                SdkErrorCodes.SPOOL_CORRUPT,
                `unreadable data in ${segment.path} at byte ${offset}; skipped`,
              ),
            );
            offset += bytesRead;
            break;
          }
          let start = 0;
          while (start <= last && entries.length < maxEvents && bytes < maxBytes) {
            const nl = buf.indexOf(10, start);
            const lineStart = offset + start;
            const from = start;
            start = nl + 1;
            if (lineStart === 0) continue; // the header
            const entry = this.entryOf(segment, buf, from, nl, after);
            if (entry === undefined) continue;
            entries.push(entry);
            bytes += entry.bytes;
          }
          offset += start;
        }
      } finally {
        await handle.close();
      }
      if (offset >= segment.size && segment !== this.segments[this.segments.length - 1]) {
        num = segment.num + 1;
        offset = 0;
      }
    }
    this.readHint = { num, offset };
    const caughtUp = exhausted && !this.writing && this.pending.length === 0;
    return { entries, caughtUp };
  }

  /**
   * An entry from the spool line buf[start, nl) (`nl` is its LF), or undefined for an event
   * already loaded or a damaged line. The wire line is copied out of the read buffer, so a
   * queued event holds its own bytes, not the whole chunk read.
   */
  private entryOf(
    segment: Segment,
    buf: Buffer,
    start: number,
    nl: number,
    after: number,
  ): Entry | undefined {
    const tab = buf.indexOf(TAB, start);
    const seq = tab > start && tab < nl ? Number(buf.toString('latin1', start, tab)) : Number.NaN;
    if (!Number.isSafeInteger(seq)) return undefined;
    if (seq <= after) return undefined;
    // Written whole by this SDK and cut at the last whole line on open: the framing is checked,
    // the hash is the collector's to check (a damaged event is dead-lettered, not lost silently).
    const recordEnd = buf.indexOf(TAB, tab + 1);
    const hashEnd = recordEnd + 1 + HASH_HEX_LENGTH;
    if (recordEnd < 0 || recordEnd >= nl || hashEnd >= nl || buf[hashEnd] !== TAB) {
      this.hooks.onError(
        new SdkError(
          SdkErrorCodes.SPOOL_CORRUPT,
          `damaged line for seq ${seq} in ${segment.path}; skipped (the collector will see a gap)`,
        ),
      );
      return undefined;
    }
    const line = Buffer.allocUnsafe(nl + 1 - (tab + 1));
    buf.copy(line, 0, tab + 1, nl + 1);
    return new Entry(segment.stream, seq, line, 0, line.length, Date.now(), true);
  }

  /** Writes what is pending, syncs, records acknowledgements and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.commitTimer);
    this.commitScheduled = false;
    while (this.writing) await new Promise((r) => setTimeout(r, 1));
    if (this.pending.length > 0) await this.commit(true);
    this.closed = true;
    clearTimeout(this.ackedTimer);
    this.ackedTimer = undefined;
    if (this.current !== undefined) {
      try {
        await this.current.handle.datasync();
        await this.current.handle.close();
      } catch (error) {
        this.hooks.onError(ioError('cannot close spool file', error));
      }
      this.current = undefined;
    }
    await this.writeAcked();
    unlock(this.options.dir);
  }

  /** For tests of crash recovery: let go of files and lock without writing anything more. */
  abandon(): void {
    this.closed = true;
    clearTimeout(this.commitTimer);
    clearTimeout(this.ackedTimer);
    void this.current?.handle.close().catch(() => undefined);
    this.current = undefined;
    unlock(this.options.dir);
  }
}

function lock(dir: string): void {
  const path = join(dir, 'lock');
  if (heldDirs.has(path)) {
    throw new SdkError(
      SdkErrorCodes.SPOOL_LOCKED,
      `spool directory ${dir} is already used by another client of this process`,
    );
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', PRIVATE_FILE_MODE);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldDirs.add(path);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw ioError(`cannot lock spool directory ${dir}`, error);
      }
    }
    let pid = Number.NaN;
    try {
      pid = Number(readFileSync(path, 'utf8'));
    } catch {
      // Unreadable lock: treat as stale.
    }
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid)) {
      throw new SdkError(
        SdkErrorCodes.SPOOL_LOCKED,
        `spool directory ${dir} is used by process ${pid}; give each process its own spool directory`,
      );
    }
    // The owner is gone (crash, kill -9): take the directory over.
    try {
      unlinkSync(path);
    } catch {
      // Someone else removed it first; the next attempt decides.
    }
  }
  throw new SdkError(SdkErrorCodes.SPOOL_LOCKED, `cannot lock spool directory ${dir}`);
}

function unlock(dir: string): void {
  const path = join(dir, 'lock');
  heldDirs.delete(path);
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
