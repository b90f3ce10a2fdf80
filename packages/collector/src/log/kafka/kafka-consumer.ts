import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { LogUnavailableError } from '../../errors.js';
import type { ConsumedBatch, ConsumedRecord, ConsumeOptions, LogConsumer } from '../log.js';
import { describeKafkaError, kafkaErrorType } from './kafka-errors.js';
import type { KafkaLogLogger } from './kafka-logger.js';

/** What a consumer needs from the `KafkaLog` that made it. */
export interface KafkaConsumerContext {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly partitions: number;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly maxWaitTimeMs: number;
  readonly logger: KafkaLogLogger | undefined;
  lag(group: string, partitions: readonly number[]): Promise<Map<number, number>>;
  stopped(consumer: KafkaLogConsumer): void;
}

/**
 * Group errors that mean "this member's generation is over": the coordinator is rebalancing
 * the group or has already moved on (Kafka protocol error codes 27, 22, 25). The member must
 * finish, stop committing and rejoin; kafkajs rejoins after the batch returns.
 */
const REBALANCE_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
]);

const EMPTY = Buffer.alloc(0);

/**
 * One member of a Kafka consumer group (kafkajs `consumer.run` with `eachBatch`).
 *
 * Offsets are committed by hand (`autoCommit: false`), one OffsetCommit per handled batch and
 * only after `handleBatch` resolved: at-least-once, as Kafka's consumer documentation describes
 * for "manual offset control". A new group starts from the earliest offset (`fromBeginning`,
 * Kafka's `auto.offset.reset=earliest`) so that nothing appended before the first start is missed.
 */
export class KafkaLogConsumer implements LogConsumer {
  private readonly consumer: Consumer;
  private readonly maxBatchRecords: number;
  private readonly maxBatchBytes: number;
  private owned = new Set<number>();
  /** onRevoke/onAssign callbacks, in the order of the group joins that caused them. */
  private assignment: Promise<void> = Promise.resolve();
  /** The batch being handled per partition; a revocation waits for it. */
  private readonly inFlight = new Map<number, Promise<void>>();
  private started = false;
  private failure: Error | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly context: KafkaConsumerContext,
    private readonly options: ConsumeOptions,
  ) {
    this.maxBatchRecords = options.maxBatchRecords ?? Number.MAX_SAFE_INTEGER;
    this.maxBatchBytes = options.maxBatchBytes ?? Number.MAX_SAFE_INTEGER;
    this.consumer = context.kafka.consumer({
      groupId: options.group,
      // The mock broker and brokers with auto.create.topics.enable would otherwise create a
      // mistyped topic with the broker's default partition count.
      allowAutoTopicCreation: false,
      sessionTimeout: context.sessionTimeoutMs,
      heartbeatInterval: context.heartbeatIntervalMs,
      maxWaitTimeInMs: context.maxWaitTimeMs,
    });
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('this consumer was already started');
    this.started = true;
    const { consumer } = this;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.joined(payload.memberAssignment[this.context.topic] ?? []);
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.crashed(payload.error, payload.restart);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [this.context.topic], fromBeginning: true });
      // Resolves once the first join and sync are done (kafkajs Runner.start).
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        // Partitions are independent streams; kafkajs still hands one partition's batches over
        // one at a time, in offset order.
        partitionsConsumedConcurrently: this.context.partitions,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (error) {
      await consumer.disconnect().catch(() => undefined);
      this.context.stopped(this);
      throw new LogUnavailableError(
        `cannot start the Kafka consumer of group "${this.options.group}" on topic ` +
          `"${this.context.topic}": ${describeKafkaError(error)}`,
        error,
      );
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  lag(): Promise<Map<number, number>> {
    return this.context.lag(
      this.options.group,
      [...this.owned].sort((a, b) => a - b),
    );
  }

  /** A group join (first or after a rebalance) gave this member `partitions`. */
  private joined(partitions: readonly number[]): void {
    const next = new Set(partitions);
    const revoked = [...this.owned].filter((p) => !next.has(p)).sort((a, b) => a - b);
    const assigned = [...next].filter((p) => !this.owned.has(p)).sort((a, b) => a - b);
    this.owned = next;
    this.reassign(revoked, assigned);
  }

  /**
   * kafkajs does not await its event listeners, so the callbacks are chained here and every
   * batch waits for the chain: onAssign runs before the first batch of a partition is handed
   * over, onRevoke after the partition's batch in flight has finished.
   */
  private reassign(revoked: readonly number[], assigned: readonly number[]): void {
    const { onAssign, onRevoke } = this.options;
    const draining: Promise<void>[] = [];
    for (const partition of revoked) {
      const batch = this.inFlight.get(partition);
      if (batch !== undefined) draining.push(batch);
    }
    this.assignment = this.assignment
      .then(async () => {
        await Promise.all(draining);
        if (revoked.length > 0) await onRevoke?.(revoked);
        if (assigned.length > 0) await onAssign?.(assigned);
      })
      .catch((error: unknown) => this.fail(asError(error)));
  }

  private crashed(error: Error, restart: boolean): void {
    // kafkajs has left the group before it emits CRASH; whatever it rejoins with is a new
    // assignment (kafkajs src/consumer/index.js, onCrash).
    const revoked = [...this.owned].sort((a, b) => a - b);
    this.owned = new Set();
    this.reassign(revoked, []);
    if (!restart) {
      this.fail(
        new LogUnavailableError(
          `the Kafka consumer of group "${this.options.group}" stopped: ${describeKafkaError(error)}`,
          error,
        ),
      );
    }
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { partition } = payload.batch;
    await this.assignment;
    if (this.failure !== undefined) {
      payload.pause();
      return;
    }
    const work = this.handle(payload);
    this.inFlight.set(partition, work);
    try {
      await work;
    } finally {
      if (this.inFlight.get(partition) === work) this.inFlight.delete(partition);
    }
  }

  /**
   * Hands the fetched records over in slices of at most `maxBatchRecords` records and
   * `maxBatchBytes` bytes of values, committing each. Never rejects.
   */
  private async handle(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { partition, messages } = batch;
    const highWatermark = Number(batch.highWatermark);
    let rebalancing = false;
    // A slow handleBatch must not cost the membership: kafkajs only heartbeats between batches,
    // and a member silent for session.timeout.ms is removed from the group (KIP-62).
    const heartbeats = setInterval(() => {
      payload.heartbeat().catch((error: unknown) => {
        if (REBALANCE_ERRORS.has(kafkaErrorType(error) ?? '')) rebalancing = true;
      });
    }, this.context.heartbeatIntervalMs);
    try {
      for (let start = 0, end = 0; start < messages.length; start = end) {
        end = sliceEnd(messages, start, this.maxBatchRecords, this.maxBatchBytes);
        if (
          !payload.isRunning() ||
          payload.isStale() ||
          rebalancing ||
          this.failure !== undefined
        ) {
          return;
        }
        const slice = messages.slice(start, end);
        const records = slice.map((message) => toRecord(partition, message));
        const consumed: ConsumedBatch = { partition, records, highWatermark };
        try {
          await this.options.handleBatch(consumed);
        } catch (error) {
          // Not committed, not resolved: the same records come again after a restart.
          payload.pause();
          this.fail(asError(error));
          return;
        }
        const last = slice[slice.length - 1]?.offset;
        if (last === undefined) continue;
        if (!(await this.commit(payload, partition, last))) return;
        payload.resolveOffset(last);
      }
    } finally {
      clearInterval(heartbeats);
    }
  }

  /**
   * Commits `last + 1`, the offset of the next record to read (Kafka's committed-offset
   * convention). Uses the batch's own commit, which still works while the consumer stops, so
   * stop() commits the batch in flight. A failed commit is not fatal: the batch is delivered
   * again, to this member or to the partition's next owner.
   */
  private async commit(
    payload: EachBatchPayload,
    partition: number,
    last: string,
  ): Promise<boolean> {
    const offset = String(Number(last) + 1);
    try {
      await payload.commitOffsetsIfNecessary({
        topics: [{ topic: this.context.topic, partitions: [{ partition, offset }] }],
      });
      return true;
    } catch (error) {
      this.context.logger?.warn(
        { group: this.options.group, partition, offset, error: describeKafkaError(error) },
        'Kafka offset commit failed; the batch will be delivered again',
      );
      return false;
    }
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    void this.stop().then(() => this.options.onError?.(error));
  }

  private async shutdown(): Promise<void> {
    try {
      // Waits for the batches in flight (they commit), then sends LeaveGroup so the partitions
      // move to the other members without waiting for the session timeout.
      await this.consumer.disconnect();
    } catch (error) {
      this.context.logger?.warn(
        { group: this.options.group, error: describeKafkaError(error) },
        'Kafka consumer did not leave its group cleanly',
      );
    }
    const revoked = [...this.owned].sort((a, b) => a - b);
    this.owned = new Set();
    if (revoked.length > 0) this.reassign(revoked, []);
    await this.assignment;
    this.context.stopped(this);
  }
}

function toRecord(partition: number, message: KafkaMessage): ConsumedRecord {
  const record = {
    partition,
    offset: Number(message.offset),
    key: message.key === null ? '' : message.key.toString('utf8'),
    value: message.value ?? EMPTY,
    timestamp: Number(message.timestamp),
  };
  const raw = message.headers;
  if (raw === undefined || Object.keys(raw).length === 0) return record;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    // A header repeated under one name arrives as an array: the last one counts.
    const one = Array.isArray(value) ? value.at(-1) : value;
    if (one !== undefined) headers[name] = Buffer.isBuffer(one) ? one.toString('utf8') : one;
  }
  return { ...record, headers };
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** End (exclusive) of the slice from `start`: at least one message, then within both bounds. */
function sliceEnd(
  messages: readonly { value: Buffer | null }[],
  start: number,
  maxRecords: number,
  maxBytes: number,
): number {
  let end = start;
  let bytes = 0;
  while (end < messages.length && end - start < maxRecords) {
    const size = messages[end]?.value?.length ?? 0;
    if (end > start && bytes + size > maxBytes) break;
    bytes += size;
    end++;
  }
  return end;
}
