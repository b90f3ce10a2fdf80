import { afterEach, describe, expect, it } from 'vitest';
import {
  kafkaTestsSkipped,
  startKafkaMock,
  uniqueKafkaName,
  type KafkaMock,
} from '../../../../../test/helpers/kafka.js';
import { LogUnavailableError } from '../../errors.js';
import type { KafkaLog } from './kafka-log.js';
import { openTestLog, waitFor } from './kafka.testkit.js';

const APPEND_TIMEOUT_MS = 3_000;
const message = { key: 'tenant-a/stream', value: Buffer.from('{"action":"user.login"}') };

describe.skipIf(kafkaTestsSkipped())('KafkaLog when the brokers go away', () => {
  const opened: { mock: KafkaMock; log: KafkaLog }[] = [];

  afterEach(async () => {
    for (const { mock, log } of opened.splice(0)) {
      await log.close();
      await mock.stop();
    }
  });

  async function start(): Promise<{ mock: KafkaMock; log: KafkaLog }> {
    const topic = uniqueKafkaName('vigil-events');
    const mock = await startKafkaMock({ topics: [{ name: topic, partitions: 2 }] });
    const log = await openTestLog(mock.brokers, topic, 2, { appendTimeoutMs: APPEND_TIMEOUT_MS });
    opened.push({ mock, log });
    await log.append([message]);
    return { mock, log };
  }

  it('rejects appends with a retriable LogUnavailableError within the append timeout once the broker is gone', async () => {
    const { mock, log } = await start();
    await mock.stop();

    const started = Date.now();
    const error = await log.append([message]).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(LogUnavailableError);
    expect((error as LogUnavailableError).retriable).toBe(true);
    expect((error as LogUnavailableError).status).toBe(503);
    expect(elapsed).toBeLessThan(APPEND_TIMEOUT_MS + 500);
    expect(log.ready()).toBe(false);
  });

  it('reports not ready while the broker is down and ready again once it is back', async () => {
    const { mock, log } = await start();
    expect(log.ready()).toBe(true);
    await mock.down(1);

    await expect(log.append([message])).rejects.toBeInstanceOf(LogUnavailableError);
    expect(log.ready()).toBe(false);

    await mock.up(1);
    // No append needed: the readiness probe notices the broker.
    await waitFor(() => log.ready(), 'the log to become ready again', 10_000);
    const [position] = await log.append([message]);
    expect(position?.offset).toBe(1);
  });
});
