import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  kafkaTestsSkipped,
  startKafkaMock,
  uniqueKafkaName,
  type KafkaMock,
} from '../../../../../test/helpers/kafka.js';
import type { AppendedPosition } from '../log.js';
import type { KafkaLog } from './kafka-log.js';
import { collect, openTestLog, positions, waitFor } from './kafka.testkit.js';

const PARTITIONS = 4;
const topic = uniqueKafkaName('vigil-events');

describe.skipIf(kafkaTestsSkipped())('KafkaLog consumer groups', () => {
  let mock: KafkaMock;
  let log: KafkaLog;

  beforeAll(async () => {
    mock = await startKafkaMock({
      brokers: 2,
      topics: [{ name: topic, partitions: PARTITIONS, replication: 2 }],
    });
    log = await openTestLog(mock.brokers, topic, PARTITIONS);
  });

  afterAll(async () => {
    await log?.close();
    await mock?.stop();
  });

  const appendSpread = (label: string, count: number): Promise<AppendedPosition[]> =>
    log.append(
      Array.from({ length: count }, (_, i) => ({
        key: `tenant-${i}/stream`,
        value: Buffer.from(`${label}-${i}`),
      })),
    );

  it('splits the partitions between two members, and the survivor gets every uncommitted record when one fails', async () => {
    const group = uniqueKafkaName('vigil-sink');
    let aFails = false;
    const a = collect(log, group, {
      handleBatch: () =>
        aFails ? Promise.reject(new Error('store of member A is down')) : Promise.resolve(),
    });
    const b = collect(log, group);

    await a.consumer.start();
    await waitFor(() => a.owned().length === PARTITIONS, 'member A to own every partition');
    await b.consumer.start();
    // One rebalance takes ~2 s on the mock, but a member that misses the rejoin window (a busy
    // machine running other test files) makes the mock start another: allow several.
    await waitFor(
      () => b.owned().length > 0 && a.owned().length + b.owned().length === PARTITIONS,
      () =>
        `the partitions to be split between A and B (A: ${a.events.join('; ')}; ` +
        `B: ${b.events.join('; ')}; errors: ${[...a.errors, ...b.errors].map((e) => e.message).join('; ')})`,
      40_000,
    );
    expect([...a.owned(), ...b.owned()].sort()).toEqual([0, 1, 2, 3]);
    expect(a.events.slice(0, 2)).toEqual(['assign 0,1,2,3', expect.stringMatching(/^revoke /)]);

    // Both members work: each gets the records of its own partitions, nothing twice.
    const first = await appendSpread('first', 24);
    await waitFor(() => a.records.length + b.records.length >= first.length, 'the first records');
    expect(positions([...a.records, ...b.records])).toEqual(positions(first));
    for (const r of a.records) expect(a.owned()).toContain(r.partition);
    for (const r of b.records) expect(b.owned()).toContain(r.partition);

    // A's store fails: A stops without committing; B takes A's partitions over and receives
    // every record A did not commit.
    const lostByA = a.owned();
    aFails = true;
    const second = await appendSpread('second', 24);
    await waitFor(() => a.errors.length > 0, 'member A to fail');
    await waitFor(() => b.owned().length === PARTITIONS, 'member B to own every partition', 20_000);
    await waitFor(
      () => positions(second).every((p) => positions(b.records).includes(p)),
      'member B to receive every second record',
    );
    expect(b.events.at(-1)).toMatch(/^assign /);
    expect(second.some((p) => lostByA.includes(p.partition))).toBe(true);

    // Every record is committed once the survivor is through.
    await waitFor(async () => {
      const committed = await log.committedOffsets(group);
      return [...first, ...second].every((p) => (committed.get(p.partition) ?? 0) > p.offset);
    }, 'the group to commit every record');
    await b.consumer.stop();
    await a.consumer.stop();
  }, 120_000);

  it('keeps its membership through a batch that outlasts the session timeout', async () => {
    const group = uniqueKafkaName('vigil-slow-sink');
    let slow = true;
    const member = collect(log, group, {
      handleBatch: async () => {
        if (!slow) return;
        slow = false;
        // Longer than sessionTimeoutMs (3 s): only the heartbeats sent meanwhile keep the member.
        await new Promise((resolve) => setTimeout(resolve, 4_000));
      },
    });
    await member.consumer.start();
    const appended = await appendSpread('slow', 8);
    const expected = positions(appended);
    await waitFor(
      () => expected.every((p) => positions(member.records).includes(p)),
      'the records',
      20_000,
    );
    // No rebalance happened, so nothing was delivered twice (the group also reads the records
    // of the earlier test: it starts at the beginning of the topic).
    expect(member.events).toEqual(['assign 0,1,2,3']);
    expect(new Set(positions(member.records)).size).toBe(member.records.length);
    await member.consumer.stop();
    expect(member.events).toEqual(['assign 0,1,2,3', 'revoke 0,1,2,3']);
  });
});
