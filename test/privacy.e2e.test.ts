import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  newEventId,
  randomSaltSource,
  sealEvent,
  verifyBundle,
  verifyErasureReceipt,
  verifyInclusionProof,
  ZERO_HASH,
  type EventContent,
  type InclusionProof,
  type PublishedKey,
  type SealedEvent,
  type SignedErasureReceipt,
} from '@vigil/protocol';
import { startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';
import { runCli } from './helpers/cli.js';

/**
 * The data-subject rights against a real `vigil start`, through its HTTP API and the `vigil`
 * command: a signed subject bundle verified offline, erasure under a legal hold, what is left
 * afterwards in the store, the log and a replay of the log, corrections and restrictions.
 */

const salts = randomSaltSource();
const SUBJECT = 'u-5150';
const EMAIL = 'noor@example.eu';
const IP = '81.2.69.160';
const FAST = [
  '--checkpoint-interval-seconds',
  '1',
  '--rate-limit-query-per-minute',
  '0',
  '--rate-limit-admin-per-minute',
  '0',
];

async function api<T>(
  v: VigilProcess,
  method: string,
  path: string,
  key?: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${v.url}${path}`, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

function sealed(stream: string, inputs: (EventContent & { personal?: string[] })[]): SealedEvent[] {
  let prev = ZERO_HASH;
  return inputs.map((input, seq) => {
    const e = sealEvent(
      { id: newEventId(), time: new Date().toISOString(), ...input },
      { stream, seq, prev },
      salts,
    ).event;
    prev = e.hash;
    return e;
  });
}

function logBytes(dir: string): Buffer {
  const out: Buffer[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.log')) out.push(readFileSync(p));
    }
  };
  walk(dir);
  return Buffer.concat(out);
}

const values = [SUBJECT, EMAIL, IP];
const named = (x: unknown): string[] => values.filter((v) => JSON.stringify(x).includes(v));

describe('data-subject rights against a running vigil', () => {
  const data = tempDataDir('privacy');
  let vigil: VigilProcess | undefined;
  afterAll(async () => {
    await vigil?.stop();
    data.remove();
  });

  it('exports a bundle that verifies offline, erases under a hold override, and nothing comes back', async () => {
    vigil = await startVigil({ dataDir: data.dir, args: FAST });
    const { ingestKey, queryKey, adminKey } = vigil.credentials();
    const events = sealed('e2e/privacy/1', [
      {
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: SUBJECT, email: EMAIL },
        context: { ip: IP },
      },
      {
        action: 'invoice.sent',
        category: 'data_access',
        outcome: 'success',
        actor: { type: 'service', id: 'billing' },
        target: { type: 'customer', id: SUBJECT },
      },
      {
        action: 'report.viewed',
        category: 'data_access',
        outcome: 'success',
        actor: { type: 'user', id: 'u-2', email: 'lee@example.eu' },
      },
    ]);
    const unchained = {
      action: 'user.login',
      category: 'authentication',
      outcome: 'failure',
      actor: { type: 'user', id: SUBJECT },
      context: { ip: IP },
    };
    for (const batch of [events, [unchained]])
      expect((await api(vigil, 'POST', '/v1/events', ingestKey, { events: batch })).status).toBe(
        202,
      );
    await waitFor(
      () =>
        api<{ events: unknown[] }>(vigil as VigilProcess, 'GET', '/v1/events?limit=100', queryKey),
      (r) => r.body.events.length >= 5,
      20_000,
      'the events stored',
    );
    const keys = (await api<{ keys: PublishedKey[] }>(vigil, 'GET', '/v1/keys/checkpoint')).body
      .keys;
    const publicKey = keys[0]?.publicKey ?? '';
    const common = ['--url', vigil.url, '--key', adminKey, '--data-dir', data.dir];

    // The bundle, written by the command line, verified with the published key alone.
    const file = join(data.dir, 'subject.vigil-bundle');
    const exported = await runCli([
      'export',
      '--subject',
      SUBJECT,
      '--email',
      EMAIL,
      '--format',
      'bundle',
      '--out',
      file,
      ...common,
    ]);
    expect(exported.code, exported.all).toBe(0);
    const bundle = readFileSync(file);
    const check = verifyBundle(bundle, [publicKey]);
    expect(check.ok ? check.entries : check.problem).toBe(3);
    const verified = await runCli(['verify', '--bundle', file, '--key', publicKey]);
    expect(verified.code, verified.all).toBe(0);
    const altered = Buffer.from(bundle);
    const at = altered.indexOf(Buffer.from(`"value":"${EMAIL}"`)) + 10;
    altered[at] = (altered[at] as number) ^ 1;
    writeFileSync(file, altered);
    const refused = await runCli(['verify', '--bundle', file, '--key', publicKey]);
    expect(refused.code).toBe(1);
    expect(refused.all).toMatch(/\/disclosures\/~1actor~1email does not open the commitment/);

    // A CSV export for a spreadsheet.
    const csv = await runCli(['export', '--subject', SUBJECT, '--format', 'csv', ...common]);
    expect(csv.all.startsWith('\ufefftime,id,action')).toBe(true);

    // A legal hold on the person blocks the erasure; overriding it is recorded.
    expect(
      (
        await api(vigil, 'POST', '/v1/admin/holds', adminKey, {
          subject: SUBJECT,
          reason: 'case 5',
        })
      ).status,
    ).toBe(201);
    const held = await runCli([
      'erase',
      '--subject',
      SUBJECT,
      '--email',
      EMAIL,
      '--reason',
      'request 2026-11',
      ...common,
    ]);
    expect(held.code).not.toBe(0);
    expect(held.all).toContain('VIGIL_ERR_ERASURE_HELD');
    const receiptFile = join(data.dir, 'receipt.json');
    const erased = await runCli([
      'erase',
      '--subject',
      SUBJECT,
      '--email',
      EMAIL,
      '--reason',
      'request 2026-11',
      '--override-hold',
      '--hold-reason',
      'counsel approved',
      '--purge',
      '--receipt',
      receiptFile,
      ...common,
    ]);
    expect(erased.code, erased.all).toBe(0);
    expect(erased.all).toContain('the superseded rows are gone from the table');
    const receipt = JSON.parse(readFileSync(receiptFile, 'utf8')) as SignedErasureReceipt;
    expect(verifyErasureReceipt(receipt, [publicKey]).ok).toBe(true);
    expect(named(receipt)).toEqual([]);

    // Nothing finds the person; every proof still verifies.
    const all = await api<{ events: { event: { id: string } }[] }>(
      vigil,
      'GET',
      '/v1/events?limit=1000',
      queryKey,
    );
    expect(named(all.body)).toEqual([]);
    const again = await runCli(['export', '--subject', SUBJECT, '--email', EMAIL, ...common]);
    expect((JSON.parse(again.all) as { events: number }).events).toBe(0);
    for (const e of all.body.events) {
      const proof = await waitFor(
        () =>
          api<InclusionProof>(
            vigil as VigilProcess,
            'GET',
            `/v1/proofs/inclusion?event=${e.event.id}`,
            queryKey,
          ),
        (r) => r.status === 200,
        20_000,
        'a checkpoint covering the event',
      );
      expect(verifyInclusionProof(proof.body, [publicKey]).ok).toBe(true);
    }
    for (const v of values)
      expect(logBytes(join(data.dir, 'log')).includes(Buffer.from(v)), v).toBe(false);
  }, 90_000); // many CLI runs, each a process of its own: slow on a loaded machine

  it('corrects and restricts, each recorded', async () => {
    const v = vigil as VigilProcess;
    const { ingestKey, queryKey, adminKey } = v.credentials();
    const common = ['--url', v.url, '--key', adminKey, '--data-dir', data.dir];
    const [event] = sealed('e2e/privacy/2', [
      {
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'u-88', email: 'ash@example.eu' },
      },
    ]);
    expect((await api(v, 'POST', '/v1/events', ingestKey, { events: [event] })).status).toBe(202);
    const id = (JSON.parse(event?.record ?? '{}') as { id: string }).id;
    await waitFor(
      () => api<{ events: unknown[] }>(v, 'GET', '/v1/events?stream=e2e/privacy/2', queryKey),
      (r) => r.body.events.length === 1,
      20_000,
      'the event stored',
    );
    const corrected = await runCli([
      'correct',
      id,
      '--set',
      '/actor/email=ash.b@example.eu',
      '--set',
      '/outcome="failure"',
      '--reason',
      'typo',
      ...common,
    ]);
    expect(corrected.code, corrected.all).toBe(0);
    const view = await waitFor(
      () =>
        api<{ events: { event: object; server: { correctedBy?: string[] } }[] }>(
          v,
          'GET',
          '/v1/events?stream=e2e/privacy/2',
          queryKey,
        ),
      (r) => r.body.events[0]?.server.correctedBy !== undefined,
      20_000,
      'the corrected view',
    );
    expect(view.body.events[0]?.event).toMatchObject({
      outcome: 'failure',
      actor: { email: 'ash.b@example.eu' },
    });
    const original = await api<{ events: { event: object }[] }>(
      v,
      'GET',
      '/v1/events?stream=e2e/privacy/2&original=true',
      queryKey,
    );
    expect(original.body.events[0]?.event).toMatchObject({
      outcome: 'success',
      actor: { email: 'ash@example.eu' },
    });

    const restricted = await runCli([
      'restrict',
      '--subject',
      'u-88',
      '--reason',
      'objection pending',
      ...common,
    ]);
    expect(restricted.code, restricted.all).toBe(0);
    const hidden = await api<{ events: unknown[] }>(
      v,
      'GET',
      '/v1/events?stream=e2e/privacy/2',
      queryKey,
    );
    expect(hidden.body.events).toEqual([]);
    const shown = await runCli([
      'search',
      '--stream',
      'e2e/privacy/2',
      '--include-restricted',
      '--json',
      ...common,
    ]);
    expect(shown.code, shown.all).toBe(0);
    expect(shown.all).toContain('u-88');
  });

  it('replays the log from offset 0 into an empty store without the erased values', async () => {
    await vigil?.stop();
    vigil = await startVigil({
      dataDir: data.dir,
      args: [...FAST, '--store-database', 'replayed', '--sink-group', 'replay'],
    });
    const { queryKey } = vigil.credentials();
    const page = await waitFor(
      () =>
        api<{ events: unknown[] }>(
          vigil as VigilProcess,
          'GET',
          '/v1/events?limit=1000&stream=e2e/privacy/1',
          queryKey,
        ),
      (r) => r.body.events.length === 3,
      30_000,
      'the replayed events',
    );
    expect(named(page.body)).toEqual([]);
    const keyStreams = await api<{ events: unknown[] }>(
      vigil,
      'GET',
      '/v1/events?limit=1000&action=user.login',
      queryKey,
    );
    expect(named(keyStreams.body)).toEqual([]);
  });
});
