import type { AlertUpdate, DetectionEngine, EngineSnapshot, EngineStats } from '@vigil/detect';
import type { ConsumedBatch, Log, LogConsumer } from '../../log/log.js';
import type { CheckpointStore } from '../checkpoint.js';
import type { AlertOutput } from '../outputs.js';
import type { DetectorLogger, DetectorObserver } from '../runner.js';
import { PartitionPunctuations, readRekeyMessage } from './messages.js';

/** The checkpoint of one re-key partition: its engines' state and the next offset to read. */
export interface PartitionCheckpoint {
  readonly format: 'vigil-detector-partition';
  readonly version: 1;
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
  /** Next offset to read: messages below it are in `engines`. */
  readonly offset: number;
  readonly punctuations: [string, { watermark: number; at: number }][];
  /** Group-by set id → the state of its engine. */
  readonly engines: [string, EngineSnapshot][];
  readonly skipped: number;
  readonly writtenAt: number;
}

export interface EngineStageOptions {
  /** The re-key topic (read). */
  readonly rekey: Log;
  /** Consumer group of stage 2 on the re-key topic (`detect.group`). */
  readonly group: string;
  /** A new engine running the rules of group-by set `set` (route.ts), or undefined if none. */
  readonly engine: (set: string) => DetectionEngine | undefined;
  readonly outputs: readonly AlertOutput[];
  /** The checkpoint store of one re-key partition. */
  readonly checkpoints: (partition: number) => CheckpointStore<PartitionCheckpoint>;
  readonly checkpointIntervalMs: number;
  readonly maxBatchRecords: number;
  /** How long a stage-1 instance counts after its last punctuation (messages.ts). */
  readonly livenessMs: number;
  readonly logger: DetectorLogger;
  readonly observer?: DetectorObserver;
  readonly clock?: () => number;
  readonly restartDelayMs?: number;
}

interface Part {
  readonly partition: number;
  readonly engines: Map<string, DetectionEngine>;
  readonly punctuations: PartitionPunctuations;
  offset: number;
  skipped: number;
  lastCheckpointAt: number;
}

const ZERO: EngineStats = {
  events: 0,
  droppedLate: 0,
  evictedGroups: 0,
  evictedEntries: 0,
  evictedAlertKeys: 0,
  alertsRaised: 0,
  alertsUpdated: 0,
};

function add(a: EngineStats, b: EngineStats): EngineStats {
  return {
    events: a.events + b.events,
    droppedLate: a.droppedLate + b.droppedLate,
    evictedGroups: a.evictedGroups + b.evictedGroups,
    evictedEntries: a.evictedEntries + b.evictedEntries,
    evictedAlertKeys: a.evictedAlertKeys + b.evictedAlertKeys,
    alertsRaised: a.alertsRaised + b.alertsRaised,
    alertsUpdated: a.alertsUpdated + b.alertsUpdated,
  };
}

/**
 * Stage 2 of the detector on Kafka: a member of the engine group on the re-key topic. Each
 * re-key partition it owns has its own engines (one per group-by set, running only that set's
 * rules, so a message runs exactly the rules its header names) and its own checkpoint, keyed by
 * (group, topic, partition): on a rebalance the partitions gained are restored from their
 * checkpoints before their first batch and the partitions lost are dropped, so the members of
 * the group split the state as they split the partitions.
 *
 * Per batch, as the single detector (runner.ts): the events go to their set's engine, the
 * punctuations to the partition's watermark; the engines' watermark advances to the minimum over
 * the owned partitions of each one's watermark (the minimum over the live stage-1 instances of
 * their punctuations); the alerts go to every output, then the partition's checkpoint (engines,
 * next offset, punctuations) is written, at most `checkpointIntervalMs` after its last one, and
 * only then does the batch resolve and its offset get committed. A restart resumes from the
 * checkpoint and skips the messages below its offset; messages after it give the same updates,
 * which outputs take idempotently, and a re-key duplicate (stage 1 sent a batch again) is an
 * event id the engine already holds in its window, which it ignores.
 */
export class EngineStage {
  private consumer: LogConsumer | undefined;
  private parts = new Map<number, Part>();
  /**
   * The highest watermark the engines were advanced to. The minimum over instances and
   * partitions can step back (an instance that was idle reads an old event and says so); the
   * engines' watermark never does, and an engine created later starts from here.
   */
  private highMark = -Infinity;
  private stopped = false;
  private joined = false;
  private failures = 0;
  private lastError: Error | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly clock: () => number;
  private readonly idleCheckpointMs: number;

  constructor(private readonly options: EngineStageOptions) {
    this.clock = options.clock ?? Date.now;
    this.idleCheckpointMs = Math.max(5_000, 10 * options.checkpointIntervalMs);
  }

  get state(): 'starting' | 'running' | 'restarting' | 'stopped' {
    if (this.stopped) return 'stopped';
    if (this.consumer !== undefined && this.joined) return 'running';
    return this.lastError ? 'restarting' : 'starting';
  }

  get error(): Error | undefined {
    return this.lastError;
  }

  /** Re-key partitions owned now. */
  owned(): number[] {
    return [...this.parts.keys()].sort((a, b) => a - b);
  }

  /** Counters of the engines of the partitions owned now, and the watermark. */
  stats(): EngineStats & { skippedRecords: number; watermark: number } {
    let total = ZERO;
    let skipped = 0;
    for (const part of this.parts.values()) {
      skipped += part.skipped;
      for (const engine of part.engines.values()) total = add(total, engine.stats());
    }
    return { ...total, skippedRecords: skipped, watermark: this.watermark() };
  }

  async start(): Promise<void> {
    this.stopped = false;
    try {
      await this.launch();
    } catch (error) {
      this.failed(error as Error);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.stop();
  }

  /** The watermark the engines were advanced to (never steps back). */
  engineWatermark(): number {
    return this.highMark;
  }

  /** The minimum over the owned partitions of each one's watermark. */
  watermark(): number {
    let min = Infinity;
    for (const part of this.parts.values()) {
      const v = part.punctuations.value();
      if (v < min) min = v;
    }
    return min === Infinity ? -Infinity : min;
  }

  private async launch(): Promise<void> {
    const { rekey, group, maxBatchRecords, logger } = this.options;
    this.parts = new Map();
    const consumer = rekey.consume({
      group,
      maxBatchRecords,
      handleBatch: (batch) => this.handle(batch),
      onAssign: async (partitions) => {
        for (const p of partitions) this.parts.set(p, await this.restore(p));
        logger.info({ partitions }, 'detector engine stage owns re-key partitions');
      },
      onRevoke: (partitions) => {
        for (const p of partitions) this.parts.delete(p);
        logger.info({ partitions }, 'detector engine stage released re-key partitions');
      },
      onError: (error) => this.failed(error),
    });
    this.consumer = consumer;
    this.joined = false;
    await consumer.start();
    this.joined = true;
  }

  private async restore(partition: number): Promise<Part> {
    const store = this.options.checkpoints(partition);
    const checkpoint = await store.load();
    const part: Part = {
      partition,
      engines: new Map(),
      punctuations: new PartitionPunctuations(this.options.livenessMs),
      offset: 0,
      skipped: 0,
      lastCheckpointAt: 0,
    };
    if (checkpoint) {
      part.offset = checkpoint.offset;
      part.skipped = checkpoint.skipped;
      part.punctuations.load(checkpoint.punctuations);
      for (const [set, snapshot] of checkpoint.engines) {
        const engine = this.options.engine(set);
        if (engine === undefined) {
          // The set's rules are no longer loaded: its windows are dropped, and said so.
          this.options.logger.warn(
            { partition, set },
            'detector checkpoint holds state of a group-by set no rule has now; dropped',
          );
          continue;
        }
        engine.restore(snapshot);
        part.engines.set(set, engine);
      }
      this.options.logger.info(
        { checkpoint: store.where, offset: checkpoint.offset },
        'detector partition state restored',
      );
    }
    const committed = (await this.options.rekey.committedOffsets(this.options.group)).get(
      partition,
    );
    if (committed !== undefined && committed > part.offset)
      this.options.logger.warn(
        { partition, committed, checkpoint: part.offset },
        'the detector group committed beyond the partition checkpoint: the messages between were watermark punctuations only, or the checkpoint was lost (then their windows are lost)',
      );
    return part;
  }

  private engineOf(part: Part, set: string): DetectionEngine | undefined {
    let engine = part.engines.get(set);
    if (engine === undefined) {
      engine = this.options.engine(set);
      if (engine === undefined) return undefined;
      let mark = this.highMark;
      for (const other of part.engines.values()) mark = Math.max(mark, other.currentWatermark());
      if (Number.isFinite(mark)) engine.advanceWatermark(mark);
      part.engines.set(set, engine);
    }
    return engine;
  }

  private async handle(batch: ConsumedBatch): Promise<void> {
    const part = this.parts.get(batch.partition);
    if (part === undefined)
      throw new Error(`re-key partition ${batch.partition} is not owned here`);
    const before = this.partStats(part);
    const updates: AlertUpdate[] = [];
    let skipped = 0;
    let sawEvent = false;
    const now = this.clock;
    for (const record of batch.records) {
      if (record.offset < part.offset) continue;
      try {
        const message = readRekeyMessage(record);
        if (message.kind === 'watermark') {
          part.punctuations.observe(message.punctuation);
          continue;
        }
        sawEvent = true;
        const engine = this.engineOf(part, message.set);
        if (engine === undefined) {
          skipped++;
          continue;
        }
        for (const update of engine.process(message.event)) updates.push(update);
      } catch (error) {
        skipped++;
        this.options.logger.warn(
          { partition: record.partition, offset: record.offset, err: error },
          'detector skipped a re-key message it cannot read',
        );
      }
    }
    const last = batch.records.at(-1);
    if (last) part.offset = Math.max(part.offset, last.offset + 1);
    part.skipped += skipped;
    const mark = Math.max(this.highMark, this.watermark());
    this.highMark = mark;
    if (Number.isFinite(mark))
      for (const engine of part.engines.values()) engine.advanceWatermark(mark);
    for (const output of this.options.outputs) await output.publish(updates);
    const after = this.partStats(part);
    this.options.observer?.batch({
      events: after.events - before.events,
      skippedRecords: skipped,
      droppedLate: after.droppedLate - before.droppedLate,
      alertsRaised: after.alertsRaised - before.alertsRaised,
      alertsUpdated: after.alertsUpdated - before.alertsUpdated,
      evictions:
        after.evictedGroups -
        before.evictedGroups +
        (after.evictedEntries - before.evictedEntries) +
        (after.evictedAlertKeys - before.evictedAlertKeys),
    });
    if (Number.isFinite(mark)) this.options.observer?.watermarkLag((this.clock() - mark) / 1000);
    // A batch of punctuations only changes no window: its checkpoint can wait (a checkpoint per
    // punctuation period and partition would be an INSERT per second and partition into
    // detector_state). The commit then passes the checkpoint over watermark messages only, which
    // a restart does without (the next punctuations say the same).
    if (!sawEvent && now() - part.lastCheckpointAt < this.idleCheckpointMs) {
      this.failures = 0;
      this.lastError = undefined;
      return;
    }
    // Batches of one partition come one at a time: its checkpoint waits here, so the commit
    // that follows never passes it.
    const wait = part.lastCheckpointAt + this.options.checkpointIntervalMs - this.clock();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    await this.options.checkpoints(part.partition).save(this.checkpointOf(part));
    part.lastCheckpointAt = this.clock();
    this.failures = 0;
    this.lastError = undefined;
  }

  private partStats(part: Part): EngineStats {
    let total = ZERO;
    for (const engine of part.engines.values()) total = add(total, engine.stats());
    return total;
  }

  private checkpointOf(part: Part): PartitionCheckpoint {
    return {
      format: 'vigil-detector-partition',
      version: 1,
      group: this.options.group,
      topic: this.options.rekey.topic,
      partition: part.partition,
      offset: part.offset,
      punctuations: part.punctuations.toJSON(),
      engines: [...part.engines].map(([set, engine]) => [set, engine.snapshot()]),
      skipped: part.skipped,
      writtenAt: this.clock(),
    };
  }

  private failed(error: Error): void {
    this.lastError = error;
    this.consumer = undefined;
    if (this.stopped) return;
    this.failures++;
    const delay = Math.min((this.options.restartDelayMs ?? 500) * 2 ** (this.failures - 1), 30_000);
    this.options.logger.error(
      { err: error, restartInMs: delay },
      'detector engine stage failed; resuming from the last checkpoints',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.launch().catch((e: unknown) => this.failed(e as Error));
    }, delay);
  }
}

/** The name a partition's checkpoint is kept under: (group, topic, partition). */
export function partitionCheckpointName(group: string, topic: string, partition: number): string {
  return `${group}/${topic}/${partition}`;
}
