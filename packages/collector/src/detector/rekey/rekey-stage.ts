import { randomUUID } from 'node:crypto';
import type { ConsumedBatch, Log, LogConsumer, LogMessage } from '../../log/log.js';
import type { EnrichmentPlugin } from '../../sink/enrich.js';
import { DetectionReader, SeenHeads } from '../events.js';
import type { DetectorLogger } from '../runner.js';
import { Watermark } from '../watermark.js';
import { eventMessage, partitionKeys, punctuationMessages } from './messages.js';
import type { RekeyRouter } from './route.js';

/** Bounds of one append to the re-key topic (values and keys; compressed on the wire). */
const MAX_APPEND_BYTES = 512 * 1024;
const MAX_APPEND_MESSAGES = 2_000;

/** `messages` in order, cut into runs of at most `maxBytes` (one larger message alone). */
export function chunks(
  messages: readonly LogMessage[],
  maxBytes: number,
  maxMessages: number,
): LogMessage[][] {
  const out: LogMessage[][] = [];
  let current: LogMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = m.value.length + m.key.length + 64;
    if (current.length > 0 && (bytes + size > maxBytes || current.length >= maxMessages)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** What one batch of the re-key stage did, for the metrics. */
export interface RekeyObserver {
  batch(report: {
    records: number;
    events: number;
    produced: number;
    skippedRecords: number;
  }): void;
}

export interface RekeyStageOptions {
  /** The event log (read). */
  readonly log: Log;
  /** The detector's re-key topic (written). */
  readonly rekey: Log;
  /** Consumer group of stage 1 on the log (`<detect.group>.rekey`). */
  readonly group: string;
  readonly router: RekeyRouter;
  readonly enrichment?: EnrichmentPlugin | undefined;
  readonly maxBatchRecords: number;
  /** Period of the watermark punctuations. */
  readonly punctuationMs: number;
  readonly logger: DetectorLogger;
  readonly observer?: RekeyObserver;
  /** This instance's id in its punctuations (default: a random UUID per start). */
  readonly instance?: string;
  readonly clock?: () => number;
  readonly restartDelayMs?: number;
  readonly maxStreams?: number;
}

export interface RekeyStats {
  readonly records: number;
  readonly events: number;
  /** Messages produced to the re-key topic (an event goes once per matching group-by set). */
  readonly produced: number;
  readonly skippedRecords: number;
  readonly punctuations: number;
  readonly watermark: number;
}

/**
 * Stage 1 of the detector on Kafka: reads the log partitions its group gives it, opens and
 * enriches each record as the single detector does (DetectionReader), and produces each event
 * to the re-key topic once per group-by set that can count it, keyed by (tenant, entity)
 * (route.ts). A batch resolves, and so its log offsets are committed, only once the re-key
 * topic acknowledged all its messages: at least once (a crash in between sends them again; the
 * engine stage ignores an event id already in its windows).
 *
 * Watermark: as the single detector's, the minimum over the log partitions read here of the
 * latest event time read (watermark.ts, idle partitions hold nothing back), observed only after
 * a batch's messages were acknowledged. Every `punctuationMs` it is sent with this instance's id
 * to every partition of the re-key topic, behind the events it covers (Kafka keeps a partition's
 * order). Holds no state of its own beyond the stream heads of the integrity flags, which start
 * empty at each start (the first event of a stream after a start is not judged, events.ts).
 */
export class RekeyStage {
  readonly instance: string;
  private consumer: LogConsumer | undefined;
  private watermark = new Watermark();
  private readonly partitions = new Set<number>();
  private readonly reader: DetectionReader;
  private readonly keys: string[];
  private timer: NodeJS.Timeout | undefined;
  private punctuating: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private joined = false;
  private failures = 0;
  private lastError: Error | undefined;
  private readonly clock: () => number;
  private counters = { records: 0, events: 0, produced: 0, skippedRecords: 0, punctuations: 0 };

  constructor(private readonly options: RekeyStageOptions) {
    this.instance = options.instance ?? randomUUID();
    this.clock = options.clock ?? Date.now;
    this.reader = new DetectionReader({
      enrichment: options.enrichment,
      heads: new SeenHeads(options.maxStreams),
    });
    this.keys = partitionKeys(options.rekey);
  }

  get state(): 'starting' | 'running' | 'restarting' | 'stopped' {
    if (this.stopped) return 'stopped';
    if (this.consumer !== undefined && this.joined) return 'running';
    return this.lastError ? 'restarting' : 'starting';
  }

  get error(): Error | undefined {
    return this.lastError;
  }

  /** Log partitions owned now. */
  owned(): number[] {
    return [...this.partitions].sort((a, b) => a - b);
  }

  stats(): RekeyStats {
    return { ...this.counters, watermark: this.watermark.value() };
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.timer = setInterval(() => void this.punctuate(), this.options.punctuationMs);
    this.timer.unref();
    try {
      await this.launch();
    } catch (error) {
      this.failed(error as Error);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.stop();
    await this.punctuating;
  }

  /** Sends the current watermark to every re-key partition (also called by the timer). */
  punctuate(): Promise<void> {
    if (this.punctuating) return this.punctuating;
    const mark = this.watermark.value();
    if (!Number.isFinite(mark)) return Promise.resolve();
    const sending = this.options.rekey
      .append(
        punctuationMessages(this.keys, {
          instance: this.instance,
          watermark: mark,
          at: this.clock(),
        }),
      )
      .then(
        () => {
          this.counters.punctuations++;
        },
        (error: unknown) =>
          // The next period tries again; the engine stage's watermark waits meanwhile.
          this.options.logger.warn({ err: error }, 'detector watermark punctuation failed'),
      )
      .finally(() => {
        this.punctuating = undefined;
      });
    this.punctuating = sending;
    return sending;
  }

  private async launch(): Promise<void> {
    const { log, group, maxBatchRecords, logger } = this.options;
    // A new generation: partitions are assigned afresh.
    this.watermark = new Watermark();
    this.partitions.clear();
    const consumer = log.consume({
      group,
      maxBatchRecords,
      handleBatch: (batch) => this.handle(batch),
      onAssign: async (partitions) => {
        logger.info({ partitions }, 'detector re-key stage owns log partitions');
        for (const p of partitions) this.partitions.add(p);
        const lag = await log.groupLag(group);
        this.watermark.pending(partitions.filter((p) => (lag.get(p) ?? 0) > 0));
      },
      onRevoke: (partitions) => {
        logger.info({ partitions }, 'detector re-key stage released log partitions');
        for (const p of partitions) this.partitions.delete(p);
        this.watermark.release(partitions);
      },
      onError: (error) => this.failed(error),
    });
    this.consumer = consumer;
    this.joined = false;
    await consumer.start();
    this.joined = true;
    this.failures = 0;
    this.lastError = undefined;
  }

  private async handle(batch: ConsumedBatch): Promise<void> {
    const messages: LogMessage[] = [];
    let maxTime = -Infinity;
    let events = 0;
    let skipped = 0;
    for (const record of batch.records) {
      try {
        const read = this.reader.read(record);
        for (const event of read.events) {
          events++;
          // As the single detector: no later than its collector received it (watermark.ts).
          const t = Math.min(event.time, read.receivedAt);
          if (t > maxTime) maxTime = t;
          for (const { set, key } of this.options.router.route(event))
            messages.push(eventMessage(set, key, event));
        }
      } catch (error) {
        skipped++;
        this.options.logger.warn(
          { partition: record.partition, offset: record.offset, err: error },
          'detector skipped a log record it cannot read',
        );
      }
    }
    // Acknowledged by the re-key topic before the batch resolves (and its offsets are committed),
    // in appends of bounded size (a broker refuses a produce request above its message.max.bytes,
    // 1 MiB by default), one after the other so that a key's messages keep their order.
    for (const chunk of chunks(messages, MAX_APPEND_BYTES, MAX_APPEND_MESSAGES))
      await this.options.rekey.append(chunk);
    const last = batch.records.at(-1);
    if (last)
      this.watermark.observe(batch.partition, maxTime, last.offset + 1 >= batch.highWatermark);
    this.counters.records += batch.records.length;
    this.counters.events += events;
    this.counters.produced += messages.length;
    this.counters.skippedRecords += skipped;
    this.options.observer?.batch({
      records: batch.records.length,
      events,
      produced: messages.length,
      skippedRecords: skipped,
    });
  }

  private failed(error: Error): void {
    this.lastError = error;
    this.consumer = undefined;
    if (this.stopped) return;
    this.failures++;
    const delay = Math.min((this.options.restartDelayMs ?? 500) * 2 ** (this.failures - 1), 30_000);
    this.options.logger.error(
      { err: error, restartInMs: delay },
      'detector re-key stage failed; restarting from the committed log offsets',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.launch().catch((e: unknown) => this.failed(e as Error));
    }, delay);
  }
}
