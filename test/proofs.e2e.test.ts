import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  newEventId,
  verifyCheckpoint,
  verifyConsistencyProof,
  verifyInclusionProof,
  type ConsistencyProof,
  type InclusionProof,
  type PublishedKey,
  type SignedCheckpoint,
} from '@vigil/protocol';
import { startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';
import { sealedChain, runCli } from './helpers/cli.js';

async function get<T>(
  v: VigilProcess,
  path: string,
  key?: string,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${v.url}${path}`, {
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  return { status: res.status, body: (await res.json()) as T };
}

describe('proofs from a running vigil, verified with the public key alone', () => {
  const data = tempDataDir('proofs');
  const witness = tempDataDir('witness');
  let vigil: VigilProcess;
  afterAll(async () => {
    await vigil?.stop();
    data.remove();
    witness.remove();
  });

  it('signs checkpoints that prove every posted event, and hands them to a directory witness', async () => {
    vigil = await startVigil({
      dataDir: data.dir,
      // The test polls for proofs faster than the default query rate limit allows.
      args: [
        '--checkpoint-interval-seconds',
        '1',
        '--witness-dir',
        witness.dir,
        '--rate-limit-query-per-minute',
        '0',
      ],
    });
    const { ingestKey, queryKey } = vigil.credentials();
    // The key file was generated on first start, readable by its owner only.
    const keyFiles = readdirSync(join(data.dir, 'keys'));
    expect(keyFiles.some((f) => /^checkpoint-[0-9a-f]{16}\.json$/.test(f))).toBe(true);
    for (const f of keyFiles) expect(statSync(join(data.dir, 'keys', f)).mode & 0o777).toBe(0o600);

    const sealed = sealedChain(5, 'e2e/proofs/1', (seq) => ({
      actor: { type: 'user', id: `u-${seq}`, email: `u${seq}@example.eu` },
    }));
    const plain = Array.from({ length: 3 }, (_, i) => ({
      id: newEventId(),
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: `carol-${i}` },
      context: { ip: '192.0.2.44' },
    }));
    for (const events of [sealed, plain]) {
      const res = await fetch(`${vigil.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
        body: JSON.stringify({ events }),
      });
      expect(res.status).toBe(202);
    }
    const ids = [
      ...sealed.map((e) => (JSON.parse(e.record) as { id: string }).id),
      ...plain.map((e) => e.id),
    ];

    // Only what the server publishes unauthenticated, and the protocol package, from here on.
    const keys = (await get<{ keys: PublishedKey[] }>(vigil, '/v1/keys/checkpoint')).body.keys;
    expect(keys).toHaveLength(1);
    const trusted = keys.map((k) => k.publicKey);

    const proofs = await waitFor(
      async () =>
        Promise.all(
          ids.map((id) => get<InclusionProof>(vigil, `/v1/proofs/inclusion?event=${id}`, queryKey)),
        ),
      (all) => all.every((r) => r.status === 200),
      20_000,
      'a checkpoint covering every posted event',
    );
    for (const [i, { body: proof }] of proofs.entries()) {
      const verdict = verifyInclusionProof(proof, trusted);
      expect(verdict, ids[i]).toMatchObject({ ok: true, statement: { tenant: 'default' } });
      expect(proof.eventId).toBe(ids[i]);
      expect(proof.record).toBeDefined();
    }
    // A sealed event's proof binds the exact bytes its producer hashed.
    expect(proofs[0]!.body.record).toBe(sealed[0]!.record);

    // The witness holds the checkpoints, each verifiable on its own.
    const files = await waitFor(
      () => Promise.resolve(readdirSync(join(witness.dir, 'default'))),
      (f) => f.length > 0,
      10_000,
      'a witnessed checkpoint',
    );
    const doc = JSON.parse(
      readFileSync(join(witness.dir, 'default', files[0]!), 'utf8'),
    ) as SignedCheckpoint;
    expect(verifyCheckpoint(doc, trusted).ok).toBe(true);
  });

  it('proves a later checkpoint consistent with an earlier one', async () => {
    const { ingestKey, queryKey } = vigil.credentials();
    const first = (await get<SignedCheckpoint>(vigil, '/v1/checkpoints/latest', queryKey)).body;
    const more = sealedChain(4, 'e2e/proofs/2', (seq) => ({
      actor: { type: 'user', id: `u-${seq}`, email: `u${seq}@example.eu` },
    }));
    await fetch(`${vigil.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
      body: JSON.stringify({ events: more }),
    });
    // The newest checkpoint once one covers the last of these events.
    const lastId = (JSON.parse(more[3]!.record) as { id: string }).id;
    const covered = await waitFor(
      () => get<InclusionProof>(vigil, `/v1/proofs/inclusion?event=${lastId}`, queryKey),
      (r) => r.status === 200,
      20_000,
      'a checkpoint covering the new events',
    );
    const second = { body: covered.body.checkpoint };
    expect(second.body.id).not.toBe(first.id);
    const keys = (await get<{ keys: PublishedKey[] }>(vigil, '/v1/keys/checkpoint')).body.keys.map(
      (k) => k.publicKey,
    );
    const statement = JSON.parse(second.body.checkpoint) as { partitions: { partition: number }[] };
    for (const { partition } of statement.partitions) {
      const res = await get<ConsistencyProof>(
        vigil,
        `/v1/proofs/consistency?partition=${partition}&from=${first.id}&to=${second.body.id}`,
        queryKey,
      );
      expect(res.status).toBe(200);
      expect(verifyConsistencyProof(res.body, keys)).toMatchObject({ ok: true });
    }
    // Newest first; more may have been signed meanwhile (the interval is one second here).
    const list = await get<{ checkpoints: SignedCheckpoint[] }>(
      vigil,
      '/v1/checkpoints?limit=1000',
      queryKey,
    );
    const ids = list.body.checkpoints.map((c) => c.id);
    expect(ids.indexOf(second.body.id)).toBeLessThan(ids.indexOf(first.id));
    expect(ids.indexOf(second.body.id)).toBeGreaterThanOrEqual(0);
    // Every route and its JSON schema are described at /docs.
    const docs = (await get<{ paths: Record<string, unknown> }>(vigil, '/docs/json')).body;
    for (const path of [
      '/v1/keys/checkpoint',
      '/v1/checkpoints',
      '/v1/checkpoints/latest',
      '/v1/checkpoints/{id}',
      '/v1/proofs/inclusion',
      '/v1/proofs/consistency',
    ])
      expect(docs.paths[path], path).toBeDefined();
    // Proofs and checkpoints need a query key; the public keys do not.
    expect((await get(vigil, '/v1/checkpoints')).status).toBe(401);
    expect((await get(vigil, '/v1/checkpoints', ingestKey)).status).toBe(403);
  });

  it('verifies a proof with vigil proof, pinned to the published key', async () => {
    const { queryKey } = vigil.credentials();
    const keys = (await get<{ keys: PublishedKey[] }>(vigil, '/v1/keys/checkpoint')).body.keys;
    const latest = (
      await get<SignedCheckpoint & { keyId: string }>(vigil, '/v1/checkpoints/latest', queryKey)
    ).body;
    const events = (
      await get<{ events: { event: { id: string } }[] }>(
        vigil,
        '/v1/events?stream=e2e/proofs/1&limit=1',
        queryKey,
      )
    ).body.events.map((i) => i.event);
    const common = ['--url', vigil.url, '--key', queryKey, '--data-dir', data.dir];
    const ok = await runCli([
      'proof',
      events[0]!.id,
      '--public-key',
      keys[0]!.publicKey,
      ...common,
    ]);
    expect(ok.all).toContain('verified    yes, with the pinned key');
    expect(ok.code).toBe(0);
    const other = 'A'.repeat(42) + 'E';
    const refused = await runCli(['proof', events[0]!.id, '--public-key', other, ...common]);
    expect(refused.all).toMatch(
      /verified {4}NO: checkpoint: signed with key [0-9a-f]{16}, which is not among the trusted keys/,
    );
    expect(refused.code).toBe(1);
    const listed = await runCli(['checkpoints', '--limit', '3', ...common]);
    expect(listed.code).toBe(0);
    // One line per checkpoint: time, id, key, verified, partition:size …
    expect(listed.all).toMatch(
      new RegExp(`^\\S+Z +[0-9a-f]{16} ${latest.keyId} +yes +(\\d+:\\d+ ?)+$`, 'm'),
    );
  });
});
