import { CollectorError, CollectorErrorCodes } from '../errors.js';
import type { Log } from '../log/log.js';

/** Seconds a client is asked to wait when the sinks lag beyond the bound. */
export const LAG_RETRY_AFTER_SECONDS = 2;
/** Seconds a client is asked to wait while the sink of this process is not running. */
export const SINK_RETRY_AFTER_SECONDS = 5;

export interface AdmissionOptions {
  readonly log: Log;
  /** The sinks' consumer group: its committed offsets against the log's end say the lag. */
  readonly group: string;
  /** Refuse while the group lags by more than this many log records; 0: no bound. */
  readonly maxLagRecords: number;
  /**
   * How often the lag is read again. Requests are judged on the last reading: the embedded
   * log answers from memory, Kafka with two admin requests, so this is seconds, not per request.
   */
  readonly refreshMs: number;
  /**
   * The state of the sink running in this process (`vigil start`), if any: while it has failed
   * and waits to restart (`restarting`: the store is down, say) or has stopped, nothing drains
   * the log, and events are refused. While it is `starting` (joining its consumer group, which
   * on Kafka takes seconds) events are taken: the log holds them, the lag bound still applies,
   * and a process that has just started does not turn its first clients away.
   */
  readonly sinkState?: () => string;
  readonly logger?: { warn(obj: object, msg: string): void };
  /**
   * Ingest requests admitted and not yet answered, at most (0: no bound). Each holds its body
   * (up to ingest.maxBodyKiB) while it is read and checked, so this bounds the collector's
   * memory whatever the number of connections.
   */
  readonly maxInFlight?: number;
}

/** Why the collector refuses events now: the error, and the Retry-After it comes with. */
export interface Refusal {
  readonly error: CollectorError;
  readonly retryAfterSeconds: number;
}

/**
 * Admission control of the ingest endpoint (STYLE: bounded queues, backpressure with 503 +
 * Retry-After). The log absorbs bursts, so a lag as such is fine; but a lag that only grows
 * means acknowledged events wait longer and longer to become searchable, and a log that grows
 * without bound fills the disk (or, on Kafka, outruns the topic's retention). Past
 * `maxLagRecords` records not yet committed by the sinks' group, and while the sink of this
 * process is down, new events are refused with 503 and Retry-After; the SDK keeps them (memory
 * queue, disk spool) and sends them again.
 *
 * The lag is read every `refreshMs` on a timer, never on the request path: the embedded log
 * answers from its offsets in memory; on Kafka a collector runs no consumer, so it asks the
 * brokers with the admin API (ListOffsets for the ends, OffsetFetch for the group's committed
 * offsets), as `kafka-consumer-groups.sh --describe` does. When a reading fails (broker
 * unreachable), the last one is kept; appends to an unreachable log fail on their own (503).
 */
export class Admission {
  private lagRecords = 0;
  private readAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private failing = false;
  private inFlight = 0;

  constructor(private readonly options: AdmissionOptions) {}

  /** Reads the lag once now, then every `refreshMs`. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The last reading: records the sinks' group has not committed, over all partitions. */
  get lag(): number {
    return this.lagRecords;
  }

  /** Epoch ms of the last successful reading (0: none yet). */
  get lastReadAt(): number {
    return this.readAt;
  }

  /** Reads the lag now (the timer calls it; tests too). Never rejects. */
  refresh(): Promise<void> {
    this.reading ??= this.options.log
      .groupLag(this.options.group)
      .then((lag) => {
        let total = 0;
        for (const records of lag.values()) total += records;
        this.lagRecords = total;
        this.readAt = Date.now();
        if (this.failing) this.options.logger?.warn({ lag: total }, 'consumer lag readable again');
        this.failing = false;
      })
      .catch((error: unknown) => {
        if (!this.failing)
          this.options.logger?.warn(
            { err: error },
            'could not read the consumer lag; judging ingest on the last reading',
          );
        this.failing = true;
      })
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  /**
   * Admits one request (then `leave()` once it is answered), or says why not: the refusals of
   * `refusal()`, or too many requests in flight.
   */
  enter(): Refusal | undefined {
    const refused = this.refusal();
    if (refused) return refused;
    const max = this.options.maxInFlight ?? 0;
    if (max > 0 && this.inFlight >= max) {
      return {
        retryAfterSeconds: 1,
        error: new CollectorError(
          CollectorErrorCodes.OVERLOADED,
          `the collector is already handling ${this.inFlight} ingest requests; retry after the Retry-After delay`,
          { status: 503, retriable: true },
        ),
      };
    }
    this.inFlight++;
    return undefined;
  }

  leave(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
  }

  /** Ingest requests admitted and not yet answered. */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Undefined when events may come in; otherwise why not. Cheap: runs on every request. */
  refusal(): Refusal | undefined {
    const state = this.options.sinkState?.();
    if (state === 'restarting' || state === 'stopped') {
      return {
        retryAfterSeconds: SINK_RETRY_AFTER_SECONDS,
        error: new CollectorError(
          CollectorErrorCodes.SINK_NOT_READY,
          `the sink of this process is ${state}: nothing would store the events; retry after the Retry-After delay`,
          { status: 503, retriable: true },
        ),
      };
    }
    const { maxLagRecords } = this.options;
    if (maxLagRecords > 0 && this.lagRecords > maxLagRecords) {
      return {
        retryAfterSeconds: LAG_RETRY_AFTER_SECONDS,
        error: new CollectorError(
          CollectorErrorCodes.OVERLOADED,
          `the sinks lag ${this.lagRecords} log records behind, more than ingest.maxLagRecords (${maxLagRecords}); retry after the Retry-After delay`,
          { status: 503, retriable: true },
        ),
      };
    }
    return undefined;
  }
}
