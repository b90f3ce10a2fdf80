import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newEventId, type PublishedKey } from '@vigil/protocol';
import { openStore, type VerifyReport } from '@vigil/query';
import { startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';
import { sealedChain, runCli } from './helpers/cli.js';

/**
 * `vigil verify` end to end: a real `vigil start` takes events and signs checkpoints into a
 * witness directory; `vigil verify` checks the log through the running server, then on the
 * stopped server's store directly, then again after a typed column was edited in the store.
 */

/** A loopback port with nothing listening on it: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('vigil verify against a real vigil start', () => {
  const data = tempDataDir('verify');
  const witness = tempDataDir('verify-witness');
  let vigil: VigilProcess | undefined;
  const keyFile = join(data.dir, 'pinned.pub');
  afterAll(async () => {
    await vigil?.stop();
    data.remove();
    witness.remove();
  });

  it('verifies the log through the running server, then directly, then names an edit', async () => {
    vigil = await startVigil({
      dataDir: data.dir,
      args: ['--checkpoint-interval-seconds', '1', '--witness-dir', witness.dir],
    });
    const { ingestKey, queryKey } = vigil.credentials();
    const sealed = sealedChain(8, 'e2e/verify/1', (seq) => ({
      actor: { type: 'user', id: `u-${seq}`, email: `u${seq}@example.eu` },
      context: { ip: '192.0.2.44', userAgent: 'e2e/1.0' },
    }));
    const plain = Array.from({ length: 4 }, (_, i) => ({
      id: newEventId(),
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: `carol-${i}`, email: `carol${i}@example.eu` },
      context: { ip: '192.0.2.45' },
    }));
    for (const events of [sealed, plain]) {
      const res = await fetch(`${vigil.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
        body: JSON.stringify({ events }),
      });
      expect(res.status).toBe(202);
    }
    // The public key, pinned out of band: here, a copy taken while the server is trusted.
    const keys = (await (await fetch(`${vigil.url}/v1/keys/checkpoint`)).json()) as {
      keys: PublishedKey[];
    };
    writeFileSync(keyFile, JSON.stringify(keys));
    await waitFor(
      async () =>
        (
          await fetch(`${vigil!.url}/v1/proofs/inclusion?event=${plain[3]!.id}`, {
            headers: { authorization: `Bearer ${queryKey}` },
          })
        ).status,
      (status) => status === 200,
      20_000,
      'a checkpoint covering every posted event',
    );
    const port = String(vigil.port);

    // 1. Through the running server (it holds the embedded store): POST /v1/verify.
    const viaServer = await runCli([
      'verify',
      '--key',
      keyFile,
      '--data-dir',
      data.dir,
      '--port',
      port,
      '--json',
    ]);
    expect(viaServer.code, viaServer.err).toBe(0);
    const served = JSON.parse(viaServer.out) as VerifyReport;
    expect(served).toMatchObject({ ok: true, tenant: 'default' });
    expect(served.totals.events).toBeGreaterThanOrEqual(12);
    expect(served.totals.checkpoints.verified).toBeGreaterThan(0);

    // 2. The server stopped: the CLI opens the store itself, with the witness's copies.
    await vigil.stop();
    vigil = undefined;
    const direct = await runCli([
      'verify',
      '--key',
      keyFile,
      '--witness',
      witness.dir,
      '--data-dir',
      data.dir,
    ]);
    expect(direct.code, direct.out + direct.err).toBe(0);
    expect(direct.out).toContain('RESULT: OK');
    expect(direct.out).toMatch(/witness copies given/);

    // 3. Someone with the database edits what queries read: the actor of one event.
    const store = await openStore({
      kind: 'chdb',
      path: join(data.dir, 'store'),
      database: 'vigil',
    });
    try {
      await store.command(
        `ALTER TABLE ${store.table('events')} UPDATE actor_id = 'mallory' WHERE stream = 'e2e/verify/1' AND seq = 3`,
        {},
        { mutations_sync: '2' },
      );
    } finally {
      await store.close();
    }
    const edited = await runCli(['verify', '--key', keyFile, '--data-dir', data.dir, '--json']);
    expect(edited.code).toBe(1);
    const report = JSON.parse(edited.out) as VerifyReport;
    expect(report.ok).toBe(false);
    const failures = report.findings.filter((f) => f.severity === 'failure');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({
      category: 'edited',
      stream: 'e2e/verify/1',
      seq: 3,
      paths: ['actor_id'],
    });
    const human = await runCli(['verify', '--key', keyFile, '--data-dir', data.dir]);
    expect(human.code).toBe(1);
    expect(human.out).toMatch(/FAILURES \(1\)/);
    expect(human.out).toMatch(/edited .*actor_id/);
    expect(human.out).toContain('RESULT: FAILED');
  }, 90_000);

  it('says why it cannot run, with exit code 3, when another process holds the store and no server answers', async () => {
    // The data directory of the test above, held open by this process as a server would.
    const store = await openStore({
      kind: 'chdb',
      path: join(data.dir, 'store'),
      database: 'vigil',
    });
    try {
      const port = String(await closedPort());
      const res = await runCli([
        'verify',
        '--key',
        keyFile,
        '--data-dir',
        data.dir,
        '--port',
        port,
      ]);
      expect(res.code, res.all).toBe(3);
      expect(res.out).toBe('');
      expect(res.err).toContain(
        `cannot verify: no Vigil server answers at http://127.0.0.1:${port}`,
      );
      expect(res.err).toMatch(/the embedded store at .* is held by process \d+/);
    } finally {
      await store.close();
    }
  });

  it('says why it cannot run, with exit code 3, when the server of --url is unreachable', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const res = await runCli([
      'verify',
      '--key',
      keyFile,
      '--url',
      url,
      '--api-key',
      'k',
      '--json',
    ]);
    expect(res.code, res.all).toBe(3);
    expect(res.out).toBe('');
    expect(res.err).toMatch(
      new RegExp(`cannot verify: cannot reach the server at ${url}: .*ECONNREFUSED`),
    );
  });

  it('refuses to run without a pinned key (exit code 2)', async () => {
    const res = await runCli(['verify', '--data-dir', data.dir]);
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/--key is required/);
  });
});
