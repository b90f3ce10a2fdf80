import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  kafkaTestsSkipped,
  startKafkaMock,
  uniqueKafkaName,
  type KafkaMock,
} from '../../../../test/helpers/kafka.js';
import { CollectorErrorCodes } from '../errors.js';
import type { KafkaLog } from '../log/kafka/kafka-log.js';
import { collect, openTestLog, waitFor } from '../log/kafka/kafka.testkit.js';
import { Admission } from './admission.js';

/**
 * A collector on Kafka runs no consumer of the sinks' group: it learns the group's lag from the
 * brokers (ListOffsets + OffsetFetch through the admin API). Against librdkafka's mock cluster.
 */
const topic = uniqueKafkaName('vigil-admission');
const group = uniqueKafkaName('vigil-admission-sinks');

describe.skipIf(kafkaTestsSkipped())('Admission on Kafka', () => {
  let mock: KafkaMock;
  let collectorLog: KafkaLog;
  let sinkLog: KafkaLog;

  beforeAll(async () => {
    mock = await startKafkaMock({ topics: [{ name: topic, partitions: 2 }] });
    // Two clients, as two processes would have: the collector's and the sink's.
    collectorLog = await openTestLog(mock.brokers, topic, 2);
    sinkLog = await openTestLog(mock.brokers, topic, 2);
  });
  afterAll(async () => {
    await collectorLog?.close();
    await sinkLog?.close();
    await mock?.stop();
  });

  it('refuses while the sinks of another process lag beyond the bound, and admits once they have committed', async () => {
    const admission = new Admission({
      log: collectorLog,
      group,
      maxLagRecords: 5,
      refreshMs: 60_000,
    });
    await admission.start();
    try {
      expect(admission.refusal()).toBeUndefined();
      for (let i = 0; i < 8; i++)
        await collectorLog.append([{ key: `stream-${i}`, value: Buffer.from(`r${i}`) }]);
      await admission.refresh();
      expect(admission.lag).toBe(8);
      expect(admission.refusal()?.error.code).toBe(CollectorErrorCodes.OVERLOADED);

      const sink = collect(sinkLog, group);
      await sink.consumer.start();
      await waitFor(async () => {
        await admission.refresh();
        return admission.lag === 0;
      }, 'the sink group to commit everything');
      expect(admission.refusal()).toBeUndefined();
      await sink.consumer.stop();
    } finally {
      admission.stop();
    }
  }, 60_000);
});
