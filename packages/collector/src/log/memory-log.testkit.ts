import { LogClosedError } from '../errors.js';
import type {
  AppendedPosition,
  ConsumeOptions,
  ConsumedRecord,
  Log,
  LogConsumer,
  LogMessage,
} from './log.js';
import { partitionForKey } from './partitioner.js';

/**
 * A Log in memory, for unit tests of code that sits on a log (ingest, sink). `appendGate` lets a
 * test hold appends pending, as a slow fsync or broker would.
 */
export class MemoryLog implements Log {
  readonly kind = 'file' as const;
  readonly records: ConsumedRecord[][];
  readonly committed = new Map<string, Map<number, number>>();
  appendGate: Promise<void> | undefined;
  failAppends: Error | undefined;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly topic = 'test',
    readonly partitions = 2,
  ) {
    this.records = Array.from({ length: partitions }, () => []);
  }

  partitionFor(key: string): number {
    return partitionForKey(key, this.partitions);
  }

  async append(messages: readonly LogMessage[]): Promise<AppendedPosition[]> {
    if (this.closed) throw new LogClosedError();
    if (this.appendGate) await this.appendGate;
    if (this.failAppends) throw this.failAppends;
    const out: AppendedPosition[] = [];
    for (const m of messages) {
      const partition = this.partitionFor(m.key);
      const list = this.records[partition] as ConsumedRecord[];
      const offset = list.length;
      list.push({
        partition,
        offset,
        key: m.key,
        value: m.value,
        timestamp: m.timestamp ?? Date.now(),
      });
      out.push({ partition, offset });
    }
    for (const wake of this.waiters) wake();
    return out;
  }

  all(): ConsumedRecord[] {
    return this.records.flat();
  }

  consume(options: ConsumeOptions): LogConsumer {
    let running = false;
    let loop: Promise<void> | undefined;
    const offsets = this.committed.get(options.group) ?? new Map<number, number>();
    this.committed.set(options.group, offsets);
    const wait = (): Promise<void> =>
      new Promise((resolve) => {
        const wake = (): void => {
          this.waiters.delete(wake);
          resolve();
        };
        this.waiters.add(wake);
        setTimeout(wake, 20);
      });
    const run = async (): Promise<void> => {
      const all = Array.from({ length: this.partitions }, (_, i) => i);
      await options.onAssign?.(all);
      while (running) {
        let delivered = false;
        for (const partition of all) {
          const from = offsets.get(partition) ?? 0;
          const list = this.records[partition] as ConsumedRecord[];
          if (from >= list.length) continue;
          const records = list.slice(from, from + (options.maxBatchRecords ?? 500));
          try {
            await options.handleBatch({ partition, records, highWatermark: list.length });
          } catch (error) {
            running = false;
            options.onError?.(error as Error);
            return;
          }
          offsets.set(partition, from + records.length);
          delivered = true;
        }
        if (!delivered) await wait();
      }
    };
    return {
      start: () => {
        running = true;
        loop = run();
        return Promise.resolve();
      },
      stop: async () => {
        running = false;
        for (const wake of this.waiters) wake();
        await loop;
      },
      lag: () =>
        Promise.resolve(
          new Map(this.records.map((list, p) => [p, list.length - (offsets.get(p) ?? 0)])),
        ),
    };
  }

  groupLag(group: string): Promise<Map<number, number>> {
    const offsets = this.committed.get(group);
    return Promise.resolve(
      new Map(this.records.map((list, p) => [p, list.length - (offsets?.get(p) ?? 0)])),
    );
  }

  committedOffsets(group: string): Promise<Map<number, number>> {
    return Promise.resolve(new Map(this.committed.get(group) ?? []));
  }

  ready(): boolean {
    return !this.closed;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
