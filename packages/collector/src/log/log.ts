/**
 * The log between collectors and sinks, with Kafka's semantics (BRIEF: "one log abstraction").
 *
 * A topic has a fixed number of partitions. A message goes to the partition its key hashes to,
 * so all messages of one key (one tenant's stream) keep their order. Offsets are dense,
 * per-partition, start at 0 and never change: they are the positions that proofs build on.
 * Consumers in a group share the partitions; each partition has one owner at a time, which
 * processes batches in order and commits the offset after a batch is safely stored
 * (at-least-once). Two implementations: the embedded on-disk log (`FileLog`) and Kafka
 * (`KafkaLog`); the contract suite in `contract.testkit.ts` runs against both.
 */

export interface LogMessage {
  /** Partitioning key: messages with equal keys land in the same partition, in order. */
  readonly key: string;
  readonly value: Buffer;
  /** Epoch milliseconds; defaults to the time of the append. */
  readonly timestamp?: number;
  /**
   * Record headers (Kafka only: the embedded log does not keep them, and nothing that appends
   * to it sets any). The detector's re-key topic names a message's group-by set in one.
   */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface AppendedPosition {
  readonly partition: number;
  readonly offset: number;
}

export interface ConsumedRecord {
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  readonly value: Buffer;
  readonly timestamp: number;
  /** The record's headers, where the log keeps them (Kafka). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ConsumedBatch {
  readonly partition: number;
  /** In offset order, without holes except where the log itself has none to give. */
  readonly records: readonly ConsumedRecord[];
  /** The offset the next appended record of this partition will get. */
  readonly highWatermark: number;
}

export interface ConsumeOptions {
  /** Consumer group: the committed offsets belong to it. */
  readonly group: string;
  /** At most this many records per batch handed to `handleBatch`. */
  readonly maxBatchRecords?: number;
  /**
   * At most this many bytes of records per batch (their values; the file log counts its
   * framing too); a single larger record is handed over alone. What bounds a consumer's
   * memory: a record holds up to ingest.maxEvents events.
   */
  readonly maxBatchBytes?: number;
  /**
   * Called with one partition's records in order. The group's offset for that partition is
   * committed (to the last record's offset + 1) only after the returned promise resolves; if it
   * rejects, the consumer stops and the same records are delivered again after a restart.
   */
  readonly handleBatch: (batch: ConsumedBatch) => Promise<void>;
  /** Partitions this consumer now owns (before any batch of them is handed over). */
  readonly onAssign?: (partitions: readonly number[]) => Promise<void> | void;
  /** Partitions this consumer no longer owns (after their in-flight batch finished). */
  readonly onRevoke?: (partitions: readonly number[]) => Promise<void> | void;
  /** A batch handler failed or the log failed underneath; the consumer has stopped. */
  readonly onError?: (error: Error) => void;
}

export interface LogConsumer {
  /** Resolves once the consumer is subscribed (partitions may be assigned later). */
  start(): Promise<void>;
  /** Finishes the batch in flight, commits it, and leaves the group. */
  stop(): Promise<void>;
  /** Records not yet committed by this group, per partition owned here. */
  lag(): Promise<Map<number, number>>;
}

export interface Log {
  readonly kind: 'file' | 'kafka';
  readonly topic: string;
  readonly partitions: number;
  /** The partition a key goes to. Stable for the life of the topic. */
  partitionFor(key: string): number;
  /**
   * Appends messages and resolves once they are durable (embedded: fsynced; Kafka: acked by
   * all in-sync replicas). Resolves positions in the order of `messages`. Rejects with a
   * retriable error when the log cannot take them now.
   */
  append(messages: readonly LogMessage[]): Promise<AppendedPosition[]>;
  consume(options: ConsumeOptions): LogConsumer;
  /** Committed offset of `group` per partition (absent: nothing committed yet). */
  committedOffsets(group: string): Promise<Map<number, number>>;
  /**
   * Records of every partition that `group` has not committed yet (end offset − committed
   * offset, or − the log start where the group has committed nothing). Any process with the
   * log can ask, whether or not it runs a consumer of the group: a collector uses it to refuse
   * events while the sinks lag too far behind (ingest/admission.ts).
   */
  groupLag(group: string): Promise<Map<number, number>>;
  /** Whether the log can take appends now (for /readyz and backpressure). */
  ready(): boolean;
  close(): Promise<void>;
}
