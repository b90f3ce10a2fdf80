import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { startVigil, tempDataDir, type VigilProcess } from './helpers/vigil.js';

/** A port nothing listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * A server on a port other than the configured one holds the embedded store: a command run
 * without --port finds nothing at the configured URL, cannot open the store, and must say what
 * is wrong and where the server is, not print chDB's lock error.
 */
describe('CLI commands while a server runs on another port', () => {
  const data = tempDataDir('cli-port');
  let vigil: VigilProcess;
  let configuredPort: number;

  beforeAll(async () => {
    vigil = await startVigil({ dataDir: data.dir });
    configuredPort = await closedPort();
  });
  afterAll(async () => {
    await vigil?.stop();
    data.remove();
  });

  // The configured port stands for the default (8080), which another process may hold here.
  const env = (): Record<string, string> => ({ VIGIL_PORT: String(configuredPort) });

  for (const [name, args] of [
    ['search', ['search', '--action', 'user.*']],
    ['keys list', ['keys', 'list']],
    ['retention', ['retention']],
  ] as const) {
    it(`${name} names the server's port instead of failing on the store's lock`, async () => {
      const run = await runCli([...args, '--data-dir', vigil.dataDir], { env: env() });
      expect(run.code).toBe(1);
      expect(run.err).not.toMatch(/Cannot lock file|Failed to create connection/);
      expect(run.err).toContain(`no Vigil server answers at http://127.0.0.1:${configuredPort}`);
      expect(run.err).toContain(`held by process ${String(vigil.child.pid)}`);
      expect(run.err).toContain(`--url ${vigil.url}`);
      expect(run.err).toContain(`--port ${vigil.port}`);
    });
  }

  it('verify goes to the server that holds the store, as announced in the data directory', async () => {
    const run = await runCli(['verify', '--key', 'A'.repeat(43), '--data-dir', vigil.dataDir], {
      env: env(),
    });
    expect(run.err).not.toMatch(/Cannot lock file|Failed to create connection/);
    expect(run.code).toBe(0);
    expect(run.out).toContain('RESULT: OK');
  });

  it('works once pointed at the server with --port', async () => {
    const run = await runCli(['search', '--data-dir', vigil.dataDir, '--port', String(vigil.port)]);
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    expect(run.out).toContain('api_key.created');
  });

  it('a second server on the same data directory says who holds the store', async () => {
    const run = await runCli(['start', '--data-dir', vigil.dataDir, '--port', '0'], {
      env: { VIGIL_LOG_LEVEL: 'silent' },
    });
    expect(run.code).toBe(1);
    expect(run.err).toContain(`in use by another process (pid ${String(vigil.child.pid)})`);
    expect(run.err).not.toMatch(/Cannot lock file/);
  });
});
