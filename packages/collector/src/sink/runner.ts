import type { Log, LogConsumer } from '../log/log.js';
import { SinkProcessor, type SinkLogger, type SinkProcessorOptions } from './sink.js';

/** What the runner reports; the application's Prometheus registry provides it. */
export interface SinkRunnerMetrics {
  readonly consumerLag: { set(labels: { partition: string }, value: number): void };
}

export interface SinkRunnerOptions extends SinkProcessorOptions {
  readonly log: Log;
  readonly logger: SinkLogger & { info(obj: object, msg: string): void };
  readonly metrics?: SinkRunnerMetrics;
  /** First delay before restarting after a failure; doubles up to maxRestartDelayMs. */
  readonly restartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
  /** How often the lag gauge is read (default 5 s). */
  readonly lagIntervalMs?: number;
}

/**
 * Keeps a sink consumer running: a failed batch (store down, say) stops the consumer without
 * committing, and the runner starts a new one after a backoff, which receives the same records
 * again from the last committed offset. Nothing is skipped and nothing is lost.
 */
export class SinkRunner {
  readonly processor: SinkProcessor;
  private consumer: LogConsumer | undefined;
  private stopped = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private lagTimer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;

  constructor(private readonly options: SinkRunnerOptions) {
    this.processor = new SinkProcessor(options);
  }

  private joined = false;

  /** The consumer is started and in its group (it may own no partition yet). */
  get running(): boolean {
    return this.consumer !== undefined && this.joined && !this.stopped;
  }

  /** For /readyz: what the sink is doing. */
  get state(): 'starting' | 'running' | 'restarting' | 'stopped' {
    if (this.stopped) return 'stopped';
    if (this.running) return 'running';
    return this.lastError ? 'restarting' : 'starting';
  }

  get error(): Error | undefined {
    return this.lastError;
  }

  async start(): Promise<void> {
    this.stopped = false;
    try {
      await this.launch();
    } catch (error) {
      // Unreachable broker, store down at start: retried like a failed batch.
      this.failed(error as Error);
    }
    if (this.options.metrics) {
      const gauge = this.options.metrics.consumerLag;
      // From the log's end offsets and the group's committed offsets, not from the live
      // consumer: a consumer that keeps failing (and restarting) must show as growing lag,
      // never as none.
      const { log, config } = this.options;
      this.lagTimer = setInterval(() => {
        log
          .groupLag(config.group)
          .then((lag) => {
            for (const [partition, value] of lag)
              gauge.set({ partition: String(partition) }, value);
          })
          .catch(() => undefined);
      }, this.options.lagIntervalMs ?? 5000);
      this.lagTimer.unref();
    }
  }

  private async launch(): Promise<void> {
    const { log, config, logger } = this.options;
    this.processor.reset();
    const consumer = log.consume({
      group: config.group,
      maxBatchRecords: config.maxBatchRecords,
      ...(config.maxBatchBytes !== undefined ? { maxBatchBytes: config.maxBatchBytes } : {}),
      handleBatch: async (batch) => {
        await this.processor.process(batch);
        this.failures = 0;
        this.lastError = undefined;
      },
      onAssign: (partitions) => {
        logger.info({ partitions }, 'sink owns partitions');
        this.processor.reset();
      },
      onRevoke: (partitions) => {
        logger.info({ partitions }, 'sink released partitions');
        this.processor.reset();
      },
      onError: (error) => this.failed(error),
    });
    this.consumer = consumer;
    this.joined = false;
    await consumer.start();
    this.joined = true;
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
      'sink batch failed; records will be delivered again',
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      this.launch().catch((e: unknown) => this.failed(e as Error));
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.lagTimer) clearInterval(this.lagTimer);
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.stop();
  }
}
