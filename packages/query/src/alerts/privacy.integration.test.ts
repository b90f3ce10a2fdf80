import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { checkpointKeyId, verifyErasureReceipt, type SignedErasureReceipt } from '@vigil/protocol';
import type { Alert } from '@vigil/detect';
import { KeyRegistry } from '../auth/registry.js';
import { TenantDirectory } from '../auth/keys.js';
import { registerAlertRoutes } from '../http/alert-routes.js';
import { registerPrivacyRoutes } from '../http/privacy-routes.js';
import { PrivacyService } from '../privacy/service.js';
import { isPseudonym } from '../privacy/pseudonyms.js';
import { storeEvents } from '../store/events.testkit.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import type {
  AdminChange,
  ChangeActor,
  ChangeRecorder,
  RecordedChange,
} from '../system/changes.js';
import { AlertStore } from './store.js';
import { AlertTriage } from './triage.js';
import { DeliveryOutbox } from '../webhooks/outbox.js';

/**
 * Personal data in alerts (issue 11 item 8) through the real routes: erasure deletes the alerts
 * about the person and rewrites the others that list their values, and the signed receipt counts
 * them; the person's export lists them with their values only; a restricted person's alerts are
 * hidden; pseudonymised fields are shown as pseudonyms.
 */

class Recorder implements ChangeRecorder {
  readonly calls: { tenant: string; change: AdminChange }[] = [];
  record(tenant: string, _actor: ChangeActor, change: AdminChange): Promise<RecordedChange> {
    this.calls.push({ tenant, change });
    return Promise.resolve({
      id: `0193a4b2-6c1e-7000-8000-${String(this.calls.length).padStart(12, '0')}`,
      stream: 'vigil/admin/test',
      seq: this.calls.length,
      hash: '0'.repeat(64),
    });
  }
}

const SUBJECT = 'u-1042';
const EMAIL = 'zoe@example.eu';
const SUBJECT_IP = '198.51.100.7';
const NEVER = Math.floor(Date.parse('2100-01-01T00:00:00.000Z') / 1000);

let ts: TestStore;
let app: FastifyInstance;
let alerts: AlertStore;
let privacy: PrivacyService;
const keys = { admin: '', query: '', both: '', otherAdmin: '' };
const recorder = new Recorder();
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
let now: number;
/** Event ids of the subject's events, and of someone else's. */
let theirs: string[] = [];
let others: string[] = [];

const auth = (secret: string) => ({ authorization: `Bearer ${secret}` });

function alert(tenant: string, id: string, overrides: Partial<Alert>): Alert {
  return {
    id,
    key: `k|${id}`,
    ruleId: 'auth.brute_force_account',
    title: 'Brute force on one account',
    severity: 'high',
    attack: ['T1110.001'],
    tenant,
    entity: {},
    firstEventTime: now - 60_000,
    lastEventTime: now - 1000,
    eventIds: [],
    eventCount: 10,
    evidence: { count: 10 },
    version: 1,
    ...overrides,
  };
}

beforeAll(async () => {
  ts = await openTestStore();
  now = await ts.now();
  const directory = new TenantDirectory(ts.store);
  const registry = new KeyRegistry(directory);
  await directory.createTenant('acme');
  await directory.createTenant('globex');
  keys.admin = (await directory.createKey({ tenantId: 'acme', scopes: ['admin'] })).secret;
  keys.query = (await directory.createKey({ tenantId: 'acme', scopes: ['query'] })).secret;
  keys.both = (await directory.createKey({ tenantId: 'acme', scopes: ['query', 'admin'] })).secret;
  keys.otherAdmin = (await directory.createKey({ tenantId: 'globex', scopes: ['admin'] })).secret;
  await registry.refresh();
  const login = (id: string, ip: string, i: number, email?: string) => ({
    input: {
      action: 'user.login',
      category: 'authentication' as const,
      outcome: 'failure' as const,
      actor: { type: 'user', id, ...(email ? { email } : {}) },
      context: { ip },
    },
    receivedAt: now - 50_000 + i,
    expiresAt: NEVER,
  });
  const rows = await storeEvents(ts.store, 'acme', [
    login(SUBJECT, SUBJECT_IP, 0, EMAIL),
    login(SUBJECT, SUBJECT_IP, 1, EMAIL),
    login('u-9', '192.0.2.99', 2),
    login('u-7', '192.0.2.1', 3),
  ]);
  theirs = rows.slice(0, 2).map((r) => r.id);
  others = rows.slice(2).map((r) => r.id);
  alerts = new AlertStore(ts.store);
  privacy = new PrivacyService(ts.store, randomBytes(32));
  app = Fastify();
  registerPrivacyRoutes(app, {
    store: ts.store,
    registry,
    privacy,
    recorder,
    signer: {
      keyId: checkpointKeyId(publicKey),
      sign: (message) => Promise.resolve(sign(null, message, privateKey)),
    },
  });
  registerAlertRoutes(app, { store: ts.store, registry, privacy, recorder });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await ts?.cleanup();
});

describe('personal data in alerts', () => {
  it('export lists the alerts of the person with their values only; erasure deletes or rewrites them and the receipt counts them', async () => {
    await alerts.record(
      [
        // About the person: deleted.
        alert('acme', 'about', {
          entity: { 'actor.id': SUBJECT },
          eventIds: theirs,
          evidence: { count: 10, values: { 'context.ip': [SUBJECT_IP] } },
        }),
        // Spraying from one address over many accounts, the person's among them: rewritten.
        alert('acme', 'spray', {
          ruleId: 'auth.password_spraying',
          entity: { 'context.ip': '203.0.113.9' },
          eventIds: [others[1] as string],
          evidence: { distinct: 2, values: { 'actor.id': [SUBJECT, 'u-7'] } },
        }),
        // Raised from the person's events, listing their address among others: rewritten.
        alert('acme', 'burst', {
          ruleId: 'auth.denied_burst',
          entity: { 'geo.country': 'FR' },
          eventIds: [theirs[0] as string, others[1] as string],
          evidence: { values: { 'context.ip': [SUBJECT_IP, '192.0.2.1'] } },
        }),
        // Nothing of the person's: kept as it is.
        alert('acme', 'unrelated', {
          entity: { 'actor.id': 'u-7' },
          eventIds: [others[1] as string],
          evidence: { values: { 'context.ip': ['192.0.2.1'] } },
        }),
        // Another tenant's alert about an account with the same id: not this erasure's.
        alert('globex', 'globex-about', { entity: { 'actor.id': SUBJECT } }),
      ],
      now,
    );
    const triage = new AlertTriage(ts.store);
    await triage.apply(
      'acme',
      ['about', 'spray'],
      { note: `called ${SUBJECT} about it` },
      {
        keyId: 'k',
        eventId: 'e',
      },
    );

    // Webhook deliveries of the alerts, as sent (or waiting to be): the body names the person.
    const outbox = new DeliveryOutbox(ts.store, { maxPending: 100 });
    const delivery = (tenant: string, alertId: string) => ({
      tenant,
      webhookId: 'wh_1',
      eventId: `${alertId}.1`,
      eventType: 'alert.new' as const,
      body: JSON.stringify({ alert: { id: alertId, entity: { 'actor.id': SUBJECT } } }),
    });
    await outbox.enqueue([
      delivery('acme', 'about'),
      delivery('acme', 'spray'),
      delivery('acme', 'unrelated'),
      delivery('globex', 'globex-about'),
    ]);

    const exported = await app.inject({
      method: 'POST',
      url: '/v1/admin/subjects/export',
      headers: auth(keys.admin),
      payload: { subject: SUBJECT, emails: [EMAIL] },
    });
    expect(exported.statusCode, exported.body).toBe(200);
    const file = exported.json<{ alerts: Record<string, unknown>[] }>();
    expect(file.alerts.map((a) => a['id']).sort()).toEqual(['about', 'burst', 'spray']);
    const spray = file.alerts.find((a) => a['id'] === 'spray');
    // The attacker's address is not the person's: withheld; only their own value is listed.
    expect(spray).toMatchObject({
      about: false,
      entity: { 'context.ip': null },
      eventIds: [],
      evidence: { values: { 'actor.id': [SUBJECT] } },
    });
    expect(file.alerts.find((a) => a['id'] === 'burst')).toMatchObject({
      eventIds: [theirs[0]],
      evidence: { values: { 'context.ip': [SUBJECT_IP] } },
    });
    expect(file.alerts.find((a) => a['id'] === 'about')).toMatchObject({
      about: true,
      entity: { 'actor.id': SUBJECT },
      evidence: { count: 10 },
    });

    const dry = await app.inject({
      method: 'POST',
      url: '/v1/admin/subjects/erase',
      headers: auth(keys.admin),
      payload: { subject: SUBJECT, emails: [EMAIL], reason: 'request 7', dryRun: true },
    });
    expect(dry.json()).toMatchObject({ alerts: 3 });

    const erased = await app.inject({
      method: 'POST',
      url: '/v1/admin/subjects/erase',
      headers: auth(keys.admin),
      payload: { subject: SUBJECT, emails: [EMAIL], reason: 'request 7' },
    });
    expect(erased.statusCode, erased.body).toBe(200);
    const body = erased.json<{ counts: { alerts: number }; receipt: SignedErasureReceipt }>();
    expect(body.counts.alerts).toBe(3);
    const verified = verifyErasureReceipt(body.receipt, [publicKey]);
    expect(verified.ok).toBe(true);
    if (verified.ok) expect(verified.statement.counts.alerts).toBe(3);

    expect(await alerts.get('acme', 'about')).toBeUndefined();
    expect((await alerts.get('acme', 'spray'))?.evidence).toEqual({
      distinct: 2,
      values: { 'actor.id': ['u-7'] },
    });
    expect((await alerts.get('acme', 'burst'))?.evidence).toEqual({
      values: { 'context.ip': ['192.0.2.1'] },
    });
    expect((await alerts.get('acme', 'unrelated'))?.evidence).toEqual({
      values: { 'context.ip': ['192.0.2.1'] },
    });
    expect((await alerts.get('globex', 'globex-about'))?.entity).toEqual({ 'actor.id': SUBJECT });
    // The triage of the deleted alert is gone; a note of a kept one that named the person is blanked.
    const rows = await ts.store.query<{ alert_id: string; note: string }>(
      `SELECT alert_id, note FROM ${ts.store.table('alert_triage')} ORDER BY alert_id`,
    );
    expect(rows).toEqual([{ alert_id: 'spray', note: '' }]);
    // Nothing of the person is left in any alert of the tenant.
    const left = await ts.store.query<{ n: string | number }>(
      `SELECT count() AS n FROM ${ts.store.table('alerts')}
       WHERE tenant_id = 'acme' AND (position(entity, {s:String}) > 0 OR position(evidence, {s:String}) > 0 OR position(evidence, {ip:String}) > 0)`,
      { s: SUBJECT, ip: SUBJECT_IP },
    );
    expect(Number(left[0]?.n)).toBe(0);
    // The deliveries of the erased and rewritten alerts are gone, pending ones too; others stay.
    const deliveries = await ts.store.query<{ tenant_id: string; event_id: string }>(
      `SELECT tenant_id, event_id FROM ${ts.store.table('webhook_deliveries')} ORDER BY tenant_id, event_id`,
    );
    expect(deliveries).toEqual([
      { tenant_id: 'acme', event_id: 'unrelated.1' },
      { tenant_id: 'globex', event_id: 'globex-about.1' },
    ]);
  });

  it('hides the alerts of a restricted person until the restriction is lifted', async () => {
    await alerts.record(
      [
        alert('acme', 'restricted-one', {
          entity: { 'actor.id': 'u-9' },
          eventIds: [others[0] as string],
        }),
      ],
      now,
    );
    const ids = async () =>
      (await app.inject({ url: '/v1/alerts?limit=500', headers: auth(keys.query) }))
        .json<{ alerts: { id: string }[] }>()
        .alerts.map((a) => a.id);
    expect(await ids()).toContain('restricted-one');
    const placed = await app.inject({
      method: 'POST',
      url: '/v1/admin/subjects/restrict',
      headers: auth(keys.admin),
      payload: { subject: 'u-9', reason: 'contested accuracy' },
    });
    expect(placed.statusCode, placed.body).toBe(201);
    expect(await ids()).not.toContain('restricted-one');
    const one = await app.inject({ url: '/v1/alerts/restricted-one', headers: auth(keys.query) });
    expect(one.statusCode).toBe(404);
    // An admin may see them, and the access is recorded first; a query key may not.
    const asAdmin = await app.inject({
      url: '/v1/alerts/restricted-one?includeRestricted=true',
      headers: auth(keys.admin),
    });
    expect(asAdmin.statusCode).toBe(403); // the admin key lacks scope query
    const both = await app.inject({
      url: '/v1/alerts/restricted-one?includeRestricted=true',
      headers: auth(keys.both),
    });
    expect(both.statusCode, both.body).toBe(200);
    expect(recorder.calls.at(-1)?.change.action).toBe('restricted_alerts.viewed');
    const refused = await app.inject({
      url: '/v1/alerts?includeRestricted=true',
      headers: auth(keys.query),
    });
    expect(refused.statusCode).toBe(403);
    const id = placed.json<{ restriction: { id: string } }>().restriction.id;
    const lifted = await app.inject({
      method: 'POST',
      url: `/v1/admin/restrictions/${id}/lift`,
      headers: auth(keys.admin),
      payload: { reason: 'resolved' },
    });
    expect(lifted.statusCode, lifted.body).toBe(200);
    expect(await ids()).toContain('restricted-one');
  });

  it("shows pseudonymised fields as the tenant's pseudonyms, and filters by them", async () => {
    await alerts.record(
      [
        alert('acme', 'pseudo', {
          entity: { 'actor.id': 'u-555' },
          evidence: { values: { 'context.ip': ['192.0.2.55'], 'geo.country': ['DE'] } },
        }),
      ],
      now,
    );
    await privacy.setFields('acme', ['id', 'ip'], 'k', 'test');
    const got = await app.inject({ url: '/v1/alerts/pseudo', headers: auth(keys.query) });
    const shown = got.json<{
      entity: Record<string, string>;
      evidence: { values: Record<string, string[]> };
    }>();
    expect(isPseudonym(shown.entity['actor.id'] as string)).toBe(true);
    expect(isPseudonym(shown.evidence.values['context.ip']?.[0] as string)).toBe(true);
    expect(shown.evidence.values['geo.country']).toEqual(['DE']);
    expect(got.body).not.toContain('u-555');
    const filtered = await app.inject({
      url: `/v1/alerts?entity=${encodeURIComponent(shown.entity['actor.id'] as string)}`,
      headers: auth(keys.query),
    });
    expect(filtered.json<{ alerts: { id: string }[] }>().alerts.map((a) => a.id)).toEqual([
      'pseudo',
    ]);
    const groups = await app.inject({
      url: '/v1/alerts?groupBy=entity',
      headers: auth(keys.query),
    });
    expect(groups.body).not.toContain('u-555');
    await privacy.setFields('acme', [], 'k', 'test');
  });
});
