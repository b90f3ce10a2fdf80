import type { AlertUpdate, DetectionEngine, DetectionEvent, EngineStats } from '@vigil/detect';
import type { StoreBaselines } from '@vigil/query';
import type { ConsumedBatch, Log, LogConsumer } from '../log/log.js';
import type { CheckpointStore, DetectorCheckpoint } from './checkpoint.js';
import { DetectionReader, SeenHeads, type EventSource } from './events.js';
import type { DetectorRestrictions } from './restrictions.js';
import type { AlertOutput } from './outputs.js';
import { Watermark } from './watermark.js';
import type { EnrichmentPlugin } from '../sink/enrich.js';

/** The detector's settings (config `detect.*`). */
export interface DetectorConfig {
  /** Consumer group on the log (default `vigil-detector`). */
  readonly group: string;
  /** Log records per batch and partition. */
  readonly maxBatchRecords: number;
  readonly maxBatchBytes?: number;
  /**
   * Longest time between checkpoints (0: after every batch). A batch's offsets are committed
   * only once a checkpoint covers it, so a partition waits for it before its next batch.
   */
  readonly checkpointIntervalMs: number;
  /** Stream heads kept for the integrity flags (default 200 000). */
  readonly maxStreams?: number;
}

/** What one batch did, for the metrics. */
export interface DetectorBatchReport {
  readonly events: number;
  readonly skippedRecords: number;
  readonly droppedLate: number;
  readonly alertsRaised: number;
  readonly alertsUpdated: number;
  readonly evictions: number;
}

export interface DetectorObserver {
  batch(report: DetectorBatchReport): void;
  /** Wall clock minus the event-time watermark, in seconds. */
  watermarkLag(seconds: number): void;
}

export interface DetectorLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface DetectorRunnerOptions {
  readonly log: Log;
  readonly config: DetectorConfig;
  /** A new engine with the configured rules, overrides and lateness (one per start). */
  readonly engine: () => DetectionEngine;
  /** The AlertStore first, then the others (webhooks). */
  readonly outputs: readonly AlertOutput[];
  readonly checkpoints: CheckpointStore;
  /** The sink's enrichment, configured as the sink's. */
  readonly enrichment?: EnrichmentPlugin | undefined;
  /**
   * The stored baselines, the same object the engine was given as its `baseline`: prepared
   * for each batch's tenants and event times, and set to each event's time before the engine
   * sees it (detect/baseline-lookup.ts in @vigil/query).
   */
  readonly baselines?: StoreBaselines | undefined;
  /** Skips the events of restricted people (GDPR Art. 18), as the backtest and search do. */
  readonly restrictions?: DetectorRestrictions | undefined;
  readonly logger: DetectorLogger;
  readonly observer?: DetectorObserver;
  readonly clock?: () => number;
  /** First delay before restarting after a failure; doubles up to maxRestartDelayMs. */
  readonly restartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
}

const ZERO_STATS: EngineStats = {
  events: 0,
  droppedLate: 0,
  evictedGroups: 0,
  evictedEntries: 0,
  evictedAlertKeys: 0,
  alertsRaised: 0,
  alertsUpdated: 0,
};

/** State that lives between two checkpoints; rebuilt from the last checkpoint on every (re)start. */
interface Live {
  readonly engine: DetectionEngine;
  readonly reader: DetectionReader;
  readonly watermark: Watermark;
  /** Next offset to read per partition (records below it are in the engine's state). */
  readonly offsets: Map<number, number>;
  skipped: number;
  /**
   * A batch failed: this state may hold events whose alerts were not delivered, so it must
   * never be checkpointed; the runner restarts from the last checkpoint.
   */
  broken: boolean;
}

/**
 * The detector role: its own consumer group on the log, every event opened and enriched as the
 * sink stores it and fed to the detection engine in event time, alerts delivered to the
 * outputs, state checkpointed with the offsets it has read.
 *
 * Exactly-once alerts: after each batch the alerts it raised or grew go to every output (the
 * AlertStore first); then a checkpoint holding the engine's state *and* the next offset of
 * every partition read is written atomically; only then does the batch resolve, so the group's
 * committed offsets never pass the checkpoint. After a crash the detector restores the
 * checkpoint and skips records below its offsets (they may come again when the crash fell
 * between the checkpoint and the commit); records after it are read again and give the same
 * updates, which the outputs take idempotently per (alert id, version), and the engine knows
 * every alert key raised before the checkpoint, so none comes back as new. A failure (store down)
 * stops the consumer; the runner restarts after a backoff from the last checkpoint.
 *
 * Batches of several partitions are handled one at a time (one engine), and a checkpoint is
 * taken between two batches, never inside one.
 */
export class DetectorRunner {
  private consumer: LogConsumer | undefined;
  private live: Live | undefined;
  private stopped = false;
  private joined = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;
  /** Serialises batch work and snapshots. */
  private turn: Promise<unknown> = Promise.resolve();
  private pendingCheckpoint: Promise<void> | undefined;
  private lastCheckpointAt = 0;
  private readonly clock: () => number;

  constructor(private readonly options: DetectorRunnerOptions) {
    this.clock = options.clock ?? Date.now;
  }

  get running(): boolean {
    return this.consumer !== undefined && this.joined && !this.stopped;
  }

  /** For /readyz. */
  get state(): 'starting' | 'running' | 'restarting' | 'stopped' {
    if (this.stopped) return 'stopped';
    if (this.running) return 'running';
    return this.lastError ? 'restarting' : 'starting';
  }

  get error(): Error | undefined {
    return this.lastError;
  }

  /** The engine's counters (cumulative since its state began) and the watermark. */
  stats(): EngineStats & { skippedRecords: number; watermark: number } {
    const live = this.live;
    return {
      ...(live?.engine.stats() ?? ZERO_STATS),
      skippedRecords: live?.skipped ?? 0,
      watermark: live?.engine.currentWatermark() ?? -Infinity,
    };
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

  private async restore(): Promise<Live> {
    const { checkpoints, config, logger } = this.options;
    const engine = this.options.engine();
    const reader = new DetectionReader({
      enrichment: this.options.enrichment,
      heads: new SeenHeads(config.maxStreams),
    });
    const live: Live = {
      engine,
      reader,
      watermark: new Watermark(),
      offsets: new Map(),
      skipped: 0,
      broken: false,
    };
    const checkpoint = await checkpoints.load();
    if (checkpoint) {
      engine.restore(checkpoint.engine);
      for (const [p, o] of checkpoint.offsets) live.offsets.set(p, o);
      live.watermark.load(checkpoint.watermark);
      reader.heads.load(checkpoint.heads);
      live.skipped = checkpoint.skipped;
      logger.info(
        {
          checkpoint: checkpoints.where,
          offsets: checkpoint.offsets,
          watermark: engine.currentWatermark(),
        },
        'detector state restored',
      );
    }
    const committed = await this.options.log.committedOffsets(config.group);
    for (const [p, o] of committed) {
      const from = live.offsets.get(p) ?? 0;
      // The group committed past the checkpoint: the checkpoint was lost or replaced. The
      // records between were never read into this state; say so rather than pretend.
      if (o > from)
        logger.warn(
          { partition: p, committed: o, checkpoint: from },
          'the detector group committed beyond its checkpoint: windows of the records between are lost',
        );
    }
    return live;
  }

  private async launch(): Promise<void> {
    const { log, config, logger } = this.options;
    const live = await this.restore();
    this.live = live;
    this.turn = Promise.resolve();
    this.pendingCheckpoint = undefined;
    const consumer = log.consume({
      group: config.group,
      maxBatchRecords: config.maxBatchRecords,
      ...(config.maxBatchBytes !== undefined ? { maxBatchBytes: config.maxBatchBytes } : {}),
      handleBatch: async (batch) => {
        try {
          await this.serial(() => this.process(live, batch));
          await this.checkpointCovering(live);
        } catch (error) {
          live.broken = true;
          throw error;
        }
        this.failures = 0;
        this.lastError = undefined;
      },
      onAssign: async (partitions) => {
        logger.info({ partitions }, 'detector owns partitions');
        // Partitions with records to read hold the watermark back until their first batch.
        const lag = await log.groupLag(config.group);
        live.watermark.pending(partitions.filter((p) => (lag.get(p) ?? 0) > 0));
      },
      onRevoke: (partitions) => {
        logger.info({ partitions }, 'detector released partitions');
        live.watermark.release(partitions);
      },
      onError: (error) => this.failed(error),
    });
    this.consumer = consumer;
    this.joined = false;
    await consumer.start();
    this.joined = true;
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.turn.then(work);
    this.turn = next.catch(() => undefined);
    return next;
  }

  private async process(live: Live, batch: ConsumedBatch): Promise<void> {
    if (live.broken) throw new Error('detector state is being restored after a failed batch');
    const { engine, reader, watermark, offsets } = live;
    const before = engine.stats();
    const from = offsets.get(batch.partition) ?? 0;
    const updates: AlertUpdate[] = [];
    let maxTime = -Infinity;
    let skipped = 0;
    // Read first, then prepare what the events need (baselines of their tenants and times,
    // restrictions), then detect: the engine's lookups are synchronous.
    const events: DetectionEvent[] = [];
    const sources: EventSource[] = [];
    for (const record of batch.records) {
      // Already in the restored state (a crash between checkpoint and commit).
      if (record.offset < from) continue;
      try {
        const read = reader.read(record);
        for (const [i, event] of read.events.entries()) {
          events.push(event);
          sources.push(read.sources[i] as EventSource);
          const t = Math.min(event.time, read.receivedAt);
          if (t > maxTime) maxTime = t;
        }
      } catch (error) {
        // A record the detector cannot read is skipped and counted, never retried forever (the
        // sink keeps it in rejected_records).
        skipped++;
        this.options.logger.warn(
          { partition: record.partition, offset: record.offset, err: error },
          'detector skipped a log record it cannot read',
        );
      }
    }
    const { baselines, restrictions } = this.options;
    if (events.length > 0 && (baselines || restrictions)) {
      const spans = new Map<string, [number, number]>();
      for (const e of events) {
        const s = spans.get(e.tenant);
        if (s === undefined) spans.set(e.tenant, [e.time, e.time]);
        else {
          if (e.time < s[0]) s[0] = e.time;
          if (e.time > s[1]) s[1] = e.time;
        }
      }
      if (baselines)
        for (const [tenant, [lo, hi]] of spans) await baselines.prepare(tenant, lo, hi);
      await restrictions?.prepare([...spans.keys()]);
    }
    for (const [i, event] of events.entries()) {
      if (restrictions) {
        const source = sources[i] as EventSource;
        if (restrictions.restricted(event.tenant, source.record, source.disclosures)) continue;
      }
      baselines?.at(event.time);
      for (const update of engine.process(event)) updates.push(update);
    }
    const last = batch.records.at(-1);
    if (last) {
      offsets.set(batch.partition, Math.max(from, last.offset + 1));
      watermark.observe(batch.partition, maxTime, last.offset + 1 >= batch.highWatermark);
    }
    const mark = watermark.value();
    if (Number.isFinite(mark)) engine.advanceWatermark(mark);
    live.skipped += skipped;
    for (const output of this.options.outputs) await output.publish(updates);
    const after = engine.stats();
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
    const wm = engine.currentWatermark();
    if (Number.isFinite(wm)) this.options.observer?.watermarkLag((this.clock() - wm) / 1000);
  }

  /**
   * Resolves once a checkpoint taken after the batch just processed is durable: at most
   * `checkpointIntervalMs` after the last one, shared by every batch processed meanwhile.
   */
  private checkpointCovering(live: Live): Promise<void> {
    if (this.pendingCheckpoint) return this.pendingCheckpoint;
    const wait = Math.max(
      0,
      this.lastCheckpointAt + this.options.config.checkpointIntervalMs - this.clock(),
    );
    const pending = new Promise<void>((resolve) => setTimeout(resolve, wait)).then(() =>
      this.serial(async () => {
        // Taken between two batches: from here on, batches wait for the next checkpoint.
        this.pendingCheckpoint = undefined;
        if (live.broken) throw new Error('detector state is being restored after a failed batch');
        const checkpoint = this.checkpointOf(live);
        this.lastCheckpointAt = this.clock();
        await this.options.checkpoints.save(checkpoint);
      }),
    );
    this.pendingCheckpoint = pending;
    return pending;
  }

  private checkpointOf(live: Live): DetectorCheckpoint {
    return {
      format: 'vigil-detector-checkpoint',
      version: 1,
      group: this.options.config.group,
      offsets: [...live.offsets],
      watermark: live.watermark.toJSON(),
      heads: live.reader.heads.toJSON(),
      engine: live.engine.snapshot(),
      skipped: live.skipped,
      writtenAt: this.clock(),
    };
  }

  private failed(error: Error): void {
    this.lastError = error;
    this.consumer = undefined;
    if (this.stopped) return;
    this.failures++;
    const base = this.options.restartDelayMs ?? 500;
    const delay = Math.min(
      base * 2 ** (this.failures - 1),
      this.options.maxRestartDelayMs ?? 30_000,
    );
    this.options.logger.error(
      { err: error, restartInMs: delay },
      'detector batch failed; resuming from the last checkpoint',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.launch().catch((e: unknown) => this.failed(e as Error));
    }, delay);
  }
}
