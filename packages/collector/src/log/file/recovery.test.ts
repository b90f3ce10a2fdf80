import { cp, open as openFile, readdir, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogCorruptError } from '../../errors.js';
import { FileLog, type FileLogOptions } from './file-log.js';
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

async function open(options: Partial<FileLogOptions> = {}, at = dir): Promise<FileLog> {
  const log = await FileLog.open({ dir: at, topic, partitions: 1, ...options });
  opened.push(log);
  return log;
}

function segmentFile(name = '00000000000000000000.log', at = dir): string {
  return path.join(at, topic, '0', name);
}

const valueOf = (i: number, size: number): Buffer => Buffer.alloc(size, 65 + (i % 26));

/** Appends `count` records and returns where each starts in the segment and where they end. */
async function writeRecords(
  log: FileLog,
  count: number,
  size = 100,
): Promise<{ starts: number[]; end: number }> {
  const starts: number[] = [];
  for (let i = 0; i < count; i++) {
    starts.push((await stat(segmentFile())).size);
    await log.append([{ key: 'k', value: valueOf(i, size) }]);
  }
  return { starts, end: (await stat(segmentFile())).size };
}

async function flipByte(file: string, position: number): Promise<void> {
  const handle = await openFile(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, position);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await handle.write(byte, 0, 1, position);
  } finally {
    await handle.close();
  }
}

async function expectCorrupt(promise: Promise<unknown>, file: string, position: number) {
  const error: unknown = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(LogCorruptError);
  expect((error as Error).message).toContain(file);
  expect((error as Error).message).toContain(`byte ${position}`);
}

describe('FileLog recovery of a torn write', () => {
  it.each<[string, (start: number, end: number) => Promise<void>]>([
    ['1 byte of the length', (start) => truncate(segmentFile(), start + 1)],
    ['the length alone', (start) => truncate(segmentFile(), start + 4)],
    ['a header short by one byte', (start) => truncate(segmentFile(), start + 29)],
    ['a whole header and no key or value', (start) => truncate(segmentFile(), start + 30)],
    ['a value short by one byte', (_, end) => truncate(segmentFile(), end - 1)],
    ['a checksum mismatch in the last byte', (_, end) => flipByte(segmentFile(), end - 1)],
  ])('cuts off a last record left as %s, keeping every earlier one', async (_, tear) => {
    const { starts, end } = await writeRecords(await open(), 5);
    await opened.pop()?.close();
    const lastStart = starts[4] as number;
    await tear(lastStart, end);

    const logger = captureLogger();
    const log = await open({ logger });
    const warning = logger.lines.find((line) => line.level === 'warn');
    expect(warning?.msg).toContain('torn write');
    expect(warning?.obj).toMatchObject({ file: segmentFile(), position: lastStart });
    expect((await stat(segmentFile())).size).toBe(lastStart);

    const records = await readAll(log, 4);
    expect(records.map((record) => record.value)).toEqual([0, 1, 2, 3].map((i) => valueOf(i, 100)));
    expect(await log.append([{ key: 'k', value: valueOf(4, 100) }])).toEqual([
      { partition: 0, offset: 4 },
    ]);
  });

  it('cuts off zeros that a crash left past the last record', async () => {
    const { end } = await writeRecords(await open(), 5);
    await opened.pop()?.close();
    const handle = await openFile(segmentFile(), 'a');
    await handle.write(Buffer.alloc(8192));
    await handle.close();

    const log = await open();
    expect((await stat(segmentFile())).size).toBe(end);
    expect(await readAll(log, 5)).toHaveLength(5);
  });

  it('keeps the index right when the cut drops indexed records', async () => {
    const { starts } = await writeRecords(await open(), 8, 2000);
    await opened.pop()?.close();
    await truncate(segmentFile(), (starts[7] as number) + 10);

    const log = await open();
    expect(await readAll(log, 7)).toHaveLength(7);
    await log.append([{ key: 'k', value: valueOf(7, 2000) }]);
    await log.close();
    const reopened = await open();
    expect((await readAll(reopened, 8)).map((record) => record.offset)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7,
    ]);
  });
});

describe('FileLog recovery of corruption', () => {
  it.each([
    ['length', 2],
    ['checksum', 5],
    ['magic', 8],
    ['offset', 17],
    ['timestamp', 22],
    ['key length', 29],
    ['value', 80],
  ])(
    'refuses to open when the %s of a record followed by intact ones is damaged',
    async (_, at) => {
      const { starts } = await writeRecords(await open(), 5);
      await opened.pop()?.close();
      const damaged = starts[2] as number;
      await flipByte(segmentFile(), damaged + at);

      await expectCorrupt(open(), segmentFile(), damaged);
    },
  );

  it('after a crash, checks the whole last segment, not only its tail', async () => {
    const log = await open();
    const { starts } = await writeRecords(log, 40, 1000);
    // Copying the files of a running log is what a crash (kill -9) leaves behind.
    const image = path.join(dir, 'crash-image');
    await cp(path.join(dir, topic), path.join(image, topic), { recursive: true });
    await flipByte(segmentFile(undefined, image), (starts[2] as number) + 100);

    await expectCorrupt(open({}, image), segmentFile(undefined, image), starts[2] as number);
  });

  it('after a clean close, trusts the index and reports older damage when it is read', async () => {
    const { starts } = await writeRecords(await open(), 40, 1000);
    await opened.pop()?.close();
    await flipByte(segmentFile(), (starts[2] as number) + 100);

    const log = await open();
    const errors: Error[] = [];
    const consumer = log.consume({
      group: 'sink',
      handleBatch: () => Promise.resolve(),
      onError: (error) => errors.push(error),
    });
    await consumer.start();
    await expect.poll(() => errors.length).toBe(1);
    await consumer.stop();
    expect(errors[0]).toBeInstanceOf(LogCorruptError);
    expect(errors[0]?.message).toContain(segmentFile());
    expect(errors[0]?.message).toContain(`byte ${starts[2]}`);
    expect((await log.committedOffsets('sink')).get(0) ?? 0).toBe(0);
  });
});

describe('FileLog after a crash', () => {
  it('keeps every append that resolved before the process died', async () => {
    const log = await open();
    const positions = [];
    for (let i = 0; i < 10; i++) {
      positions.push(...(await log.append([{ key: `k${i}`, value: valueOf(i, 300) }])));
    }
    const image = path.join(dir, 'crash-image');
    await cp(path.join(dir, topic), path.join(image, topic), { recursive: true });

    const logger = captureLogger();
    const recovered = await open({ logger }, image);
    expect(logger.lines.find((line) => line.msg === 'opened the embedded log')?.obj).toMatchObject({
      cleanShutdown: false,
    });
    const records = await readAll(recovered, 10);
    expect(records.map((record) => record.offset)).toEqual(positions.map((p) => p.offset));
    expect(records.map((record) => record.value)).toEqual(
      Array.from({ length: 10 }, (_, i) => valueOf(i, 300)),
    );
    expect((await recovered.append([{ key: 'k', value: valueOf(10, 300) }]))[0]?.offset).toBe(10);
  });

  it('drops an empty segment left by a roll that did not finish', async () => {
    const log = await open();
    await writeRecords(log, 5);
    await log.close();
    // A failed roll at offset 3, after which the old segment took more records.
    await writeFile(segmentFile('00000000000000000003.log'), '');

    const reopened = await open();
    expect(await readdir(path.join(dir, topic, '0'))).not.toContain('00000000000000000003.log');
    expect((await reopened.append([{ key: 'k', value: valueOf(5, 100) }]))[0]?.offset).toBe(5);
    expect(await readAll(reopened, 6)).toHaveLength(6);
  });

  it('rebuilds a missing index of a sealed segment when it is read', async () => {
    const log = await open({ segmentBytes: 4096 });
    for (let i = 0; i < 30; i++) await log.append([{ key: 'k', value: valueOf(i, 500) }]);
    await log.close();
    await unlink(segmentFile('00000000000000000000.index'));

    const logger = captureLogger();
    const reopened = await open({ segmentBytes: 4096, logger });
    const consumer = reopened.consume({ group: 'sink', handleBatch: () => Promise.resolve() });
    await consumer.start();
    await expect.poll(async () => (await reopened.committedOffsets('sink')).get(0)).toBe(30);
    await consumer.stop();
    expect(logger.lines.map((line) => line.msg)).toContain(
      'the log index is missing; rebuilding it',
    );
    expect(await readAll(reopened, 30)).toHaveLength(30);
    expect(await readdir(path.join(dir, topic, '0'))).toContain('00000000000000000000.index');
  });

  it('rebuilds an active index full of garbage', async () => {
    const log = await open();
    await writeRecords(log, 12, 1000);
    await log.close();
    await writeFile(segmentFile('00000000000000000000.index'), Buffer.alloc(64, 0xab));

    const reopened = await open();
    expect((await readAll(reopened, 12)).map((record) => record.offset)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    ]);
    expect((await reopened.append([{ key: 'k', value: valueOf(12, 10) }]))[0]?.offset).toBe(12);
  });
});
