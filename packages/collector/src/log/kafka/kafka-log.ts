import type { ConnectionOptions } from 'node:tls';
import {
  CompressionTypes,
  Kafka,
  type Admin,
  type ICustomPartitioner,
  type Message,
  type Producer,
  type RetryOptions,
  type SASLOptions,
} from 'kafkajs';
import {
  ConfigError,
  LogClosedError,
  LogTopicMissingError,
  LogUnavailableError,
} from '../../errors.js';
import type { AppendedPosition, ConsumeOptions, Log, LogConsumer, LogMessage } from '../log.js';
import { partitionForKey } from '../partitioner.js';
import { KafkaLogConsumer, type KafkaConsumerContext } from './kafka-consumer.js';
import { appendError, describeKafkaError } from './kafka-errors.js';
import { kafkaLogging, type KafkaLogLogger } from './kafka-logger.js';

export interface KafkaSaslOptions {
  readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  readonly username: string;
  readonly password: string;
}

export interface KafkaLogOptions {
  /** Bootstrap brokers, `host:port` each. */
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly topic: string;
  /** Must equal the topic's partition count: it decides which partition a key goes to. */
  readonly partitions: number;
  /** `true` for TLS with the system CAs, or Node TLS options (ca, cert, key, servername…). */
  readonly ssl?: boolean | ConnectionOptions;
  readonly sasl?: KafkaSaslOptions;
  /** How long `open()` keeps trying to reach a broker and check the topic. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Timeout of one broker request, and the broker's wait for replica acks. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /**
   * How long an append may take, kafkajs retries included, before it rejects with a
   * retriable LogUnavailableError (the collector answers 503). Default 10 s.
   */
  readonly appendTimeoutMs?: number;
  /** Record-batch compression. Default gzip (audit events are JSON and compress well). */
  readonly compression?: 'gzip' | 'none';
  /**
   * Idempotent producer (KIP-98): the broker drops the duplicates that producer retries would
   * otherwise write. Recommended on a real cluster. Default false because librdkafka 2.0.2's
   * mock broker (the test broker) reports controller id 0 and kafkajs then cannot obtain a
   * producer id; the sink deduplicates by event id either way.
   */
  readonly idempotent?: boolean;
  /**
   * Produce requests in flight per broker connection. Default 5, Kafka's own default for
   * max.in.flight.requests.per.connection. Order is kept regardless: one append's messages for a
   * partition travel in one record batch, and an append that resolved is written before any
   * append started after it; only appends running at the same time (which have no order between
   * them) can be reordered by a retry.
   */
  readonly maxInFlightRequests?: number;
  /** Consumer group session timeout (Kafka session.timeout.ms). Default 30 s. */
  readonly sessionTimeoutMs?: number;
  /** Consumer heartbeat period; about a third of the session timeout. Default 3 s. */
  readonly heartbeatIntervalMs?: number;
  /** Longest a fetch waits at the broker for new records (fetch.max.wait.ms). Default 1 s. */
  readonly maxWaitTimeMs?: number;
  /** Where kafkajs's own log lines go; silent without one. */
  readonly logger?: KafkaLogLogger;
}

/**
 * Retries of kafkajs requests: short and bounded, so that a dead cluster turns into a 503 within
 * `appendTimeoutMs` instead of a request hanging for kafkajs's default ~30 s of backoff.
 */
const RETRY: RetryOptions = { initialRetryTime: 100, maxRetryTime: 1_000, retries: 5 };
/** Admin requests (topic check, readiness probe, offsets) answer fast or fail. */
const ADMIN_RETRY: RetryOptions = { initialRetryTime: 100, maxRetryTime: 500, retries: 2 };
/** Period of the readiness probe while appends fail. */
const PROBE_INTERVAL_MS = 1_000;

/**
 * The partition is chosen by `partitionForKey` (Kafka's murmur2 default partitioner) before the
 * message reaches kafkajs, so the embedded log and Kafka agree on it; kafkajs only obeys.
 */
const explicitPartition: ICustomPartitioner =
  () =>
  ({ message }) => {
    if (message.partition === undefined) throw new Error('message without a partition');
    return message.partition;
  };

/**
 * The log on Kafka, through kafkajs: the production setup with many collectors and sinks.
 *
 * Appends are produced with acks=all (`acks: -1`: every in-sync replica has the batch before it
 * is acknowledged; with the topic's `min.insync.replicas` ≥ 2 an acknowledged batch survives the
 * loss of a broker) and resolve with the offsets Kafka assigned. Topics are never created here:
 * their partition count and replication are operations decisions, and `open()` fails with a
 * message that says what to create.
 */
export class KafkaLog implements Log {
  readonly kind = 'kafka' as const;
  readonly topic: string;
  readonly partitions: number;

  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly brokerList: string;
  private readonly compression: CompressionTypes;
  private readonly requestTimeoutMs: number;
  private readonly appendTimeoutMs: number;
  private readonly idempotent: boolean;
  private readonly consumerContext: KafkaConsumerContext;
  private readonly consumers = new Set<KafkaLogConsumer>();
  private readonly appending = new Set<Promise<unknown>>();
  private producerConnected = false;
  private appendFailing = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  /** Connects, checks the topic and its partition count, and starts the producer. */
  static async open(options: KafkaLogOptions): Promise<KafkaLog> {
    const log = new KafkaLog(options);
    try {
      await log.start(options.connectTimeoutMs ?? 10_000);
    } catch (error) {
      await log.close();
      throw error;
    }
    return log;
  }

  private constructor(options: KafkaLogOptions) {
    validate(options);
    this.topic = options.topic;
    this.partitions = options.partitions;
    this.brokerList = options.brokers.join(', ');
    this.compression =
      options.compression === 'none' ? CompressionTypes.None : CompressionTypes.GZIP;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.appendTimeoutMs = options.appendTimeoutMs ?? 10_000;
    this.idempotent = options.idempotent ?? false;
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;

    this.kafka = new Kafka({
      brokers: [...options.brokers],
      clientId: options.clientId,
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
      ...(options.sasl === undefined ? {} : { sasl: saslOptions(options.sasl) }),
      // One TCP (and TLS) connect; open() keeps retrying until connectTimeoutMs.
      connectionTimeout: Math.min(connectTimeoutMs, 5_000),
      requestTimeout: this.requestTimeoutMs,
      retry: RETRY,
      ...kafkaLogging(options.logger),
    });
    this.producer = this.kafka.producer({
      createPartitioner: explicitPartition,
      allowAutoTopicCreation: false,
      idempotent: this.idempotent,
      maxInFlightRequests: options.maxInFlightRequests ?? 5,
      retry: RETRY,
    });
    this.admin = this.kafka.admin({ retry: ADMIN_RETRY });

    const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 3_000;
    this.consumerContext = {
      kafka: this.kafka,
      topic: this.topic,
      partitions: this.partitions,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 30_000,
      heartbeatIntervalMs,
      maxWaitTimeMs: options.maxWaitTimeMs ?? 1_000,
      logger: options.logger,
      lag: (group, partitions) => this.lag(group, partitions),
      stopped: (consumer) => this.consumers.delete(consumer),
    };
  }

  partitionFor(key: string): number {
    return partitionForKey(key, this.partitions);
  }

  ready(): boolean {
    return this.closing === undefined && this.producerConnected && !this.appendFailing;
  }

  async append(messages: readonly LogMessage[]): Promise<AppendedPosition[]> {
    if (this.closing !== undefined) throw new LogClosedError();
    if (messages.length === 0) return [];

    const now = String(Date.now());
    const partitionOf: number[] = [];
    const records: Message[] = [];
    for (const message of messages) {
      const partition = partitionForKey(message.key, this.partitions);
      partitionOf.push(partition);
      records.push({
        key: message.key,
        value: message.value,
        partition,
        timestamp: message.timestamp === undefined ? now : String(message.timestamp),
        ...(message.headers === undefined ? {} : { headers: { ...message.headers } }),
      });
    }

    const sending = this.producer.sendBatch({
      topicMessages: [{ topic: this.topic, messages: records }],
      acks: -1,
      timeout: this.requestTimeoutMs,
      compression: this.compression,
    });
    this.appending.add(sending);
    let acknowledged: Awaited<typeof sending>;
    try {
      acknowledged = await withTimeout(
        sending,
        this.appendTimeoutMs,
        () => `no acknowledgement from the brokers within ${this.appendTimeoutMs} ms`,
      );
    } catch (error) {
      this.appendFailed();
      throw appendError(error, this.topic);
    } finally {
      this.appending.delete(sending);
    }
    this.appendFailing = false;

    // One record batch per partition; Kafka gives its first record `baseOffset` and the others
    // the following offsets, in the order they were sent (Kafka protocol, ProduceResponse).
    const next = new Map<number, number>();
    for (const { partition, baseOffset } of acknowledged) {
      next.set(partition, Number(baseOffset));
    }
    return partitionOf.map((partition) => {
      const offset = next.get(partition);
      if (offset === undefined || Number.isNaN(offset)) {
        throw new LogUnavailableError(`Kafka acknowledged no offset for partition ${partition}`);
      }
      next.set(partition, offset + 1);
      return { partition, offset };
    });
  }

  consume(options: ConsumeOptions): LogConsumer {
    if (this.closing !== undefined) throw new LogClosedError();
    const consumer = new KafkaLogConsumer(this.consumerContext, options);
    this.consumers.add(consumer);
    return consumer;
  }

  groupLag(group: string): Promise<Map<number, number>> {
    if (this.closing !== undefined) return Promise.reject(new LogClosedError());
    // Two admin requests (ListOffsets, OffsetFetch): callers cache the answer for seconds.
    return this.lag(
      group,
      Array.from({ length: this.partitions }, (_, p) => p),
    );
  }

  async committedOffsets(group: string): Promise<Map<number, number>> {
    if (this.closing !== undefined) throw new LogClosedError();
    const committed = await this.fetchCommitted(group);
    for (const [partition, offset] of committed) {
      if (offset < 0) committed.delete(partition);
    }
    return committed;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.probeTimer);
      await Promise.all([...this.consumers].map((consumer) => consumer.stop()));
      await Promise.allSettled([...this.appending]);
      this.producerConnected = false;
      await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
    })();
    return this.closing;
  }

  private async start(connectTimeoutMs: number): Promise<void> {
    const deadline = Date.now() + connectTimeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        await withTimeout(this.checkTopic(), deadline - Date.now(), () => 'timed out');
        break;
      } catch (error) {
        if (error instanceof LogTopicMissingError) throw error;
        lastError = error;
      }
      const wait = Math.min(250, deadline - Date.now());
      if (wait <= 0) throw this.unreachable(connectTimeoutMs, lastError);
      await sleep(wait);
    }
    try {
      await withTimeout(this.producer.connect(), deadline - Date.now(), () => 'timed out');
    } catch (error) {
      throw new LogUnavailableError(
        `cannot start the Kafka producer on ${this.brokerList}: ${describeKafkaError(error)}` +
          (this.idempotent
            ? '; the idempotent producer needs a producer id from the cluster controller ' +
              "(InitProducerId), which some brokers (librdkafka's mock) cannot give: set " +
              'idempotent to false for them'
            : ''),
        error,
      );
    }
    this.producerConnected = true;
  }

  /**
   * Throws LogTopicMissingError unless the topic exists with the configured partition count.
   * Lists all topics (a null topic array) rather than asking for this one: a Metadata request
   * naming an unknown topic creates it on brokers with auto.create.topics.enable unless it says
   * AllowAutoTopicCreation=false, a field that Metadata v4 added (Kafka MetadataRequest.json);
   * librdkafka's mock broker answers only up to v2 and so creates any topic it is asked about.
   */
  private async checkTopic(): Promise<void> {
    await this.admin.connect();
    const topics = await this.admin.listTopics();
    const create =
      `create it with ${this.partitions} partitions, e.g. kafka-topics.sh --create --topic ` +
      `${this.topic} --partitions ${this.partitions} --replication-factor 3 ` +
      `--config min.insync.replicas=2, or set log.partitions to match`;
    if (!topics.includes(this.topic)) {
      throw new LogTopicMissingError(
        `Kafka topic "${this.topic}" does not exist on ${this.brokerList}: ${create}`,
      );
    }
    const { topics: described } = await this.admin.fetchTopicMetadata({ topics: [this.topic] });
    const found = described[0]?.partitions.length ?? 0;
    if (found !== this.partitions) {
      throw new LogTopicMissingError(
        `Kafka topic "${this.topic}" has ${found} partitions but ${this.partitions} are ` +
          `configured; keys would land in other partitions than the embedded log's. ` +
          `Use a topic with ${this.partitions} partitions (${create})`,
      );
    }
  }

  private unreachable(timeoutMs: number, cause: unknown): LogUnavailableError {
    return new LogUnavailableError(
      `cannot reach any Kafka broker of ${this.brokerList} within ${timeoutMs} ms` +
        (cause === undefined ? '' : `: ${describeKafkaError(cause)}`),
      cause,
    );
  }

  /**
   * After a failed append the log reports not ready (the collector answers 503) until an append
   * succeeds or this probe sees every partition of the topic with a leader again: without the
   * probe a collector that stops sending while not ready would never become ready.
   */
  private appendFailed(): void {
    this.appendFailing = true;
    if (this.probeTimer !== undefined || this.closing !== undefined) return;
    const probe = async (): Promise<void> => {
      try {
        const { topics } = await this.admin.fetchTopicMetadata({ topics: [this.topic] });
        const partitions = topics[0]?.partitions ?? [];
        if (partitions.length === this.partitions && partitions.every((p) => p.leader >= 0)) {
          this.appendFailing = false;
        }
      } catch {
        // Still unreachable; probe again.
      }
      this.probeTimer = undefined;
      if (this.appendFailing && this.closing === undefined) schedule();
    };
    const schedule = (): void => {
      this.probeTimer = setTimeout(() => void probe(), PROBE_INTERVAL_MS);
      this.probeTimer.unref();
    };
    schedule();
  }

  private async lag(group: string, partitions: readonly number[]): Promise<Map<number, number>> {
    const [ends, committed] = await Promise.all([
      this.adminCall(() => this.admin.fetchTopicOffsets(this.topic)),
      this.fetchCommitted(group),
    ]);
    const lag = new Map<number, number>();
    for (const partition of partitions) {
      const end = ends.find((entry) => entry.partition === partition);
      if (end === undefined) continue;
      // Nothing committed yet: the group starts at the log start (auto.offset.reset=earliest);
      // a commit below the log start (retention removed what it had not read) counts from there.
      const from = committed.get(partition) ?? -1;
      const position = Math.max(from, Number(end.low));
      lag.set(partition, Math.max(0, Number(end.high) - position));
    }
    return lag;
  }

  /** Committed offsets of `group`; -1 where the group has none (OffsetFetch). */
  private async fetchCommitted(group: string): Promise<Map<number, number>> {
    const topics = await this.adminCall(() =>
      this.admin.fetchOffsets({ groupId: group, topics: [this.topic] }),
    );
    const committed = new Map<number, number>();
    for (const { partition, offset } of topics[0]?.partitions ?? []) {
      committed.set(partition, Number(offset));
    }
    return committed;
  }

  private async adminCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      await this.admin.connect();
      return await call();
    } catch (error) {
      throw new LogUnavailableError(
        `Kafka admin request for topic "${this.topic}" failed: ${describeKafkaError(error)}`,
        error,
      );
    }
  }
}

function validate(options: KafkaLogOptions): void {
  const problems: string[] = [];
  if (options.brokers.length === 0) problems.push('brokers must list at least one host:port');
  if (options.topic.length === 0) problems.push('topic must not be empty');
  if (!Number.isInteger(options.partitions) || options.partitions < 1) {
    problems.push(`partitions must be a positive integer, not ${options.partitions}`);
  }
  const session = options.sessionTimeoutMs ?? 30_000;
  const heartbeat = options.heartbeatIntervalMs ?? 3_000;
  if (heartbeat >= session) {
    problems.push(`heartbeatIntervalMs (${heartbeat}) must be below sessionTimeoutMs (${session})`);
  }
  if (problems.length > 0)
    throw new ConfigError(`invalid Kafka log options: ${problems.join('; ')}`);
}

function saslOptions({ mechanism, username, password }: KafkaSaslOptions): SASLOptions {
  switch (mechanism) {
    case 'plain':
      return { mechanism, username, password };
    case 'scram-sha-256':
      return { mechanism, username, password };
    case 'scram-sha-512':
      return { mechanism, username, password };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Settles with `promise`, or rejects after `ms`. kafkajs keeps going in the background after a
 * timeout (its own retries are bounded by RETRY), so its late failure is swallowed here.
 */
function withTimeout<T>(promise: Promise<T>, ms: number, why: () => string): Promise<T> {
  promise.catch(() => undefined);
  if (ms <= 0) return Promise.reject(new Error(why()));
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(why())), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
