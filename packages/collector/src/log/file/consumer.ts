import type { ConsumeOptions, LogConsumer } from '../log.js';
import type { FileLogLogger } from './logger.js';
import type { OffsetsStore } from './offsets-store.js';
import type { PartitionLog, ReadCursor } from './partition.js';

const DEFAULT_MAX_BATCH_RECORDS = 500;

/** What a consumer needs from the log that owns it. */
export interface ConsumerHost {
  readonly partitions: readonly PartitionLog[];
  readonly offsets: OffsetsStore;
  readonly logger: FileLogLogger;
  readonly maxBatchBytes: number;
  /** Makes this consumer the group's only one; throws when the log is closed or the group taken. */
  claim(group: string, consumer: FileLogConsumer): void;
  release(group: string, consumer: FileLogConsumer): void;
}

/**
 * The one consumer of a group in the process that owns the embedded log: it owns every
 * partition. Each partition has its own loop, so partitions progress independently, each
 * with one batch in flight: read up to `maxBatchRecords` acknowledged records from the
 * committed offset, hand them over, commit durably, repeat; with nothing to read, sleep
 * until the partition's next append (no polling delay).
 */
export class FileLogConsumer implements LogConsumer {
  private readonly group: string;
  private readonly maxBatchRecords: number;
  private readonly maxBatchBytes: number;
  private starting: Promise<void> | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private failure: Error | undefined;
  private owned: readonly number[] = [];

  constructor(
    private readonly host: ConsumerHost,
    private readonly options: ConsumeOptions,
  ) {
    this.group = options.group;
    this.maxBatchRecords = options.maxBatchRecords ?? DEFAULT_MAX_BATCH_RECORDS;
    this.maxBatchBytes = Math.min(host.maxBatchBytes, options.maxBatchBytes ?? Infinity);
  }

  start(): Promise<void> {
    this.starting ??= this.join();
    return this.starting;
  }

  stop(): Promise<void> {
    this.halt();
    return this.settled();
  }

  lag(): Promise<Map<number, number>> {
    const committed = this.host.offsets.committed(this.group);
    const lag = new Map<number, number>();
    for (const id of this.owned) {
      const partition = this.host.partitions[id];
      if (!partition) continue;
      const from = Math.max(committed?.get(id) ?? 0, partition.logStartOffset);
      lag.set(id, Math.max(0, partition.highWatermark - from));
    }
    return Promise.resolve(lag);
  }

  private async settled(): Promise<void> {
    try {
      await this.starting;
    } catch {
      // start() already reported it to its caller.
    }
    await this.running;
  }

  private halt(): void {
    this.stopping = true;
    // Wakes the loops waiting for appends so they see `stopping`. Other groups' consumers
    // wake too, find nothing new and wait again. (Racing each wait against a "stopped"
    // promise instead would leave a reaction on that promise per wait until the stop.)
    for (const partition of this.host.partitions) partition.signal.notify();
  }

  private async join(): Promise<void> {
    if (this.stopping) return;
    this.host.claim(this.group, this);
    try {
      await this.host.offsets.register(this.group);
    } catch (error) {
      this.host.release(this.group, this);
      throw error;
    }
    if (this.stopping) {
      this.host.release(this.group, this);
      return;
    }
    this.running = this.run();
  }

  /** Never rejects: failures end up in `onError`. */
  private async run(): Promise<void> {
    const partitions = this.host.partitions.map((partition) => partition.id);
    let assigned = false;
    try {
      this.owned = partitions;
      await this.options.onAssign?.(partitions);
      assigned = true;
      await Promise.all(partitions.map((id) => this.consume(id)));
    } catch (error) {
      this.fail(error);
    }
    if (assigned) {
      try {
        await this.options.onRevoke?.(partitions);
      } catch (error) {
        this.fail(error);
      }
    }
    this.owned = [];
    this.host.release(this.group, this);
    if (this.failure) this.report(this.failure);
  }

  private async consume(id: number): Promise<void> {
    const partition = this.host.partitions[id];
    if (!partition) return;
    const cursor: ReadCursor = {
      offset: this.startOffset(partition),
      segment: undefined,
      position: 0,
    };
    try {
      while (!this.stopping) {
        if (cursor.offset >= partition.highWatermark) {
          await partition.signal.wait();
          continue;
        }
        const records = await partition.read(cursor, this.maxBatchRecords, this.maxBatchBytes);
        const last = records.at(-1);
        if (!last) {
          throw new Error(
            `partition ${id}: nothing readable at offset ${cursor.offset}, below the high ` +
              `watermark ${partition.highWatermark}`,
          );
        }
        await this.options.handleBatch({
          partition: id,
          records,
          highWatermark: partition.highWatermark,
        });
        await this.host.offsets.commit(this.group, id, last.offset + 1);
      }
    } catch (error) {
      this.fail(error);
    }
  }

  /** The committed offset, kept within what the partition holds. */
  private startOffset(partition: PartitionLog): number {
    const committed = this.host.offsets.committed(this.group)?.get(partition.id);
    const first = partition.logStartOffset;
    const end = partition.highWatermark;
    if (committed === undefined) return first;
    if (committed < first || committed > end) {
      // Below: retention is not supposed to remove what a known group has not committed.
      // Above: only after a power loss in 'interval' or 'never' fsync mode.
      this.host.logger.warn(
        { group: this.group, partition: partition.id, committed, first, end },
        'committed offset is outside the log; resuming at the nearest end',
      );
      return committed < first ? first : end;
    }
    return committed;
  }

  private fail(error: unknown): void {
    this.failure ??= error instanceof Error ? error : new Error(String(error));
    this.halt();
  }

  private report(error: Error): void {
    if (this.options.onError) {
      try {
        this.options.onError(error);
      } catch (thrown) {
        this.host.logger.warn({ err: thrown, group: this.group }, 'onError threw');
      }
      return;
    }
    this.host.logger.warn({ err: error, group: this.group }, 'log consumer stopped on an error');
  }
}
