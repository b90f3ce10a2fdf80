import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainProblems, FakeCollector, hashIndex } from './testing/fake-collector.testkit.js';

const sdkDir = fileURLToPath(new URL('..', import.meta.url));
const childScript = join(sdkDir, 'scripts', 'record-child.mjs');

/** Runs the child until it has printed `ok` for at least `until` events, then kill -9. */
async function recordThenKill(
  config: object,
  until: number,
): Promise<{ resolved: number[]; stream: string }> {
  const child = spawn(process.execPath, [childScript, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const resolved: number[] = [];
  let stream = '';
  let buffer = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('stream ')) stream = line.slice(7);
        if (line.startsWith('ok ')) resolved.push(Number(line.slice(3)));
        if (resolved.length >= until && child.exitCode === null) {
          child.kill('SIGKILL');
        }
      }
    });
    child.once('exit', () => resolve());
    child.once('error', reject);
  });
  return { resolved, stream };
}

let collector: FakeCollector;
const dirs: string[] = [];

beforeAll(async () => {
  // The child runs the built SDK, so build it from the sources under test.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-b', sdkDir], { stdio: 'inherit' });
  collector = await FakeCollector.start();
});

afterAll(async () => {
  await collector.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('kill -9 of the application', () => {
  it('loses no event whose record() resolved, and the chain continues after the restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-crash-'));
    dirs.push(dir);
    let down = true;
    collector.intercept = () => (down ? { status: 503, body: {} } : undefined);
    const base = {
      endpoint: collector.url,
      apiKey: collector.apiKey,
      spoolDir: dir,
      fsync: 'always',
    };
    const first = await recordThenKill({ ...base, count: 5000, start: 0 }, 300);
    expect(first.resolved.length).toBeGreaterThanOrEqual(300);
    down = false;
    // The restarted application records a little more and closes cleanly, delivering everything.
    const second = await recordThenKill(
      { ...base, count: 10, start: 100_000, close: true },
      Infinity,
    );
    expect(second.stream).toBe(first.stream);
    await collector.waitFor(() => {
      const got = new Set(
        collector.streamRecords(first.stream).map((r) => (r.metadata as { n?: number })?.n),
      );
      return first.resolved.every((n) => got.has(n));
    }, 20_000);
    const records = collector.streamRecords(first.stream);
    expect(chainProblems(records, hashIndex(collector))).toEqual([]);
    expect(collector.protocolViolations).toEqual([]);
  }, 60_000);
});
