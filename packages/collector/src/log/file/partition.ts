import { LogCorruptError, LogUnavailableError } from '../../errors.js';
import type { ConsumedRecord } from '../log.js';
import { asError, syncDirectory, writeFully, type FileOps } from './file-ops.js';
import type { FileLogLogger } from './logger.js';
import { Segment, parseSegmentFileName, segmentFileName } from './segment.js';
import { replayJournal, type SegmentExtent } from './rewrite.js';

/**
 * How appends become durable.
 * - `always`: an append resolves after the fdatasync that covers it. Survives a process
 *   crash and a power loss.
 * - `interval`: an append resolves once written to the OS; every `fsyncIntervalMs` the dirty
 *   partitions are fdatasynced. Survives a process crash (kill -9: the data is in the page
 *   cache); a power loss or kernel crash loses up to the last interval of acknowledged appends.
 * - `never`: written to the OS, fsynced only when a segment is sealed or the log closes.
 *   Survives a process crash; a power loss can lose any number of acknowledged appends. For
 *   benchmarks and tests.
 * Consumers see a record once its append resolves, so in the last two modes a power loss
 * can also take back records a group has already committed.
 */
export type FsyncMode = 'always' | 'interval' | 'never';

/** Told when part of an append has been written, or has failed. */
export interface WriteWaiter {
  written(): void;
  failed(error: Error): void;
}

/** The records of one append that belong to one partition, encoded with their offsets. */
export interface PendingWrite {
  readonly buffer: Buffer;
  readonly firstOffset: number;
  readonly count: number;
  readonly waiter: WriteWaiter;
}

export interface PartitionContext {
  readonly ops: FileOps;
  readonly logger: FileLogLogger;
  readonly fsync: FsyncMode;
  readonly segmentBytes: number;
  /** Called when a pending write leaves the queue (written or failed), to free its budget. */
  released(bytes: number): void;
}

/** Where a consumer reads next in one partition. */
export interface ReadCursor {
  offset: number;
  segment: Segment | undefined;
  position: number;
}

/**
 * Wakes everyone waiting at the next `notify()`; waiters then check what they wait for.
 * One promise per round, shared by all waiters, so waiting costs no allocation per waiter.
 */
export class Signal {
  private round: Promise<void> | undefined;
  private release: (() => void) | undefined;

  wait(): Promise<void> {
    this.round ??= new Promise<void>((resolve) => {
      this.release = resolve;
    });
    return this.round;
  }

  notify(): void {
    const release = this.release;
    this.round = undefined;
    this.release = undefined;
    release?.();
  }
}

/**
 * One partition: its segments, the offsets it has handed out, and the flusher that turns
 * queued appends into durable records with group commit.
 *
 * Group commit: appends are queued; the flusher takes everything queued, writes it with one
 * writev and covers it with one fdatasync, then resolves those appends. Appends that arrive
 * meanwhile wait for the next round, which takes them all at once: under load every fsync
 * covers many appends, and an idle log answers after a single write and fsync.
 *
 * Offsets are handed out when an append is queued, so they follow call order. If a write or
 * fsync fails, that round and everything queued after it is rejected, the next offset goes
 * back to the high watermark and the file is cut back to the last acknowledged byte before
 * the next write: offsets stay dense and no unacknowledged bytes stay in the file.
 */
export class PartitionLog {
  readonly signal = new Signal();
  /** Offset after the last acknowledged record: what consumers may read up to. */
  highWatermark: number;
  /** Offset the next queued record gets. */
  nextOffset: number;
  /** A write or fsync failed and no write has succeeded since. */
  failed = false;
  private queue: PendingWrite[] = [];
  private flushing: Promise<void> | undefined;
  private needsTruncate = false;
  private unsynced = false;
  private syncRequested = false;
  /** Reads under way, and the gate a rewrite closes so that no read sees a half-written record. */
  private readsInFlight = 0;
  private gate: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  private constructor(
    private readonly context: PartitionContext,
    readonly id: number,
    readonly dir: string,
    private readonly segments: Segment[],
  ) {
    this.highWatermark = this.active.nextOffset;
    this.nextOffset = this.highWatermark;
  }

  /** Opens (or creates) the partition directory and recovers its last segment. */
  static async open(
    context: PartitionContext,
    id: number,
    dir: string,
    clean: boolean,
  ): Promise<PartitionLog> {
    const { ops, logger } = context;
    await ops.mkdir(dir);
    // A rewrite (erasure) that a crash interrupted is finished before anything is checked.
    await replayJournal(ops, dir, logger);
    const bases = (await ops.readdir(dir))
      .map(parseSegmentFileName)
      .filter((base): base is number => base !== undefined)
      .sort((a, b) => a - b);
    const last = bases.pop();
    if (last === undefined) {
      const segment = await Segment.create(ops, dir, 0);
      await syncDirectory(ops, dir);
      return new PartitionLog(context, id, dir, [segment]);
    }
    const segments = bases.map((base, i) => Segment.sealedOnDisk(dir, base, bases[i + 1] ?? last));
    let active = await Segment.recover(ops, dir, last, clean, logger);
    const previous = segments.at(-1);
    if (active.size === 0 && previous) {
      // A roll that a crash (or a failed write) left without records. The segment before it
      // was sealed with a durable index: it becomes the active one again.
      await active.remove(ops);
      await syncDirectory(ops, dir);
      segments.pop();
      active = await Segment.recover(ops, dir, previous.baseOffset, true, logger);
    }
    segments.push(active);
    return new PartitionLog(context, id, dir, segments);
  }

  get active(): Segment {
    const active = this.segments.at(-1);
    if (!active) throw new Error(`partition ${this.id} has no segment`);
    return active;
  }

  /** The first offset still on disk. */
  get logStartOffset(): number {
    return this.segments[0]?.baseOffset ?? 0;
  }

  enqueue(write: PendingWrite): void {
    this.queue.push(write);
    this.kick();
  }

  /** For `interval` mode: fdatasync soon if anything was written since the last one. */
  requestSync(): void {
    if (!this.unsynced) return;
    this.syncRequested = true;
    this.kick();
  }

  private kick(): void {
    if (this.flushing) return;
    // flush() handles write errors itself; this only catches a bug (or a throwing logger).
    const run = this.flush().catch((error: unknown) => {
      this.context.logger.warn({ err: error, partition: this.id }, 'log flusher failed');
    });
    this.flushing = run;
    void run.then(() => {
      if (this.flushing === run) this.flushing = undefined;
      // Work queued between the flusher's last look and now.
      if (this.queue.length > 0 || this.syncRequested) this.kick();
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0 || this.syncRequested) {
      if (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.writeBatch(batch);
      } else {
        await this.syncNow();
      }
    }
  }

  private async writeBatch(batch: PendingWrite[]): Promise<void> {
    const { ops, segmentBytes } = this.context;
    let from = 0;
    try {
      if (this.needsTruncate) {
        await ops.ftruncate(this.active.descriptor, this.active.size);
        this.needsTruncate = false;
      }
      let bytes = 0;
      for (let i = 0; i < batch.length; i++) {
        const length = batch[i]?.buffer.length ?? 0;
        const filled = this.active.size + bytes;
        if (filled > 0 && filled + length > segmentBytes) {
          if (bytes > 0) await this.commit(batch, from, i, bytes);
          from = i;
          bytes = 0;
          await this.roll();
        }
        bytes += length;
      }
      if (bytes > 0) await this.commit(batch, from, batch.length, bytes);
    } catch (error) {
      this.fail(error, batch.slice(from));
    }
  }

  /** Writes `batch[from..to)` at the end of the active segment and acknowledges it. */
  private async commit(
    batch: PendingWrite[],
    from: number,
    to: number,
    bytes: number,
  ): Promise<void> {
    const { ops, fsync } = this.context;
    const segment = this.active;
    const buffers: Buffer[] = [];
    for (let i = from; i < to; i++) buffers.push((batch[i] as PendingWrite).buffer);
    await writeFully(ops, segment.descriptor, buffers, bytes, segment.size);
    if (fsync === 'always') await ops.fdatasync(segment.descriptor);
    else this.unsynced = true;

    let position = segment.size;
    for (let i = from; i < to; i++) {
      const write = batch[i] as PendingWrite;
      segment.indexWrite(write.buffer, position, write.firstOffset);
      position += write.buffer.length;
      segment.nextOffset = write.firstOffset + write.count;
    }
    segment.size = position;
    this.highWatermark = segment.nextOffset;
    this.failed = false;
    for (let i = from; i < to; i++) {
      const write = batch[i] as PendingWrite;
      this.context.released(write.buffer.length);
      write.waiter.written();
    }
    this.signal.notify();
    // The index is a hint rebuilt on open if needed: written after the acknowledgement.
    await segment.persistIndex(ops, false).catch((error: unknown) => {
      this.context.logger.warn({ err: error, file: segment.indexPath }, 'log index write failed');
    });
  }

  /** Seals the active segment (data and index durable) and starts the next one. */
  private async roll(): Promise<void> {
    const { ops, logger } = this.context;
    const old = this.active;
    if (this.unsynced) {
      await ops.fdatasync(old.descriptor);
      this.unsynced = false;
    }
    // The sealed segment's index is trusted on open: durable before the next segment exists.
    await old.persistIndex(ops, true);
    const next = await Segment.create(ops, this.dir, old.nextOffset);
    try {
      // The new file's directory entry must be durable before records in it are acknowledged.
      await syncDirectory(ops, this.dir);
    } catch (error) {
      await next.remove(ops).catch(() => undefined);
      throw error;
    }
    this.segments.push(next);
    await old.seal(ops).catch((error: unknown) => {
      logger.warn({ err: error, file: old.indexPath }, 'closing a sealed log index failed');
    });
    logger.info(
      { file: next.logPath, partition: this.id, baseOffset: next.baseOffset },
      'rolled a new log segment',
    );
  }

  private async syncNow(): Promise<void> {
    this.syncRequested = false;
    if (!this.unsynced) return;
    this.unsynced = false;
    try {
      await this.context.ops.fdatasync(this.active.descriptor);
    } catch (error) {
      this.unsynced = true;
      this.failed = true;
      this.context.logger.warn(
        { err: error, partition: this.id, file: this.active.logPath },
        'periodic fsync of the log failed: acknowledged appends may not survive a power loss',
      );
    }
  }

  private fail(error: unknown, rejected: PendingWrite[]): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    const all = rejected.concat(this.queue);
    this.queue = [];
    this.failed = true;
    this.needsTruncate = true;
    this.nextOffset = this.highWatermark;
    this.context.logger.warn(
      { err: cause, partition: this.id, file: this.active.logPath, rejected: all.length },
      'log write failed; appends are rejected until a write succeeds',
    );
    const failure = new LogUnavailableError(
      `cannot write partition ${this.id} of the log: ${cause.message}`,
      cause,
    );
    for (const write of all) {
      this.context.released(write.buffer.length);
      write.waiter.failed(failure);
    }
  }

  /** The segment that holds `offset` (the first one for offsets before the log start). */
  private segmentFor(offset: number): Segment {
    let low = 0;
    let high = this.segments.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if ((this.segments[mid] as Segment).baseOffset <= offset) low = mid;
      else high = mid - 1;
    }
    return this.segments[low] as Segment;
  }

  /**
   * Reads acknowledged records from `cursor` on, at most `maxRecords` and about `maxBytes`
   * (at least one record), and moves the cursor past them.
   */
  async read(cursor: ReadCursor, maxRecords: number, maxBytes: number): Promise<ConsumedRecord[]> {
    while (this.gate) await this.gate;
    this.readsInFlight++;
    try {
      return await this.readOpen(cursor, maxRecords, maxBytes);
    } finally {
      this.readsInFlight--;
      if (this.readsInFlight === 0) this.drained?.();
    }
  }

  /**
   * Runs `work` while no consumer reads the partition (new reads wait, reads under way finish
   * first): a record being rewritten in place is never read half old, half new.
   */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    let open: () => void = () => undefined;
    this.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    try {
      if (this.readsInFlight > 0)
        await new Promise<void>((resolve) => {
          this.drained = resolve;
        });
      this.drained = undefined;
      return await work();
    } finally {
      this.gate = undefined;
      open();
    }
  }

  /** The segment files and the bytes of acknowledged records in each, oldest first. */
  extents(): SegmentExtent[] {
    return this.segments.map((segment) => ({
      name: segmentFileName(segment.baseOffset),
      file: segment.logPath,
      bytes: segment.sealed ? -1 : segment.size,
    }));
  }

  private async readOpen(
    cursor: ReadCursor,
    maxRecords: number,
    maxBytes: number,
  ): Promise<ConsumedRecord[]> {
    const { ops, logger } = this.context;
    const out: ConsumedRecord[] = [];
    const end = this.highWatermark;
    let bytes = 0;
    while (cursor.offset < end && out.length < maxRecords && (bytes === 0 || bytes < maxBytes)) {
      let segment = cursor.segment;
      if (
        !segment ||
        segment.removed ||
        cursor.offset < segment.baseOffset ||
        cursor.offset > segment.nextOffset
      ) {
        segment = this.segmentFor(cursor.offset);
        cursor.position = await segment.positionOf(ops, cursor.offset, logger);
        cursor.segment = segment;
      }
      if (segment.sealed && cursor.offset >= segment.nextOffset) {
        const next = this.segments[this.segments.indexOf(segment) + 1];
        if (!next || next.baseOffset !== cursor.offset) {
          throw new LogCorruptError(
            `${segment.logPath}: ends at offset ${cursor.offset}, but no segment starts there`,
          );
        }
        cursor.segment = next;
        cursor.position = 0;
        continue;
      }
      const result = await segment.read(
        ops,
        this.id,
        cursor.position,
        cursor.offset,
        Math.min(end, segment.nextOffset),
        maxRecords,
        maxBytes,
        out,
        bytes,
      );
      cursor.position = result.position;
      cursor.offset = result.offset;
      bytes = result.bytes;
      if (!segment.sealed || cursor.offset < segment.nextOffset) {
        if (segment.sealed && cursor.position >= segment.size) {
          throw new LogCorruptError(
            `${segment.logPath}: ends at byte ${cursor.position} before offset ${segment.nextOffset}`,
          );
        }
        // Stopped by a limit, or at the end of the active segment.
        break;
      }
    }
    return out;
  }

  /** Sealed segments, oldest first, up to the first that holds `offset` or later records. */
  segmentsBelow(offset: number): Segment[] {
    const found: Segment[] = [];
    for (const segment of this.segments) {
      if (!segment.sealed || segment.nextOffset > offset) break;
      found.push(segment);
    }
    return found;
  }

  /** Takes the first `count` segments out of the partition (never the active one). */
  detach(count: number): Segment[] {
    return this.segments.splice(0, Math.min(count, this.segments.length - 1));
  }

  /** Waits for queued appends, makes everything durable and closes the files. */
  async close(): Promise<void> {
    const { ops } = this.context;
    while (this.flushing) await this.flushing;
    let failure: unknown;
    try {
      if (this.unsynced) await ops.fdatasync(this.active.descriptor);
      this.unsynced = false;
      await this.active.persistIndex(ops, true);
    } catch (error) {
      failure = error;
    }
    for (const segment of this.segments) {
      try {
        await segment.close(ops);
      } catch (error) {
        failure ??= error;
      }
    }
    this.signal.notify();
    if (failure !== undefined) throw asError(failure);
  }
}
