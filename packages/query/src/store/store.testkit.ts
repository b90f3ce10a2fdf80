import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { migrate } from './migrations.js';
import { openStore, type Store } from './store.js';

/**
 * Stores for tests: chDB in a temporary directory of this process (the engine allows one data
 * directory per process, and vitest runs each test file in its own process), with a fresh
 * database per test so tests never see each other's rows. Set VIGIL_TEST_CLICKHOUSE_URL to run
 * the same tests against a ClickHouse server.
 */
const dir = join(tmpdir(), `vigil-test-store-${process.pid}`);
let open = 0;

export interface TestStore {
  readonly store: Store;
  /** The engine's clock, in epoch ms: see {@link storeNow}. */
  now(): Promise<number>;
  cleanup(): Promise<void>;
}

/**
 * The store engine's own clock, in epoch ms (`now64(3)`). TTL deletes and `now()` filters run
 * on this clock, which a JS clock (fake timers, a faked system time) cannot move: a test whose
 * rows must be live, or expired, takes their dates from here rather than from `Date.now()` or
 * a fixed calendar date, so it passes on any day.
 */
export async function storeNow(store: Store): Promise<number> {
  const [row] = await store.query<{ ms: string | number }>(
    'SELECT toUnixTimestamp64Milli(now64(3)) AS ms',
  );
  return Number(row?.ms);
}

export async function openTestStore(options: { migrate?: boolean } = {}): Promise<TestStore> {
  const database = `t_${randomBytes(6).toString('hex')}`;
  const url = process.env['VIGIL_TEST_CLICKHOUSE_URL'];
  const store = url
    ? await openStore({ kind: 'clickhouse', url, database })
    : await openStore({ kind: 'chdb', path: dir, database });
  open++;
  if (options.migrate !== false) await migrate(store);
  return {
    store,
    now: () => storeNow(store),
    async cleanup() {
      try {
        await store.command(`DROP DATABASE IF EXISTS ${database} SYNC`);
      } finally {
        await store.close();
        if (--open === 0 && !url) rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
