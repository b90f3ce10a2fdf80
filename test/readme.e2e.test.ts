import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';

/**
 * The README's shell examples, taken from README.md as they are written and run from the
 * repository root, the way a newcomer pastes them after `npm ci`: `npx vigil …` resolves
 * through the workspace's bin. The environment points them at the server this test starts
 * (VIGIL_DATA_DIR, VIGIL_PORT: the settings the README documents) instead of a
 * `./.vigil` and port 8080 that a developer's own `npm start` may hold. Placeholders written
 * `<name>` are replaced by real values; nothing else of a command is changed.
 */

const ROOT = resolve(import.meta.dirname, '..');
const README = readFileSync(resolve(ROOT, 'README.md'), 'utf8');

/** The ```sh blocks of a README (the repository's by default). */
function shellBlocks(text = README): string[] {
  return [...text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

/** The lines of the one shell block that has a line starting with `first`, from that line on. */
function blockFrom(first: string): string[] {
  const blocks = shellBlocks().filter((b) => b.split('\n').some((l) => l.startsWith(first)));
  expect(blocks, `one README block with a line starting "${first}"`).toHaveLength(1);
  const lines = (blocks[0] as string).split('\n').filter((l) => l.trim() !== '');
  return lines.slice(lines.findIndex((l) => l.startsWith(first)));
}

/** The README line that starts with `start`. */
function line(start: string): string {
  const found = blockFrom(start)[0] as string;
  expect(found).toBeDefined();
  return found;
}

interface ShellRun {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** The environment without what `npm test` sets for its own scripts (npm_config_*, …). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  // npx must run the workspace's vigil, never fetch a package of that name.
  return { ...env, npm_config_yes: 'false', ...extra };
}

// Each `npx vigil` costs 1-3 s (npm exec, then the CLI's start); a test runs several in a row.
describe('README examples, as written', { timeout: 180_000 }, () => {
  const data = tempDataDir('readme');
  const dataDir = resolve(data.dir, '.vigil');
  let vigil: VigilProcess;
  const placeholders: Record<string, string> = {};

  /** Runs README shell text with bash, placeholders filled in. */
  function sh(text: string, cwd = ROOT): Promise<ShellRun> {
    const filled = text.replace(/<([a-z-]+)>/g, (whole, name: string) => {
      const value = placeholders[name];
      // `<id>`-style words the README uses inside a string stay as they are.
      return value ?? whole;
    });
    expect(filled.replace(/\s#.*$/gm, ''), 'a placeholder the test has no value for').not.toMatch(
      / <[a-z-]+>( |$)/m,
    );
    return new Promise((done) => {
      const child = spawn('bash', ['-c', filled], {
        cwd,
        env: cleanEnv({ VIGIL_DATA_DIR: dataDir, VIGIL_PORT: String(vigil.port) }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.once('exit', (code) => done({ code, out, err }));
    });
  }

  async function ok(text: string): Promise<string> {
    const run = await sh(text);
    expect(run.code, `${text}\n${run.out}${run.err}`).toBe(0);
    return run.out;
  }

  beforeAll(async () => {
    vigil = await startVigil({ dataDir, args: ['--checkpoint-interval-seconds', '1'] });
  });
  afterAll(async () => {
    await vigil?.stop();
    data.remove();
  });

  it('quick start: curl records three events, curl and npx vigil search find them', async () => {
    const block = blockFrom('KEY=$(');
    const cli = block.findIndex((l) => l.startsWith('npx vigil search'));
    // The curl part reads ./.vigil/bootstrap-credentials.json: it runs where that data dir is,
    // against this test's port instead of 8080.
    const curl = block.slice(0, cli).join('\n').replaceAll('http://127.0.0.1:8080', vigil.url);
    const run = await sh(curl, dirname(dataDir));
    expect(run.code, run.err).toBe(0);
    expect(run.out).toContain('{"accepted":3,"duplicates":0}');
    const found = await waitFor(
      () => sh(curl.split('\n').slice(-2).join('\n'), dirname(dataDir)),
      (r) => (JSON.parse(r.out) as { events: unknown[] }).events.length === 2,
      15_000,
      "alice's two events",
    );
    expect(found.out).toContain('document.exported');

    const search = await ok(block[cli] as string);
    expect(search).toMatch(/^TIME\s+ACTION\s+OUTCOME/);
    expect(search).toMatch(/user\.login\s+success\s+user:alice/);
    expect(search).toMatch(/user\.login\s+failure\s+user:mallory/);
    expect(search).not.toContain('document.exported');
  });

  it('tenants and keys', async () => {
    const [create, keyCreate, list, rotate, revoke, suspend] = blockFrom(
      'npx vigil tenants create acme',
    );
    expect(await ok(create as string)).toContain('Created tenant acme ("Acme Corp")');
    expect(await ok(keyCreate as string)).toMatch(
      /Created API key [0-9a-f]{12} of tenant acme \(scopes: ingest\)/,
    );
    expect(await ok(list as string)).toMatch(/bootstrap admin\s+admin,query\s+active/);
    // A key of the tenant that can go: the bootstrap keys serve the other examples.
    const created = await fetch(`${vigil.url}/v1/admin/keys`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${vigil.credentials().adminKey}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ scopes: ['ingest'], name: 'readme' }),
    });
    placeholders['key-id'] = ((await created.json()) as { key: { keyId: string } }).key.keyId;
    expect(await ok(rotate as string)).toContain(
      `The old key ${placeholders['key-id']} keeps working until`,
    );
    expect(await ok(revoke as string)).toContain(
      `API key ${placeholders['key-id']} of tenant default is revoked`,
    );
    expect(await ok(suspend as string)).toContain('Tenant acme is suspended.');
  });

  it('retention and legal holds', async () => {
    const [show, set, history, apply] = blockFrom('npx vigil retention ');
    expect(await ok(show as string)).toMatch(/api\s+90\s+default/);
    expect(await ok(set as string)).toMatch(/api\s+30\s+tenant/);
    expect(await ok(history as string)).toMatch(/api\s+90 \(default\) → 30 .*: DPA annex 2/);
    expect(await ok(apply as string)).toContain('re-applied 30 days to stored api events');

    const [place, holds, release] = blockFrom('npx vigil holds place');
    const placed = await ok(place as string);
    const hold = /^(hold_[0-9a-f]+)\s+subject u-1042/m.exec(placed)?.[1];
    expect(hold, placed).toBeDefined();
    placeholders['hold-id'] = hold as string;
    expect(await ok(holds as string)).toContain(`${hold}  subject u-1042`);
    expect(await ok(release as string)).toMatch(/\[released .*: case closed\]/);
  });

  it('proofs, checkpoints and verify', async () => {
    const keys = (await (await fetch(`${vigil.url}/v1/keys/checkpoint`)).json()) as {
      keys: { publicKey: string }[];
    };
    placeholders['public-key'] = keys.keys[0]?.publicKey as string;
    const { queryKey } = vigil.credentials();
    const alice = (await (
      await fetch(`${vigil.url}/v1/events?actor=alice&action=user.login`, {
        headers: { authorization: `Bearer ${queryKey}` },
      })
    ).json()) as { events: { event: { id: string } }[] };
    placeholders['event-id'] = alice.events[0]?.event.id as string;

    const proofLine = line('npx vigil proof');
    // The sink signs a checkpoint every second here; the proof waits for one that covers it.
    const proof = await waitFor(
      () => sh(proofLine),
      (r) => r.code === 0,
      20_000,
      'a checkpoint covering the event',
    );
    expect(proof.out).toMatch(/verified\s+yes, with the pinned key/);
    expect(await ok(line('npx vigil checkpoints'))).toMatch(/[0-9a-f]{16}/);

    const verify = await sh(line('npx vigil verify --key <public-key>'));
    expect(verify.code, verify.out + verify.err).toBe(0);
    expect(verify.out).toContain('RESULT: OK, nothing failed');
    expect(verify.err).toContain(`verified by the server at ${vigil.url}`);
  });

  it("@vigil/app's README: npx vigil --help lists the commands", async () => {
    const appReadme = readFileSync(resolve(ROOT, 'packages/app/README.md'), 'utf8');
    const help = shellBlocks(appReadme)
      .flatMap((b) => b.split('\n'))
      .find((l) => l.startsWith('npx vigil --help'));
    expect(help).toBeDefined();
    const out = await ok(help as string);
    expect(out).toContain('Usage: vigil <command> [flags]');
    for (const command of ['start', 'search', 'verify', 'keys', 'config'])
      expect(out).toMatch(new RegExp(`^  ${command}\\s`, 'm'));
  });

  it('every placeholder of a vigil example is written <name>', () => {
    // Example ids and keys written as real-looking values send a newcomer's paste to a 404.
    const examples = shellBlocks()
      .flatMap((b) => b.split('\n'))
      .filter((l) => l.startsWith('npx vigil'))
      .map((l) => l.replace(/\s+#.*$/, ''));
    const looksReal = examples.filter((l) =>
      /\b[0-9a-f]{12}\b|\bhold_[0-9a-f]+|\brst_|[0-9a-f]{8}-[0-9a-f]{4}-|…/.test(l),
    );
    expect(looksReal).toEqual([]);
  });
});
