import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Alert } from '@vigil/detect';
import { readmeVerifier, type VerifyVigilSignature } from '@vigil/query/testing';
import { loadConfig } from '../config/config.js';
import { runRole, type RunningRole } from '../server/roles.js';
import { parseCommandLine } from './args.js';
import { webhooksCommand } from './webhooks.js';

/**
 * `vigil webhooks` against a real `vigil start` whose operator allows 127.0.0.1: a webhook made
 * with the CLI receives the alerts published to the role's webhook output, signed so that the
 * README's receiver check passes, through the dispatcher `vigil start` runs.
 */

let role: RunningRole;
let receiver: Server;
let receiverUrl = '';
let admin = '';
let verify: VerifyVigilSignature;
const received: { headers: IncomingHttpHeaders; body: Buffer }[] = [];
const dir = mkdtempSync(join(tmpdir(), 'vigil-cli-webhooks-'));

async function vigil(...argv: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const args = parseCommandLine(
    ['--url', role.url, '--key', admin, '--data-dir', dir, ...argv],
    webhooksCommand.flags,
  );
  const code = await webhooksCommand.run(args, {
    env: {},
    print: (line) => out.push(line),
    printError: (line) => out.push(line),
  });
  return { code, out };
}

beforeAll(async () => {
  verify = await readmeVerifier();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/vigil`;
  const config = loadConfig({
    role: 'start',
    flags: {
      dataDir: dir,
      host: '127.0.0.1',
      port: '0',
      'webhooks.allowAddresses': '127.0.0.1/32',
    },
  });
  role = await runRole(config, { logger: pino({ level: 'silent' }), print: () => undefined });
  admin = (await role.directory!.createKey({ tenantId: 'default', scopes: ['admin'] })).secret;
  await role.registry.refresh();
});

afterAll(async () => {
  await role.close();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('vigil webhooks', () => {
  it('creates, tests and lists a webhook; the alerts of vigil start reach it signed', async () => {
    const created = await vigil('create', receiverUrl, '--min-severity', 'medium');
    expect(created.code).toBe(0);
    const secret = /^secret (whsec_\S+)$/m.exec(created.out.join('\n'))?.[1];
    if (!secret) throw new Error(`no secret printed: ${created.out.join('\n')}`);
    const id = /^(wh_[0-9a-f]{16})/.exec(created.out[0] ?? '')?.[1] ?? '';
    expect((await vigil('test', id)).out).toEqual(['delivered: the receiver answered 204']);
    const listed = await vigil('list');
    expect(listed.out.join('\n')).toContain(id);
    expect(listed.out.join('\n')).not.toContain(secret);

    const alert: Alert = {
      id: 'b'.repeat(32),
      key: 'k',
      ruleId: 'vigil.success_after_failures',
      title: 'Success after many failures',
      severity: 'high',
      attack: ['T1110'],
      tenant: 'default',
      entity: { 'actor.id': 'mallory' },
      firstEventTime: Date.now() - 60_000,
      lastEventTime: Date.now(),
      eventIds: ['e'],
      eventCount: 11,
      evidence: {},
      version: 1,
    };
    const before = received.length;
    const published = Date.now();
    await role.webhooks!.output.publish([
      { status: 'new', alert },
      // Below the webhook's minimum: not sent.
      { status: 'new', alert: { ...alert, id: 'c'.repeat(32), severity: 'low' } },
    ]);
    for (let i = 0; i < 100 && received.length === before; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const got = received.at(-1);
    expect(received.length).toBe(before + 1);
    expect(Date.now() - published).toBeLessThan(5000);
    expect(verify(secret, got?.headers['vigil-signature'], got?.body ?? Buffer.alloc(0))).toBe(
      true,
    );
    expect(JSON.parse(got?.body.toString('utf8') ?? '{}')).toMatchObject({
      type: 'alert.new',
      alert: { id: 'b'.repeat(32), entity: { 'actor.id': 'mallory' } },
    });
    // Counted once the delivery is marked delivered, just after the receiver answered.
    let metrics = '';
    for (let i = 0; i < 100 && !/outcome="delivered"/.test(metrics); i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      metrics = await (await fetch(`${role.url}/metrics`)).text();
    }
    expect(metrics).toMatch(/vigil_webhook_deliveries_total\{outcome="delivered"\} 1/);

    expect((await vigil('dead-letters')).out).toEqual(['no dead letter']);
    expect((await vigil('disable', id)).out[0]).toMatch(/disabled/);
    expect((await vigil('update', id, '--format', 'slack')).out[0]).toMatch(/disabled +slack/);
    // Disabled: an alert now is not queued for it.
    const count = received.length;
    await role.webhooks!.output.publish([{ status: 'updated', alert: { ...alert, version: 2 } }]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received.length).toBe(count);
    expect((await vigil('enable', id)).out[0]).toMatch(/enabled +slack/);
    expect((await vigil('delete', id)).code).toBe(0);
    expect((await vigil('list')).out).toEqual(['no webhook']);
  });

  it('reports a refused URL with the field and the reason', async () => {
    await expect(vigil('create', 'http://169.254.169.254/latest/meta-data/')).rejects.toThrow(
      /400 VIGIL_ERR_WEBHOOK_URL_REFUSED[\s\S]*\/body\/url: 169\.254\.169\.254 is a link-local address/,
    );
  });
});
