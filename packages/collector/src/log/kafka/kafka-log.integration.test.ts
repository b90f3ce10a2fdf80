import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  kafkaTestsSkipped,
  startKafkaMock,
  uniqueKafkaName,
  type KafkaMock,
} from '../../../../../test/helpers/kafka.js';
import { LogClosedError, LogTopicMissingError, LogUnavailableError } from '../../errors.js';
import { partitionForKey } from '../partitioner.js';
import type { KafkaLog } from './kafka-log.js';
import { collect, openTestLog, waitFor } from './kafka.testkit.js';

const PARTITIONS = 4;
const topic = uniqueKafkaName('vigil-events');
const bigTopic = uniqueKafkaName('vigil-big');
const twoPartitionTopic = uniqueKafkaName('vigil-two');

describe.skipIf(kafkaTestsSkipped())('KafkaLog against a Kafka-protocol broker', () => {
  let mock: KafkaMock;
  let log: KafkaLog;

  beforeAll(async () => {
    mock = await startKafkaMock({
      brokers: 3,
      topics: [
        { name: topic, partitions: PARTITIONS, replication: 3 },
        { name: bigTopic, partitions: 1 },
        { name: twoPartitionTopic, partitions: 2 },
      ],
    });
    log = await openTestLog(mock.brokers, topic, PARTITIONS);
  });

  afterAll(async () => {
    await log?.close();
    await mock?.stop();
  });

  it('appends with the offsets Kafka assigned, partitioned like Kafka’s default partitioner', async () => {
    expect(log.ready()).toBe(true);
    const messages = [
      'tenant-a/s1',
      'tenant-b/s1',
      'tenant-a/s1',
      'tenant-c/s9',
      'tenant-a/s1',
    ].map((key, i) => ({
      key,
      value: Buffer.from(`event ${i}`),
      timestamp: 1_700_000_000_000 + i,
    }));
    const first = await log.append(messages);
    const second = await log.append(messages.slice(0, 1));

    for (const [i, message] of messages.entries()) {
      expect(first[i]?.partition).toBe(partitionForKey(message.key, PARTITIONS));
      expect(log.partitionFor(message.key)).toBe(first[i]?.partition);
    }
    // A new topic: dense offsets from 0 per partition, in the order of the messages.
    const next = new Map<number, number>();
    for (const position of first) {
      expect(position.offset).toBe(next.get(position.partition) ?? 0);
      next.set(position.partition, position.offset + 1);
    }
    expect(second[0]).toEqual({
      partition: first[0]?.partition,
      offset: (first[4]?.offset ?? 0) + 1,
    });
    await expect(log.append([])).resolves.toEqual([]);
  });

  it('appends and consumes gzip-compressed ~100 KB messages', async () => {
    const big = await openTestLog(mock.brokers, bigTopic, 1, { compression: 'gzip' });
    try {
      // JSON audit events: ~100 KB each, compressible like the real thing.
      const values = Array.from({ length: 8 }, (_, i) =>
        Buffer.from(
          JSON.stringify(
            Array.from({ length: 1_200 }, (_, j) => ({
              id: `${i}-${j}`,
              action: 'user.login',
              actor: `user-${j * 7919}@example.eu`,
              ip: `10.0.${i}.${j % 256}`,
            })),
          ),
        ),
      );
      expect(values[0]!.length).toBeGreaterThan(90_000);
      const appended = await big.append(values.map((value, i) => ({ key: `k${i}`, value })));
      expect(appended.map((p) => p.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);

      const reader = collect(big, uniqueKafkaName('vigil-big-sink'));
      await reader.consumer.start();
      await waitFor(() => reader.records.length >= values.length, 'the big records');
      await reader.consumer.stop();
      expect(reader.records.map((r) => r.value.equals(values[r.offset]!))).toEqual(
        values.map(() => true),
      );
    } finally {
      await big.close();
    }
  });

  it('rejects appends after close with LogClosedError', async () => {
    const other = await openTestLog(mock.brokers, twoPartitionTopic, 2);
    await other.close();
    expect(other.ready()).toBe(false);
    await expect(other.append([{ key: 'k', value: Buffer.from('x') }])).rejects.toBeInstanceOf(
      LogClosedError,
    );
  });

  it('refuses a topic that does not exist, saying what to create', async () => {
    const missing = uniqueKafkaName('vigil-missing');
    const error = await openTestLog(mock.brokers, missing, 4).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LogTopicMissingError);
    expect((error as Error).message).toContain(`"${missing}" does not exist`);
    expect((error as Error).message).toContain('--partitions 4');
  });

  it('refuses a topic whose partition count differs from the configured one', async () => {
    const error = await openTestLog(mock.brokers, twoPartitionTopic, 4).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LogTopicMissingError);
    expect((error as Error).message).toContain('has 2 partitions but 4 are configured');
  });

  it('fails within the connect timeout when no broker is reachable, naming the brokers tried', async () => {
    // A port that was just free: connections are refused.
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));

    const brokers = [`127.0.0.1:${port}`];
    const started = Date.now();
    const error = await openTestLog(brokers, topic, PARTITIONS, { connectTimeoutMs: 1_500 }).catch(
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(LogUnavailableError);
    expect((error as LogUnavailableError).retriable).toBe(true);
    expect((error as Error).message).toContain(
      `cannot reach any Kafka broker of 127.0.0.1:${port} within 1500 ms`,
    );
    expect(elapsed).toBeGreaterThanOrEqual(1_400);
    expect(elapsed).toBeLessThan(3_000);
  });
});
