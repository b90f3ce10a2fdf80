import path from 'node:path';
import { LogCorruptError } from '../../errors.js';
import { isErrorCode, writeFileDurably, type FileOps } from './file-ops.js';
import type { FileLogLogger } from './logger.js';

const FORMAT_VERSION = 1;
const FILE_SUFFIX = '.json';
/** Leaves room for the suffix and the temporary file's within a 255-byte file name. */
const MAX_FILE_NAME_BYTES = 240;

/**
 * `<topic>/consumers/<group>.json`:
 *
 *     { "version": 1, "group": "<group id>", "offsets": { "<partition>": <next offset> } }
 *
 * An offset is the next record the group will read, as in Kafka's OffsetCommit. The group id
 * is in the file because the file name is only its URI-encoded form.
 */
interface OffsetsFile {
  readonly version: number;
  readonly group: string;
  readonly offsets: Record<string, number>;
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

interface GroupState {
  readonly group: string;
  readonly file: string;
  /** Durable: in the file. */
  committed: ReadonlyMap<number, number>;
  /** Wanted: what the next write puts in the file. */
  readonly staged: Map<number, number>;
  onDisk: boolean;
  waiters: Waiter[];
  writing: Promise<void> | undefined;
}

export function groupFileName(group: string): string {
  return `${encodeURIComponent(group)}${FILE_SUFFIX}`;
}

/** Whether a group id can name an offsets file; the reason if not. */
export function checkGroupName(group: string): string | undefined {
  if (group.length === 0) return 'a consumer group id must not be empty';
  if (Buffer.byteLength(groupFileName(group)) > MAX_FILE_NAME_BYTES) {
    return `consumer group id "${group.slice(0, 40)}…" is too long for a file name`;
  }
  return undefined;
}

/**
 * Committed offsets of every consumer group of one topic, one file per group. Each file is
 * replaced atomically (temporary file, fsync, rename, fsync of the directory), so a crash
 * leaves the old or the new offsets, never a mix. Commits that arrive while a group's file is
 * being written are gathered into the next write, like appends to the log.
 */
export class OffsetsStore {
  private readonly groups = new Map<string, GroupState>();

  private constructor(
    private readonly ops: FileOps,
    private readonly dir: string,
  ) {}

  /** Loads every group's offsets from `dir` (created if missing). */
  static async load(ops: FileOps, dir: string, logger: FileLogLogger): Promise<OffsetsStore> {
    await ops.mkdir(dir);
    const store = new OffsetsStore(ops, dir);
    for (const name of (await ops.readdir(dir)).sort()) {
      const file = path.join(dir, name);
      if (name.endsWith(`${FILE_SUFFIX}.tmp`)) {
        // A write that a crash interrupted before its rename: the old file still holds.
        await ops.unlink(file).catch((error: unknown) => {
          if (!isErrorCode(error, 'ENOENT')) throw error;
        });
        continue;
      }
      if (!name.endsWith(FILE_SUFFIX)) continue;
      const { group, offsets } = parseOffsetsFile(file, await ops.readFile(file));
      store.groups.set(group, {
        group,
        file,
        committed: offsets,
        staged: new Map(offsets),
        onDisk: true,
        waiters: [],
        writing: undefined,
      });
    }
    if (store.groups.size > 0) {
      logger.info({ dir, groups: [...store.groups.keys()] }, 'loaded consumer group offsets');
    }
    return store;
  }

  groupNames(): IterableIterator<string> {
    return this.groups.keys();
  }

  /** Durable committed offsets of `group`, or undefined for a group never seen. */
  committed(group: string): ReadonlyMap<number, number> | undefined {
    return this.groups.get(group)?.committed;
  }

  /**
   * Makes `group` known at once (retention keeps every record it has not committed from
   * this moment), then writes its file if it has none yet.
   */
  register(group: string): Promise<void> {
    const state = this.state(group);
    return state.onDisk ? Promise.resolve() : this.write(state);
  }

  /** Commits `offset` as the next offset of `group` in `partition`; resolves once durable. */
  commit(group: string, partition: number, offset: number): Promise<void> {
    const state = this.state(group);
    state.staged.set(partition, offset);
    return this.write(state);
  }

  /** Resolves once no write is in progress. */
  async drain(): Promise<void> {
    for (const state of this.groups.values()) {
      while (state.writing) await state.writing;
    }
  }

  private state(group: string): GroupState {
    let state = this.groups.get(group);
    if (!state) {
      state = {
        group,
        file: path.join(this.dir, groupFileName(group)),
        committed: new Map(),
        staged: new Map(),
        onDisk: false,
        waiters: [],
        writing: undefined,
      };
      this.groups.set(group, state);
    }
    return state;
  }

  private write(state: GroupState): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      state.waiters.push({ resolve, reject });
      state.writing ??= this.writeLoop(state);
    });
  }

  private async writeLoop(state: GroupState): Promise<void> {
    try {
      while (state.waiters.length > 0) {
        const waiters = state.waiters;
        state.waiters = [];
        const snapshot = new Map(state.staged);
        try {
          await writeFileDurably(this.ops, state.file, encodeOffsetsFile(state.group, snapshot));
          state.committed = snapshot;
          state.onDisk = true;
          for (const waiter of waiters) waiter.resolve();
        } catch (error) {
          for (const waiter of waiters) waiter.reject(error);
        }
      }
    } finally {
      state.writing = undefined;
    }
  }
}

function encodeOffsetsFile(group: string, offsets: ReadonlyMap<number, number>): Buffer {
  const sorted: Record<string, number> = {};
  for (const partition of [...offsets.keys()].sort((a, b) => a - b)) {
    sorted[String(partition)] = offsets.get(partition) ?? 0;
  }
  const file: OffsetsFile = { version: FORMAT_VERSION, group, offsets: sorted };
  return Buffer.from(`${JSON.stringify(file, null, 2)}\n`, 'utf8');
}

function parseOffsetsFile(
  file: string,
  data: Buffer,
): { group: string; offsets: Map<number, number> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch (error) {
    throw new LogCorruptError(`${file}: consumer offsets are not valid JSON`, error);
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new LogCorruptError(`${file}: consumer offsets must be a JSON object`);
  }
  const { version, group, offsets } = parsed as Partial<OffsetsFile>;
  if (version !== FORMAT_VERSION || typeof group !== 'string' || typeof offsets !== 'object') {
    throw new LogCorruptError(
      `${file}: expected {"version": ${FORMAT_VERSION}, "group": string, "offsets": object}`,
    );
  }
  const result = new Map<number, number>();
  for (const [key, value] of Object.entries(offsets)) {
    const partition = Number(key);
    if (!Number.isSafeInteger(partition) || partition < 0 || String(partition) !== key) {
      throw new LogCorruptError(`${file}: "${key}" is not a partition number`);
    }
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new LogCorruptError(
        `${file}: offset of partition ${key} is not a non-negative integer`,
      );
    }
    result.set(partition, value);
  }
  return { group, offsets: result };
}
