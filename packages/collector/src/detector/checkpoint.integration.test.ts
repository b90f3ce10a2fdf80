import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { TableCheckpointStore } from './checkpoint.js';
import { partitionCheckpointName, type PartitionCheckpoint } from './rekey/engine-stage.js';

/*
 * Checkpoints in the store's detector_state table (chDB): the engine stage of the Kafka re-key
 * keeps one per (group, topic, partition), beside the single detector's one per group.
 */

let ts: TestStore;

beforeAll(async () => {
  ts = await openTestStore();
}, 60_000);

afterAll(async () => {
  await ts?.cleanup();
});

function partition(p: number, offset: number, writtenAt: number): PartitionCheckpoint {
  return {
    format: 'vigil-detector-partition',
    version: 1,
    group: 'vigil-detector',
    topic: 'events.detect',
    partition: p,
    offset,
    punctuations: [['stage1-a', { watermark: 1_000, at: 2_000 }]],
    engines: [],
    skipped: 0,
    writtenAt,
  };
}

describe('TableCheckpointStore', () => {
  it('keeps one checkpoint per re-key partition, the newest of each, and refuses another format', async () => {
    const store = (p: number) =>
      new TableCheckpointStore<PartitionCheckpoint>(
        ts.store,
        partitionCheckpointName('vigil-detector', 'events.detect', p),
        'vigil-detector-partition',
      );
    expect(await store(0).load()).toBeUndefined();
    await store(0).save(partition(0, 10, 1_000));
    await store(1).save(partition(1, 7, 1_000));
    const zero = store(0);
    await zero.load();
    // A second save from the same member, even with a clock that stepped back, wins.
    await zero.save(partition(0, 25, 500));
    expect((await store(0).load())?.offset).toBe(25);
    expect((await store(1).load())?.offset).toBe(7);
    expect((await store(1).load())?.punctuations).toEqual([
      ['stage1-a', { watermark: 1_000, at: 2_000 }],
    ]);
    // The single detector's checkpoint of the same group is another row, of another format.
    const single = new TableCheckpointStore(ts.store, 'vigil-detector');
    expect(await single.load()).toBeUndefined();
    const wrong = new TableCheckpointStore(
      ts.store,
      partitionCheckpointName('vigil-detector', 'events.detect', 0),
    );
    await expect(wrong.load()).rejects.toThrow(/not a detector checkpoint/);
  }, 60_000);
});
