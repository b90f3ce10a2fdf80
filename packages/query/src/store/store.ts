import { isProcessAlive } from '@vigil/protocol/process';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { StoreLockedError, StoreUnavailableError } from '../errors.js';

/**
 * One store dialect, two connections (BRIEF, "one store dialect"): a ClickHouse server over
 * HTTP in production, in-process chDB by default. Both are driven through the same
 * `@clickhouse/client` API, so every statement below runs unchanged on either.
 */
export type StoreConfig = ChdbStoreConfig | ClickHouseStoreConfig;

export interface ChdbStoreConfig {
  readonly kind: 'chdb';
  /** Data directory; one process at a time may open it. */
  readonly path: string;
  readonly database: string;
}

export interface ClickHouseStoreConfig {
  readonly kind: 'clickhouse';
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  readonly database: string;
  /** Cluster name for ON CLUSTER DDL with Replicated/Distributed tables (multi-node). */
  readonly cluster?: string;
  readonly tls?: {
    readonly caCertPath: string;
    readonly certPath?: string;
    readonly keyPath?: string;
  };
  readonly requestTimeoutMs?: number;
}

export type QueryParams = Record<string, unknown>;

export interface Store {
  readonly kind: StoreConfig['kind'];
  readonly database: string;
  readonly cluster: string | undefined;
  /** `database.table`, for building statements (identifiers are validated at config time). */
  table(name: string): string;
  query<T>(sql: string, params?: QueryParams, settings?: ClickHouseSettings): Promise<T[]>;
  command(sql: string, params?: QueryParams, settings?: ClickHouseSettings): Promise<void>;
  /** Inserts rows as JSONEachRow. */
  insert(table: string, rows: readonly object[], settings?: ClickHouseSettings): Promise<void>;
  /**
   * Inserts rows already encoded in `RowBinaryWithDefaults` (store/row-binary.ts) into the
   * named columns of `table`; `chunks` are the encoded bytes in order (never joined).
   */
  insertRowBinary(
    table: string,
    columns: readonly string[],
    chunks: readonly Buffer[],
    settings?: ClickHouseSettings,
  ): Promise<void>;
  /**
   * Runs a statement that names its own output format (`... FORMAT RowBinary`) and yields the
   * raw bytes as they arrive: streamed over HTTP, one buffer on chDB.
   */
  stream(
    sql: string,
    params?: QueryParams,
    settings?: ClickHouseSettings,
  ): Promise<AsyncIterable<Buffer>>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function assertIdentifier(name: string, what: string): void {
  if (!IDENTIFIER.test(name)) {
    throw new Error(`${what} "${name}" must match ${IDENTIFIER.source}`);
  }
}

function mapError(error: unknown, config: StoreConfig): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (config.kind === 'chdb') {
    const holder = embeddedStoreHolder(config.path, { precise: false });
    if (holder !== undefined || /Cannot lock file|status.*lock|is locked/i.test(message))
      return new StoreLockedError(config.path, error, holder);
  }
  if (
    error instanceof Error &&
    'code' in error &&
    typeof (error as { code?: unknown }).code === 'string'
  ) {
    // ClickHouse server errors (syntax, type) are bugs, not outages: keep them as they are.
    const code = (error as { code: string }).code;
    if (/^\d+$/.test(code)) return error;
  }
  return new StoreUnavailableError(`store ${describe(config)}: ${message}`, error);
}

function describe(config: StoreConfig): string {
  return config.kind === 'chdb' ? `chdb:${config.path}` : config.url;
}

/**
 * The id of another process that holds the embedded store's data directory, if one does.
 *
 * The engine (ClickHouse's StatusFile) takes an exclusive flock on `<path>/status` and writes
 * its PID there; a second process fails with "Cannot lock file …/status" on the engine's stderr
 * and only "Failed to create connection" in the error it throws. Node has no flock API, so on
 * Linux the lock is looked up in /proc/locks by the file's inode, which is exact (a status file
 * left by a crashed process holds no lock). Elsewhere, or with `precise: false` after a failed
 * open, a live process with the PID the file names counts as the holder.
 */
export function embeddedStoreHolder(
  path: string,
  options: { precise?: boolean } = {},
): number | undefined {
  const status = join(path, 'status');
  let text: string;
  let inode: number;
  try {
    text = readFileSync(status, 'utf8');
    inode = statSync(status).ino;
  } catch {
    return undefined;
  }
  let locks: string | undefined;
  try {
    locks = readFileSync('/proc/locks', 'utf8');
  } catch {
    locks = undefined;
  }
  if (locks !== undefined) {
    // "1: FLOCK  ADVISORY  WRITE 14781 fe:00:2147474 0 EOF": pid, then major:minor:inode.
    for (const line of locks.split('\n')) {
      const m = /^\d+:\s+FLOCK\s+\S+\s+WRITE\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
      if (m && Number(m[2]) === inode && Number(m[1]) !== process.pid) return Number(m[1]);
    }
    if (options.precise !== false) return undefined;
  } else if (options.precise !== false) return undefined;
  const pid = Number(/^PID:\s*(\d+)/m.exec(text)?.[1]);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  return isProcessAlive(pid) ? pid : undefined;
}

/**
 * Where the embedded store's binary inserts are staged: a directory of Vigil's own inside the
 * data directory, which is owner-only (the rows hold personal data). One process at a time holds
 * the data directory, so files another process named (a crash left them) are removed at open;
 * this process's own are not, as another store it opened on the path may be inserting.
 */
function insertDir(config: ChdbStoreConfig): string {
  const dir = join(config.path, 'vigil-inserts');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(dir))
    if (!name.startsWith(`${process.pid}-`)) rmSync(join(dir, name), { force: true });
  return dir;
}

/** A ClickHouse string literal (ClickHouse docs, "Syntax: String"). */
function quoteString(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function binaryInsertStatement(table: string, columns: readonly string[]): string {
  for (const column of columns) assertIdentifier(column, 'column');
  return `INSERT INTO ${table} (${columns.join(', ')})`;
}

async function chdbClient(config: ChdbStoreConfig): Promise<ClickHouseClient> {
  // Owner-only before chDB opens it: the store holds personal data in plain text. chDB creates
  // its own files and directories with the process umask (0644/0755 under umask 022, measured),
  // so this directory is what keeps other users out; `vigil` also sets umask 077 at start so
  // that those files are owner-only too (README, "Security").
  mkdirSync(config.path, { recursive: true, mode: 0o700 });
  // Refuse before the engine tries: it would print its own lock error to stderr first.
  const holder = embeddedStoreHolder(config.path);
  if (holder !== undefined) throw new StoreLockedError(config.path, undefined, holder);
  // Loaded lazily: the 560 MB engine is needed only by processes that embed the store.
  const { createChdbConnection } = await import('chdb/connection');
  try {
    // chdb builds against its own copy of @clickhouse/client-common; the Connection contract is
    // the same, only the nominal types differ.
    const connection = createChdbConnection({ path: config.path }) as unknown;
    return createClient({ connection } as Parameters<typeof createClient>[0]);
  } catch (error) {
    throw mapError(error, config);
  }
}

function serverClient(config: ClickHouseStoreConfig): ClickHouseClient {
  const tls = config.tls
    ? config.tls.certPath && config.tls.keyPath
      ? {
          ca_cert: readFileSync(config.tls.caCertPath),
          cert: readFileSync(config.tls.certPath),
          key: readFileSync(config.tls.keyPath),
        }
      : { ca_cert: readFileSync(config.tls.caCertPath) }
    : undefined;
  return createClient({
    url: config.url,
    ...(config.username !== undefined ? { username: config.username } : {}),
    ...(config.password !== undefined ? { password: config.password } : {}),
    ...(tls ? { tls } : {}),
    request_timeout: config.requestTimeoutMs ?? 30_000,
    clickhouse_settings: {
      // Wait for inserts to be written before acknowledging (the sink commits log offsets after).
      async_insert: 0,
      date_time_input_format: 'best_effort',
    },
  });
}

export async function openStore(config: StoreConfig): Promise<Store> {
  assertIdentifier(config.database, 'store database');
  const client = config.kind === 'chdb' ? await chdbClient(config) : serverClient(config);
  const db = config.database;
  const staging = config.kind === 'chdb' ? insertDir(config) : undefined;
  const store: Store = {
    kind: config.kind,
    database: db,
    cluster: config.kind === 'clickhouse' ? config.cluster : undefined,
    table: (name) => `${db}.${name}`,
    async query<T>(
      sql: string,
      params: QueryParams = {},
      settings?: ClickHouseSettings,
    ): Promise<T[]> {
      try {
        const result = await client.query({
          query: sql,
          query_params: params,
          format: 'JSONEachRow',
          ...(settings ? { clickhouse_settings: settings } : {}),
        });
        return await result.json<T>();
      } catch (error) {
        throw mapError(error, config);
      }
    },
    async command(
      sql: string,
      params: QueryParams = {},
      settings?: ClickHouseSettings,
    ): Promise<void> {
      try {
        await client.command({
          query: sql,
          query_params: params,
          ...(settings ? { clickhouse_settings: settings } : {}),
        });
      } catch (error) {
        throw mapError(error, config);
      }
    },
    async insert(
      table: string,
      rows: readonly object[],
      settings?: ClickHouseSettings,
    ): Promise<void> {
      if (rows.length === 0) return;
      try {
        await client.insert({
          table,
          values: rows,
          format: 'JSONEachRow',
          ...(settings ? { clickhouse_settings: settings } : {}),
        });
      } catch (error) {
        throw mapError(error, config);
      }
    },
    async insertRowBinary(
      table: string,
      columns: readonly string[],
      chunks: readonly Buffer[],
      settings?: ClickHouseSettings,
    ): Promise<void> {
      if (chunks.every((c) => c.length === 0)) return;
      const statement = binaryInsertStatement(table, columns);
      try {
        if (staging === undefined) {
          // Over HTTP the bytes are the request body (clickhouse-js `exec` with `values`).
          const result = await client.exec({
            query: `${statement} FORMAT RowBinaryWithDefaults`,
            values: Readable.from(chunks, { objectMode: false }),
            ...(settings ? { clickhouse_settings: settings } : {}),
          });
          for await (const chunk of result.stream as AsyncIterable<Buffer>) void chunk;
          return;
        }
        // chDB's connection passes an insert's body to the engine as text (it decodes it as
        // UTF-8), which would corrupt binary rows, and chdb-node's raw insert takes text formats
        // only. The engine reads a file instead (INSERT … FROM INFILE, ClickHouse docs): written
        // on the thread pool, read by the engine's own threads, removed after.
        const file = join(staging, `${process.pid}-${randomBytes(8).toString('hex')}.bin`);
        const handle = await open(file, 'wx', 0o600);
        try {
          try {
            for (const chunk of chunks)
              for (let at = 0; at < chunk.length;)
                at += (await handle.write(chunk, at)).bytesWritten;
          } finally {
            await handle.close();
          }
          await client.command({
            query: `${statement} FROM INFILE ${quoteString(file)} FORMAT RowBinaryWithDefaults`,
            ...(settings ? { clickhouse_settings: settings } : {}),
          });
        } finally {
          await unlink(file).catch(() => undefined);
        }
      } catch (error) {
        throw mapError(error, config);
      }
    },
    async stream(
      sql: string,
      params: QueryParams = {},
      settings: ClickHouseSettings = {},
    ): Promise<AsyncIterable<Buffer>> {
      try {
        const result = await client.exec({
          query: sql,
          query_params: params,
          clickhouse_settings: settings,
        });
        return result.stream as AsyncIterable<Buffer>;
      } catch (error) {
        throw mapError(error, config);
      }
    },
    async ping(): Promise<boolean> {
      try {
        const result = await client.ping();
        return result.success;
      } catch {
        return false;
      }
    },
    async close(): Promise<void> {
      await client.close();
    },
  };
  try {
    await store.command(`CREATE DATABASE IF NOT EXISTS ${db}${onCluster(store)}`);
  } catch (error) {
    await client.close().catch(() => undefined);
    throw error;
  }
  return store;
}

/** ` ON CLUSTER name` when the store runs on a cluster, else empty. */
export function onCluster(store: Pick<Store, 'cluster'>): string {
  return store.cluster ? ` ON CLUSTER ${store.cluster}` : '';
}
