import path from 'node:path';
import { isProcessAlive } from '@vigil/protocol/process';
import {
  ConfigError,
  LogClosedError,
  LogTopicMissingError,
  LogUnavailableError,
} from '../../errors.js';
import type { AppendedPosition, ConsumeOptions, Log, LogConsumer, LogMessage } from '../log.js';
import { murmur2, partitionForKey, toPositive } from '../partitioner.js';
import { FileLogConsumer, type ConsumerHost } from './consumer.js';
import {
  asError,
  isErrorCode,
  nodeFileOps,
  readFileIfExists,
  syncDirectory,
  writeFileDurably,
  type FileOps,
} from './file-ops.js';
import { silentLogger, type FileLogLogger } from './logger.js';
import { OffsetsStore, checkGroupName } from './offsets-store.js';
import {
  PartitionLog,
  type FsyncMode,
  type PartitionContext,
  type PendingWrite,
  type WriteWaiter,
} from './partition.js';
import { MAX_RECORD_BYTES, encodeRecord, recordBytes } from './record-format.js';
import {
  collectPatches,
  rewriteDurably,
  type RecordTransform,
  type RewriteOptions,
} from './rewrite.js';

export type { FileLogLogger } from './logger.js';
export type { FsyncMode } from './partition.js';

const MiB = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface FileLogOptions {
  /** Data directory; the topic lives in `<dir>/<topic>/`. */
  readonly dir: string;
  readonly topic: string;
  /** Fixed for the life of the topic, as in Kafka: key → partition depends on it. */
  readonly partitions: number;
  /** A segment file is rolled once it would grow past this. Default 64 MiB. */
  readonly segmentBytes?: number;
  /** When an append counts as durable; see `FsyncMode`. Default 'always'. */
  readonly fsync?: FsyncMode;
  /** Period of the fdatasync in 'interval' mode. Default 1000 ms. */
  readonly fsyncIntervalMs?: number;
  /**
   * Bytes of appends waiting for the disk beyond which new appends are rejected with the
   * retriable LogUnavailableError (the collector answers 503), instead of queueing without
   * bound. An append larger than this alone is rejected with a RangeError. Default 64 MiB.
   */
  readonly maxPendingBytes?: number;
  /**
   * Sealed segments older than this whose records every known consumer group has committed
   * are deleted. Default 7 days.
   */
  readonly retentionMs?: number;
  /** How often retention runs (also once at open). Default 5 minutes. */
  readonly retentionCheckIntervalMs?: number;
  /** About how many bytes of records one consumer batch holds (at least one record). Default 16 MiB. */
  readonly maxBatchBytes?: number;
  readonly logger?: FileLogLogger;
  /** The file-system calls to use; tests substitute them. Default: node:fs. */
  readonly fileOps?: FileOps;
}

interface ResolvedOptions {
  readonly dir: string;
  readonly topic: string;
  readonly partitions: number;
  readonly segmentBytes: number;
  readonly fsync: FsyncMode;
  readonly fsyncIntervalMs: number;
  readonly maxPendingBytes: number;
  readonly retentionMs: number;
  readonly retentionCheckIntervalMs: number;
  readonly maxBatchBytes: number;
  readonly logger: FileLogLogger;
  readonly ops: FileOps;
}

/** Kafka's rule for topic names (`Topic.validate`), which also keeps them safe as directory names. */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
const MAX_PARTITIONS = 10_000;
/** Segment positions are u32 in the index: a segment plus one oversized append stays below 4 GiB. */
const MAX_SEGMENT_BYTES = 1024 * MiB;
const MAX_PENDING_BYTES = 1024 * MiB;

const LOCK_FILE = 'lock';
const TOPIC_FILE = 'topic.json';
const CONSUMERS_DIR = 'consumers';

/** Topic directories open in this process: a second FileLog on one would corrupt it. */
const openTopics = new Set<string>();

/**
 * The embedded log: Kafka's semantics in files under one directory, in the collector's own
 * process, so a single process needs no broker and loses nothing on a crash.
 *
 *     <dir>/<topic>/topic.json                     partition count, fixed at creation
 *     <dir>/<topic>/lock                           pid of the process that has it open
 *     <dir>/<topic>/<partition>/<base offset>.log  records (record-format.ts)
 *     <dir>/<topic>/<partition>/<base offset>.index  sparse offset index (offset-index.ts)
 *     <dir>/<topic>/consumers/<group>.json         committed offsets (offsets-store.ts)
 *
 * The lock file is removed by a clean close; finding it at open (from a process no longer
 * alive) means the last run crashed, and the last segment of every partition is checked in
 * full rather than from its last index entry.
 */
export class FileLog implements Log {
  readonly kind = 'file';
  readonly topic: string;
  readonly partitions: number;
  private readonly parts: readonly PartitionLog[];
  private readonly offsets: OffsetsStore;
  private readonly consumers = new Map<string, FileLogConsumer>();
  private readonly host: ConsumerHost;
  private closing = false;
  private closed: Promise<void> | undefined;
  private retention: Promise<number> | undefined;
  /** The rewrite under way: rewrites run one at a time. */
  private rewriting: Promise<unknown> = Promise.resolve();
  private readonly timers: NodeJS.Timeout[] = [];

  private constructor(
    private readonly options: ResolvedOptions,
    private readonly topicDir: string,
    parts: PartitionLog[],
    offsets: OffsetsStore,
    /** Bytes of appends queued or being written, shared with the partitions. */
    private readonly budget: { pending: number },
  ) {
    this.topic = options.topic;
    this.partitions = options.partitions;
    this.parts = parts;
    this.offsets = offsets;
    this.host = {
      partitions: parts,
      offsets,
      logger: options.logger,
      maxBatchBytes: options.maxBatchBytes,
      claim: (group, consumer) => {
        if (this.closing) throw new LogClosedError();
        const current = this.consumers.get(group);
        if (current && current !== consumer) {
          throw new LogUnavailableError(
            `consumer group "${group}" already has a running consumer on the embedded log ` +
              `${this.topicDir}; stop it before starting another`,
          );
        }
        this.consumers.set(group, consumer);
      },
      release: (group, consumer) => {
        if (this.consumers.get(group) === consumer) this.consumers.delete(group);
      },
    };
  }

  /** Opens the topic in `options.dir`, creating it on first use, and recovers from a crash. */
  static async open(options: FileLogOptions): Promise<FileLog> {
    const resolved = resolveOptions(options);
    const topicDir = path.resolve(resolved.dir, resolved.topic);
    if (openTopics.has(topicDir)) {
      throw new LogUnavailableError(`the embedded log ${topicDir} is already open in this process`);
    }
    openTopics.add(topicDir);
    try {
      return await FileLog.openTopic(resolved, topicDir);
    } catch (error) {
      openTopics.delete(topicDir);
      throw error;
    }
  }

  private static async openTopic(options: ResolvedOptions, topicDir: string): Promise<FileLog> {
    const { ops, logger } = options;
    const started = performance.now();
    await ops.mkdir(topicDir);
    const clean = await takeLock(ops, topicDir);
    const budget = { pending: 0 };
    const context: PartitionContext = {
      ops,
      logger,
      fsync: options.fsync,
      segmentBytes: options.segmentBytes,
      released: (bytes) => {
        budget.pending -= bytes;
      },
    };
    const opened: PartitionLog[] = [];
    try {
      await checkTopicFile(ops, topicDir, options.topic, options.partitions);
      const results = await Promise.allSettled(
        Array.from({ length: options.partitions }, (_, id) =>
          PartitionLog.open(context, id, path.join(topicDir, String(id)), clean),
        ),
      );
      for (const result of results) if (result.status === 'fulfilled') opened.push(result.value);
      const failure = results.find((result) => result.status === 'rejected');
      if (failure) throw asError(failure.reason);
      const offsets = await OffsetsStore.load(ops, path.join(topicDir, CONSUMERS_DIR), logger);
      // New partition and consumer directories are durable only once their parent is synced.
      await syncDirectory(ops, topicDir);
      const log = new FileLog(options, topicDir, opened, offsets, budget);
      logger.info(
        {
          dir: topicDir,
          partitions: options.partitions,
          cleanShutdown: clean,
          ms: Math.round(performance.now() - started),
        },
        'opened the embedded log',
      );
      log.startTimers();
      return log;
    } catch (error) {
      for (const part of opened) await part.close().catch(() => undefined);
      // After a crash the lock stays, so the next open checks everything again.
      if (clean) await ops.unlink(path.join(topicDir, LOCK_FILE)).catch(() => undefined);
      throw error;
    }
  }

  partitionFor(key: string): number {
    return partitionForKey(key, this.partitions);
  }

  append(messages: readonly LogMessage[]): Promise<AppendedPosition[]> {
    if (this.closing) return Promise.reject(new LogClosedError());
    const count = messages.length;
    if (count === 0) return Promise.resolve([]);
    const now = Date.now();
    const keys: Buffer[] = new Array<Buffer>(count);
    const targets = new Array<number>(count);
    const bytesByPartition = new Map<number, number>();
    let total = 0;
    for (let i = 0; i < count; i++) {
      const message = messages[i] as LogMessage;
      const problem = checkMessage(message);
      if (problem) return Promise.reject(new TypeError(`messages[${i}]: ${problem}`));
      const key = Buffer.from(message.key, 'utf8');
      const partition = toPositive(murmur2(key)) % this.partitions;
      const size = recordBytes(key.length, message.value.length);
      keys[i] = key;
      targets[i] = partition;
      bytesByPartition.set(partition, (bytesByPartition.get(partition) ?? 0) + size);
      total += size;
    }
    const { maxPendingBytes } = this.options;
    if (total > maxPendingBytes) {
      return Promise.reject(
        new RangeError(
          `an append of ${total} bytes can never fit in maxPendingBytes (${maxPendingBytes})`,
        ),
      );
    }
    if (this.budget.pending + total > maxPendingBytes) {
      return Promise.reject(
        new LogUnavailableError(
          `the embedded log has ${this.budget.pending} bytes waiting for the disk ` +
            `(maxPendingBytes ${maxPendingBytes}); try again later`,
        ),
      );
    }
    this.budget.pending += total;

    const chunks = new Map<number, Chunk>();
    for (const [partition, bytes] of bytesByPartition) {
      const part = this.parts[partition] as PartitionLog;
      chunks.set(partition, {
        buffer: Buffer.allocUnsafe(bytes),
        at: 0,
        firstOffset: part.nextOffset,
        count: 0,
      });
    }
    const positions = new Array<AppendedPosition>(count);
    for (let i = 0; i < count; i++) {
      const message = messages[i] as LogMessage;
      const partition = targets[i] as number;
      const chunk = chunks.get(partition) as Chunk;
      const offset = chunk.firstOffset + chunk.count;
      chunk.at = encodeRecord(
        chunk.buffer,
        chunk.at,
        offset,
        message.timestamp ?? now,
        keys[i] as Buffer,
        message.value,
      );
      chunk.count++;
      positions[i] = { partition, offset };
    }
    const request = new AppendRequest(positions, chunks.size);
    for (const [partition, chunk] of chunks) {
      const part = this.parts[partition] as PartitionLog;
      part.nextOffset += chunk.count;
      const write: PendingWrite = {
        buffer: chunk.buffer,
        firstOffset: chunk.firstOffset,
        count: chunk.count,
        waiter: request,
      };
      part.enqueue(write);
    }
    return request.promise;
  }

  consume(options: ConsumeOptions): LogConsumer {
    const problem = checkGroupName(options.group);
    if (problem) throw new ConfigError(problem);
    const maxBatchRecords = options.maxBatchRecords;
    if (
      maxBatchRecords !== undefined &&
      (!Number.isInteger(maxBatchRecords) || maxBatchRecords < 1)
    ) {
      throw new ConfigError(`maxBatchRecords must be a positive integer, got ${maxBatchRecords}`);
    }
    return new FileLogConsumer(this.host, options);
  }

  committedOffsets(group: string): Promise<Map<number, number>> {
    return Promise.resolve(new Map(this.offsets.committed(group) ?? []));
  }

  groupLag(group: string): Promise<Map<number, number>> {
    if (this.closing) return Promise.reject(new LogClosedError());
    const committed = this.offsets.committed(group);
    const lag = new Map<number, number>();
    for (const partition of this.parts) {
      const from = Math.max(committed?.get(partition.id) ?? 0, partition.logStartOffset);
      lag.set(partition.id, Math.max(0, partition.highWatermark - from));
    }
    return Promise.resolve(lag);
  }

  /**
   * False once closed, after a failed write until one succeeds, and while more than half of
   * `maxPendingBytes` waits for the disk (it is falling behind: shed load before appends
   * start failing).
   */
  ready(): boolean {
    return (
      !this.closing &&
      this.budget.pending <= this.options.maxPendingBytes / 2 &&
      !this.parts.some((part) => part.failed)
    );
  }

  /**
   * Deletes old segments that every known consumer group has fully committed; resolves the
   * number deleted. Runs by itself at open and every `retentionCheckIntervalMs`.
   *
   * Only whole sealed segments at the start of a partition go, never the active one. A
   * segment's age is its file's modification time, i.e. when its last record was written
   * (timestamps inside records come from clients and may be anything). With no consumer
   * group known, nothing is deleted: records nobody has read are kept.
   */
  applyRetention(): Promise<number> {
    if (this.closing) return Promise.resolve(0);
    if (!this.retention) {
      const run = this.removeExpiredSegments();
      this.retention = run;
      void run
        .catch(() => 0)
        .then(() => {
          if (this.retention === run) this.retention = undefined;
        });
    }
    return this.retention;
  }

  /**
   * Rewrites records in place, keeping offsets and framing (rewrite.ts; used to erase a
   * person's values, GDPR Art. 17). Each partition's records are scanned while consumers go on
   * reading; the new bytes are written while they wait, through a journal that makes the rewrite
   * whole after a crash. Records appended during a scan are scanned by another pass, until a
   * pass finds none. Resolves the records rewritten and the records scanned.
   */
  rewriteRecords(
    transform: RecordTransform,
    options: RewriteOptions = {},
  ): Promise<{ readonly records: number; readonly scanned: number }> {
    if (this.closing) return Promise.reject(new LogClosedError());
    const run = this.rewriting.then(() => this.rewriteAll(transform, options));
    this.rewriting = run.catch(() => undefined);
    return run;
  }

  private async rewriteAll(
    transform: RecordTransform,
    options: RewriteOptions,
  ): Promise<{ records: number; scanned: number }> {
    const { ops } = this.options;
    let records = 0;
    let scanned = 0;
    for (const part of this.parts) {
      let from = new Map<string, number>();
      for (let pass = 0; pass < 5; pass++) {
        const found = await collectPatches(ops, part.id, part.extents(), transform, options, from);
        if (found.patches.length > 0)
          await part.exclusive(() => rewriteDurably(ops, part.dir, found.patches));
        records += found.patches.length;
        scanned += found.records;
        from = found.scanned;
        if (found.records === 0) break;
      }
    }
    return { records, scanned };
  }

  /** Stops the consumers, writes every queued append, and closes the files. */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    for (const timer of this.timers) clearInterval(timer);
    const { ops, logger } = this.options;
    await Promise.allSettled([...this.consumers.values()].map((consumer) => consumer.stop()));
    await this.retention?.catch(() => undefined);
    await this.rewriting;
    let failure: unknown;
    for (const part of this.parts) {
      try {
        await part.close();
      } catch (error) {
        failure ??= error;
      }
    }
    await this.offsets.drain();
    if (failure === undefined) {
      try {
        await ops.unlink(path.join(this.topicDir, LOCK_FILE));
        await syncDirectory(ops, this.topicDir);
      } catch (error) {
        failure = error;
      }
    }
    openTopics.delete(this.topicDir);
    if (failure !== undefined) {
      logger.warn({ err: failure, dir: this.topicDir }, 'closing the embedded log failed');
      throw asError(failure);
    }
  }

  private startTimers(): void {
    const { fsync, fsyncIntervalMs, retentionCheckIntervalMs, logger } = this.options;
    if (fsync === 'interval') {
      this.timers.push(
        setInterval(() => {
          for (const part of this.parts) part.requestSync();
        }, fsyncIntervalMs).unref(),
      );
    }
    const retain = (): void => {
      this.applyRetention().catch((error: unknown) => {
        logger.warn({ err: error, dir: this.topicDir }, 'log retention failed');
      });
    };
    this.timers.push(setInterval(retain, retentionCheckIntervalMs).unref());
    retain();
  }

  private async removeExpiredSegments(): Promise<number> {
    const { ops, logger, retentionMs } = this.options;
    const cutoff = Date.now() - retentionMs;
    let removed = 0;
    for (const part of this.parts) {
      const candidates = part.segmentsBelow(this.minCommitted(part.id));
      if (candidates.length === 0) continue;
      const modified = new Map<object, number>();
      for (const segment of candidates) {
        try {
          modified.set(segment, (await ops.stat(segment.logPath)).mtimeMs);
        } catch (error) {
          if (!isErrorCode(error, 'ENOENT')) throw error;
        }
      }
      if (this.closing) break;
      // Decide again: a consumer group may have appeared while the files were looked at.
      let count = 0;
      for (const segment of part.segmentsBelow(this.minCommitted(part.id))) {
        const mtime = modified.get(segment);
        if (mtime === undefined || mtime >= cutoff) break;
        count++;
      }
      const expired = part.detach(count);
      for (const segment of expired) await segment.remove(ops);
      if (expired.length > 0) {
        await syncDirectory(ops, part.dir);
        removed += expired.length;
        logger.info(
          {
            partition: part.id,
            segments: expired.length,
            logStartOffset: part.logStartOffset,
          },
          'deleted log segments past retention',
        );
      }
    }
    return removed;
  }

  /** The smallest offset committed in `partition` by every known group; -1 if any has none. */
  private minCommitted(partition: number): number {
    let min = Number.POSITIVE_INFINITY;
    for (const group of this.offsets.groupNames()) {
      const committed = this.offsets.committed(group)?.get(partition);
      if (committed === undefined) return -1;
      min = Math.min(min, committed);
    }
    return Number.isFinite(min) ? min : -1;
  }
}

interface Chunk {
  readonly buffer: Buffer;
  at: number;
  readonly firstOffset: number;
  count: number;
}

/** One append: resolves once each partition's share is durable, rejects at the first failure. */
class AppendRequest implements WriteWaiter {
  readonly promise: Promise<AppendedPosition[]>;
  private resolve!: (positions: AppendedPosition[]) => void;
  private reject!: (error: Error) => void;
  private settled = false;

  constructor(
    private readonly positions: AppendedPosition[],
    private remaining: number,
  ) {
    this.promise = new Promise<AppendedPosition[]>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  written(): void {
    this.remaining--;
    if (this.remaining === 0 && !this.settled) {
      this.settled = true;
      this.resolve(this.positions);
    }
  }

  failed(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(error);
  }
}

function checkMessage(message: LogMessage): string | undefined {
  if (typeof message.key !== 'string') return 'key must be a string';
  if (!(message.value instanceof Uint8Array)) return 'value must be a Buffer';
  if (message.value.length > MAX_RECORD_BYTES)
    return `value is larger than ${MAX_RECORD_BYTES} bytes`;
  const { timestamp } = message;
  if (timestamp !== undefined && (!Number.isSafeInteger(timestamp) || timestamp < 0)) {
    return 'timestamp must be a non-negative integer (epoch milliseconds)';
  }
  return undefined;
}

function resolveOptions(options: FileLogOptions): ResolvedOptions {
  const fail = (message: string): never => {
    throw new ConfigError(`embedded log: ${message}`);
  };
  const integer = (
    name: string,
    value: number | undefined,
    fallback: number,
    min: number,
    max: number,
  ): number => {
    const chosen = value ?? fallback;
    if (!Number.isSafeInteger(chosen) || chosen < min || chosen > max) {
      fail(`${name} must be an integer from ${min} to ${max}, got ${chosen}`);
    }
    return chosen;
  };
  if (typeof options.dir !== 'string' || options.dir.length === 0)
    fail('dir must be a directory path');
  if (!TOPIC_NAME.test(options.topic) || options.topic === '.' || options.topic === '..') {
    fail(`topic "${options.topic}" must be 1 to 249 of A-Z a-z 0-9 . _ - (and not . or ..)`);
  }
  const fsync = options.fsync ?? 'always';
  if (fsync !== 'always' && fsync !== 'interval' && fsync !== 'never') {
    fail(`fsync must be 'always', 'interval' or 'never', got ${String(fsync)}`);
  }
  return {
    dir: options.dir,
    topic: options.topic,
    partitions: integer('partitions', options.partitions, 0, 1, MAX_PARTITIONS),
    segmentBytes: integer('segmentBytes', options.segmentBytes, 64 * MiB, 1, MAX_SEGMENT_BYTES),
    fsync,
    fsyncIntervalMs: integer('fsyncIntervalMs', options.fsyncIntervalMs, 1000, 1, 3_600_000),
    maxPendingBytes: integer(
      'maxPendingBytes',
      options.maxPendingBytes,
      64 * MiB,
      1,
      MAX_PENDING_BYTES,
    ),
    retentionMs: integer(
      'retentionMs',
      options.retentionMs,
      7 * DAY_MS,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    retentionCheckIntervalMs: integer(
      'retentionCheckIntervalMs',
      options.retentionCheckIntervalMs,
      5 * 60_000,
      1,
      2 ** 31 - 1,
    ),
    maxBatchBytes: integer('maxBatchBytes', options.maxBatchBytes, 16 * MiB, 1, MAX_RECORD_BYTES),
    logger: options.logger ?? silentLogger,
    ops: options.fileOps ?? nodeFileOps,
  };
}

/**
 * Writes this process's pid into the topic's lock file; resolves whether the last process
 * closed the log cleanly (it removes the file). Refuses a topic another live process holds.
 */
async function takeLock(ops: FileOps, topicDir: string): Promise<boolean> {
  const file = path.join(topicDir, LOCK_FILE);
  const existing = await readFileIfExists(ops, file);
  if (existing) {
    const pid = Number(existing.toString('utf8').trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid)) {
      throw new LogUnavailableError(
        `the embedded log ${topicDir} is in use by process ${pid}; ` +
          'only one process may open it (remove the lock file if that process is not a Vigil collector)',
      );
    }
  }
  await writeFileDurably(ops, file, Buffer.from(`${process.pid}\n`, 'utf8'));
  return existing === undefined;
}

/** Records the partition count on first open and insists on it afterwards. */
async function checkTopicFile(
  ops: FileOps,
  topicDir: string,
  topic: string,
  partitions: number,
): Promise<void> {
  const file = path.join(topicDir, TOPIC_FILE);
  const data = await readFileIfExists(ops, file);
  if (!data) {
    const content = { version: 1, topic, partitions };
    await writeFileDurably(ops, file, Buffer.from(`${JSON.stringify(content, null, 2)}\n`, 'utf8'));
    // A new topic directory: make its entry in the data directory durable too.
    await syncDirectory(ops, path.dirname(topicDir));
    return;
  }
  let existing: unknown;
  try {
    existing = JSON.parse(data.toString('utf8'));
  } catch {
    existing = undefined;
  }
  const recorded = (existing as { partitions?: unknown } | undefined)?.partitions;
  if (recorded !== partitions) {
    throw new LogTopicMissingError(
      `the embedded log ${topicDir} has ${String(recorded)} partitions, not ${partitions}; ` +
        'the partition count of a topic cannot change (keys would move to other partitions)',
    );
  }
}
