import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileLog, type FileLogOptions } from './file-log.js';
import { JOURNAL_FILE, collectPatches, type RecordTransform } from './rewrite.js';
import { nodeFileOps } from './file-ops.js';
import { captureLogger, makeTempDir, readAll } from './testing.testkit.js';

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

async function open(options: Partial<FileLogOptions> = {}): Promise<FileLog> {
  const log = await FileLog.open({ dir, topic, partitions: 1, ...options });
  opened.push(log);
  return log;
}

/** Replaces "secret-N" by "xxxxxx-N": same length, as an erasure's padding keeps it. */
const blank: RecordTransform = (record) => {
  const text = record.value.toString('utf8');
  if (!text.includes('secret')) return undefined;
  return Buffer.from(text.replaceAll('secret', 'xxxxxx'), 'utf8');
};

async function segmentBytes(): Promise<Buffer> {
  const partitionDir = path.join(dir, topic, '0');
  const names = (await readdir(partitionDir)).filter((n) => n.endsWith('.log')).sort();
  return Buffer.concat(await Promise.all(names.map((n) => readFile(path.join(partitionDir, n)))));
}

describe('rewriting records of the embedded log in place', () => {
  it('changes only the chosen values and keeps offsets, keys, timestamps and framing', async () => {
    const log = await open({ segmentBytes: 4096 });
    for (let i = 0; i < 60; i++)
      await log.append([
        {
          key: `k${i}`,
          value: Buffer.from(i % 3 === 0 ? `secret-${i}` : `public-${i}`),
          timestamp: 1000 + i,
        },
      ]);
    const before = await readAll(log, 60);
    const result = await log.rewriteRecords(blank, { prefilter: (v) => v.includes('secret') });
    expect(result).toEqual({ records: 20, scanned: 60 });
    const after = await readAll(log, 60);
    for (const [i, record] of after.entries()) {
      const old = before[i];
      expect(record.offset).toBe(old?.offset);
      expect(record.key).toBe(old?.key);
      expect(record.timestamp).toBe(old?.timestamp);
      expect(record.value.toString()).toBe(i % 3 === 0 ? `xxxxxx-${i}` : `public-${i}`);
    }
    // The plain bytes are gone from every segment file, sealed ones included.
    expect((await segmentBytes()).includes(Buffer.from('secret'))).toBe(false);
    // The log reopens clean (checksums and index agree), and appends go on.
    await log.close();
    opened.splice(0);
    const again = await open({ segmentBytes: 4096 });
    await again.append([{ key: 'k', value: Buffer.from('after') }]);
    expect((await readAll(again, 61)).at(-1)?.value.toString()).toBe('after');
  });

  it('keeps a sealed segment’s age, so log retention still sees when it was written', async () => {
    const log = await open({ segmentBytes: 1024 });
    for (let i = 0; i < 40; i++)
      await log.append([{ key: 'k', value: Buffer.from(`secret-${i}`) }]);
    const first = path.join(dir, topic, '0', '00000000000000000000.log');
    const old = new Date('2026-01-01T00:00:00Z');
    const { utimes } = await import('node:fs/promises');
    await utimes(first, old, old);
    await log.rewriteRecords(blank);
    expect((await stat(first)).mtimeMs).toBe(old.getTime());
  });

  it('refuses a transform that changes a record’s length', async () => {
    const log = await open();
    await log.append([{ key: 'k', value: Buffer.from('secret') }]);
    await expect(log.rewriteRecords(() => Buffer.from('longer value'))).rejects.toThrow(
      /must keep its length/,
    );
    expect((await readAll(log, 1))[0]?.value.toString()).toBe('secret');
  });

  it('finishes, at the next open, a rewrite a crash interrupted after its journal', async () => {
    const log = await open();
    for (let i = 0; i < 5; i++) await log.append([{ key: 'k', value: Buffer.from(`secret-${i}`) }]);
    await log.close();
    opened.splice(0);
    const partitionDir = path.join(dir, topic, '0');
    const extents = [
      {
        name: '00000000000000000000.log',
        file: path.join(partitionDir, '00000000000000000000.log'),
        bytes: -1,
      },
    ];
    const { patches } = await collectPatches(nodeFileOps, 0, extents, blank, {});
    expect(patches).toHaveLength(5);
    // The journal was written, then the crash tore the first record half way through.
    const { rewriteDurably } = await import('./rewrite.js');
    const ops = { ...nodeFileOps, unlink: () => Promise.reject(new Error('crash')) };
    await expect(rewriteDurably(ops, partitionDir, patches)).rejects.toThrow('crash');
    const file = path.join(partitionDir, '00000000000000000000.log');
    const bytes = await readFile(file);
    const torn = Buffer.from(bytes);
    const original = (patches[0]?.bytes ?? Buffer.alloc(0)).length;
    // Put the old bytes of the second half of record 0 back: a torn write.
    const fresh = await readFile(file);
    fresh.set(Buffer.from('secret-0'), original - 8);
    await writeFile(file, fresh);
    expect(torn.length).toBe(fresh.length);
    const logger = captureLogger();
    const reopened = await open({ logger });
    const records = await readAll(reopened, 5);
    expect(records.map((r) => r.value.toString())).toEqual(
      [0, 1, 2, 3, 4].map((i) => `xxxxxx-${i}`),
    );
    expect(logger.lines.some((l) => /completed a rewrite/.test(l.msg))).toBe(true);
    expect((await readdir(partitionDir)).includes(JOURNAL_FILE)).toBe(false);
  });

  it('discards an incomplete journal: no record had been changed', async () => {
    const log = await open();
    await log.append([{ key: 'k', value: Buffer.from('secret-0') }]);
    await log.close();
    opened.splice(0);
    const partitionDir = path.join(dir, topic, '0');
    await writeFile(path.join(partitionDir, JOURNAL_FILE), Buffer.from([0, 0, 0, 1, 0, 4, 1, 2]));
    const logger = captureLogger();
    const reopened = await open({ logger });
    expect((await readAll(reopened, 1))[0]?.value.toString()).toBe('secret-0');
    expect(logger.lines.some((l) => /discarded an incomplete rewrite journal/.test(l.msg))).toBe(
      true,
    );
  });

  it('lets consumers read on while it scans and rewrites', async () => {
    const log = await open({ segmentBytes: 2048 });
    for (let i = 0; i < 200; i++)
      await log.append([{ key: 'k', value: Buffer.from(`secret-${i}`) }]);
    const reading = readAll(log, 200);
    await log.rewriteRecords(blank);
    const seen = await reading;
    // Every record was read whole: old or new, never torn.
    for (const [i, r] of seen.entries())
      expect(['secret', 'xxxxxx'].map((w) => `${w}-${i}`)).toContain(r.value.toString());
  });
});
