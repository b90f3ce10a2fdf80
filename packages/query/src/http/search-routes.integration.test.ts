import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TenantDirectory } from '../auth/keys.js';
import { KeyRegistry } from '../auth/registry.js';
import { QueryErrorCodes } from '../errors.js';
import { LinkSigner } from '../links/signed.js';
import { storeEvents } from '../store/events.testkit.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import type {
  AdminChange,
  ChangeActor,
  ChangeRecorder,
  RecordedChange,
} from '../system/changes.js';
import { registerQueryRoutes } from './routes.js';
import { registerSearchRoutes } from './search-routes.js';

/**
 * The analyst search routes on a bare fastify instance: key scopes and tenant isolation on every
 * new endpoint, signed export links (expiry, a changed byte, a revoked key), and the meta-audit
 * (one event per search or export, none for facets or histograms, personal filter values listed
 * as personal paths). The recorder is a double that keeps what it is given: the real one
 * (collector/system/recorder.ts) is the ChangeRecorder every admin change already goes through.
 */

const NEVER = Math.floor(Date.parse('2100-01-01T00:00:00.000Z') / 1000);

class RecordingDouble implements ChangeRecorder {
  readonly calls: { tenant: string; actor: ChangeActor; change: AdminChange }[] = [];
  failing = false;
  record(tenant: string, actor: ChangeActor, change: AdminChange): Promise<RecordedChange> {
    if (this.failing) return Promise.reject(new Error('the log is unavailable'));
    this.calls.push({ tenant, actor, change });
    return Promise.resolve({ id: 'r', stream: 's', seq: 1, hash: '0'.repeat(64) });
  }
}

describe('analyst search routes', () => {
  let ts: TestStore;
  let app: FastifyInstance;
  let registry: KeyRegistry;
  let directory: TenantDirectory;
  let dataDir: string;
  let clock = 0;
  const recorder = new RecordingDouble();
  const secrets = { query: '', admin: '', other: '', revocable: '' };
  let queryKeyId = '';
  let revocableId = '';
  const auth = (secret: string) => ({ authorization: `Bearer ${secret}` });

  beforeAll(async () => {
    ts = await openTestStore();
    directory = new TenantDirectory(ts.store);
    registry = new KeyRegistry(directory);
    await directory.createTenant('acme');
    await directory.createTenant('other');
    const q = await directory.createKey({ tenantId: 'acme', scopes: ['query'] });
    secrets.query = q.secret;
    queryKeyId = q.info.keyId;
    secrets.admin = (await directory.createKey({ tenantId: 'acme', scopes: ['admin'] })).secret;
    secrets.other = (await directory.createKey({ tenantId: 'other', scopes: ['query'] })).secret;
    const r = await directory.createKey({ tenantId: 'acme', scopes: ['query'] });
    secrets.revocable = r.secret;
    revocableId = r.info.keyId;
    await registry.refresh();
    const now = await ts.now();
    clock = now;
    const event = (actor: string, i: number) => ({
      input: {
        action: 'document.viewed',
        category: 'data_access' as const,
        outcome: 'success' as const,
        actor: { type: 'user', id: actor },
        context: { ip: `198.51.100.${i}` },
      },
      receivedAt: now - 3_600_000 + i * 1000,
      expiresAt: NEVER,
    });
    await storeEvents(
      ts.store,
      'acme',
      Array.from({ length: 12 }, (_, i) => event(i % 3 === 0 ? 'alice' : 'bob', i)),
    );
    await storeEvents(ts.store, 'other', [event('mallory', 0), event('mallory', 1)]);
    dataDir = mkdtempSync(join(tmpdir(), 'vigil-links-'));
    const links = LinkSigner.ofDataDir(dataDir);
    // As the server sets it (app/server/app.ts): unknown parameters are an error.
    app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
    registerQueryRoutes(app, { store: ts.store, registry, recorder, links });
    registerSearchRoutes(app, { store: ts.store, registry, links, recorder, now: () => clock });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await ts?.cleanup();
    rmSync(dataDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    recorder.calls.length = 0;
    recorder.failing = false;
  });

  const endpoints = [
    { method: 'GET' as const, url: '/v1/search/facets?field=actor' },
    { method: 'GET' as const, url: '/v1/search/histogram' },
    { method: 'GET' as const, url: '/v1/search/export' },
    { method: 'POST' as const, url: '/v1/search/export/link', payload: {} },
  ];

  it('answers every new endpoint only with a key that has scope query', async () => {
    for (const e of endpoints) {
      expect((await app.inject(e)).statusCode, e.url).toBe(401);
      const admin = await app.inject({ ...e, headers: auth(secrets.admin) });
      expect(admin.statusCode, e.url).toBe(403);
      expect(admin.json()).toMatchObject({ code: QueryErrorCodes.FORBIDDEN });
      expect((await app.inject({ ...e, headers: auth(secrets.query) })).statusCode, e.url).toBe(
        200,
      );
    }
  });

  it('shows each tenant only its own events in facets, histogram and export', async () => {
    const facet = await app.inject({
      url: '/v1/search/facets?field=actor',
      headers: auth(secrets.other),
    });
    expect(facet.json()).toMatchObject({ total: 2, values: [{ value: 'mallory', count: 2 }] });
    const from = new Date(clock - 2 * 3_600_000).toISOString();
    const hist = await app.inject({
      url: `/v1/search/histogram?from=${from}`,
      headers: auth(secrets.other),
    });
    expect(hist.json()).toMatchObject({ total: 2 });
    const acme = await app.inject({
      url: `/v1/search/histogram?from=${from}`,
      headers: auth(secrets.query),
    });
    expect(acme.json()).toMatchObject({ total: 12, bucketSeconds: 60 });
    const exp = await app.inject({
      url: '/v1/search/export?format=ndjson',
      headers: auth(secrets.other),
    });
    expect(exp.body).not.toContain('alice');
    expect(exp.headers['x-vigil-export-count']).toBe('2');
  });

  it('names the bad field with a 400', async () => {
    const bad = await app.inject({
      url: '/v1/search/facets?field=actor&ip=not-an-ip&asn=x1',
      headers: auth(secrets.query),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: QueryErrorCodes.INVALID_QUERY });
    const ip = await app.inject({ url: '/v1/events?ip=1.2.3.4/40', headers: auth(secrets.query) });
    expect(ip.statusCode).toBe(400);
    // (The server's error handler adds `details` naming /ip: app/server/errors-http.ts.)
    expect(ip.json()).toMatchObject({ code: QueryErrorCodes.INVALID_QUERY });
    const unknown = await app.inject({
      url: '/v1/search/histogram?tenant=acme',
      headers: auth(secrets.other),
    });
    expect(unknown.statusCode).toBe(400);
  });

  it('records one event per search (its first page), none for facets or histograms', async () => {
    const first = await app.inject({
      url: '/v1/events?actor=alice&limit=2&category=data_access',
      headers: auth(secrets.query),
    });
    expect(first.statusCode).toBe(200);
    const cursor = first.json<{ nextCursor: string }>().nextCursor;
    expect(cursor).toContain('.'); // signed
    const second = await app.inject({
      url: `/v1/events?actor=alice&limit=2&category=data_access&cursor=${cursor}`,
      headers: auth(secrets.query),
    });
    expect(second.statusCode).toBe(200);
    // The cursor only works for the search it was issued for (whose first page was recorded).
    const other = await app.inject({
      url: `/v1/events?actor=bob&limit=2&category=data_access&cursor=${cursor}`,
      headers: auth(secrets.query),
    });
    expect(other.json()).toMatchObject({ code: QueryErrorCodes.INVALID_CURSOR });
    await app.inject({ url: '/v1/search/facets?field=actor', headers: auth(secrets.query) });
    await app.inject({ url: '/v1/search/histogram', headers: auth(secrets.query) });
    expect(recorder.calls).toHaveLength(1);
    expect(recorder.calls[0]).toEqual({
      tenant: 'acme',
      actor: queryKeyId,
      change: {
        action: 'search.performed',
        category: 'data_access',
        outcome: 'success',
        target: { type: 'tenant', id: 'acme' },
        metadata: { filters: { actor: 'alice', category: ['data_access'] } },
        // The actor filter may identify a person: committed, erasable.
        personal: ['/metadata/filters/actor'],
      },
    });
  });

  it('refuses a search or an export it cannot record', async () => {
    recorder.failing = true;
    expect((await app.inject({ url: '/v1/events', headers: auth(secrets.query) })).statusCode).toBe(
      500,
    );
    const exp = await app.inject({ url: '/v1/search/export', headers: auth(secrets.query) });
    expect(exp.statusCode).toBe(500);
    expect(exp.body).not.toContain('document.viewed');
  });

  it('exports with completeness headers and records the export', async () => {
    const cut = await app.inject({
      url: '/v1/search/export?actor=bob&limit=3',
      headers: auth(secrets.query),
    });
    expect(cut.statusCode).toBe(200);
    expect(cut.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(cut.headers['x-vigil-export-complete']).toBe('false');
    expect(cut.headers['x-vigil-export-count']).toBe('3');
    expect(cut.headers['content-disposition']).toContain('first-3');
    expect(cut.body.trim().split('\r\n')).toHaveLength(4);
    const all = await app.inject({
      url: '/v1/search/export?actor=bob&format=ndjson',
      headers: auth(secrets.query),
    });
    expect(all.headers['x-vigil-export-complete']).toBe('true');
    const last = JSON.parse(all.body.trim().split('\n').pop() as string) as unknown;
    expect(last).toMatchObject({ vigilExport: { complete: true, count: 8 } });
    expect(recorder.calls.map((c) => c.change.action)).toEqual([
      'search.exported',
      'search.exported',
    ]);
    expect(recorder.calls[0]?.change.metadata).toMatchObject({
      filters: { actor: 'bob' },
      events: 3,
      complete: false,
      via: 'api',
    });
  });

  it('serves a signed link without a key until it expires; a changed byte is refused', async () => {
    const made = await app.inject({
      method: 'POST',
      url: '/v1/search/export/link',
      headers: auth(secrets.query),
      payload: { actor: 'alice', format: 'ndjson', ttlSeconds: 600 },
    });
    expect(made.statusCode).toBe(200);
    const { url, expiresAt } = made.json<{ url: string; expiresAt: string }>();
    expect(url).toContain('tenant=acme');
    expect(Date.parse(expiresAt)).toBe(Math.floor(clock / 1000) * 1000 + 600_000);
    const ok = await app.inject({ url });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('"alice"');
    expect(ok.body).not.toContain('"bob"');
    // Recorded: the link's creation, then the download as the key that asked for it.
    expect(recorder.calls.map((c) => [c.change.action, c.actor])).toEqual([
      ['search.export_link_created', queryKeyId],
      ['search.exported', queryKeyId],
    ]);
    expect(recorder.calls[1]?.change.metadata).toMatchObject({ via: 'link' });
    // Any changed byte: another tenant, another actor, a later expiry, an extra filter.
    for (const changed of [
      url.replace('tenant=acme', 'tenant=other'),
      url.replace('actor=alice', 'actor=bob'),
      url.replace(/expires=(\d+)/, (_m, e: string) => `expires=${Number(e) + 1}`),
      `${url}&category=admin`,
      url.replace(/sig=(.)/, (_m, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`),
    ]) {
      const refused = await app.inject({ url: changed });
      expect(refused.statusCode, changed).toBe(403);
      expect(refused.json()).toMatchObject({ code: QueryErrorCodes.LINK_INVALID });
    }
    const saved = clock;
    clock += 601_000;
    try {
      const expired = await app.inject({ url });
      expect(expired.statusCode).toBe(410);
      expect(expired.json()).toMatchObject({ code: QueryErrorCodes.LINK_EXPIRED });
    } finally {
      clock = saved;
    }
    // The secret lives in the data directory, owner-only.
    expect(statSync(join(dataDir, 'link-secret')).mode & 0o777).toBe(0o600);
  });

  it('stops serving a link once the key that asked for it is revoked', async () => {
    const made = await app.inject({
      method: 'POST',
      url: '/v1/search/export/link',
      headers: auth(secrets.revocable),
      payload: {},
    });
    const { url } = made.json<{ url: string }>();
    expect((await app.inject({ url })).statusCode).toBe(200);
    // Revoked a second before the routes' clock (`clock`, the engine's, fixed for the test).
    await directory.revokeKey(revocableId, clock - 1000, 'acme');
    await registry.refresh();
    const refused = await app.inject({ url });
    expect(refused.statusCode).toBe(403);
  });

  it('refuses link parameters it would refuse at download', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/search/export/link',
      headers: auth(secrets.query),
      payload: { ip: 'x', limit: '0' },
    });
    expect(bad.statusCode).toBe(400);
    expect(recorder.calls).toHaveLength(0);
  });
});
