/**
 * Shared pieces of the Kafka log's integration tests (not part of the build).
 *
 * Timings suit librdkafka's mock broker: it delays a new group's first assignment by 3 s and
 * every later rebalance by `sessionTimeout - 1 s` (rdkafka_mock_cgrp.c), so the tests use a short
 * session timeout to keep rebalances at ~2 s.
 */
import type { ConsumedBatch, ConsumedRecord, ConsumeOptions, Log, LogConsumer } from '../log.js';
import { KafkaLog, type KafkaLogOptions } from './kafka-log.js';

export const TEST_TIMINGS = {
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 5_000,
  appendTimeoutMs: 5_000,
  sessionTimeoutMs: 3_000,
  heartbeatIntervalMs: 500,
  maxWaitTimeMs: 200,
} as const;

export function openTestLog(
  brokers: readonly string[],
  topic: string,
  partitions: number,
  overrides: Partial<KafkaLogOptions> = {},
): Promise<KafkaLog> {
  return KafkaLog.open({
    brokers,
    clientId: 'vigil-test',
    topic,
    partitions,
    ...TEST_TIMINGS,
    ...overrides,
  });
}

/** Polls `check` until it returns true; fails with `what` (evaluated then) after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      const described = typeof what === 'string' ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${described}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface Collector {
  readonly consumer: LogConsumer;
  readonly records: ConsumedRecord[];
  readonly batches: ConsumedBatch[];
  /** Calls to onAssign / onRevoke, in order. */
  readonly events: string[];
  readonly errors: Error[];
  owned(): number[];
}

/** A consumer that keeps what it is given. */
export function collect(
  log: Log,
  group: string,
  options: Partial<Omit<ConsumeOptions, 'group'>> = {},
): Collector {
  const records: ConsumedRecord[] = [];
  const batches: ConsumedBatch[] = [];
  const events: string[] = [];
  const errors: Error[] = [];
  const owned = new Set<number>();
  const consumer = log.consume({
    group,
    ...options,
    handleBatch: async (batch) => {
      if (options.handleBatch) await options.handleBatch(batch);
      batches.push(batch);
      records.push(...batch.records);
    },
    onAssign: async (partitions) => {
      events.push(`assign ${partitions.join(',')}`);
      for (const p of partitions) owned.add(p);
      await options.onAssign?.(partitions);
    },
    onRevoke: async (partitions) => {
      events.push(`revoke ${partitions.join(',')}`);
      for (const p of partitions) owned.delete(p);
      await options.onRevoke?.(partitions);
    },
    onError: (error) => {
      errors.push(error);
      options.onError?.(error);
    },
  });
  return {
    consumer,
    records,
    batches,
    events,
    errors,
    owned: () => [...owned].sort((a, b) => a - b),
  };
}

/** `records` as `partition:offset` strings, sorted, for set comparisons. */
export function positions(records: readonly { partition: number; offset: number }[]): string[] {
  return records.map((r) => `${r.partition}:${r.offset}`).sort();
}
