import { describe, expect, it } from 'vitest';
import { InsertGroup } from './insert-group.js';

function recorder(fail?: Error): {
  inserts: number[][];
  insert: (rows: readonly number[]) => Promise<void>;
} {
  const inserts: number[][] = [];
  return {
    inserts,
    insert: async (rows) => {
      inserts.push([...rows]);
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (fail) throw fail;
    },
  };
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

describe('InsertGroup', () => {
  it('inserts a lone batch at once', async () => {
    const r = recorder();
    const group = new InsertGroup(r.insert, 10_000);
    group.begin();
    await group.submit([1, 2]);
    expect(r.inserts).toEqual([[1, 2]]);
  });

  it('waits for the batches still being prepared and inserts them together', async () => {
    const r = recorder();
    const group = new InsertGroup(r.insert, 10_000);
    group.begin();
    group.begin();
    group.begin();
    const first = group.submit([1]);
    await tick(10);
    expect(r.inserts).toEqual([]);
    const second = group.submit([2, 3]);
    await tick(10);
    expect(r.inserts).toEqual([]);
    await Promise.all([first, second, group.submit([4])]);
    expect(r.inserts).toEqual([[1, 2, 3, 4]]);
  });

  it('does not wait for a batch that gave up before its insert', async () => {
    const r = recorder();
    const group = new InsertGroup(r.insert, 10_000);
    group.begin();
    group.begin();
    const submitted = group.submit([1]);
    group.abandon();
    await submitted;
    expect(r.inserts).toEqual([[1]]);
  });

  it('inserts what it has after lingerMs when a batch is slow', async () => {
    const r = recorder();
    const group = new InsertGroup(r.insert, 20);
    group.begin();
    group.begin();
    const started = Date.now();
    await group.submit([1]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
    expect(r.inserts).toEqual([[1]]);
    await group.submit([2]);
    expect(r.inserts).toEqual([[1], [2]]);
  });

  it('fails every batch of a failed insert when each fails alone too, so none commits its offsets', async () => {
    const r = recorder(new Error('store down'));
    const group = new InsertGroup(r.insert, 10_000);
    group.begin();
    group.begin();
    const results = await Promise.allSettled([group.submit([1]), group.submit([2])]);
    expect(results.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    expect(r.inserts).toEqual([[1, 2], [1], [2]]);
  });

  it('fails only the batch whose rows the store refuses; the others are inserted', async () => {
    const inserts: number[][] = [];
    const group = new InsertGroup<number>(async (rows) => {
      inserts.push([...rows]);
      await tick(5);
      if (rows.includes(13)) throw new Error('cannot parse row 13');
    }, 10_000);
    group.begin();
    group.begin();
    group.begin();
    const results = await Promise.allSettled([
      group.submit([1, 2]),
      group.submit([13]),
      group.submit([3]),
    ]);
    expect(results.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(inserts).toEqual([[1, 2, 13, 3], [1, 2], [13], [3]]);
  });

  it('skips the insert of a group without rows', async () => {
    const r = recorder();
    const group = new InsertGroup(r.insert, 10_000);
    group.begin();
    await group.submit([]);
    expect(r.inserts).toEqual([]);
  });
});
