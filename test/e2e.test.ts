import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newEventId } from '@vigil/protocol';
import { startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';
import { sealedChain } from './helpers/cli.js';

interface Page {
  /** Search items (PROTOCOL.md §20): the event apart from the server's fields. */
  events: { hash: string; event: Record<string, unknown>; server: { flags: string[] } }[];
  nextCursor?: string;
}

async function post(
  v: VigilProcess,
  key: string | undefined,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${v.url}/v1/events`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(key ? { authorization: `Bearer ${key}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function search(
  v: VigilProcess,
  key: string | undefined,
  query = '',
): Promise<{ status: number; body: Page }> {
  const res = await fetch(`${v.url}/v1/events${query}`, {
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  return { status: res.status, body: (await res.json()) as Page };
}

describe('vigil start, end to end over HTTP', () => {
  const data = tempDataDir('curl');
  let vigil: VigilProcess;
  afterAll(async () => {
    await vigil?.stop();
    data.remove();
  });

  it('creates the default tenant and keys on first start, readable by the owner only', async () => {
    vigil = await startVigil({ dataDir: data.dir });
    const creds = vigil.credentials();
    expect(creds.tenant).toBe('default');
    expect(statSync(join(data.dir, 'bootstrap-credentials.json')).mode & 0o777).toBe(0o600);
    expect(vigil.output()).toContain(creds.ingestKey);
    expect((await fetch(`${vigil.url}/healthz`)).status).toBe(200);
  });

  it('stores three curl events once, even when they are posted twice', async () => {
    const { ingestKey, queryKey } = vigil.credentials();
    const events = ['success', 'failure', 'success'].map((outcome, i) => ({
      id: newEventId(),
      action: i === 2 ? 'session.revoked' : 'user.login',
      category: 'authentication',
      outcome,
      actor: { type: 'user', id: 'carol', email: 'carol@example.eu' },
      context: { ip: '192.0.2.44', userAgent: 'curl/8.5' },
    }));
    expect(await post(vigil, ingestKey, { events })).toEqual({
      status: 202,
      body: { accepted: 3, duplicates: 0 },
    });
    expect(await post(vigil, ingestKey, { events })).toEqual({
      status: 202,
      body: { accepted: 0, duplicates: 3 },
    });
    const found = await waitFor(
      () => search(vigil, queryKey, '?actor=carol'),
      (r) => r.body.events.length >= 3,
      15_000,
      'three events',
    );
    expect(found.body.events.map((e) => e.event['id']).sort()).toEqual(
      events.map((e) => e.id).sort(),
    );
    expect(found.body.events[0]?.event).toMatchObject({
      actor: { email: 'carol@example.eu' },
      context: { ip: '192.0.2.44' },
    });
  });

  it('answers 403 to the ingest key and 401 without a key', async () => {
    const { ingestKey } = vigil.credentials();
    expect((await search(vigil, ingestKey)).status).toBe(403);
    expect((await search(vigil, undefined)).status).toBe(401);
  });

  it('refuses a batch with one tampered hash, naming it, and stores nothing of it', async () => {
    const { ingestKey, queryKey } = vigil.credentials();
    const batch = sealedChain(3, 'e2e/tamper/1');
    batch[1] = { ...batch[1]!, hash: batch[0]!.hash };
    const res = await post(vigil, ingestKey, { events: batch });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      error: { code: 'VIGIL_ERR_INVALID_BATCH', details: [{ index: 1, path: '/hash' }] },
    });
    await new Promise((r) => setTimeout(r, 500));
    expect((await search(vigil, queryKey, '?stream=e2e/tamper/1')).body.events).toHaveLength(0);
  });
});

describe('crash safety of the embedded log', () => {
  const data = tempDataDir('crash');
  afterAll(() => data.remove());

  it('loses nothing acknowledged when the process is killed with SIGKILL right after the 202', async () => {
    let vigil = await startVigil({ dataDir: data.dir });
    const { ingestKey, queryKey } = vigil.credentials();
    const batches = [sealedChain(50, 'e2e/crash/1')];
    for (const batch of batches)
      expect((await post(vigil, ingestKey, { events: batch })).status).toBe(202);
    await vigil.kill9();
    vigil = await startVigil({ dataDir: data.dir, port: vigil.port });
    try {
      const found = await waitFor(
        () => search(vigil, queryKey, '?stream=e2e/crash/1&limit=100'),
        (r) => r.body.events.length >= 50,
        20_000,
        'all 50 acknowledged events after the crash',
      );
      expect(found.body.events).toHaveLength(50);
      expect(found.body.events.every((e) => e.server.flags.length === 0)).toBe(true);
    } finally {
      await vigil.stop();
    }
  });
});
