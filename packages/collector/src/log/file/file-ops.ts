import fs from 'node:fs';
import path from 'node:path';

export interface FileStat {
  readonly size: number;
  readonly mtimeMs: number;
}

/**
 * Every file-system call the embedded log makes. The log takes one as an option so that tests
 * can hold an fsync pending, or fail a write, and watch what the log does meanwhile.
 * Calls work on raw descriptors with positional reads and writes: no stream buffering, no
 * FileHandle bookkeeping on the append path.
 */
export interface FileOps {
  /** `flags` as in `fs.open`: 'r', 'r+', 'w+', 'wx'. */
  open(file: string, flags: string): Promise<number>;
  close(fd: number): Promise<void>;
  /** Writes all buffers at `position`; resolves the bytes written. */
  writev(fd: number, buffers: readonly Buffer[], position: number): Promise<number>;
  /** Reads up to `length` bytes at `position` into `buffer[offset..]`; resolves the bytes read. */
  read(
    fd: number,
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
  ): Promise<number>;
  fdatasync(fd: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  ftruncate(fd: number, length: number): Promise<void>;
  fstat(fd: number): Promise<FileStat>;
  stat(file: string): Promise<FileStat>;
  readdir(dir: string): Promise<string[]>;
  /** Creates the directory and its parents; no error when it exists. */
  mkdir(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  readFile(file: string): Promise<Buffer>;
  /** Sets a file's access and modification times (seconds); a rewrite keeps a segment's age. */
  futimes?(fd: number, atime: number, mtime: number): Promise<void>;
}

function settle<T>(resolve: (value: T) => void, reject: (error: Error) => void) {
  return (error: NodeJS.ErrnoException | null, value: T): void => {
    if (error) reject(error);
    else resolve(value);
  };
}

function settleVoid(resolve: () => void, reject: (error: Error) => void) {
  return (error: NodeJS.ErrnoException | null): void => {
    if (error) reject(error);
    else resolve();
  };
}

/**
 * Modes of what the log creates: its records hold personal data in plain text (values and salts
 * until erased), so directories are 0700 and files 0600, owner-only whatever the umask (a umask
 * only ever removes bits). Directories that exist already keep their mode.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** The real file system, through the callback API (one libuv request per call). */
export const nodeFileOps: FileOps = {
  open: (file, flags) =>
    new Promise((res, rej) => fs.open(file, flags, PRIVATE_FILE_MODE, settle(res, rej))),
  close: (fd) => new Promise((res, rej) => fs.close(fd, settleVoid(res, rej))),
  writev: (fd, buffers, position) =>
    new Promise((res, rej) =>
      fs.writev(fd, buffers as Buffer[], position, (error, written) => {
        if (error) rej(error);
        else res(written);
      }),
    ),
  read: (fd, buffer, offset, length, position) =>
    new Promise((res, rej) =>
      fs.read(fd, buffer, offset, length, position, (error, bytesRead) => {
        if (error) rej(error);
        else res(bytesRead);
      }),
    ),
  fdatasync: (fd) => new Promise((res, rej) => fs.fdatasync(fd, settleVoid(res, rej))),
  fsync: (fd) => new Promise((res, rej) => fs.fsync(fd, settleVoid(res, rej))),
  ftruncate: (fd, length) =>
    new Promise((res, rej) => fs.ftruncate(fd, length, settleVoid(res, rej))),
  fstat: (fd) =>
    new Promise((res, rej) =>
      fs.fstat(fd, (error, stats) => {
        if (error) rej(error);
        else res({ size: stats.size, mtimeMs: stats.mtimeMs });
      }),
    ),
  stat: (file) =>
    new Promise((res, rej) =>
      fs.stat(file, (error, stats) => {
        if (error) rej(error);
        else res({ size: stats.size, mtimeMs: stats.mtimeMs });
      }),
    ),
  readdir: (dir) => new Promise((res, rej) => fs.readdir(dir, settle(res, rej))),
  mkdir: (dir) =>
    new Promise((res, rej) =>
      fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE }, (error) => {
        if (error) rej(error);
        else res();
      }),
    ),
  rename: (from, to) => new Promise((res, rej) => fs.rename(from, to, settleVoid(res, rej))),
  unlink: (file) => new Promise((res, rej) => fs.unlink(file, settleVoid(res, rej))),
  readFile: (file) => new Promise((res, rej) => fs.readFile(file, settle(res, rej))),
  futimes: (fd, atime, mtime) =>
    new Promise((res, rej) => fs.futimes(fd, atime, mtime, settleVoid(res, rej))),
};

export function isErrorCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

/**
 * Makes a directory's entries durable: on Linux a new, renamed or removed file survives a
 * crash only once its directory is fsynced, not just the file itself (fsync(2), NOTES).
 */
export async function syncDirectory(ops: FileOps, dir: string): Promise<void> {
  const fd = await ops.open(dir, 'r');
  try {
    await ops.fsync(fd);
  } finally {
    await ops.close(fd);
  }
}

/** Writes all bytes at `position`, failing on a short write (a full disk shows up this way). */
export async function writeFully(
  ops: FileOps,
  fd: number,
  buffers: readonly Buffer[],
  bytes: number,
  position: number,
): Promise<void> {
  const written = await ops.writev(fd, buffers, position);
  if (written !== bytes) {
    const error: NodeJS.ErrnoException = new Error(
      `short write: ${written} of ${bytes} bytes at position ${position}`,
    );
    error.code = 'EIO';
    throw error;
  }
}

/**
 * Replaces a small file atomically and durably: write a temporary file, fsync it, rename it
 * over the old one, fsync the directory. A crash leaves either the old or the new content.
 */
export async function writeFileDurably(ops: FileOps, file: string, data: Buffer): Promise<void> {
  const temporary = `${file}.tmp`;
  const fd = await ops.open(temporary, 'w');
  try {
    await writeFully(ops, fd, [data], data.length, 0);
    await ops.fsync(fd);
  } finally {
    await ops.close(fd);
  }
  await ops.rename(temporary, file);
  await syncDirectory(ops, path.dirname(file));
}

/** The file's bytes, or undefined when it does not exist. */
export async function readFileIfExists(ops: FileOps, file: string): Promise<Buffer | undefined> {
  try {
    return await ops.readFile(file);
  } catch (error) {
    if (isErrorCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}
