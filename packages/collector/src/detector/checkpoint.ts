import { open, rename, mkdir, readFile, chmod } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { EngineSnapshot } from '@vigil/detect';
import { toChTime, type Store } from '@vigil/query';
import type { SeenHead } from './events.js';
import type { PartitionTime } from './watermark.js';

/**
 * Everything a detector needs to resume exactly where a checkpoint was taken: the engine's state
 * and, with it, the log positions that state has read (the next offset per partition), the
 * watermark's view of each partition and the stream heads of the integrity flags.
 */
export interface DetectorCheckpoint {
  readonly format: 'vigil-detector-checkpoint';
  readonly version: 1;
  readonly group: string;
  /** Next offset to read, per partition: records below it are in `engine`. */
  readonly offsets: readonly [number, number][];
  readonly watermark: readonly [number, PartitionTime][];
  readonly heads: readonly [string, SeenHead][];
  readonly engine: EngineSnapshot;
  /** Records skipped because they could not be read, since the state began. */
  readonly skipped: number;
  readonly writtenAt: number;
}

/** Where checkpoints are kept: a file embedded, a table with a ClickHouse server. */
export interface CheckpointStore {
  readonly where: string;
  load(): Promise<DetectorCheckpoint | undefined>;
  /** Durable when it resolves; a crash during it leaves the previous checkpoint whole. */
  save(checkpoint: DetectorCheckpoint): Promise<void>;
}

function parse(text: string, where: string): DetectorCheckpoint {
  const value = JSON.parse(text) as DetectorCheckpoint | null;
  if (value?.format !== 'vigil-detector-checkpoint' || value.version !== 1)
    throw new Error(`${where} is not a detector checkpoint`);
  return value;
}

/**
 * A checkpoint file (embedded mode): written to a temporary file, fsynced, renamed over the old
 * one and the directory fsynced, so a crash leaves the old checkpoint or the new one, never a
 * mix. Readable by its owner only (0600): it holds windows of events, which are personal data.
 * Asynchronous, unlike private-file.ts, because a checkpoint can be megabytes and is written
 * while the server answers requests.
 */
export class FileCheckpointStore implements CheckpointStore {
  readonly where: string;

  constructor(dir: string, group: string) {
    this.where = join(dir, `${group.replace(/[^A-Za-z0-9_.-]/g, '_')}.checkpoint.json`);
  }

  async load(): Promise<DetectorCheckpoint | undefined> {
    let text: string;
    try {
      text = await readFile(this.where, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return parse(text, this.where);
  }

  async save(checkpoint: DetectorCheckpoint): Promise<void> {
    const dir = dirname(this.where);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.where}.tmp-${process.pid}`;
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(checkpoint));
      await file.sync();
    } finally {
      await file.close();
    }
    await chmod(tmp, 0o600);
    await rename(tmp, this.where);
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/**
 * Checkpoints in the store's `detector_state` table (migration 14), for detectors running as
 * their own processes against a ClickHouse server: one row per checkpoint, written by one
 * INSERT (atomic), the newest version per group read back.
 */
export class TableCheckpointStore implements CheckpointStore {
  readonly where: string;
  private version = 0;

  constructor(
    private readonly store: Store,
    private readonly group: string,
  ) {
    this.where = `${store.table('detector_state')} (group ${group})`;
  }

  async load(): Promise<DetectorCheckpoint | undefined> {
    const rows = await this.store.query<{ version: string; state: string }>(
      `SELECT toString(version) AS version, state FROM ${this.store.table('detector_state')} FINAL
WHERE consumer_group = {group:String} ORDER BY version DESC LIMIT 1`,
      { group: this.group },
    );
    const row = rows[0];
    if (!row) return undefined;
    this.version = Number(row.version);
    return parse(row.state, this.where);
  }

  async save(checkpoint: DetectorCheckpoint): Promise<void> {
    // Versions only grow, even if the clock steps back: ReplacingMergeTree keeps the highest.
    this.version = Math.max(this.version + 1, checkpoint.writtenAt);
    await this.store.insert(this.store.table('detector_state'), [
      {
        consumer_group: this.group,
        version: this.version,
        state: JSON.stringify(checkpoint),
        written_at: toChTime(new Date(checkpoint.writtenAt).toISOString()),
      },
    ]);
  }
}
