import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CATEGORIES, rawPublicKey, verifyInclusionProof, type EventInput } from '@vigil/protocol';
import { OPERATOR_TENANT, TenantDirectory } from '../auth/keys.js';
import { KeyRegistry } from '../auth/registry.js';
import { QueryErrorCodes } from '../errors.js';
import { PrivacyService } from '../privacy/service.js';
import { CheckpointStore } from '../proof/checkpoint-store.js';
import {
  insertLeaves,
  testSigner,
  type TestSigner,
  type TestTree,
} from '../proof/trees.testkit.js';
import type { RetentionDays } from '../retention/expiry.js';
import { storeEvents } from '../store/events.testkit.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import type {
  AdminChange,
  ChangeActor,
  ChangeRecorder,
  RecordedChange,
} from '../system/changes.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerKeyDirectoryRoutes } from './key-directory-routes.js';
import { registerPrivacyRoutes } from './privacy-routes.js';
import { registerProofRoutes } from './proof-routes.js';
import { registerVerifyRoutes } from './verify-routes.js';
import { registerRetentionRoutes, type RecordChange } from './retention-routes.js';
import { registerQueryRoutes } from './routes.js';

/**
 * The query side's routes on a bare fastify instance: the registration functions of this
 * package on a test store, keys from a TenantDirectory, and test doubles in place of the
 * collector's recorder of changes (which appends to the log). What the doubles receive is
 * asserted: a change must be recorded before it is made, and refused when it cannot be.
 */

const DEFAULTS = Object.fromEntries(CATEGORIES.map((c) => [c, 365])) as RetentionDays;
const FAR_AHEAD = Date.parse('2090-03-01T00:00:00.000Z');
const NEVER = Math.floor(Date.parse('2100-01-01T00:00:00.000Z') / 1000);

/** A recorder of changes that keeps what it was given, and fails when told to. */
class RecordingDouble implements ChangeRecorder {
  readonly calls: { tenant: string; actor: ChangeActor; change: AdminChange }[] = [];
  failing = false;
  record(tenant: string, actor: ChangeActor, change: AdminChange): Promise<RecordedChange> {
    if (this.failing) return Promise.reject(new Error('the log is unavailable'));
    this.calls.push({ tenant, actor, change });
    const seq = this.calls.length;
    return Promise.resolve({
      id: `rec-${seq}`,
      stream: `system/${tenant}`,
      seq,
      hash: '0'.repeat(64),
    });
  }
}

describe('query HTTP routes', () => {
  let ts: TestStore;
  let app: FastifyInstance;
  let directory: TenantDirectory;
  let signer: TestSigner;
  let tree: TestTree;
  const recorder = new RecordingDouble();
  const recordChange = vi.fn<RecordChange>();
  const recordAccess = vi.fn<RecordChange>();
  const secrets = { query: '', admin: '', both: '', otherQuery: '', operator: '', verified: '' };
  let adminKeyId = '';

  const auth = (secret: string) => ({ authorization: `Bearer ${secret}` });

  beforeAll(async () => {
    ts = await openTestStore();
    directory = new TenantDirectory(ts.store);
    const registry = new KeyRegistry(directory);
    await directory.createTenant('acme');
    await directory.createTenant('other');
    secrets.query = (await directory.createKey({ tenantId: 'acme', scopes: ['query'] })).secret;
    const admin = await directory.createKey({ tenantId: 'acme', scopes: ['admin'] });
    secrets.admin = admin.secret;
    adminKeyId = admin.info.keyId;
    secrets.both = (
      await directory.createKey({ tenantId: 'acme', scopes: ['query', 'admin'] })
    ).secret;
    secrets.otherQuery = (
      await directory.createKey({ tenantId: 'other', scopes: ['query'] })
    ).secret;
    secrets.operator = (
      await directory.createKey({ tenantId: OPERATOR_TENANT, scopes: ['operator'] })
    ).secret;
    await directory.createTenant('verified');
    secrets.verified = (
      await directory.createKey({ tenantId: 'verified', scopes: ['admin'] })
    ).secret;
    await registry.refresh();

    const event = (actor: string, i: number) => ({
      input: {
        action: 'document.viewed',
        category: 'data_access' as const,
        outcome: 'success' as const,
        actor: { type: 'user', id: actor },
      },
      receivedAt: FAR_AHEAD + i,
      expiresAt: NEVER,
    });
    await storeEvents(ts.store, 'acme', [event('alice', 0), event('bob', 1), event('alice', 2)]);
    await storeEvents(ts.store, 'other', [event('mallory', 0)]);
    tree = await insertLeaves(ts.store, 'acme', 0, 6);
    signer = testSigner(ts.store);

    app = Fastify();
    registerQueryRoutes(app, { store: ts.store, registry, recordAccess });
    registerProofRoutes(app, { store: ts.store, registry });
    registerRetentionRoutes(app, { store: ts.store, registry, defaults: DEFAULTS, recordChange });
    registerAdminRoutes(app, { directory, registry, recorder });
    registerKeyDirectoryRoutes(app, { directory, registry });
    const privacy = new PrivacyService(ts.store, randomBytes(32));
    registerPrivacyRoutes(app, { store: ts.store, registry, privacy, recorder });
    registerVerifyRoutes(app, { store: ts.store, registry });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await ts?.cleanup();
  });
  beforeEach(() => {
    recordChange.mockReset().mockResolvedValue(undefined);
    recordAccess.mockReset().mockResolvedValue(undefined);
    recorder.calls.length = 0;
    recorder.failing = false;
  });

  describe('GET /v1/events', () => {
    it('answers only with a key that has scope query, and only with its tenant', async () => {
      expect((await app.inject({ url: '/v1/events' })).statusCode).toBe(401);
      const admin = await app.inject({ url: '/v1/events', headers: auth(secrets.admin) });
      expect(admin.statusCode).toBe(403);

      const acme = await app.inject({ url: '/v1/events', headers: auth(secrets.query) });
      expect(acme.statusCode).toBe(200);
      const actors = acme
        .json<{ events: { event: { actor: { id: string } } }[] }>()
        .events.map((e) => e.event.actor.id);
      expect(actors).toEqual(['alice', 'bob', 'alice']);
      // A tenant in the query string chooses nothing: the key's tenant is the only one.
      const other = await app.inject({
        url: '/v1/events?actor=alice',
        headers: auth(secrets.otherQuery),
      });
      expect(other.json<{ events: unknown[] }>().events).toEqual([]);
    });

    it('filters, and names an invalid parameter', async () => {
      const bob = await app.inject({ url: '/v1/events?actor=bob', headers: auth(secrets.query) });
      expect(bob.json<{ events: unknown[] }>().events).toHaveLength(1);
      const bad = await app.inject({ url: '/v1/events?limit=ten', headers: auth(secrets.query) });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ code: QueryErrorCodes.INVALID_QUERY });
    });

    it('shows restricted subjects only to an admin key, and records the access first', async () => {
      const refused = await app.inject({
        url: '/v1/events?includeRestricted=true',
        headers: auth(secrets.query),
      });
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ code: QueryErrorCodes.FORBIDDEN });
      expect(recordAccess).not.toHaveBeenCalled();

      const shown = await app.inject({
        url: '/v1/events?includeRestricted=true&actor=alice',
        headers: auth(secrets.both),
      });
      expect(shown.statusCode).toBe(200);
      expect(recordAccess).toHaveBeenCalledTimes(1);
      const [tenant, , recorded] = recordAccess.mock.calls[0] as [string, string, EventInput];
      expect(tenant).toBe('acme');
      expect(recorded).toMatchObject({
        action: 'restricted_events.viewed',
        target: { type: 'tenant', id: 'acme' },
        metadata: { filters: ['actor', 'includeRestricted'] },
      });

      // An access that cannot be recorded does not happen.
      recordAccess.mockRejectedValueOnce(new Error('the log is unavailable'));
      const unrecorded = await app.inject({
        url: '/v1/events?includeRestricted=true',
        headers: auth(secrets.both),
      });
      expect(unrecorded.statusCode).toBeGreaterThanOrEqual(500);
      expect(unrecorded.body).not.toContain('alice');
    });
  });

  describe('proofs and checkpoints', () => {
    it('serves the latest checkpoint and inclusion proofs a verifier accepts, per tenant', async () => {
      const none = await app.inject({
        url: '/v1/checkpoints/latest',
        headers: auth(secrets.query),
      });
      expect(none.statusCode).toBe(404);
      const signed = await signer.checkpoint(
        'acme',
        [{ partition: 0, size: 6, root: tree.rootAt(6) }],
        '2026-01-01T00:00:01.000Z',
      );
      const latest = await app.inject({
        url: '/v1/checkpoints/latest',
        headers: auth(secrets.query),
      });
      expect(latest.json()).toMatchObject({ id: signed.id, signature: signed.signature });

      const url = `/v1/proofs/inclusion?event=${tree.eventIds[4]}`;
      const proof = await app.inject({ url, headers: auth(secrets.query) });
      expect(proof.statusCode).toBe(200);
      expect(verifyInclusionProof(proof.json(), [signer.publicKey])).toMatchObject({ ok: true });

      const foreign = await app.inject({ url, headers: auth(secrets.otherQuery) });
      expect(foreign.statusCode).toBe(404);
      expect(foreign.json()).toMatchObject({ code: QueryErrorCodes.EVENT_NOT_FOUND });
      const bad = await app.inject({
        url: '/v1/proofs/inclusion?event=nope',
        headers: auth(secrets.query),
      });
      expect(bad.statusCode).toBe(400);
    });
  });

  describe('retention and holds', () => {
    it('records a policy change before making it, and refuses it when it cannot be recorded', async () => {
      const put = (secret: string, days: Record<string, number | null>) =>
        app.inject({
          method: 'PUT',
          url: '/v1/admin/retention',
          headers: auth(secret),
          payload: { days, reason: 'contract' },
        });
      expect((await put(secrets.query, { api: 30 })).statusCode).toBe(403);
      expect(recordChange).not.toHaveBeenCalled();

      recordChange.mockRejectedValueOnce(new Error('the log is unavailable'));
      expect((await put(secrets.admin, { api: 30 })).statusCode).toBeGreaterThanOrEqual(500);
      const unchanged = await app.inject({
        url: '/v1/admin/retention',
        headers: auth(secrets.admin),
      });
      expect(unchanged.json()).toMatchObject({ policy: { api: { days: 365, source: 'default' } } });

      const changed = await put(secrets.admin, { api: 30 });
      expect(changed.statusCode).toBe(200);
      expect(changed.json()).toMatchObject({ policy: { api: { days: 30, source: 'tenant' } } });
      expect(recordChange).toHaveBeenLastCalledWith(
        'acme',
        adminKeyId,
        expect.objectContaining({
          action: 'retention.policy_changed',
          actor: { type: 'api_key', id: adminKeyId },
          metadata: expect.objectContaining({ reason: 'contract' }),
        }),
      );
      // The same value again changes nothing and records nothing.
      recordChange.mockClear();
      expect((await put(secrets.admin, { api: 30 })).statusCode).toBe(200);
      expect(recordChange).not.toHaveBeenCalled();

      const invalid = await put(secrets.admin, { api: 0 });
      expect(invalid.statusCode).toBe(400);
      const history = await app.inject({
        url: '/v1/admin/retention/history',
        headers: auth(secrets.admin),
      });
      expect(history.json<{ changes: unknown[] }>().changes).toHaveLength(1);
    });

    it('places and releases a legal hold, each recorded', async () => {
      const placed = await app.inject({
        method: 'POST',
        url: '/v1/admin/holds',
        headers: auth(secrets.admin),
        payload: { subject: 'alice', reason: 'litigation' },
      });
      expect(placed.statusCode).toBe(201);
      const { hold, heldEvents } = placed.json<{ hold: { id: string }; heldEvents: number }>();
      expect(heldEvents).toBe(2);
      expect(recordChange).toHaveBeenLastCalledWith(
        'acme',
        adminKeyId,
        expect.objectContaining({
          action: 'legal_hold.placed',
          metadata: expect.objectContaining({ holdId: hold.id, scope: 'subject' }),
        }),
      );

      const release = () =>
        app.inject({
          method: 'POST',
          url: `/v1/admin/holds/${hold.id}/release`,
          headers: auth(secrets.admin),
          payload: { reason: 'settled' },
        });
      expect((await release()).statusCode).toBe(200);
      expect(recordChange).toHaveBeenLastCalledWith(
        'acme',
        adminKeyId,
        expect.objectContaining({ action: 'legal_hold.released' }),
      );
      const again = await release();
      expect(again.statusCode).toBe(409);
      expect(again.json()).toMatchObject({ code: QueryErrorCodes.HOLD_RELEASED });
    });
  });

  describe('tenant and key administration', () => {
    it('creates a key only once its creation is recorded in the tenant', async () => {
      const create = () =>
        app.inject({
          method: 'POST',
          url: '/v1/admin/keys',
          headers: auth(secrets.admin),
          payload: { scopes: ['query'], name: 'reporting' },
        });
      const before = (await directory.listKeys('acme')).length;
      recorder.failing = true;
      expect((await create()).statusCode).toBeGreaterThanOrEqual(500);
      expect((await directory.listKeys('acme')).length).toBe(before);

      recorder.failing = false;
      const created = await create();
      expect(created.statusCode).toBe(201);
      const body = created.json<{ key: { keyId: string }; secret: string }>();
      expect(recorder.calls).toEqual([
        {
          tenant: 'acme',
          actor: adminKeyId,
          change: expect.objectContaining({
            action: 'api_key.created',
            target: { type: 'api_key', id: body.key.keyId },
          }) as AdminChange,
        },
      ]);
      expect((await directory.listKeys('acme')).length).toBe(before + 1);
      // The new key works at once on this process.
      const use = await app.inject({ url: '/v1/events', headers: auth(body.secret) });
      expect(use.statusCode).toBe(200);
    });

    it('lets only the operator list tenants and the key directory, which holds no secret', async () => {
      expect(
        (await app.inject({ url: '/v1/operator/tenants', headers: auth(secrets.admin) }))
          .statusCode,
      ).toBe(403);
      const tenants = await app.inject({
        url: '/v1/operator/tenants',
        headers: auth(secrets.operator),
      });
      expect(tenants.json<{ tenants: { id: string }[] }>().tenants.map((t) => t.id)).toEqual(
        expect.arrayContaining(['acme', 'other']),
      );
      const keys = await app.inject({
        url: '/v1/operator/key-directory',
        headers: auth(secrets.operator),
      });
      expect(keys.statusCode).toBe(200);
      for (const secret of Object.values(secrets)) expect(keys.body).not.toContain(secret);
    });
  });

  describe('privacy', () => {
    const post = (url: string, payload: object) =>
      app.inject({ method: 'POST', url, headers: auth(secrets.admin), payload });

    it("exports a person's events and records the export under digests, never the id", async () => {
      const digests = await post('/v1/admin/subjects/digest', { subject: 'alice' });
      const { digests: aliceDigests } = digests.json<{ digests: string[] }>();
      expect(aliceDigests.length).toBeGreaterThan(0);

      const exported = await post('/v1/admin/subjects/export', { subject: 'alice' });
      expect(exported.statusCode).toBe(200);
      expect(exported.headers['x-vigil-events']).toBe('2');
      expect(exported.body).toContain('alice');
      expect(exported.body).not.toContain('bob');
      expect(recorder.calls).toHaveLength(1);
      const recorded = recorder.calls[0]?.change;
      expect(recorded).toMatchObject({
        action: 'subject.exported',
        metadata: { subject: aliceDigests, format: 'json', events: 2 },
      });
      expect(JSON.stringify(recorded)).not.toContain('alice');

      const refused = await app.inject({
        method: 'POST',
        url: '/v1/admin/subjects/export',
        headers: auth(secrets.query),
        payload: { subject: 'alice' },
      });
      expect(refused.statusCode).toBe(403);
    });

    it('hides a restricted person from search until the restriction is lifted, each recorded', async () => {
      const actors = async (): Promise<string[]> =>
        (await app.inject({ url: '/v1/events', headers: auth(secrets.query) }))
          .json<{ events: { event: { actor: { id: string } } }[] }>()
          .events.map((e) => e.event.actor.id);
      const placed = await post('/v1/admin/subjects/restrict', {
        subject: 'alice',
        reason: 'accuracy contested',
      });
      expect(placed.statusCode).toBe(201);
      const { restriction } = placed.json<{ restriction: { id: string } }>();
      expect(await actors()).toEqual(['bob']);

      const lifted = await post(`/v1/admin/restrictions/${restriction.id}/lift`, {
        reason: 'corrected',
      });
      expect(lifted.statusCode).toBe(200);
      expect(await actors()).toEqual(['alice', 'bob', 'alice']);
      expect(recorder.calls.map((c) => c.change.action)).toEqual([
        'subject.restricted',
        'subject.restriction_lifted',
      ]);
    });
  });

  describe('POST /v1/verify', () => {
    it('verifies the tenant against the pinned keys, and reports a checkpoint that does not match its tree', async () => {
      const verified = await insertLeaves(ts.store, 'verified', 0, 5);
      const verify = async (keys: string[]) => {
        const response = await app.inject({
          method: 'POST',
          url: '/v1/verify',
          headers: auth(secrets.verified),
          payload: { keys },
        });
        const lines = response.body.trim().split('\n');
        return {
          response,
          last: JSON.parse(lines[lines.length - 1] ?? '{}') as Record<string, unknown>,
        };
      };
      const pinned = rawPublicKey(signer.publicKey).toString('base64url');

      const bad = await verify(['not a key']);
      expect(bad.response.statusCode).toBe(400);
      expect(bad.last).toMatchObject({ code: QueryErrorCodes.INVALID_QUERY });

      await signer.checkpoint(
        'verified',
        [{ partition: 0, size: 5, root: verified.rootAt(5) }],
        '2026-01-01T00:00:01.000Z',
      );
      const good = await verify([pinned]);
      expect(good.response.statusCode).toBe(200);
      // The tree matches its signed checkpoint; its events were never stored here (the leaves
      // were inserted alone), which verify must report as missing, each one.
      expect(good.last).toMatchObject({
        report: {
          tenant: 'verified',
          ok: false,
          totals: {
            leaves: 5,
            events: 0,
            checkpoints: { verified: 1 },
            byCategory: { missing: 5 },
          },
          trees: [{ partition: 0, signedSize: 5, matchedCheckpoints: 1, root: verified.rootAt(5) }],
        },
      });

      await signer.checkpoint(
        'verified',
        [{ partition: 0, size: 5, root: verified.rootAt(4) }],
        '2026-01-01T00:00:02.000Z',
      );
      const forged = await verify([pinned]);
      const forgedCheckpoint = await new CheckpointStore(ts.store).latest('verified');
      expect(forged.last).toMatchObject({
        report: {
          findings: expect.arrayContaining([
            expect.objectContaining({
              category: 'rewritten',
              severity: 'failure',
              checkpoint: forgedCheckpoint?.id,
              leafFrom: 0,
              leafTo: 4,
            }),
          ]) as unknown,
        },
      });
    });
  });
});
