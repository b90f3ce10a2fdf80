import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { subjectDigest } from '@vigil/protocol';
import type { AccessFactRow } from '../access/facts.js';
import { DEFAULT_REVIEW_POLICY } from '../access/policy.js';
import { AccessProjection } from '../access/projection.js';
import { TenantDirectory } from '../auth/keys.js';
import { KeyRegistry } from '../auth/registry.js';
import { Restrictions } from '../privacy/restrictions.js';
import { PrivacyService } from '../privacy/service.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import type {
  AdminChange,
  ChangeActor,
  ChangeRecorder,
  RecordedChange,
} from '../system/changes.js';
import { registerAccessRoutes } from './access-routes.js';

/**
 * The access review routes on a bare fastify instance: key scopes, tenant isolation, the audit
 * event recorded before a review is shown (naming restricted subjects), and refused input.
 */

class RecordingDouble implements ChangeRecorder {
  readonly calls: { tenant: string; actor: ChangeActor; change: AdminChange }[] = [];
  failing = false;
  record(tenant: string, actor: ChangeActor, change: AdminChange): Promise<RecordedChange> {
    if (this.failing) return Promise.reject(new Error('the log is unavailable'));
    this.calls.push({ tenant, actor, change });
    return Promise.resolve({ id: 'r', stream: 's', seq: 0, hash: '0'.repeat(64) });
  }
}

describe('access review routes', () => {
  let ts: TestStore;
  let app: FastifyInstance;
  let privacy: PrivacyService;
  const recorder = new RecordingDouble();
  const secrets = { query: '', admin: '', otherQuery: '' };
  const auth = (secret: string) => ({ authorization: `Bearer ${secret}` });

  const fact = (tenant: string, subject: string, right: string): AccessFactRow => ({
    tenant_id: tenant,
    kind: 'grant',
    subject_key: subjectDigest(privacy.subjectKey(tenant), 'id', subject),
    subject_type: 'user',
    subject_id: subject,
    subject_name: `Name ${subject}`,
    right_kind: 'role',
    right_name: right,
    resource_type: '',
    resource_id: '',
    at: '2026-01-10 00:00:00.000',
    received_at: Date.UTC(2026, 0, 10),
    event_id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    action: 'access.granted',
    granted_by_key: '',
    granted_by_id: '',
    ticket: 'SEC-1',
    reason: '',
    expires_at: null,
    erased: 0,
    version: 0,
  });

  beforeAll(async () => {
    ts = await openTestStore();
    const directory = new TenantDirectory(ts.store);
    const registry = new KeyRegistry(directory);
    await directory.createTenant('acme');
    await directory.createTenant('other');
    secrets.query = (await directory.createKey({ tenantId: 'acme', scopes: ['query'] })).secret;
    secrets.admin = (await directory.createKey({ tenantId: 'acme', scopes: ['admin'] })).secret;
    secrets.otherQuery = (
      await directory.createKey({ tenantId: 'other', scopes: ['query'] })
    ).secret;
    await registry.refresh();
    privacy = new PrivacyService(ts.store, randomBytes(32));
    await new AccessProjection(ts.store).insert([
      fact('acme', 'u-alice', 'admin'),
      fact('acme', 'u-judy', 'viewer'),
      fact('other', 'u-mallory', 'owner'),
    ]);
    await new Restrictions(ts.store, privacy).place('acme', { id: 'u-judy' }, 'dispute', 'k');
    // As the app configures it (server/app.ts): unknown parameters are an error.
    app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
    registerAccessRoutes(app, {
      store: ts.store,
      registry,
      privacy,
      recorder,
      policy: DEFAULT_REVIEW_POLICY,
    });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await ts?.cleanup();
  });
  beforeEach(() => {
    recorder.calls.length = 0;
    recorder.failing = false;
  });

  const review = (secret: string | undefined, qs = 'asOf=2026-02-01') =>
    app.inject({ url: `/v1/access/review?${qs}`, headers: secret ? auth(secret) : {} });

  it('answers only a key with scope query, with its own tenant’s rights', async () => {
    expect((await review(undefined)).statusCode).toBe(401);
    expect((await review(secrets.admin)).statusCode).toBe(403);
    const acme = await review(secrets.query);
    expect(acme.statusCode, acme.body).toBe(200);
    expect(acme.headers['content-type']).toMatch(/^text\/csv/);
    const rows = parse(acme.body, { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => [r['subject_id'], r['right'], r['subject_state']])).toEqual(
      expect.arrayContaining([
        ['u-alice', 'admin', 'active'],
        ['u-judy', 'viewer', 'restricted'],
      ]),
    );
    expect(rows).toHaveLength(2);
    const other = await review(secrets.otherQuery, 'asOf=2026-02-01&format=ndjson');
    expect(
      other.body
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as { subjectId: string }).subjectId),
    ).toEqual(['u-mallory']);
    expect((await review(secrets.query, 'asOf=2026-01-09')).headers['x-vigil-rows']).toBe('0');
  });

  it('records each review before answering, naming the restricted subjects it shows', async () => {
    await review(secrets.query, 'asOf=2026-02-01&format=json');
    expect(recorder.calls).toHaveLength(1);
    expect(recorder.calls[0]).toMatchObject({
      tenant: 'acme',
      change: {
        action: 'access_review.viewed',
        metadata: {
          rows: 2,
          restrictedSubjects: privacy.digests('acme', { id: 'u-judy' }),
        },
      },
    });
    recorder.failing = true;
    const refused = await review(secrets.query);
    expect(refused.statusCode).toBe(500);
    expect(refused.body).not.toContain('u-alice');
  });

  it('refuses a date that does not exist and unknown parameters, naming the field', async () => {
    const bad = await review(secrets.query, 'asOf=2026-02-30');
    expect(bad.statusCode).toBe(400);
    // A bare fastify writes the code and message; the app adds the details (path /asOf).
    expect(JSON.parse(bad.body)).toMatchObject({
      code: 'VIGIL_ERR_INVALID_QUERY',
      message: expect.stringMatching(/^asOf must be/),
    });
    expect((await review(secrets.query, 'asOf=2026-02-01&tenant=other')).statusCode).toBe(400);
    expect((await review(secrets.query, 'asOf=2026-02-01&format=xlsx')).statusCode).toBe(400);
  });

  it('scopes a review to rights', async () => {
    const res = await review(secrets.query, 'asOf=2026-02-01&format=json&right=admin');
    expect(
      (JSON.parse(res.body) as { rows: { right: string }[] }).rows.map((r) => r.right),
    ).toEqual(['admin']);
  });

  it('documents its columns and flags to a query key', async () => {
    expect((await app.inject({ url: '/v1/access/columns' })).statusCode).toBe(401);
    expect(
      (await app.inject({ url: '/v1/access/columns', headers: auth(secrets.admin) })).statusCode,
    ).toBe(403);
    const res = await app.inject({ url: '/v1/access/columns', headers: auth(secrets.query) });
    expect(JSON.parse(res.body)).toMatchObject({
      columns: expect.arrayContaining([{ name: 'subject_key', meaning: expect.any(String) }]),
      enabled: DEFAULT_REVIEW_POLICY.flags,
    });
  });
});
