import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { OPERATOR_TENANT, TenantDirectory, isCidrOrIp } from './keys.js';
import { KeyRegistry } from './registry.js';

describe('tenants, keys and the key registry', () => {
  let ts: TestStore;
  let directory: TenantDirectory;
  let registry: KeyRegistry;
  beforeAll(async () => {
    ts = await openTestStore();
    directory = new TenantDirectory(ts.store);
    registry = new KeyRegistry(directory);
  });
  afterAll(async () => {
    await ts.cleanup();
  });

  it('stores only digests and authenticates by key and scope', async () => {
    await directory.createTenant('acme');
    const ingest = await directory.createKey({ tenantId: 'acme', scopes: ['ingest'] });
    expect(ingest.secret).toMatch(/^vgl_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const stored = await ts.store.query<{ digest: string }>(
      `SELECT digest FROM ${ts.store.table('api_keys')}`,
    );
    expect(JSON.stringify(stored)).not.toContain(ingest.secret);
    await registry.refresh();
    expect(registry.authenticate(`Bearer ${ingest.secret}`, 'ingest', '127.0.0.1')).toMatchObject({
      ok: true,
      key: { tenantId: 'acme' },
    });
    expect(registry.authenticate(`Bearer ${ingest.secret}`, 'query', '127.0.0.1')).toMatchObject({
      ok: false,
      status: 403,
    });
    expect(registry.authenticate(undefined, 'query', '127.0.0.1')).toMatchObject({
      ok: false,
      status: 401,
    });
    expect(registry.authenticate('Bearer vgl_nope', 'query', '127.0.0.1')).toMatchObject({
      ok: false,
      status: 401,
    });
    expect(registry.authenticate(`Basic ${ingest.secret}`, 'ingest', '127.0.0.1')).toMatchObject({
      ok: false,
      status: 401,
    });
  });

  it('refuses revoked and expired keys, and clients outside the allow-list', async () => {
    const revoked = await directory.createKey({ tenantId: 'acme', scopes: ['query'] });
    const expired = await directory.createKey({
      tenantId: 'acme',
      scopes: ['query'],
      expiresAt: Date.now() - 1000,
    });
    const fenced = await directory.createKey({
      tenantId: 'acme',
      scopes: ['query'],
      allowedIps: ['10.0.0.0/8', '2001:db8::/32'],
    });
    await directory.revokeKey(revoked.info.keyId);
    await registry.refresh();
    expect(registry.authenticate(`Bearer ${revoked.secret}`, 'query', '127.0.0.1')).toMatchObject({
      ok: false,
      status: 401,
      reason: expect.stringContaining('revoked'),
    });
    expect(registry.authenticate(`Bearer ${expired.secret}`, 'query', '127.0.0.1')).toMatchObject({
      ok: false,
      status: 401,
      reason: expect.stringContaining('expired'),
    });
    expect(registry.authenticate(`Bearer ${fenced.secret}`, 'query', '10.1.2.3')).toMatchObject({
      ok: true,
    });
    expect(
      registry.authenticate(`Bearer ${fenced.secret}`, 'query', '::ffff:10.1.2.3'),
    ).toMatchObject({ ok: true });
    expect(registry.authenticate(`Bearer ${fenced.secret}`, 'query', '2001:db8::5')).toMatchObject({
      ok: true,
    });
    expect(registry.authenticate(`Bearer ${fenced.secret}`, 'query', '192.168.1.1')).toMatchObject({
      ok: false,
      status: 403,
    });
  });

  it('refuses duplicate tenants and bad ids', async () => {
    await expect(directory.createTenant('acme')).rejects.toMatchObject({
      code: 'VIGIL_ERR_TENANT_EXISTS',
    });
    await expect(directory.createTenant('Not Valid')).rejects.toMatchObject({ status: 400 });
    expect(isCidrOrIp('10.0.0.0/8')).toBe(true);
    expect(isCidrOrIp('10.0.0.0/33')).toBe(false);
    expect(isCidrOrIp('example.com')).toBe(false);
  });
  it('refuses every key of a suspended tenant with 403 until it is resumed', async () => {
    await directory.createTenant('paused');
    const key = await directory.createKey({ tenantId: 'paused', scopes: ['query'] });
    await directory.setTenantStatus('paused', 'suspended');
    await registry.refresh();
    expect(registry.authenticate(`Bearer ${key.secret}`, 'query', '127.0.0.1')).toMatchObject({
      ok: false,
      status: 403,
      code: 'VIGIL_ERR_TENANT_SUSPENDED',
      reason: expect.stringContaining('tenant paused is suspended'),
    });
    await directory.setTenantStatus('paused', 'active');
    await registry.refresh();
    expect(registry.authenticate(`Bearer ${key.secret}`, 'query', '127.0.0.1')).toMatchObject({
      ok: true,
    });
    await expect(directory.setTenantStatus('nobody', 'suspended')).rejects.toMatchObject({
      code: 'VIGIL_ERR_TENANT_NOT_FOUND',
    });
  });

  it('gives the operator scope to operator keys only, and scopes key lookups to a tenant', async () => {
    expect(() => directory.prepareKey({ tenantId: 'acme', scopes: ['operator'] })).toThrow(
      /operator keys belong to _operator/,
    );
    expect(() => directory.prepareKey({ tenantId: OPERATOR_TENANT, scopes: ['ingest'] })).toThrow(
      /operator keys may hold operator, query/,
    );
    const operator = await directory.createKey({
      tenantId: OPERATOR_TENANT,
      scopes: ['operator'],
      rateLimitPerMinute: 30,
    });
    // A row written by other means cannot make a tenant's key an operator key.
    const forged = directory.prepareKey({ tenantId: 'acme', scopes: ['admin'] });
    await directory.saveKey({
      ...forged,
      info: { ...forged.info, scopes: ['admin', 'operator'] },
    });
    await registry.refresh();
    expect(registry.authenticate(`Bearer ${operator.secret}`, 'operator', '::1')).toMatchObject({
      ok: true,
      key: { tenantId: OPERATOR_TENANT, rateLimitPerMinute: 30 },
    });
    expect(registry.authenticate(`Bearer ${forged.secret}`, 'operator', '::1')).toMatchObject({
      ok: false,
      status: 403,
    });
    expect(await directory.getKey(operator.info.keyId)).toMatchObject({ rateLimitPerMinute: 30 });
    expect(await directory.getKey(operator.info.keyId, 'acme')).toBeUndefined();
    await expect(directory.requireKey(operator.info.keyId, 'acme')).rejects.toMatchObject({
      code: 'VIGIL_ERR_KEY_NOT_FOUND',
      message: `no API key ${operator.info.keyId}`,
    });
  });
});
