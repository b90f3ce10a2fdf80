import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { ConsumedRecord, Log } from '../log.js';
import { nodeFileOps, type FileOps } from './file-ops.js';
import type { FileLogLogger } from './logger.js';

export async function makeTempDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vigil-file-log-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface LogLine {
  readonly level: 'warn' | 'info';
  readonly obj: object;
  readonly msg: string;
}

export function captureLogger(): FileLogLogger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
  };
}

/**
 * The real file system, with a hand on fdatasync (the call that makes appended records
 * durable): tests can hold it pending, fail it, and count calls.
 */
export class GatedFileOps {
  readonly calls = { writev: 0, fdatasync: 0 };
  private gate: { promise: Promise<void>; release(): void } | undefined;
  private failures: Error[] = [];
  /** fdatasync calls waiting at the gate. */
  waiting = 0;
  readonly ops: FileOps;

  constructor(base: FileOps = nodeFileOps) {
    this.ops = {
      ...base,
      writev: (fd, buffers, position) => {
        this.calls.writev++;
        return base.writev(fd, buffers, position);
      },
      fdatasync: async (fd) => {
        this.calls.fdatasync++;
        const gate = this.gate;
        if (gate) {
          this.waiting++;
          await gate.promise;
          this.waiting--;
        }
        const failure = this.failures.shift();
        if (failure) throw failure;
        await base.fdatasync(fd);
      },
    };
  }

  /** Counts from zero again (opening a log writes a few small files). */
  resetCounts(): void {
    this.calls.writev = 0;
    this.calls.fdatasync = 0;
  }

  /** fdatasync calls from now on wait until `release()`. */
  hold(): void {
    let release: () => void = () => undefined;
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.gate = { promise, release };
  }

  release(): void {
    const gate = this.gate;
    this.gate = undefined;
    gate?.release();
  }

  /** The next fdatasync fails with `code`. */
  failNext(code = 'EIO'): void {
    const error: NodeJS.ErrnoException = new Error(`${code}: injected fdatasync failure`);
    error.code = code;
    this.failures.push(error);
  }
}

/** Lets pending I/O callbacks and promise reactions run. */
export async function ticks(count = 5): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

let groups = 0;

/** Every record of the log, through a new consumer group, in offset order per partition. */
export async function readAll(log: Log, expected: number): Promise<ConsumedRecord[]> {
  const records: ConsumedRecord[] = [];
  const consumer = log.consume({
    group: `read-all-${++groups}`,
    handleBatch: (batch) => {
      records.push(...batch.records);
      return Promise.resolve();
    },
  });
  await consumer.start();
  try {
    await expect.poll(() => records.length, { timeout: 5_000, interval: 5 }).toBe(expected);
  } finally {
    await consumer.stop();
  }
  return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}
