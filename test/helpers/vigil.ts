import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Runs `vigil` as a real process (the built CLI), the way an operator does, for end-to-end
 * tests: waits until it listens, exposes its URL and bootstrap keys, and stops it gently
 * (SIGTERM) or brutally (SIGKILL) by its own pid.
 */
export const CLI = resolve(import.meta.dirname, '../../packages/app/dist/cli/main.js');

export interface Credentials {
  readonly tenant: string;
  readonly ingestKey: string;
  readonly queryKey: string;
  readonly adminKey: string;
  /** Manages tenants (scope operator). */
  readonly operatorKey: string;
}

export interface VigilProcess {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  output(): string;
  credentials(): Credentials;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash, no shutdown code runs. */
  kill9(): Promise<void>;
}

/** Flags that lift the per-key rate limits, for tests that send many requests on purpose. */
export const NO_RATE_LIMITS: readonly string[] = [
  '--rate-limit-ingest-per-minute',
  '0',
  '--rate-limit-query-per-minute',
  '0',
  '--rate-limit-admin-per-minute',
  '0',
];

export function tempDataDir(label: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `vigil-e2e-${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startVigil(options: {
  dataDir: string;
  port?: number;
  args?: readonly string[];
  env?: Record<string, string>;
  command?: string;
  timeoutMs?: number;
}): Promise<VigilProcess> {
  const args = [
    CLI,
    options.command ?? 'start',
    '--data-dir',
    options.dataDir,
    '--port',
    String(options.port ?? 0),
    '--host',
    '127.0.0.1',
    ...(options.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, VIGIL_LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`vigil did not start within ${options.timeoutMs ?? 20_000} ms:\n${out}`)),
      options.timeoutMs ?? 20_000,
    );
    const onData = (): void => {
      const match = /"url":"(http:\/\/[^"]+)".*"msg":"vigil \w+ listening"/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1] as string);
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vigil exited with ${String(code)} before listening:\n${out}`));
    });
  });
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    dataDir: options.dataDir,
    child,
    output: () => out,
    credentials: () =>
      JSON.parse(
        readFileSync(join(options.dataDir, 'bootstrap-credentials.json'), 'utf8'),
      ) as Credentials,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
    kill9: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Polls `fn` until it returns a value `ok` accepts, or fails after `timeoutMs`. */
export async function waitFor<T>(
  fn: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timed out waiting for ${what}; last value: ${JSON.stringify(last)?.slice(0, 500)}`,
  );
}
