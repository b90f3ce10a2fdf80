import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedStoreHolder } from './store.js';

/**
 * A status file left by a crashed process names a PID that may since belong to another process:
 * only a lock on the file means the store is held, or a restart after a crash would be refused.
 */
describe('embeddedStoreHolder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-holder-'));
  // A live process that holds no lock on the file: the PID reused after a crash.
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], {
    stdio: 'ignore',
  });
  beforeAll(() => {
    writeFileSync(
      join(dir, 'status'),
      `PID: ${String(other.pid)}\nStarted at: 2026-01-01 00:00:00\nRevision: 54513\n`,
    );
  });
  afterAll(() => {
    other.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('no status file: not held', () => {
    expect(embeddedStoreHolder(join(dir, 'absent'))).toBeUndefined();
  });

  it.runIf(existsSync('/proc/locks'))(
    'a status file naming a live process that holds no lock: not held',
    () => {
      expect(embeddedStoreHolder(dir)).toBeUndefined();
    },
  );

  it('after a failed open, the live process the file names is the likely holder', () => {
    expect(embeddedStoreHolder(dir, { precise: false })).toBe(other.pid);
  });

  it('its own PID is never another holder', () => {
    writeFileSync(join(dir, 'status'), `PID: ${String(process.pid)}\n`);
    expect(embeddedStoreHolder(dir, { precise: false })).toBeUndefined();
  });
});
