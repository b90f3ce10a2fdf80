import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';

/**
 * The packages as a user gets them: `npm pack` of each workspace, installed into a fresh
 * application directory outside the repository (no workspace links, no TypeScript sources
 * through the `source` condition, only what `files` ships and `dependencies` declare).
 * Installs use --prefer-offline: the registry's packages (chDB's 560 MB among them) come from
 * the npm cache that `npm ci` filled.
 */

const ROOT = resolve(import.meta.dirname, '..');

interface Run {
  readonly code: number | null;
  readonly out: string;
}

/** The environment without what `npm test` sets for its own scripts (npm_config_*, …). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  return { ...env, ...extra };
}

function run(
  command: string,
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(command, args, {
      cwd,
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => done({ code, out }));
  });
}

/** A fresh application directory: a package.json of its own, nothing installed. */
function freshApp(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name, version: '1.0.0', private: true, type: 'module' }, null, 2),
  );
  return dir;
}

async function npmInstall(dir: string, tarballs: readonly string[]): Promise<void> {
  const result = await run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs],
    dir,
  );
  expect(result.code, `npm install failed:\n${result.out}`).toBe(0);
}

describe('packages installed from their npm pack tarballs', () => {
  let work: string;
  const tarball: Record<string, string> = {};

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'vigil-packaging-'));
    const packs = join(work, 'packs');
    mkdirSync(packs);
    const names = ['protocol', 'sdk', 'detect', 'query', 'collector', 'app'];
    const packed = await run(
      'npm',
      ['pack', '--pack-destination', packs, ...names.flatMap((n) => ['-w', `@vigil/${n}`])],
      ROOT,
    );
    expect(packed.code, packed.out).toBe(0);
    for (const n of names) {
      const file = readdirSync(packs).find((f) => f.startsWith(`vigil-${n}-`));
      expect(file, `tarball of @vigil/${n}`).toBeDefined();
      tarball[n] = join(packs, file as string);
    }
  }, 120_000);

  afterAll(() => {
    // Deleting chDB's 560 MB took ~28 s here: leave it to a process of its own, so the suite
    // does not wait for the disk.
    if (work) spawn('rm', ['-rf', work], { detached: true, stdio: 'ignore' }).unref();
  });

  describe('@vigil/sdk in an application', () => {
    const data = tempDataDir('packaging-sdk');
    let vigil: VigilProcess;
    beforeAll(async () => {
      vigil = await startVigil({ dataDir: data.dir });
    });
    afterAll(async () => {
      await vigil?.stop();
      data.remove();
    });

    it('installs with its protocol dependency and records events to a collector', async () => {
      const app = freshApp(work, 'billing-api');
      await npmInstall(app, [tarball['protocol'] as string, tarball['sdk'] as string]);
      // What the SDK README's quick start does, as a plain ES module of the application.
      writeFileSync(
        join(app, 'record.mjs'),
        `import { createAuditClient } from '@vigil/sdk';
const audit = createAuditClient({
  endpoint: process.env.VIGIL_ENDPOINT,
  apiKey: process.env.VIGIL_API_KEY,
  service: 'billing-api',
});
await audit.loginSucceeded({ actor: { type: 'user', id: 'u-1042', email: 'zoe@example.eu' }, method: 'password+totp' });
await audit.record({ action: 'invoice.viewed', category: 'data_access', outcome: 'success',
  actor: { type: 'user', id: 'u-1042' }, target: { type: 'invoice', id: 'inv-7' } });
if (!(await audit.flush({ deadlineMs: 10000 }))) throw new Error('not delivered');
await audit.close({ deadlineMs: 5000 });
console.log(JSON.stringify({ stream: audit.stream, sent: audit.stats().sent }));
`,
      );
      const { ingestKey, queryKey } = vigil.credentials();
      const result = await run(process.execPath, ['record.mjs'], app, {
        VIGIL_ENDPOINT: vigil.url,
        VIGIL_API_KEY: ingestKey,
      });
      expect(result.out).not.toMatch(/Error/);
      expect(result.code).toBe(0);
      const { stream } = JSON.parse(result.out.trim().split('\n').pop() as string) as {
        stream: string;
      };
      const stored = await waitFor(
        async () => {
          const r = await fetch(`${vigil.url}/v1/events?stream=${encodeURIComponent(stream)}`, {
            headers: { authorization: `Bearer ${queryKey}` },
          });
          return ((await r.json()) as { events: { event: { action: string } }[] }).events.map(
            (i) => i.event,
          );
        },
        (events) => events.length >= 4,
        20_000,
        'the application events in the store',
      );
      expect(stored.map((e) => e.action).sort()).toEqual([
        'invoice.viewed',
        'stream.closed',
        'stream.opened',
        'user.login',
      ]);
    }, 120_000);
  });

  // The whole application with chDB (~560 MB unpacked, from the npm cache): measured ~50 s to
  // install on the 2-core development VM.
  it('@vigil/app installs with its packages; npx vigil start answers /healthz', async () => {
    const app = freshApp(work, 'ops');
    await npmInstall(
      app,
      ['protocol', 'sdk', 'detect', 'query', 'collector', 'app'].map((n) => tarball[n] as string),
    );
    const help = await run('npx', ['--no-install', 'vigil', '--help'], app);
    expect(help.code, help.out).toBe(0);
    expect(help.out).toContain('Usage: vigil <command>');

    // npx runs vigil as its child: a process group of their own, so both stop together.
    const server = spawn(
      'npx',
      ['--no-install', 'vigil', 'start', '--port', '0', '--data-dir', './data'],
      { cwd: app, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let out = '';
    server.stdout.on('data', (c: Buffer) => (out += c.toString()));
    server.stderr.on('data', (c: Buffer) => (out += c.toString()));
    /** Stops the group and waits until none of its processes is left. */
    const stop = async (pid: number): Promise<void> => {
      process.kill(-pid, 'SIGTERM');
      await waitFor(
        () => {
          try {
            process.kill(-pid, 0);
            return Promise.resolve(false);
          } catch {
            return Promise.resolve(true);
          }
        },
        (gone) => gone,
        30_000,
        'vigil start to exit',
      );
    };
    try {
      const url = await waitFor(
        () => Promise.resolve(/"url":"(http:\/\/[^"]+)".*"msg":"vigil start listening"/.exec(out)),
        (m) => m !== null,
        60_000,
        `vigil start listening; output so far:\n${out}`,
      ).then((m) => (m as RegExpExecArray)[1] as string);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const port = new URL(url).port;
      const search = await run(
        'npx',
        ['--no-install', 'vigil', 'search', '--port', port, '--data-dir', './data'],
        app,
      );
      expect(search.code, search.out).toBe(0);
      expect(search.out).toContain('api_key.created');
    } finally {
      if (server.pid !== undefined) await stop(server.pid);
    }
  }, 240_000);
});
