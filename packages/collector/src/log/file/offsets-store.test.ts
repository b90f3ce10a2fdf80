import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogCorruptError } from '../../errors.js';
import { nodeFileOps, type FileOps } from './file-ops.js';
import { silentLogger } from './logger.js';
import { OffsetsStore, groupFileName } from './offsets-store.js';
import { makeTempDir } from './testing.testkit.js';

let dir: string;
let removeDir: () => Promise<void>;

beforeEach(async () => {
  ({ dir, remove: removeDir } = await makeTempDir());
});

afterEach(async () => {
  await removeDir();
});

describe('OffsetsStore', () => {
  it('keeps committed offsets across a reload', async () => {
    const store = await OffsetsStore.load(nodeFileOps, dir, silentLogger);
    await store.commit('sink', 0, 12);
    await store.commit('sink', 2, 7);
    await store.commit('detector', 1, 3);
    const reloaded = await OffsetsStore.load(nodeFileOps, dir, silentLogger);
    expect(reloaded.committed('sink')).toEqual(
      new Map([
        [0, 12],
        [2, 7],
      ]),
    );
    expect(reloaded.committed('detector')).toEqual(new Map([[1, 3]]));
    expect(reloaded.committed('nobody')).toBeUndefined();
  });

  it('gathers commits made during a write into the next write', async () => {
    let renames = 0;
    const ops: FileOps = {
      ...nodeFileOps,
      rename: (from, to) => {
        renames++;
        return nodeFileOps.rename(from, to);
      },
    };
    const store = await OffsetsStore.load(ops, dir, silentLogger);
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.commit('sink', i % 4, i)));
    expect(renames).toBe(2);
    expect(store.committed('sink')).toEqual(
      new Map([
        [0, 16],
        [1, 17],
        [2, 18],
        [3, 19],
      ]),
    );
  });

  it('makes a registered group known at once and gives it a file', async () => {
    const store = await OffsetsStore.load(nodeFileOps, dir, silentLogger);
    const registering = store.register('new/group');
    expect([...store.groupNames()]).toEqual(['new/group']);
    await registering;
    expect(await readdir(dir)).toEqual([groupFileName('new/group')]);
    expect(groupFileName('new/group')).toBe('new%2Fgroup.json');
  });

  it('removes a temporary file left by a crash and ignores it', async () => {
    await writeFile(path.join(dir, 'sink.json.tmp'), '{"half');
    const store = await OffsetsStore.load(nodeFileOps, dir, silentLogger);
    expect([...store.groupNames()]).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it('reports an unreadable offsets file as LogCorruptError naming it', async () => {
    await writeFile(path.join(dir, 'sink.json'), '{"version":1,"group":"sink","offsets":{"0":-1}}');
    const error: unknown = await OffsetsStore.load(nodeFileOps, dir, silentLogger).catch(
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(LogCorruptError);
    expect((error as Error).message).toContain(path.join(dir, 'sink.json'));
  });
});
