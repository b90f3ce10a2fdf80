/**
 * The behaviour every `Log` must have, as a vitest suite that runs unchanged against the
 * embedded log and against Kafka:
 *
 *     describeLogContract('KafkaLog', async ({ topic, partitions }) => { ... });
 *
 * `open` must create `topic` with `partitions` partitions (every test uses a new topic and
 * new group names, so tests never see each other's records) and return the log, a `reopen`
 * that closes that log if still open and returns a new one over the same topic, and a
 * `cleanup` that closes whatever is open and removes what `open` created.
 *
 * Nothing here assumes prompt delivery: a Kafka consumer group takes seconds to form, so
 * every expectation about consumption is polled for up to `timeoutMs`, and `settleMs` is how
 * long to wait before asserting that something has *not* happened. A new group starts at the
 * earliest offset. Volumes stay small (a broker mock may keep only a few MiB per partition).
 * Assertions use the test's own `expect` (from the test context), so the suite also holds
 * when a caller runs it inside `describe.concurrent`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'vitest';
import { LogClosedError } from '../errors.js';
import type {
  ConsumeOptions,
  ConsumedBatch,
  ConsumedRecord,
  Log,
  LogConsumer,
  LogMessage,
} from './log.js';
import { partitionForKey } from './partitioner.js';

export interface LogContractHandle {
  readonly log: Log;
  reopen(): Promise<Log>;
  cleanup(): Promise<void>;
}

export type OpenLogForContract = (options: {
  topic: string;
  partitions: number;
}) => Promise<LogContractHandle>;

export interface LogContractTiming {
  /** How long to wait before asserting that something did not happen. Default 300 ms. */
  readonly settleMs?: number;
  /** How long to poll for an expected outcome. Default 20 s. */
  readonly timeoutMs?: number;
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Everything one consumer was handed, in arrival order. */
class Recorder {
  readonly batches: ConsumedBatch[] = [];
  readonly errors: Error[] = [];
  readonly events: string[] = [];

  get records(): ConsumedRecord[] {
    return this.batches.flatMap((batch) => [...batch.records]);
  }

  partition(partition: number): ConsumedRecord[] {
    return this.records.filter((record) => record.partition === partition);
  }

  offsets(partition: number): number[] {
    return this.partition(partition).map((record) => record.offset);
  }
}

const BASE_TIMESTAMP = 1_700_000_000_000;

function message(key: string, value: string, timestamp?: number): LogMessage {
  return timestamp === undefined
    ? { key, value: Buffer.from(value, 'utf8') }
    : { key, value: Buffer.from(value, 'utf8'), timestamp };
}

function sum(map: Map<number, number>): number {
  let total = 0;
  for (const value of map.values()) total += value;
  return total;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

export function describeLogContract(
  name: string,
  open: OpenLogForContract,
  timing: LogContractTiming = {},
): void {
  const settleMs = timing.settleMs ?? 300;
  const timeoutMs = timing.timeoutMs ?? 20_000;
  const poll = { timeout: timeoutMs, interval: 20 };
  // A test may wait for a group to form twice (after a reopen) and poll several times.
  const testTimeout = timeoutMs * 4;
  const run = randomUUID().slice(0, 8);
  let counter = 0;
  const unique = (what: string): string => `contract-${what}-${run}-${++counter}`;

  interface Context {
    log: Log;
    readonly topic: string;
    readonly partitions: number;
    reopen(): Promise<Log>;
    /** A started consumer of `group` on the current log that records what it gets. */
    consume(
      group: string,
      options?: Partial<ConsumeOptions> & { readonly recorder?: Recorder },
    ): Promise<{ consumer: LogConsumer; recorder: Recorder }>;
  }

  async function withLog(partitions: number, body: (context: Context) => Promise<void>) {
    const topic = unique('topic');
    const handle = await open({ topic, partitions });
    const consumers: LogConsumer[] = [];
    const context: Context = {
      log: handle.log,
      topic,
      partitions,
      async reopen() {
        context.log = await handle.reopen();
        return context.log;
      },
      async consume(group, options = {}) {
        const recorder = options.recorder ?? new Recorder();
        const consumer = context.log.consume({
          group,
          ...(options.maxBatchRecords === undefined
            ? {}
            : { maxBatchRecords: options.maxBatchRecords }),
          ...(options.maxBatchBytes === undefined ? {} : { maxBatchBytes: options.maxBatchBytes }),
          handleBatch: async (batch) => {
            recorder.events.push(`batch:${batch.partition}`);
            await options.handleBatch?.(batch);
            recorder.batches.push(batch);
          },
          onAssign: async (assigned) => {
            recorder.events.push(`assign:${[...assigned].sort((a, b) => a - b).join(',')}`);
            await options.onAssign?.(assigned);
          },
          onRevoke: async (revoked) => {
            recorder.events.push(`revoke:${[...revoked].sort((a, b) => a - b).join(',')}`);
            await options.onRevoke?.(revoked);
          },
          onError: (error) => {
            recorder.errors.push(error);
            options.onError?.(error);
          },
        });
        consumers.push(consumer);
        await consumer.start();
        return { consumer, recorder };
      },
    };
    try {
      await body(context);
    } finally {
      await Promise.allSettled(consumers.map((consumer) => consumer.stop()));
      await handle.cleanup();
    }
  }

  /** Appends `count` messages spread over `keys` keys, one append per `perAppend`. */
  async function appendSpread(
    log: Log,
    count: number,
    options: { keys?: number; perAppend?: number; prefix?: string } = {},
  ): Promise<Map<number, { offset: number; key: string; value: string; timestamp: number }[]>> {
    const keys = options.keys ?? 8;
    const perAppend = options.perAppend ?? 10;
    const prefix = options.prefix ?? 'v';
    const expected = new Map<
      number,
      { offset: number; key: string; value: string; timestamp: number }[]
    >();
    for (let start = 0; start < count; start += perAppend) {
      const batch: LogMessage[] = [];
      for (let i = start; i < Math.min(count, start + perAppend); i++) {
        batch.push(message(`key-${i % keys}`, `${prefix}-${i}`, BASE_TIMESTAMP + i));
      }
      const positions = await log.append(batch);
      positions.forEach((position, i) => {
        const sent = batch[i] as LogMessage;
        const list = expected.get(position.partition) ?? [];
        list.push({
          offset: position.offset,
          key: sent.key,
          value: sent.value.toString('utf8'),
          timestamp: sent.timestamp ?? 0,
        });
        expected.set(position.partition, list);
      });
    }
    return expected;
  }

  describe(`Log contract: ${name}`, () => {
    it(
      'places each key on partitionForKey(key), the Kafka default partitioner',
      ({ expect }) =>
        withLog(3, async ({ log, partitions }) => {
          const keys = ['tenant-1/stream-a', 'tenant-2/stream-b', 'ключ', '🙂', 'k'];
          for (const key of keys) {
            expect(log.partitionFor(key)).toBe(partitionForKey(key, partitions));
          }
          const positions = await log.append(keys.map((key) => message(key, key)));
          expect(positions.map((position) => position.partition)).toEqual(
            keys.map((key) => partitionForKey(key, partitions)),
          );
        }),
      testTimeout,
    );

    it(
      'gives dense offsets from 0 in each partition, in append order',
      ({ expect }) =>
        withLog(3, async ({ log }) => {
          const next = new Map<number, number>();
          for (let round = 0; round < 5; round++) {
            const batch = range(0, 12).map((i) => message(`key-${i % 5}`, `r${round}-${i}`));
            const positions = await log.append(batch);
            expect(positions).toHaveLength(batch.length);
            for (const position of positions) {
              expect(position.offset).toBe(next.get(position.partition) ?? 0);
              next.set(position.partition, position.offset + 1);
            }
          }
          expect(sum(next)).toBe(60);
        }),
      testTimeout,
    );

    it(
      'gives concurrent appends distinct, dense offsets',
      ({ expect }) =>
        withLog(1, async ({ log }) => {
          const positions = await Promise.all(
            range(0, 25).map((i) => log.append([message('same', `c${i}`)])),
          );
          const offsets = positions.map((list) => (list[0] ? list[0].offset : -1));
          expect([...offsets].sort((a, b) => a - b)).toEqual(range(0, 25));
        }),
      testTimeout,
    );

    it(
      'delivers every record once, in offset order, with its key, value and timestamp',
      ({ expect }) =>
        withLog(3, async (context) => {
          const expected = await appendSpread(context.log, 120, { perAppend: 30 });
          const { recorder } = await context.consume(unique('group'), { maxBatchRecords: 7 });
          await expect.poll(() => recorder.records.length, poll).toBe(120);
          for (const [partition, records] of expected) {
            expect(
              recorder.partition(partition).map((record) => ({
                offset: record.offset,
                key: record.key,
                value: record.value.toString('utf8'),
                timestamp: record.timestamp,
              })),
            ).toEqual(records);
          }
          for (const batch of recorder.batches) {
            expect(batch.records.length).toBeGreaterThan(0);
            expect(batch.records.length).toBeLessThanOrEqual(7);
            const last = batch.records.at(-1) as ConsumedRecord;
            expect(batch.highWatermark).toBeGreaterThan(last.offset);
            for (const record of batch.records) expect(record.partition).toBe(batch.partition);
          }
          await sleep(settleMs);
          expect(recorder.records).toHaveLength(120);
        }),
      testTimeout,
    );

    it(
      "keeps one key's records in one partition, in the order they were appended",
      ({ expect }) =>
        withLog(3, async (context) => {
          for (let i = 0; i < 30; i++) {
            await context.log.append([
              message('stream-x', `x${i}`),
              message(`other-${i % 4}`, `o${i}`),
            ]);
          }
          const { recorder } = await context.consume(unique('group'));
          await expect.poll(() => recorder.records.length, poll).toBe(60);
          const ofKey = recorder.records.filter((record) => record.key === 'stream-x');
          expect(new Set(ofKey.map((record) => record.partition))).toEqual(
            new Set([context.log.partitionFor('stream-x')]),
          );
          expect(ofKey.map((record) => record.value.toString('utf8'))).toEqual(
            range(0, 30).map((i) => `x${i}`),
          );
        }),
      testTimeout,
    );

    it(
      'keeps bytes exactly: empty, binary and large values, non-ASCII keys',
      ({ expect }) =>
        withLog(2, async (context) => {
          const allBytes = Buffer.from(range(0, 256));
          const large = randomBytes(96 * 1024);
          const sent: LogMessage[] = [
            { key: 'empty', value: Buffer.alloc(0), timestamp: BASE_TIMESTAMP },
            { key: 'bytes', value: allBytes, timestamp: BASE_TIMESTAMP + 1 },
            { key: 'large', value: large, timestamp: BASE_TIMESTAMP + 2 },
            { key: 'ключ/🙂', value: Buffer.from('ü', 'utf8'), timestamp: BASE_TIMESTAMP + 3 },
          ];
          await context.log.append(sent);
          const { recorder } = await context.consume(unique('group'));
          await expect.poll(() => recorder.records.length, poll).toBe(sent.length);
          for (const original of sent) {
            const got = recorder.records.find((record) => record.key === original.key);
            expect(got?.value.equals(original.value)).toBe(true);
            expect(got?.timestamp).toBe(original.timestamp);
          }
        }),
      testTimeout,
    );

    it(
      'stamps a record without a timestamp with the time of the append',
      ({ expect }) =>
        withLog(1, async (context) => {
          const before = Date.now();
          await context.log.append([message('k', 'now')]);
          const after = Date.now();
          const { recorder } = await context.consume(unique('group'));
          await expect.poll(() => recorder.records.length, poll).toBe(1);
          const timestamp = recorder.records[0]?.timestamp ?? 0;
          expect(timestamp).toBeGreaterThanOrEqual(before - 5);
          expect(timestamp).toBeLessThanOrEqual(after + 5);
        }),
      testTimeout,
    );

    it(
      'wakes a waiting consumer when records are appended',
      ({ expect }) =>
        withLog(2, async (context) => {
          const { recorder } = await context.consume(unique('group'));
          await context.log.append(range(0, 10).map((i) => message(`key-${i % 3}`, `a${i}`)));
          await expect.poll(() => recorder.records.length, poll).toBe(10);
          await context.log.append(range(0, 10).map((i) => message(`key-${i % 3}`, `b${i}`)));
          await expect.poll(() => recorder.records.length, poll).toBe(20);
          for (let partition = 0; partition < context.partitions; partition++) {
            const offsets = recorder.offsets(partition);
            expect(offsets).toEqual(range(0, offsets.length));
          }
        }),
      testTimeout,
    );

    it(
      'commits a batch only after handleBatch resolves',
      ({ expect }) =>
        withLog(2, async (context) => {
          const partition = context.log.partitionFor('held');
          await context.log.append(range(0, 5).map((i) => message('held', `h${i}`)));
          const group = unique('group');
          const gate = deferred();
          const handed: ConsumedBatch[] = [];
          await context.consume(group, {
            handleBatch: async (batch) => {
              handed.push(batch);
              await gate.promise;
            },
          });
          await expect.poll(() => handed.length, poll).toBeGreaterThan(0);
          await sleep(settleMs);
          expect((await context.log.committedOffsets(group)).get(partition) ?? 0).toBe(0);
          gate.resolve();
          await expect
            .poll(async () => (await context.log.committedOffsets(group)).get(partition), poll)
            .toBe(5);
        }),
      testTimeout,
    );

    it(
      'stops on a failing handler and delivers the uncommitted records again to the next consumer of the group',
      ({ expect }) =>
        withLog(3, async (context) => {
          const expected = await appendSpread(context.log, 45, { perAppend: 15 });
          const group = unique('group');
          let failedBatch: ConsumedBatch | undefined;
          const first = await context.consume(group, {
            handleBatch: (batch) => {
              if (failedBatch) return Promise.resolve();
              failedBatch = batch;
              return Promise.reject(new Error('the store is down'));
            },
          });
          await expect.poll(() => first.recorder.errors.length, poll).toBeGreaterThan(0);
          await first.consumer.stop();
          const handedBefore = first.recorder.events.filter((e) => e.startsWith('batch')).length;
          await sleep(settleMs);
          expect(first.recorder.events.filter((e) => e.startsWith('batch'))).toHaveLength(
            handedBefore,
          );

          const failed = failedBatch as ConsumedBatch;
          const committed = await context.log.committedOffsets(group);
          expect(committed.get(failed.partition) ?? 0).toBeLessThanOrEqual(
            (failed.records[0] as ConsumedRecord).offset,
          );

          await context.reopen();
          const second = await context.consume(group);
          for (const [partition, records] of expected) {
            const from = committed.get(partition) ?? 0;
            const wanted = records.filter((record) => record.offset >= from);
            await expect
              .poll(() => second.recorder.offsets(partition), poll)
              .toEqual(wanted.map((record) => record.offset));
          }
          const redelivered = second.recorder
            .partition(failed.partition)
            .map((record) => record.offset);
          for (const record of failed.records) expect(redelivered).toContain(record.offset);
        }),
      testTimeout,
    );

    it(
      'resumes a group after its committed offsets, without the records it committed',
      ({ expect }) =>
        withLog(2, async (context) => {
          await appendSpread(context.log, 20, { keys: 4 });
          const group = unique('group');
          const first = await context.consume(group);
          await expect.poll(() => first.recorder.records.length, poll).toBe(20);
          await expect
            .poll(async () => sum(await context.log.committedOffsets(group)), poll)
            .toBe(20);
          await first.consumer.stop();
          const ends = await context.log.committedOffsets(group);

          await context.reopen();
          const later = await appendSpread(context.log, 8, { keys: 4, prefix: 'later' });
          const second = await context.consume(group);
          await expect.poll(() => second.recorder.records.length, poll).toBe(8);
          await sleep(settleMs);
          expect(second.recorder.records).toHaveLength(8);
          for (const [partition, records] of later) {
            expect(second.recorder.offsets(partition)).toEqual(records.map((r) => r.offset));
            expect(records[0]?.offset).toBe(ends.get(partition) ?? 0);
          }
        }),
      testTimeout,
    );

    it(
      'reports groupLag for a group whether or not a consumer of it runs',
      ({ expect }) =>
        withLog(3, async (context) => {
          const group = unique('group');
          await appendSpread(context.log, 30);
          // Nobody consumed yet: everything is lag, on every partition.
          const before = await context.log.groupLag(group);
          expect([...before.keys()].sort()).toEqual([0, 1, 2]);
          expect(sum(before)).toBe(30);
          const { consumer, recorder } = await context.consume(group);
          await expect.poll(() => recorder.records.length, poll).toBe(30);
          await expect.poll(async () => sum(await context.log.groupLag(group)), poll).toBe(0);
          await consumer.stop();
          await appendSpread(context.log, 7, { prefix: 'more' });
          expect(sum(await context.log.groupLag(group))).toBe(7);
        }),
      testTimeout,
    );

    it(
      'hands over batches of at most maxBatchBytes, a larger record alone',
      ({ expect }) =>
        withLog(1, async (context) => {
          const group = unique('group');
          const small = Buffer.alloc(100, 'a');
          const messages: LogMessage[] = [];
          for (let i = 0; i < 20; i++) messages.push({ key: 'k', value: small });
          messages.push({ key: 'k', value: Buffer.alloc(1000, 'b') });
          await context.log.append(messages);
          const { recorder } = await context.consume(group, { maxBatchBytes: 450 });
          await expect.poll(() => recorder.records.length, poll).toBe(21);
          for (const batch of recorder.batches) {
            const bytes = batch.records.reduce((n, r) => n + r.value.length, 0);
            if (batch.records.length > 1) expect(bytes).toBeLessThanOrEqual(450);
          }
          expect(recorder.batches.some((b) => b.records.length > 1)).toBe(true);
          expect(recorder.batches.at(-1)?.records.map((r) => r.value.length)).toEqual([1000]);
        }),
      testTimeout,
    );

    it(
      'lets two groups consume independently',
      ({ expect }) =>
        withLog(3, async (context) => {
          await appendSpread(context.log, 40);
          const groupA = unique('group-a');
          const groupB = unique('group-b');
          const a = await context.consume(groupA);
          const b = await context.consume(groupB);
          await expect.poll(() => a.recorder.records.length, poll).toBe(40);
          await expect.poll(() => b.recorder.records.length, poll).toBe(40);
          await expect
            .poll(async () => sum(await context.log.committedOffsets(groupA)), poll)
            .toBe(40);
          await a.consumer.stop();

          await appendSpread(context.log, 10, { prefix: 'more' });
          await expect.poll(() => b.recorder.records.length, poll).toBe(50);
          await expect
            .poll(async () => sum(await context.log.committedOffsets(groupB)), poll)
            .toBe(50);
          expect(a.recorder.records).toHaveLength(40);
          expect(sum(await context.log.committedOffsets(groupA))).toBe(40);
        }),
      testTimeout,
    );

    it(
      'reports the records a group has not committed in lag()',
      ({ expect }) =>
        withLog(3, async (context) => {
          await appendSpread(context.log, 20);
          const gate = deferred();
          const { consumer } = await context.consume(unique('group'), {
            handleBatch: () => gate.promise,
          });
          await expect.poll(async () => sum(await consumer.lag()), poll).toBe(20);
          for (const partition of (await consumer.lag()).keys()) {
            expect(partition).toBeGreaterThanOrEqual(0);
            expect(partition).toBeLessThan(context.partitions);
          }
          gate.resolve();
          await expect.poll(async () => sum(await consumer.lag()), poll).toBe(0);
        }),
      testTimeout,
    );

    it(
      'finishes and commits the batch in flight when stopped',
      ({ expect }) =>
        withLog(2, async (context) => {
          const partition = context.log.partitionFor('in-flight');
          await context.log.append(range(0, 5).map((i) => message('in-flight', `f${i}`)));
          const group = unique('group');
          const gate = deferred();
          let handed: ConsumedBatch | undefined;
          let finished = false;
          const { consumer, recorder } = await context.consume(group, {
            handleBatch: async (batch) => {
              handed = batch;
              await gate.promise;
              finished = true;
            },
          });
          await expect.poll(() => handed !== undefined, poll).toBe(true);
          let stopped = false;
          const stopping = consumer.stop().then(() => {
            stopped = true;
          });
          await sleep(settleMs);
          expect(stopped).toBe(false);
          gate.resolve();
          await stopping;
          expect(finished).toBe(true);
          const last = (handed as ConsumedBatch).records.at(-1) as ConsumedRecord;
          expect((await context.log.committedOffsets(group)).get(partition)).toBe(last.offset + 1);
          const batches = recorder.batches.length;
          await context.log.append([message('in-flight', 'after stop')]);
          await sleep(settleMs);
          expect(recorder.batches).toHaveLength(batches);
        }),
      testTimeout,
    );

    it(
      'calls onAssign before the first batch of a partition and onRevoke after the last',
      ({ expect }) =>
        withLog(3, async (context) => {
          await appendSpread(context.log, 30);
          const { consumer, recorder } = await context.consume(unique('group'));
          await expect.poll(() => recorder.records.length, poll).toBe(30);
          await consumer.stop();
          const { events } = recorder;
          expect(events[0]).toMatch(/^assign:/);
          const assigned = new Set<string>();
          for (const event of events) {
            if (event.startsWith('assign:')) {
              for (const partition of event.slice(7).split(',')) assigned.add(partition);
            } else if (event.startsWith('batch:')) {
              expect(assigned.has(event.slice(6))).toBe(true);
            }
          }
          const lastBatch = events.findLastIndex((event) => event.startsWith('batch:'));
          const lastRevoke = events.findLastIndex((event) => event.startsWith('revoke:'));
          expect(lastRevoke).toBeGreaterThan(lastBatch);
        }),
      testTimeout,
    );

    it(
      'is ready while open, and rejects appends with LogClosedError once closed',
      ({ expect }) =>
        withLog(1, async ({ log }) => {
          await expect.poll(() => log.ready(), poll).toBe(true);
          await log.append([message('k', 'before close')]);
          await log.close();
          expect(log.ready()).toBe(false);
          await expect(log.append([message('k', 'after close')])).rejects.toBeInstanceOf(
            LogClosedError,
          );
        }),
      testTimeout,
    );
  });
}
