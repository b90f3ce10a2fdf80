import { describe } from 'vitest';
import { kafkaTestsSkipped, startKafkaMock } from '../../../../../test/helpers/kafka.js';
import { describeLogContract } from '../contract.testkit.js';
import type { KafkaLog } from './kafka-log.js';
import { openTestLog } from './kafka.testkit.js';

// Sequential: the suite's global expect.poll needs the current test to be the only one running.
// Most of its ~50 s is the mock's wait before a group's assignment: 3 s for a new group, and
// `sessionTimeout - 1 s` after a member left (rdkafka_mock_cgrp.c), hence the short test session.
describe.skipIf(kafkaTestsSkipped())('KafkaLog', () => {
  describeLogContract(
    'KafkaLog',
    async ({ topic, partitions }) => {
      // The mock cannot create topics on request, so each test gets a broker of its own that
      // starts with the test's topic (~20 ms).
      const mock = await startKafkaMock({ topics: [{ name: topic, partitions }] });
      let current: KafkaLog;
      try {
        current = await openTestLog(mock.brokers, topic, partitions);
      } catch (error) {
        await mock.stop();
        throw error;
      }
      return {
        log: current,
        async reopen() {
          await current.close();
          current = await openTestLog(mock.brokers, topic, partitions);
          return current;
        },
        async cleanup() {
          await current.close();
          await mock.stop();
        },
      };
    },
    // A new group waits 3 s for its first assignment on the mock; fetches wait up to 200 ms.
    { settleMs: 800, timeoutMs: 15_000 },
  );
});
