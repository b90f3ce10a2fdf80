import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import {
  newEventId,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type EventInput,
} from '@vigil/protocol';
import { KeyRegistry, TenantDirectory, type LegalHold } from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { DEFAULT_RETENTION_DAYS } from '../config/config.js';
import { encodeEventMessage } from '@vigil/collector';
import { openEnrichment } from '@vigil/collector';
import { RetentionPlugin } from '@vigil/collector';
import { SinkProcessor } from '@vigil/collector';
import { buildApp } from './app.js';
import { Metrics } from './metrics.js';

const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

interface Recorded {
  tenant: string;
  key: string;
  event: EventInput;
}

describe('retention and legal holds API on chDB', () => {
  let ts: TestStore;
  let app: FastifyInstance;
  let sink: SinkProcessor;
  const recorded: Recorded[] = [];
  /** Set to make the recorder refuse (the log is down, say). */
  let recorderDown = false;
  const keys = { adminA: '', queryA: '', adminB: '', adminAId: '' };
  const salts = randomSaltSource();
  let offset = 0;

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
    const logger = pino({ level: 'silent' });
    sink = new SinkProcessor({
      store: ts.store,
      config: { group: 'g', maxBatchRecords: 10 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      salts,
      plugins: [
        await openEnrichment(
          { geoip: { enabled: true, cityDb: [], asnDb: [] }, userAgent: { enabled: true } },
          logger,
        ),
        new RetentionPlugin({ store: ts.store, defaults: DEFAULT_RETENTION_DAYS, refreshMs: 0 }),
      ],
    });
    app = await buildApp({
      logger,
      metrics: new Metrics(),
      registry,
      readiness: () => Promise.resolve({ ready: true, checks: {} }),
      query: { store: ts.store },
      retention: {
        defaults: DEFAULT_RETENTION_DAYS,
        refreshSeconds: 10,
        recordChange: (tenant, key, event) => {
          if (recorderDown) return Promise.reject(new Error('log unavailable'));
          recorded.push({ tenant, key, event });
          return Promise.resolve();
        },
      },
      version: 'test',
    });
  });
  afterAll(async () => {
    await app.close();
    await ts.cleanup();
  });

  const call = (method: 'GET' | 'PUT' | 'POST', url: string, key?: string, body?: unknown) =>
    app.inject({
      method,
      url,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });

  async function store(tenant: string, actor: string, ip: string, receivedAt = Date.now()) {
    const event = sealEvent(
      {
        id: newEventId(),
        time: new Date().toISOString(),
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: actor },
        context: { ip, userAgent: CHROME },
      },
      { stream: `app/${actor}`, seq: 0, prev: ZERO_HASH },
      salts,
    ).event;
    const value = encodeEventMessage({
      v: 2,
      tenant,
      keyId: 'k',
      receivedAt,
      backfillBefore: receivedAt - 86_400_000,
      stream: `app/${actor}`,
      kind: 'sealed',
      events: [event],
    });
    await sink.process({
      partition: 0,
      records: [{ partition: 0, offset, key: `${tenant}/app`, value, timestamp: receivedAt }],
      highWatermark: ++offset,
    });
  }

  it('admits admin keys only', async () => {
    expect((await call('GET', '/v1/admin/retention')).statusCode).toBe(401);
    const refused = await call('GET', '/v1/admin/retention', keys.queryA);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: { code: 'VIGIL_ERR_FORBIDDEN' } });
    expect((await call('GET', '/v1/admin/holds', keys.queryA)).statusCode).toBe(403);
  });

  it('shows the defaults, changes a policy, records the change and keeps its history', async () => {
    const before = await call('GET', '/v1/admin/retention', keys.adminA);
    expect(before.json()).toMatchObject({
      tenant: 'a',
      policy: { api: { days: DEFAULT_RETENTION_DAYS.api, source: 'default' } },
    });
    const put = await call('PUT', '/v1/admin/retention', keys.adminA, {
      days: { api: 30, authentication: 400 },
      reason: 'DPA annex 2',
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({
      policy: {
        api: { days: 30, source: 'tenant' },
        authentication: { days: 400, source: 'tenant' },
      },
      changes: [
        { category: 'authentication', days: 400, previousDays: null, actorKeyId: keys.adminAId },
        { category: 'api', days: 30, previousEffectiveDays: DEFAULT_RETENTION_DAYS.api },
      ],
    });
    expect(recorded.at(-1)).toMatchObject({
      tenant: 'a',
      key: keys.adminAId,
      event: {
        action: 'retention.policy_changed',
        category: 'admin',
        actor: { type: 'api_key', id: keys.adminAId },
        target: { type: 'tenant', id: 'a' },
        metadata: { reason: 'DPA annex 2' },
      },
    });
    // The same again changes nothing and records nothing.
    const count = recorded.length;
    const same = await call('PUT', '/v1/admin/retention', keys.adminA, { days: { api: 30 } });
    expect(same.json()).toMatchObject({ changes: [] });
    expect(recorded).toHaveLength(count);
    // Tenant b is untouched.
    const b = await call('GET', '/v1/admin/retention', keys.adminB);
    expect(b.json()).toMatchObject({ tenant: 'b', policy: { api: { source: 'default' } } });
    const history = await call('GET', '/v1/admin/retention/history', keys.adminA);
    expect(history.json<{ changes: unknown[] }>().changes).toHaveLength(2);
    expect(
      (await call('GET', '/v1/admin/retention/history', keys.adminB)).json<{ changes: unknown[] }>()
        .changes,
    ).toHaveLength(0);
  });

  it('refuses bad policies, naming each problem', async () => {
    const bad = await call('PUT', '/v1/admin/retention', keys.adminA, {
      days: { api: 0, everything: 3 },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'VIGIL_ERR_BAD_REQUEST' } });
    const notAsked = await call('POST', '/v1/admin/retention/apply', keys.adminA, {
      categories: [],
    });
    expect(notAsked.statusCode).toBe(400);
  });

  it('re-applies a policy to stored events only when asked', async () => {
    const receivedAt = Date.now() - 10 * 86_400_000;
    await store('a', 'dora', '81.2.69.160', receivedAt);
    const expiry = async () =>
      (
        await ts.store.query<{ e: string }>(
          `SELECT toUnixTimestamp(expires_at) AS e FROM ${ts.store.table('events')} FINAL
           WHERE tenant_id = 'a' AND actor_id = 'dora'`,
        )
      ).map((r) => Number(r.e));
    const day = 86_400;
    expect(await expiry()).toEqual([Math.floor(receivedAt / 1000) + 400 * day]);
    await call('PUT', '/v1/admin/retention', keys.adminA, { days: { authentication: 200 } });
    expect(await expiry()).toEqual([Math.floor(receivedAt / 1000) + 400 * day]);
    const applied = await call('PUT', '/v1/admin/retention?apply=stored', keys.adminA, {
      days: { authentication: 100 },
    });
    expect(applied.json()).toMatchObject({ applied: [{ category: 'authentication', days: 100 }] });
    expect(await expiry()).toEqual([Math.floor(receivedAt / 1000) + 100 * day]);
    expect(recorded.at(-1)?.event).toMatchObject({
      action: 'retention.policy_applied',
      metadata: { category: 'authentication', days: 100 },
    });
    const again = await call('POST', '/v1/admin/retention/apply', keys.adminA, {
      categories: ['authentication'],
    });
    expect(again.json()).toMatchObject({ applied: [{ category: 'authentication', days: 100 }] });
  });

  it('places, lists and releases holds within the key tenant only', async () => {
    await store('a', 'erin', '81.2.69.161');
    const placed = await call('POST', '/v1/admin/holds', keys.adminA, {
      subject: 'erin',
      reason: 'subpoena 42',
    });
    expect(placed.statusCode).toBe(201);
    const { hold, heldEvents } = placed.json<{ hold: LegalHold; heldEvents: number }>();
    expect(heldEvents).toBe(1);
    expect(hold).toMatchObject({ subject: 'erin', active: true, placedBy: keys.adminAId });
    expect(recorded.at(-1)?.event).toMatchObject({
      action: 'legal_hold.placed',
      target: { type: 'person', id: 'erin' },
      metadata: { holdId: hold.id, reason: 'subpoena 42' },
    });
    expect((await call('GET', '/v1/admin/holds', keys.adminA)).json()).toMatchObject({
      holds: [{ id: hold.id }],
    });
    // Tenant b sees none of it and cannot release it.
    expect((await call('GET', '/v1/admin/holds?all=true', keys.adminB)).json()).toMatchObject({
      holds: [],
    });
    const foreign = await call('POST', `/v1/admin/holds/${hold.id}/release`, keys.adminB, {});
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json()).toMatchObject({ error: { code: 'VIGIL_ERR_HOLD_NOT_FOUND' } });

    const released = await call('POST', `/v1/admin/holds/${hold.id}/release`, keys.adminA, {
      reason: 'settled',
    });
    expect(released.json()).toMatchObject({
      hold: { active: false, releaseReason: 'settled', releasedBy: keys.adminAId },
      stillHeld: false,
    });
    expect(recorded.at(-1)?.event).toMatchObject({ action: 'legal_hold.released' });
    const twice = await call('POST', `/v1/admin/holds/${hold.id}/release`, keys.adminA, {});
    expect(twice.statusCode).toBe(409);
    expect((await call('GET', '/v1/admin/holds', keys.adminA)).json()).toMatchObject({ holds: [] });
    const missingReason = await call('POST', '/v1/admin/holds', keys.adminA, { subject: 'x' });
    expect(missingReason.statusCode).toBe(400);
  });

  it('refuses a change it cannot record, and records a change that failed', async () => {
    recorderDown = true;
    try {
      const refused = await call('PUT', '/v1/admin/retention', keys.adminA, {
        days: { system: 30 },
      });
      expect(refused.statusCode).toBe(500);
      const held = await call('POST', '/v1/admin/holds', keys.adminA, { reason: 'r' });
      expect(held.statusCode).toBe(500);
    } finally {
      recorderDown = false;
    }
    expect((await call('GET', '/v1/admin/retention', keys.adminA)).json()).toMatchObject({
      policy: { system: { source: 'default' } },
    });
    expect((await call('GET', '/v1/admin/holds', keys.adminA)).json()).toMatchObject({
      holds: [],
    });

    // The store refuses the mutation after the event was recorded: an error event follows.
    const store = ts.store;
    const command = store.command.bind(store);
    store.command = () => Promise.reject(new Error('too many parts'));
    try {
      const failed = await call('POST', '/v1/admin/retention/apply', keys.adminA, {
        categories: ['api'],
      });
      expect(failed.statusCode).toBe(500);
    } finally {
      store.command = command;
    }
    expect(recorded.slice(-2).map((r) => [r.event.action, r.event.outcome])).toEqual([
      ['retention.policy_applied', 'success'],
      ['retention.policy_applied', 'error'],
    ]);
  });

  it('shows geo and user agent of stored events in search results', async () => {
    const query = (
      await new TenantDirectory(ts.store).createKey({
        tenantId: 'b',
        scopes: ['query'],
      })
    ).secret;
    await store('b', 'frank', '8.8.8.8');
    const registry = new KeyRegistry(new TenantDirectory(ts.store));
    await registry.refresh();
    const search = await buildApp({
      logger: pino({ level: 'silent' }),
      metrics: new Metrics(),
      registry,
      readiness: () => Promise.resolve({ ready: true, checks: {} }),
      query: { store: ts.store },
      version: 'test',
    });
    try {
      const page = await search.inject({
        method: 'GET',
        url: '/v1/events?actor=frank',
        headers: { authorization: `Bearer ${query}` },
      });
      expect(page.json()).toMatchObject({
        events: [
          {
            event: { context: { ip: '8.8.8.8', userAgent: CHROME } },
            server: {
              geo: { country: 'US' },
              ua: { browser: 'Chrome', os: 'Windows', device: 'desktop' },
            },
          },
        ],
      });
    } finally {
      await search.close();
    }
  });
});
