import { readdir, utimes } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConsumedRecord } from '../log.js';
import { FileLog, type FileLogOptions } from './file-log.js';
import { makeTempDir } from './testing.testkit.js';

const topic = 'events';
let dir: string;
let removeDir: () => Promise<void>;
const opened: FileLog[] = [];

beforeEach(async () => {
  ({ dir, remove: removeDir } = await makeTempDir());
});

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((log) => log.close()));
  await removeDir();
});

/** 231-byte records in 2048-byte segments: 8 per segment. */
const options = { partitions: 1, segmentBytes: 2048, retentionMs: 60_000 };

async function open(extra: Partial<FileLogOptions> = {}): Promise<FileLog> {
  const log = await FileLog.open({ dir, topic, ...options, ...extra });
  opened.push(log);
  return log;
}

async function segments(): Promise<string[]> {
  return (await readdir(path.join(dir, topic, '0'))).filter((name) => name.endsWith('.log')).sort();
}

/** Makes every segment file look last written `ageMs` ago. */
async function age(ageMs: number): Promise<void> {
  const when = new Date(Date.now() - ageMs);
  for (const name of await segments()) await utimes(path.join(dir, topic, '0', name), when, when);
}

/** Consumes with `group` until it has committed `until`, failing the batch that reaches past it. */
async function commitUpTo(log: FileLog, group: string, until: number): Promise<void> {
  const consumer = log.consume({
    group,
    maxBatchRecords: 2,
    handleBatch: (batch) => {
      const last = batch.records.at(-1) as ConsumedRecord;
      return last.offset < until ? Promise.resolve() : Promise.reject(new Error('stop here'));
    },
    onError: () => undefined,
  });
  await consumer.start();
  await expect.poll(async () => (await log.committedOffsets(group)).get(0)).toBe(until);
  await consumer.stop();
}

async function fill(log: FileLog, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await log.append([{ key: 'k', value: Buffer.alloc(200, i) }]);
}

describe('FileLog retention', () => {
  it('deletes old segments once every known group has committed them, never the active one', async () => {
    const log = await open();
    await fill(log, 30);
    expect(await segments()).toEqual([
      '00000000000000000000.log',
      '00000000000000000008.log',
      '00000000000000000016.log',
      '00000000000000000024.log',
    ]);
    await age(10 * 60_000);
    // Nobody has read anything yet: nothing goes.
    expect(await log.applyRetention()).toBe(0);

    await commitUpTo(log, 'sink', 30);
    await commitUpTo(log, 'detector', 10);
    // Only the first segment (offsets 0-7) is below what the slower group committed.
    expect(await log.applyRetention()).toBe(1);
    expect(await segments()).toEqual([
      '00000000000000000008.log',
      '00000000000000000016.log',
      '00000000000000000024.log',
    ]);
    expect(await readdir(path.join(dir, topic, '0'))).not.toContain('00000000000000000000.index');

    await commitUpTo(log, 'detector', 30);
    expect(await log.applyRetention()).toBe(2);
    expect(await segments()).toEqual(['00000000000000000024.log']);
    // The active segment stays, however old and fully read.
    expect(await log.applyRetention()).toBe(0);

    // A new group starts at the first record still on disk.
    const offsets: number[] = [];
    const consumer = log.consume({
      group: 'late',
      handleBatch: (batch) => {
        offsets.push(...batch.records.map((record) => record.offset));
        return Promise.resolve();
      },
    });
    await consumer.start();
    await expect.poll(() => offsets.length).toBe(6);
    await consumer.stop();
    expect(offsets).toEqual([24, 25, 26, 27, 28, 29]);

    await log.close();
    const reopened = await open();
    expect((await reopened.append([{ key: 'k', value: Buffer.alloc(1) }]))[0]?.offset).toBe(30);
  });

  it('keeps segments younger than retentionMs even when every group has read them', async () => {
    const log = await open();
    await fill(log, 30);
    await commitUpTo(log, 'sink', 30);
    // Written a second ago by the clock retention reads (not the file system's own: the two
    // differ when the process clock is moved, as under faketime).
    await age(1000);
    expect(await log.applyRetention()).toBe(0);
    expect(await segments()).toHaveLength(4);
  });

  it('counts a group that has just started as one that has read nothing', async () => {
    const log = await open();
    await fill(log, 30);
    await commitUpTo(log, 'sink', 30);
    await age(10 * 60_000);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const newcomer = log.consume({ group: 'newcomer', handleBatch: () => held });
    await newcomer.start();
    expect(await log.applyRetention()).toBe(0);
    expect(await segments()).toHaveLength(4);
    release();
    await newcomer.stop();
  });

  it('runs at open', async () => {
    const log = await open();
    await fill(log, 30);
    await commitUpTo(log, 'sink', 30);
    await log.close();
    await age(10 * 60_000);
    await open();
    await expect.poll(segments).toEqual(['00000000000000000024.log']);
  });
});
