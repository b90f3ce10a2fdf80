import { lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileLog } from './file-log.js';
import { makeTempDir } from './testing.testkit.js';

/**
 * The embedded log holds personal data in plain text: whatever the process umask (here 022,
 * which leaves files 0644 and directories 0755 unless the code asks for less), every directory
 * it creates is 0700 and every file 0600 — segments, indexes, topic metadata, offsets.
 */

function notOwnerOnly(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string): void => {
    const stat = lstatSync(at);
    if ((stat.mode & 0o077) !== 0) out.push(`${(stat.mode & 0o777).toString(8)} ${at}`);
    if (stat.isDirectory()) for (const name of readdirSync(at)) walk(path.join(at, name));
  };
  walk(dir);
  return out;
}

let dir: string;
let removeDir: () => Promise<void>;
let umask: number;

beforeEach(async () => {
  ({ dir, remove: removeDir } = await makeTempDir());
  umask = process.umask(0o022);
});

afterEach(async () => {
  process.umask(umask);
  await removeDir();
});

describe('embedded log file modes', () => {
  it('creates owner-only directories and files under umask 022', async () => {
    const logDir = path.join(dir, 'data', 'log');
    const log = await FileLog.open({ dir: logDir, topic: 'events', partitions: 2 });
    try {
      await log.append([
        { key: 'a', value: Buffer.from('{"email":"zoe@example.eu"}') },
        { key: 'b', value: Buffer.from('{"email":"kim@example.eu"}') },
      ]);
      let seen = 0;
      const consumer = log.consume({
        group: 'sink',
        handleBatch: (batch) => {
          seen += batch.records.length;
          return Promise.resolve();
        },
      });
      await consumer.start();
      const deadline = Date.now() + 5000;
      while (seen < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await consumer.stop();
      expect(seen).toBe(2);
    } finally {
      await log.close();
    }
    const names = readdirSync(path.join(logDir, 'events'));
    expect(names).toContain('consumers');
    expect(notOwnerOnly(path.join(dir, 'data'))).toEqual([]);
  });
});
