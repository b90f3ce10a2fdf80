import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import {
  AddressGuard,
  DeliveryOutbox,
  KeyRegistry,
  TenantDirectory,
  WebhookSender,
  WebhookStore,
  signatureOf,
  type AdminChange,
  type ChangeRecorder,
  type Resolver,
} from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { buildApp } from './app.js';
import { Metrics } from './metrics.js';

interface Recorded {
  tenant: string;
  actor: unknown;
  change: AdminChange;
}

describe('webhooks API on chDB', () => {
  let ts: TestStore;
  let app: FastifyInstance;
  let receiver: Server;
  let receiverUrl = '';
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const recorded: Recorded[] = [];
  const keys = { adminA: '', queryA: '', adminB: '', adminAId: '' };
  let outbox: DeliveryOutbox;
  // hooks.example resolves to a public address; internal.example to a private one.
  const resolver: Resolver = (host) =>
    Promise.resolve([
      { address: host === 'internal.example' ? '10.1.2.3' : '93.184.216.34', family: 4 },
    ]);

  beforeAll(async () => {
    ts = await openTestStore();
    const directory = new TenantDirectory(ts.store);
    const registry = new KeyRegistry(directory);
    for (const tenant of ['a', 'b']) await directory.createTenant(tenant);
    const adminA = await directory.createKey({ tenantId: 'a', scopes: ['admin'] });
    keys.adminA = adminA.secret;
    keys.adminAId = adminA.info.keyId;
    keys.queryA = (await directory.createKey({ tenantId: 'a', scopes: ['query'] })).secret;
    keys.adminB = (await directory.createKey({ tenantId: 'b', scopes: ['admin'] })).secret;
    await registry.refresh();
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/in`;
    // The operator allows 127.0.0.1 (the test receiver) and nothing else internal.
    const guard = new AddressGuard({ allow: ['127.0.0.1/32'], resolver });
    const recorder: ChangeRecorder = {
      record(tenant, actor, change) {
        recorded.push({ tenant, actor, change });
        return Promise.resolve({ id: `ev${recorded.length}`, stream: 's', seq: 0, hash: '' });
      },
    };
    outbox = new DeliveryOutbox(ts.store, { maxPending: 100 });
    app = await buildApp({
      logger: pino({ level: 'silent' }),
      metrics: new Metrics(),
      registry,
      readiness: () => Promise.resolve({ ready: true, checks: {} }),
      query: { store: ts.store },
      webhooks: {
        webhooks: new WebhookStore(ts.store),
        outbox,
        guard,
        sender: new WebhookSender({ guard, timeoutMs: 5000 }),
        recorder,
      },
      version: 'test',
    });
  });
  afterAll(async () => {
    await app.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    await ts.cleanup();
  });

  type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
  const call = (method: Method, url: string, key?: string, body?: unknown) =>
    app.inject({
      method,
      url,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });

  const ENDPOINTS: [method: Method, url: string, body?: unknown][] = [
    ['GET', '/v1/webhooks'],
    ['POST', '/v1/webhooks', { url: 'https://hooks.example/x' }],
    ['PATCH', '/v1/webhooks/wh_0123456789abcdef', { enabled: false }],
    ['DELETE', '/v1/webhooks/wh_0123456789abcdef'],
    ['POST', '/v1/webhooks/wh_0123456789abcdef/test', {}],
    ['GET', '/v1/webhooks/dead-letters'],
    ['POST', '/v1/webhooks/dead-letters/redrive', { all: true }],
  ];

  it('admits admin keys only, on every endpoint', async () => {
    for (const [method, url, body] of ENDPOINTS) {
      expect((await call(method, url, undefined, body)).statusCode, `${method} ${url}`).toBe(401);
      const refused = await call(method, url, keys.queryA, body);
      expect(refused.statusCode, `${method} ${url}`).toBe(403);
      expect(refused.json()).toMatchObject({ error: { code: 'VIGIL_ERR_FORBIDDEN' } });
    }
    expect(recorded).toEqual([]);
  });

  it('creates a webhook with a secret shown once, lists it without, records the change', async () => {
    const created = await call('POST', '/v1/webhooks', keys.adminA, {
      url: receiverUrl,
      minSeverity: 'high',
      format: 'slack',
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const body = created.json<{ webhook: { id: string }; secret: string; tenant: string }>();
    expect(body.tenant).toBe('a');
    expect(body.secret).toMatch(/^whsec_/);
    expect(body.webhook).toMatchObject({ format: 'slack', minSeverity: 'high', enabled: true });
    const listed = await call('GET', '/v1/webhooks', keys.adminA);
    expect(listed.json()).toMatchObject({ webhooks: [{ id: body.webhook.id, url: receiverUrl }] });
    expect(listed.body).not.toContain(body.secret);
    expect(listed.body).not.toContain('"secret"');
    const change = recorded.at(-1);
    expect(change).toMatchObject({
      tenant: 'a',
      actor: keys.adminAId,
      change: {
        action: 'webhook.created',
        target: { type: 'webhook', id: body.webhook.id },
        metadata: { origin: new URL(receiverUrl).origin, secret: 'generated', format: 'slack' },
      },
    });
    expect(JSON.stringify(change)).not.toContain(body.secret);
    expect(JSON.stringify(change)).not.toContain('/in'); // only the origin, and a digest
  });

  it('sends a signed test event and records it', async () => {
    const secret = 'a-supplied-secret-of-enough-length';
    const created = await call('POST', '/v1/webhooks', keys.adminA, { url: receiverUrl, secret });
    const { webhook } = created.json<{ webhook: { id: string }; secret: string }>();
    expect(created.json<{ secret: string }>().secret).toBe(secret);
    const tested = await call('POST', `/v1/webhooks/${webhook.id}/test`, keys.adminA, {});
    expect(tested.json()).toEqual({ tenant: 'a', delivered: true, status: 200 });
    const got = received.at(-1);
    const [, t, v1] =
      /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(got?.headers['vigil-signature'])) ?? [];
    expect(v1).toBe(signatureOf(secret, Number(t), got?.body ?? ''));
    expect(JSON.parse(got?.body ?? '{}')).toMatchObject({
      type: 'webhook.test',
      tenant: 'a',
      alert: null,
    });
    expect(recorded.at(-1)?.change.action).toBe('webhook.tested');
  });

  it('refuses internal addresses with a 400 naming /body/url, and records nothing', async () => {
    const before = recorded.length;
    for (const url of [
      'http://127.0.0.2:8123/',
      'http://[::1]:8123/',
      'http://10.0.0.1/',
      'http://172.16.5.4/',
      'http://192.168.1.1/',
      'http://[fd00::1]/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fe80::1]/',
      'http://100.64.0.1/',
      'http://0.0.0.0/',
      'http://224.0.0.1/',
      'http://[::ffff:10.0.0.1]/',
      'http://internal.example/hook',
      'ftp://hooks.example/x',
      'https://user:pw@hooks.example/x',
    ]) {
      const refused = await call('POST', '/v1/webhooks', keys.adminA, { url });
      expect(refused.statusCode, url).toBe(400);
      expect(refused.json(), url).toMatchObject({
        error: { code: 'VIGIL_ERR_WEBHOOK_URL_REFUSED', details: [{ path: '/body/url' }] },
      });
    }
    const badFormat = await call('POST', '/v1/webhooks', keys.adminA, {
      url: 'https://hooks.example/x',
      format: 'teams',
    });
    expect(badFormat.statusCode).toBe(400);
    expect(badFormat.body).toContain('/body/format');
    const shortSecret = await call('POST', '/v1/webhooks', keys.adminA, {
      url: 'https://hooks.example/x',
      secret: 'short',
    });
    expect(shortSecret.statusCode).toBe(400);
    expect(shortSecret.body).toContain('/body/secret');
    expect(recorded.length).toBe(before);
    expect(
      (await call('POST', '/v1/webhooks', keys.adminA, { url: 'https://hooks.example/x' }))
        .statusCode,
    ).toBe(201);
  });

  it("keeps tenants apart: another tenant's webhooks and dead letters answer as unknown", async () => {
    const { webhook } = (
      await call('POST', '/v1/webhooks', keys.adminA, { url: receiverUrl })
    ).json<{
      webhook: { id: string };
    }>();
    const listB = await call('GET', '/v1/webhooks', keys.adminB);
    expect(listB.json()).toEqual({ tenant: 'b', webhooks: [] });
    const before = recorded.length;
    for (const [method, url, body] of [
      ['PATCH', `/v1/webhooks/${webhook.id}`, { enabled: false }],
      ['DELETE', `/v1/webhooks/${webhook.id}`, undefined],
      ['POST', `/v1/webhooks/${webhook.id}/test`, {}],
    ] as const) {
      const refused = await call(method, url, keys.adminB, body);
      expect(refused.statusCode).toBe(404);
      expect(refused.json()).toMatchObject({ error: { code: 'VIGIL_ERR_WEBHOOK_NOT_FOUND' } });
    }
    // A dead letter of tenant a: invisible to b, and b cannot re-drive it.
    await outbox.enqueue([
      { tenant: 'a', webhookId: webhook.id, eventId: 'x.1', eventType: 'alert.new', body: '{}' },
    ]);
    const [pending] = await outbox.due(Date.now() + 1000, 100);
    if (!pending) throw new Error('nothing queued');
    await outbox.update(pending, { state: 'dead', lastError: 'answered 500' });
    expect((await call('GET', '/v1/webhooks/dead-letters', keys.adminB)).json()).toEqual({
      tenant: 'b',
      deliveries: [],
    });
    const redriveB = await call('POST', '/v1/webhooks/dead-letters/redrive', keys.adminB, {
      ids: [pending.id],
    });
    expect(redriveB.statusCode).toBe(404);
    expect(redriveB.json()).toMatchObject({ error: { code: 'VIGIL_ERR_DELIVERY_NOT_FOUND' } });
    expect(recorded.length).toBe(before);
    const deadA = await call('GET', '/v1/webhooks/dead-letters', keys.adminA);
    expect(deadA.json()).toMatchObject({ deliveries: [{ id: pending.id, state: 'dead' }] });
    const redriveA = await call('POST', '/v1/webhooks/dead-letters/redrive', keys.adminA, {
      ids: [pending.id],
    });
    expect(redriveA.json()).toMatchObject({ deliveries: [{ id: pending.id, state: 'pending' }] });
    expect(recorded.at(-1)?.change.action).toBe('webhook.deliveries_redriven');
    // Changing: recorded, and the webhook says so.
    const patched = await call('PATCH', `/v1/webhooks/${webhook.id}`, keys.adminA, {
      enabled: false,
      minSeverity: 'critical',
    });
    expect(patched.json()).toMatchObject({ webhook: { enabled: false, minSeverity: 'critical' } });
    expect(recorded.at(-1)?.change).toMatchObject({
      action: 'webhook.updated',
      metadata: { enabled: false, minSeverity: 'critical' },
    });
    expect((await call('PATCH', `/v1/webhooks/${webhook.id}`, keys.adminA, {})).statusCode).toBe(
      400,
    );
    // Deleting: gone from the list, recorded.
    expect((await call('DELETE', `/v1/webhooks/${webhook.id}`, keys.adminA)).statusCode).toBe(200);
    expect(recorded.at(-1)?.change.action).toBe('webhook.deleted');
    const listA = (await call('GET', '/v1/webhooks', keys.adminA)).json<{
      webhooks: { id: string }[];
    }>();
    expect(listA.webhooks.map((w) => w.id)).not.toContain(webhook.id);
    expect((await call('DELETE', `/v1/webhooks/${webhook.id}`, keys.adminA)).statusCode).toBe(404);
  });
});
