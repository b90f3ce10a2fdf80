import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ZERO_HASH } from '@vigil/protocol';
import { StoreUnavailableError, type KeyView, type TenantView } from '@vigil/query';
import { LogUnavailableError } from '@vigil/collector';
import { decodeEventMessage } from '@vigil/collector';
import { startTestApp, type TestApp } from './test-app.testkit.js';

interface Created {
  key: KeyView;
  secret: string;
}
interface StoredEvent {
  id: string;
  action: string;
  category: string;
  outcome: string;
  stream: string;
  seq: number;
  prev: string;
  hash: string;
  flags: string[];
  actor: { type: string; id: string };
  target?: { type: string; id: string };
  metadata?: Record<string, unknown>;
}

/** A search item (PROTOCOL.md §20): the event apart from the server's fields. */
interface Item {
  hash: string;
  event: Omit<StoredEvent, 'hash' | 'flags'>;
  server: { flags: string[] };
}

describe('admin and operator API on chDB, a memory log and the system recorder', () => {
  let t: TestApp;
  const keys = {
    acmeAdmin: '',
    acmeIngest: '',
    acmeQuery: '',
    globexAdmin: '',
    globexQuery: '',
    globexIngestId: '',
  };

  const eventsOf = async (key: string, query: string): Promise<StoredEvent[]> => {
    const res = await t.call('GET', `/v1/events${query}`, key);
    expect(res.statusCode).toBe(200);
    // In chain order: events of one millisecond have no order by time.
    return res
      .json<{ events: Item[] }>()
      .events.map((i) => ({ ...i.event, hash: i.hash, flags: i.server.flags }))
      .sort((a, b) => a.stream.localeCompare(b.stream) || a.seq - b.seq);
  };

  const createKey = async (
    operatorTenant: string | undefined,
    key: string,
    body: Record<string, unknown>,
  ): Promise<Created> => {
    const url = operatorTenant ? `/v1/operator/tenants/${operatorTenant}/keys` : '/v1/admin/keys';
    const res = await t.call('POST', url, key, body);
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Created>();
  };

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('bootstraps an operator key of the reserved tenant and records every bootstrap change', async () => {
    const { credentials } = t;
    expect(credentials.operatorKey).toMatch(/^vgl_[0-9a-f]{12}_/);
    const operatorKeys = await t.call(
      'GET',
      '/v1/operator/tenants/_operator/keys',
      credentials.operatorKey,
    );
    expect(operatorKeys.json<{ keys: KeyView[] }>().keys).toMatchObject([
      { tenantId: '_operator', scopes: ['operator'], status: 'active' },
    ]);
    const events = await vi.waitFor(
      async () => {
        const found = await eventsOf(credentials.adminKey, '?category=admin,system&order=asc');
        expect(found).toHaveLength(5);
        return found;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(events.map((e) => e.action)).toEqual([
      'stream.opened',
      'tenant.created',
      'api_key.created',
      'api_key.created',
      'api_key.created',
    ]);
    expect(events[1]).toMatchObject({
      actor: { type: 'system', id: 'vigil-bootstrap' },
      target: { type: 'tenant', id: 'default' },
    });
    // The operator key's creation belongs to the operator tenant's own stream.
    const operatorStream = t.log
      .all()
      .map((r) => decodeEventMessage(r.value))
      .filter((m) => m.tenant === '_operator');
    expect(operatorStream).toHaveLength(1);
  });

  it('lets an operator create tenants and give them keys, and refuses reserved or bad ids', async () => {
    const op = t.credentials.operatorKey;
    for (const id of ['acme', 'globex']) {
      const res = await t.call('POST', '/v1/operator/tenants', op, { id, name: `${id} inc` });
      expect(res.statusCode).toBe(201);
      expect(res.json<{ tenant: TenantView }>().tenant).toMatchObject({ id, status: 'active' });
    }
    expect((await t.call('POST', '/v1/operator/tenants', op, { id: 'acme' })).json()).toMatchObject(
      { error: { code: 'VIGIL_ERR_TENANT_EXISTS' } },
    );
    for (const id of ['_operator', 'Acme', '', 'a'.repeat(64)]) {
      const res = await t.call('POST', '/v1/operator/tenants', op, { id });
      expect(res.statusCode, id).toBe(400);
    }
    const listed = await t.call('GET', '/v1/operator/tenants', op);
    expect(listed.json<{ tenants: TenantView[] }>().tenants.map((x) => x.id)).toEqual([
      'acme',
      'default',
      'globex',
    ]);

    keys.acmeAdmin = (await createKey('acme', op, { scopes: ['admin', 'query'] })).secret;
    keys.acmeIngest = (await createKey('acme', op, { scopes: ['ingest'] })).secret;
    keys.acmeQuery = (await createKey('acme', op, { scopes: ['query'] })).secret;
    keys.globexAdmin = (await createKey('globex', op, { scopes: ['admin'] })).secret;
    keys.globexQuery = (await createKey('globex', op, { scopes: ['query'] })).secret;
    const globexIngest = await createKey('globex', op, {
      scopes: ['ingest'],
      name: 'globex ingest',
    });
    keys.globexIngestId = globexIngest.key.keyId;

    // operator is a scope of operator keys only; tenant keys never get it.
    const wrong = await t.call('POST', '/v1/operator/tenants/acme/keys', op, {
      scopes: ['operator'],
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({
      error: { code: 'VIGIL_ERR_INVALID_QUERY', details: [{ path: '/scopes' }] },
    });
    expect(
      (await t.call('POST', '/v1/operator/tenants/nobody/keys', op, { scopes: ['query'] })).json(),
    ).toMatchObject({ error: { code: 'VIGIL_ERR_TENANT_NOT_FOUND' } });
  });

  it('shows an admin its own tenant and keys only, never a digest or a secret', async () => {
    const tenant = await t.call('GET', '/v1/admin/tenant', keys.acmeAdmin);
    expect(tenant.json()).toEqual({
      tenant: { id: 'acme', name: 'acme inc', status: 'active', createdAt: expect.any(String) },
    });
    const listed = await t.call('GET', '/v1/admin/keys', keys.acmeAdmin);
    const acmeKeys = listed.json<{ keys: KeyView[] }>().keys;
    expect(acmeKeys).toHaveLength(3);
    expect(acmeKeys.every((k) => k.tenantId === 'acme')).toBe(true);
    expect(listed.body).not.toMatch(/digest|vgl_/);
    expect(Object.keys(acmeKeys[0]!).sort()).toEqual(
      [
        'allowedIps',
        'createdAt',
        'expiresAt',
        'keyId',
        'name',
        'rateLimitPerMinute',
        'revokedAt',
        'scopes',
        'status',
        'tenantId',
      ].sort(),
    );
  });

  it('validates key settings and refuses unknown members, naming each problem', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ scopes: ['query'], tenantId: 'globex' }, '/body/tenantId'],
      [{ scopes: ['operator'] }, '/body/scopes/0'],
      [{ scopes: [] }, '/body/scopes'],
      [{ scopes: ['query'], allowedIps: ['example.com'] }, '/allowedIps/0'],
      [{ scopes: ['query'], expiresAt: '2001-01-01T00:00:00Z' }, '/expiresAt'],
      [{ scopes: ['query'], rateLimitPerMinute: 0 }, '/body/rateLimitPerMinute'],
    ];
    for (const [body, path] of cases) {
      const res = await t.call('POST', '/v1/admin/keys', keys.acmeAdmin, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(res.json()), JSON.stringify(body)).toContain(path);
    }
    const query = await t.call('GET', '/v1/admin/keys?tenant=globex', keys.acmeAdmin);
    expect(query.statusCode).toBe(400);
    expect(query.json()).toMatchObject({
      error: { details: [{ path: '/querystring/tenant', message: 'is not a known parameter' }] },
    });
  });

  it('answers a key id of another tenant exactly like one that does not exist', async () => {
    const absent = 'abcdefabcdef';
    for (const action of ['revoke', 'rotate']) {
      const foreign = await t.call(
        'POST',
        `/v1/admin/keys/${keys.globexIngestId}/${action}`,
        keys.acmeAdmin,
      );
      const missing = await t.call('POST', `/v1/admin/keys/${absent}/${action}`, keys.acmeAdmin);
      expect(foreign.statusCode).toBe(404);
      expect(missing.statusCode).toBe(404);
      expect(foreign.body.replaceAll(keys.globexIngestId, 'ID')).toBe(
        missing.body.replaceAll(absent, 'ID'),
      );
    }
    // The key of the other tenant is untouched.
    const globexKeys = await t.call('GET', '/v1/admin/keys', keys.globexAdmin);
    expect(
      globexKeys.json<{ keys: KeyView[] }>().keys.find((k) => k.keyId === keys.globexIngestId),
    ).toMatchObject({ status: 'active', revokedAt: null, expiresAt: null });
  });

  it('creates, rotates with a grace period and revokes keys; the plain key only in the response', async () => {
    const created = await createKey(undefined, keys.acmeAdmin, {
      scopes: ['query'],
      name: 'reporting',
      allowedIps: ['127.0.0.1', '10.0.0.0/8'],
      rateLimitPerMinute: 100,
    });
    expect(created.key).toMatchObject({
      tenantId: 'acme',
      name: 'reporting',
      scopes: ['query'],
      rateLimitPerMinute: 100,
      status: 'active',
    });
    expect((await t.call('GET', '/v1/events', created.secret)).statusCode).toBe(200);

    const rotated = await t.call(
      'POST',
      `/v1/admin/keys/${created.key.keyId}/rotate`,
      keys.acmeAdmin,
      {
        graceSeconds: 3600,
      },
    );
    expect(rotated.statusCode).toBe(201);
    const r = rotated.json<Created & { previous: KeyView }>();
    expect(r.key).toMatchObject({
      name: 'reporting',
      scopes: ['query'],
      allowedIps: ['127.0.0.1', '10.0.0.0/8'],
      rateLimitPerMinute: 100,
    });
    expect(r.key.keyId).not.toBe(created.key.keyId);
    const graceEnd = Date.parse(r.previous.expiresAt ?? '');
    expect(Math.abs(graceEnd - (Date.now() + 3_600_000))).toBeLessThan(10_000);
    // Both work during the grace period.
    expect((await t.call('GET', '/v1/events', created.secret)).statusCode).toBe(200);
    expect((await t.call('GET', '/v1/events', r.secret)).statusCode).toBe(200);

    // With no grace the old key stops at once.
    const again = await t.call('POST', `/v1/admin/keys/${r.key.keyId}/rotate`, keys.acmeAdmin, {
      graceSeconds: 0,
    });
    expect(again.statusCode).toBe(201);
    const old = await t.call('GET', '/v1/events', r.secret);
    expect(old.statusCode).toBe(401);
    expect(old.json()).toMatchObject({ error: { message: expect.stringContaining('expired') } });
    expect(
      (await t.call('POST', `/v1/admin/keys/${r.key.keyId}/rotate`, keys.acmeAdmin)).json(),
    ).toMatchObject({ error: { code: 'VIGIL_ERR_KEY_INACTIVE' } });

    const third = again.json<Created>();
    const revoked = await t.call(
      'POST',
      `/v1/admin/keys/${third.key.keyId}/revoke`,
      keys.acmeAdmin,
      {
        reason: 'left the team',
      },
    );
    expect(revoked.json<{ key: KeyView }>().key).toMatchObject({ status: 'revoked' });
    expect((await t.call('GET', '/v1/events', third.secret)).statusCode).toBe(401);
    // Revoking again changes nothing and records nothing.
    const before = t.log.all().length;
    const twice = await t.call('POST', `/v1/admin/keys/${third.key.keyId}/revoke`, keys.acmeAdmin);
    expect(twice.statusCode).toBe(200);
    expect(t.log.all().length).toBe(before);

    // No secret of any key ever reaches the log.
    const logged = t.log
      .all()
      .map((rec) => rec.value.toString('utf8'))
      .join('\n');
    for (const secret of [created.secret, r.secret, third.secret, keys.acmeAdmin])
      expect(logged).not.toContain(secret);
    expect(logged).not.toContain('vgl_');
  });

  it('refuses keys of the wrong scope, and tenant keys on operator routes', async () => {
    const cases: [string, 'GET' | 'POST', string][] = [
      [keys.acmeIngest, 'GET', '/v1/admin/keys'],
      [keys.acmeQuery, 'POST', '/v1/admin/keys'],
      [keys.acmeAdmin, 'GET', '/v1/operator/tenants'],
      [keys.acmeAdmin, 'POST', '/v1/operator/tenants/globex/suspend'],
      [t.credentials.operatorKey, 'GET', '/v1/admin/keys'],
      [t.credentials.operatorKey, 'GET', '/v1/events'],
    ];
    for (const [key, method, url] of cases) {
      const res = await t.call(method, url, key, method === 'POST' ? {} : undefined);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json()).toMatchObject({ error: { code: 'VIGIL_ERR_FORBIDDEN' } });
    }
    expect((await t.call('GET', '/v1/admin/keys', undefined)).statusCode).toBe(401);
  });

  it('suspends a tenant: all its keys get 403 with a clear message until it is resumed', async () => {
    const op = t.credentials.operatorKey;
    const event = {
      events: [
        {
          action: 'user.login',
          category: 'authentication',
          outcome: 'success',
          actor: { type: 'service', id: 's' },
        },
      ],
    };
    const suspended = await t.call('POST', '/v1/operator/tenants/acme/suspend', op, {
      reason: 'contract ended',
    });
    expect(suspended.json()).toMatchObject({ tenant: { id: 'acme', status: 'suspended' } });
    for (const [key, method, url] of [
      [keys.acmeIngest, 'POST', '/v1/events'],
      [keys.acmeQuery, 'GET', '/v1/events'],
      [keys.acmeAdmin, 'GET', '/v1/admin/keys'],
    ] as const) {
      const res = await t.call(method, url, key, method === 'POST' ? event : undefined);
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({
        error: {
          code: 'VIGIL_ERR_TENANT_SUSPENDED',
          message: expect.stringContaining('tenant acme is suspended'),
        },
      });
    }
    // Other tenants are not affected.
    expect((await t.call('GET', '/v1/events', keys.globexQuery)).statusCode).toBe(200);
    const resumed = await t.call('POST', '/v1/operator/tenants/acme/resume', op);
    expect(resumed.json()).toMatchObject({ tenant: { status: 'active' } });
    expect((await t.call('POST', '/v1/events', keys.acmeIngest, event)).statusCode).toBe(202);
    expect((await t.call('POST', '/v1/operator/tenants/nobody/suspend', op)).statusCode).toBe(404);
  });

  it("stores every change as an event of the changed tenant's own chain, searchable by it alone", async () => {
    // The chain also holds the records of the tenant's searches (`search.performed`, category
    // data_access: the meta-audit), this test's own included: all of it is one chain.
    const chain = await vi.waitFor(
      async () => {
        const found = (await eventsOf(keys.acmeQuery, '?order=asc&limit=1000')).filter((e) =>
          e.stream.startsWith('vigil/admin/'),
        );
        expect(found.map((e) => e.action)).toContain('tenant.resumed');
        return found;
      },
      { timeout: 10_000, interval: 100 },
    );
    const events = chain.filter((e) => !e.action.startsWith('search.'));
    expect(events.map((e) => e.action)).toEqual([
      'stream.opened',
      'tenant.created',
      'api_key.created',
      'api_key.created',
      'api_key.created',
      'api_key.created',
      'api_key.rotated',
      'api_key.rotated',
      'api_key.revoked',
      'tenant.suspended',
      'tenant.resumed',
    ]);
    // One unbroken chain: seq from 0, each prev the hash before, no integrity flags.
    chain.forEach((e, i) => {
      expect(e.stream).toMatch(/^vigil\/admin\/test-host\/[0-9a-f-]{36}$/);
      expect(e.seq).toBe(i);
      expect(e.prev).toBe(i === 0 ? ZERO_HASH : chain[i - 1]!.hash);
      expect(e.flags).toEqual([]);
    });
    const operatorKeyId = t.credentials.operatorKey.slice(4, 16);
    expect(events[1]).toMatchObject({
      category: 'admin',
      outcome: 'success',
      actor: { type: 'api_key', id: operatorKeyId },
      target: { type: 'tenant', id: 'acme' },
      metadata: { actorScope: 'operator' },
    });
    expect(events.find((e) => e.action === 'api_key.revoked')?.metadata).toMatchObject({
      reason: 'left the team',
      name: 'reporting',
    });
    expect(events.find((e) => e.action === 'tenant.suspended')?.metadata).toMatchObject({
      reason: 'contract ended',
    });
    // globex sees its own changes only.
    const globex = await eventsOf(keys.globexQuery, '?category=admin,system&limit=100');
    expect(globex.length).toBeGreaterThan(0);
    expect(globex.every((e) => e.target === undefined || e.target.id !== 'acme')).toBe(true);
    expect(JSON.stringify(globex)).not.toContain('contract ended');
  });

  it('refuses a change it cannot record, and records a change that failed after recording', async () => {
    const before = (await t.call('GET', '/v1/admin/keys', keys.globexAdmin)).json<{
      keys: KeyView[];
    }>().keys.length;
    t.log.failAppends = new LogUnavailableError('disk full');
    const refused = await t.call('POST', '/v1/admin/keys', keys.globexAdmin, { scopes: ['query'] });
    t.log.failAppends = undefined;
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBeDefined();
    expect(refused.json()).toMatchObject({ error: { code: 'VIGIL_ERR_LOG_UNAVAILABLE' } });
    const after = (await t.call('GET', '/v1/admin/keys', keys.globexAdmin)).json<{
      keys: KeyView[];
    }>().keys;
    expect(after).toHaveLength(before);

    const save = vi
      .spyOn(t.directory, 'saveKey')
      .mockRejectedValueOnce(new StoreUnavailableError('store down: row vgl_x'));
    const failed = await t.call('POST', '/v1/admin/keys', keys.globexAdmin, { scopes: ['query'] });
    save.mockRestore();
    expect(failed.statusCode).toBe(503);
    const created = await createKey(undefined, keys.globexAdmin, { scopes: ['query'] });

    const events = await vi.waitFor(
      async () => {
        const found = await eventsOf(
          keys.globexQuery,
          '?category=admin,system&order=asc&limit=100',
        );
        expect(found.some((e) => e.target?.id === created.key.keyId)).toBe(true);
        return found;
      },
      { timeout: 10_000, interval: 100 },
    );
    const failure = events.filter((e) => e.outcome === 'error');
    expect(failure).toHaveLength(1);
    expect(failure[0]!.metadata).toMatchObject({ error: 'VIGIL_ERR_STORE_UNAVAILABLE' });
    expect(JSON.stringify(failure)).not.toContain('vgl_');
    const recordedFirst = events.find((e) => e.id === failure[0]!.metadata?.['recordedEventId']);
    expect(recordedFirst).toMatchObject({ action: 'api_key.created', outcome: 'success' });
    // After the failed append the recorder moved to a new stream: no gap, no fork anywhere.
    expect(new Set(events.map((e) => e.stream)).size).toBe(2);
    expect(events.every((e) => e.flags.length === 0)).toBe(true);
  });
});
