import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  LogClosedError,
  LogTopicMissingError,
  LogUnavailableError,
} from '../../errors.js';
import type { AppendedPosition, ConsumedBatch, LogMessage } from '../log.js';
import { FileLog, type FileLogOptions } from './file-log.js';
import { GatedFileOps, captureLogger, makeTempDir, readAll, ticks } from './testing.testkit.js';

const topic = 'events';
let dir: string;
let removeDir: () => Promise<void>;
const opened: FileLog[] = [];
const gates: GatedFileOps[] = [];

beforeEach(async () => {
  ({ dir, remove: removeDir } = await makeTempDir());
});

afterEach(async () => {
  for (const gate of gates.splice(0)) gate.release();
  await Promise.allSettled(opened.splice(0).map((log) => log.close()));
  await removeDir();
});

async function open(options: Partial<FileLogOptions> = {}): Promise<FileLog> {
  const log = await FileLog.open({ dir, topic, partitions: 1, ...options });
  opened.push(log);
  return log;
}

/** File-system calls whose fdatasync a test can hold; counts start after the log is open. */
async function openGated(
  options: Partial<FileLogOptions> = {},
): Promise<{ log: FileLog; fs: GatedFileOps }> {
  const fs = new GatedFileOps();
  gates.push(fs);
  const log = await open({ ...options, fileOps: fs.ops });
  fs.resetCounts();
  return { log, fs };
}

function message(key: string, value: string | Buffer, timestamp?: number): LogMessage {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return timestamp === undefined ? { key, value: bytes } : { key, value: bytes, timestamp };
}

/** Tracks whether a promise has settled, without awaiting it. */
function track<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false;
  const tracked = promise.then(
    (value) => {
      settled = true;
      return value;
    },
    (error: unknown) => {
      settled = true;
      throw error;
    },
  );
  return { settled: () => settled, promise: tracked };
}

describe('FileLog files', () => {
  it('stores each partition as 20-digit segment files with an index, rolled at segmentBytes', async () => {
    const log = await open({ partitions: 2, segmentBytes: 4096 });
    const value = Buffer.alloc(500, 7);
    const partition = log.partitionFor('k');
    for (let i = 0; i < 40; i++) await log.append([message('k', value)]);
    await log.close();

    const partitionDir = path.join(dir, topic, String(partition));
    const names = (await readdir(partitionDir)).sort();
    const segments = names.filter((name) => name.endsWith('.log'));
    expect(segments.length).toBeGreaterThan(4);
    expect(segments[0]).toBe('00000000000000000000.log');
    for (const name of segments) {
      expect(name).toMatch(/^\d{20}\.log$/);
      expect(names).toContain(name.replace('.log', '.index'));
      expect((await stat(path.join(partitionDir, name))).size).toBeLessThanOrEqual(4096);
    }
    // Each name is the offset of the first record in it: 7 records of 530 bytes fit in 4096.
    expect(segments[1]).toBe('00000000000000000007.log');
    expect(await readdir(path.join(dir, topic))).toEqual(
      expect.arrayContaining(['0', '1', 'consumers', 'topic.json']),
    );

    const reopened = await open({ partitions: 2, segmentBytes: 4096 });
    const records = await readAll(reopened, 40);
    expect(records.map((record) => record.offset)).toEqual([...Array(40).keys()]);
    expect(records.every((record) => record.value.equals(value))).toBe(true);
    expect((await reopened.append([message('k', 'next')]))[0]?.offset).toBe(40);
  });

  it('gives a record larger than a segment a segment of its own', async () => {
    const log = await open({ segmentBytes: 1024 });
    await log.append([message('k', 'small')]);
    await log.append([message('k', Buffer.alloc(5000, 1))]);
    await log.append([message('k', 'small again')]);
    const names = (await readdir(path.join(dir, topic, '0'))).filter((n) => n.endsWith('.log'));
    expect(names.sort()).toEqual([
      '00000000000000000000.log',
      '00000000000000000001.log',
      '00000000000000000002.log',
    ]);
    expect((await readAll(log, 3)).map((record) => record.value.length)).toEqual([5, 5000, 11]);
  });

  it('keeps the partition count of a topic', async () => {
    const log = await open({ partitions: 3 });
    await log.close();
    await expect(FileLog.open({ dir, topic, partitions: 4 })).rejects.toBeInstanceOf(
      LogTopicMissingError,
    );
  });

  it('refuses to open a topic twice in one process', async () => {
    await open();
    await expect(FileLog.open({ dir, topic, partitions: 1 })).rejects.toBeInstanceOf(
      LogUnavailableError,
    );
  });

  it('refuses a topic that another live process holds', async () => {
    await open().then((log) => log.close());
    // The parent of the test worker is alive for as long as the test runs.
    await writeFile(path.join(dir, topic, 'lock'), `${process.ppid}\n`);
    const error: unknown = await FileLog.open({ dir, topic, partitions: 1 }).catch(
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(LogUnavailableError);
    expect((error as Error).message).toContain(`process ${process.ppid}`);
  });

  it('removes its lock file on close', async () => {
    const log = await open();
    expect(await readFile(path.join(dir, topic, 'lock'), 'utf8')).toBe(`${process.pid}\n`);
    await log.close();
    await expect(stat(path.join(dir, topic, 'lock'))).rejects.toThrow(/ENOENT/);
  });

  it.each<[string, Partial<FileLogOptions>]>([
    ['a topic name that is not a plain name', { topic: '../escape' }],
    ['zero partitions', { partitions: 0 }],
    ['a fractional segment size', { segmentBytes: 10.5 }],
    ['an unknown fsync mode', { fsync: 'sometimes' as 'always' }],
  ])('rejects %s with ConfigError', async (_, options) => {
    await expect(FileLog.open({ dir, topic, partitions: 1, ...options })).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it('rejects a message whose value is not a Buffer', async () => {
    const log = await open();
    const bad = { key: 'k', value: 'text' } as unknown as LogMessage;
    await expect(log.append([bad])).rejects.toBeInstanceOf(TypeError);
  });
});

describe('FileLog group commit', () => {
  it('resolves an append only after the fdatasync that covers it', async () => {
    const { log, fs } = await openGated();
    fs.hold();
    const append = track(log.append([message('k', 'durable')]));
    await expect.poll(() => fs.waiting).toBe(1);
    await ticks(10);
    expect(fs.calls.writev).toBe(1);
    expect(append.settled()).toBe(false);
    fs.release();
    await expect(append.promise).resolves.toEqual([{ partition: 0, offset: 0 }]);
  });

  it('gathers appends that arrive during an fsync into one write and one fsync', async () => {
    const { log, fs } = await openGated();
    fs.hold();
    const first = track(log.append([message('k', 'first')]));
    await expect.poll(() => fs.waiting).toBe(1);
    const later = Array.from({ length: 10 }, (_, i) => track(log.append([message('k', `m${i}`)])));
    await ticks(10);
    expect(fs.calls).toEqual({ writev: 1, fdatasync: 1 });
    expect(later.some((append) => append.settled())).toBe(false);

    fs.release();
    await first.promise;
    const positions = await Promise.all(later.map((append) => append.promise));
    expect(positions.map((list) => list[0]?.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(fs.calls).toEqual({ writev: 2, fdatasync: 2 });
  });

  it('rejects appends beyond maxPendingBytes with a retriable error while the disk is behind', async () => {
    const { log, fs } = await openGated({ maxPendingBytes: 10_000 });
    fs.hold();
    const first = track(log.append([message('k', Buffer.alloc(6000))]));
    await expect.poll(() => fs.waiting).toBe(1);
    const error: unknown = await log
      .append([message('k', Buffer.alloc(6000))])
      .catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(LogUnavailableError);
    expect((error as LogUnavailableError).retriable).toBe(true);
    expect((error as LogUnavailableError).status).toBe(503);
    fs.release();
    await first.promise;
    expect(log.ready()).toBe(true);
    await expect(log.append([message('k', Buffer.alloc(6000))])).resolves.toEqual([
      { partition: 0, offset: 1 },
    ]);
  });

  it('reports not ready while maxPendingBytes are waiting for the disk', async () => {
    const { log, fs } = await openGated({ maxPendingBytes: 8_000 });
    fs.hold();
    const pending = track(log.append([message('k', Buffer.alloc(5_000))]));
    expect(log.ready()).toBe(false);
    fs.release();
    await pending.promise;
    expect(log.ready()).toBe(true);
  });

  it('rejects an append that could never fit in maxPendingBytes', async () => {
    const log = await open({ maxPendingBytes: 1000 });
    await expect(log.append([message('k', Buffer.alloc(2000))])).rejects.toBeInstanceOf(RangeError);
  });

  it('rejects the appends of a failed fsync, is not ready, and gives their offsets to the next write', async () => {
    const logger = captureLogger();
    const { log, fs } = await openGated({ logger });
    await log.append([message('k', 'kept')]);
    fs.failNext('EIO');
    const error: unknown = await log
      .append([message('k', 'lost-1'), message('k', 'lost-2')])
      .catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(LogUnavailableError);
    expect((error as Error).message).toContain('EIO');
    expect(log.ready()).toBe(false);
    expect(logger.lines.some((line) => line.level === 'warn')).toBe(true);

    await expect(log.append([message('k', 'retried')])).resolves.toEqual([
      { partition: 0, offset: 1 },
    ]);
    expect(log.ready()).toBe(true);
    await log.close();

    const reopened = await open();
    const records = await readAll(reopened, 2);
    expect(records.map((record) => record.value.toString())).toEqual(['kept', 'retried']);
    expect((await reopened.append([message('k', 'next')]))[0]?.offset).toBe(2);
  });

  it('in interval mode acknowledges after the write and fsyncs on the timer', async () => {
    const { log, fs } = await openGated({ fsync: 'interval', fsyncIntervalMs: 20 });
    await log.append([message('k', 'a')]);
    expect(fs.calls.fdatasync).toBe(0);
    await expect.poll(() => fs.calls.fdatasync, { timeout: 2_000 }).toBe(1);
  });

  it("in 'never' mode fsyncs only when the log closes", async () => {
    const { log, fs } = await openGated({ fsync: 'never' });
    for (let i = 0; i < 5; i++) await log.append([message('k', `n${i}`)]);
    expect(fs.calls.fdatasync).toBe(0);
    await log.close();
    expect(fs.calls.fdatasync).toBe(1);
  });

  it('writes every queued append before close resolves, and rejects later ones', async () => {
    const { log, fs } = await openGated();
    fs.hold();
    const appends = Array.from({ length: 5 }, (_, i) => log.append([message('k', `q${i}`)]));
    await expect.poll(() => fs.waiting).toBe(1);
    const closing = track(log.close());
    await expect(log.append([message('k', 'late')])).rejects.toBeInstanceOf(LogClosedError);
    await ticks(10);
    expect(closing.settled()).toBe(false);
    fs.release();
    const positions: AppendedPosition[][] = await Promise.all(appends);
    expect(positions.map((list) => list[0]?.offset)).toEqual([0, 1, 2, 3, 4]);
    await closing.promise;

    const reopened = await open();
    expect((await readAll(reopened, 5)).map((record) => record.value.toString())).toEqual([
      'q0',
      'q1',
      'q2',
      'q3',
      'q4',
    ]);
  });
});

describe('FileLog consumer', () => {
  it('rejects a second consumer for a group that has a running one', async () => {
    const log = await open();
    const handleBatch = () => Promise.resolve();
    const first = log.consume({ group: 'sink', handleBatch });
    await first.start();
    const second = log.consume({ group: 'sink', handleBatch });
    await expect(second.start()).rejects.toThrow(/already has a running consumer/);
    await first.stop();
    const third = log.consume({ group: 'sink', handleBatch });
    await expect(third.start()).resolves.toBeUndefined();
    await third.stop();
  });

  it('rejects a consumer of a closed log with LogClosedError', async () => {
    const log = await open();
    await log.close();
    const consumer = log.consume({ group: 'sink', handleBatch: () => Promise.resolve() });
    await expect(consumer.start()).rejects.toBeInstanceOf(LogClosedError);
  });

  it('keeps committed offsets in consumers/<group>.json, replaced atomically', async () => {
    const log = await open({ partitions: 2 });
    await log.append(['a', 'b', 'c', 'd', 'e'].map((key) => message(key, key)));
    await readAll(log, 5);
    const consumer = log.consume({ group: 'sink/eu', handleBatch: () => Promise.resolve() });
    await consumer.start();
    await expect
      .poll(async () =>
        [...(await log.committedOffsets('sink/eu')).values()].reduce((a, b) => a + b, 0),
      )
      .toBe(5);
    await consumer.stop();

    const consumersDir = path.join(dir, topic, 'consumers');
    const files = await readdir(consumersDir);
    expect(files).toContain('sink%2Feu.json');
    expect(files.some((name) => name.endsWith('.tmp'))).toBe(false);
    const content = JSON.parse(
      await readFile(path.join(consumersDir, 'sink%2Feu.json'), 'utf8'),
    ) as {
      group: string;
      offsets: Record<string, number>;
    };
    expect(content.group).toBe('sink/eu');
    expect(Object.values(content.offsets).reduce((a, b) => a + b, 0)).toBe(5);
  });

  it('hands a new append to a waiting consumer at once, without a polling delay', async () => {
    const log = await open({ fsync: 'never' });
    const arrivals: number[] = [];
    const consumer = log.consume({
      group: 'sink',
      handleBatch: () => {
        arrivals.push(performance.now());
        return Promise.resolve();
      },
    });
    await consumer.start();
    await ticks(20);
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const sent = performance.now();
      await log.append([message('k', `m${i}`)]);
      await expect.poll(() => arrivals.length, { interval: 1 }).toBe(i + 1);
      latencies.push((arrivals[i] ?? 0) - sent);
    }
    await consumer.stop();
    expect(Math.max(...latencies)).toBeLessThan(100);
  });

  it('lets each partition progress while a batch of another is in flight', async () => {
    const log = await open({ partitions: 2 });
    const blocked = log.partitionFor('slow');
    const other = 1 - blocked;
    const fastKey = ['a', 'b', 'c', 'd', 'e', 'f'].find((key) => log.partitionFor(key) === other);
    expect(fastKey).toBeDefined();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const delivered: number[] = [];
    const consumer = log.consume({
      group: 'sink',
      handleBatch: async (batch) => {
        if (batch.partition === blocked) await held;
        delivered.push(batch.partition);
      },
    });
    await consumer.start();
    await log.append([message('slow', 's1')]);
    await log.append([message(fastKey as string, 'f1')]);
    await log.append([message(fastKey as string, 'f2')]);
    await expect.poll(async () => (await log.committedOffsets('sink')).get(other)).toBe(2);
    expect(delivered).not.toContain(blocked);
    release();
    await expect.poll(async () => (await log.committedOffsets('sink')).get(blocked)).toBe(1);
    await consumer.stop();
  });

  it('limits batches to maxBatchRecords, and to maxBatchBytes with at least one record', async () => {
    const log = await open({ maxBatchBytes: 3000 });
    await log.append(Array.from({ length: 12 }, (_, i) => message('k', Buffer.alloc(1000, i))));
    const byCount: ConsumedBatch[] = [];
    const counted = log.consume({
      group: 'by-count',
      maxBatchRecords: 2,
      handleBatch: (batch) => {
        byCount.push(batch);
        return Promise.resolve();
      },
    });
    await counted.start();
    await expect.poll(() => byCount.flatMap((batch) => batch.records).length).toBe(12);
    await counted.stop();
    expect(byCount.map((batch) => batch.records.length)).toEqual([2, 2, 2, 2, 2, 2]);

    const bySize: ConsumedBatch[] = [];
    const sized = log.consume({
      group: 'by-size',
      handleBatch: (batch) => {
        bySize.push(batch);
        return Promise.resolve();
      },
    });
    await sized.start();
    await expect.poll(() => bySize.flatMap((batch) => batch.records).length).toBe(12);
    await sized.stop();
    // 1031 bytes per record: two fit in 3000 bytes.
    expect(bySize.every((batch) => batch.records.length === 2)).toBe(true);
    expect(bySize[0]?.highWatermark).toBe(12);
  });

  it('stops and reports to onError when onAssign fails', async () => {
    const log = await open();
    const errors: Error[] = [];
    const consumer = log.consume({
      group: 'sink',
      onAssign: () => Promise.reject(new Error('cannot load state')),
      handleBatch: () => Promise.resolve(),
      onError: (error) => errors.push(error),
    });
    await consumer.start();
    await expect.poll(() => errors.map((error) => error.message)).toEqual(['cannot load state']);
    await consumer.stop();
  });
});
