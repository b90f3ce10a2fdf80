import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newEventId,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type CompleteInput,
} from '@vigil/protocol';
import {
  csvHeader,
  csvRows,
  DEFAULT_REVIEW_POLICY,
  KeyRegistry,
  MANIFEST_FILE,
  PrivacyService,
  registerAccessRoutes,
  TenantDirectory,
  type AdminChange,
  type ChangeActor,
  type ChangeRecorder,
  type RecordedChange,
} from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import {
  AccessPlugin,
  encodeEventMessage,
  MemorySigner,
  PrivacyPlugin,
  RetentionPlugin,
  SinkProcessor,
} from '@vigil/collector';
import { DEFAULT_RETENTION_DAYS } from '../config/config.js';
import { parseCommandLine } from './args.js';
import { verifyCommand } from './verify.js';

/**
 * A review campaign round trip: rights granted through the sink, a campaign started on them,
 * decisions returned as the filled worksheet (CSV upload), the revocation arriving later as an
 * `access` event, the campaign closed into an evidence pack, and `vigil verify --evidence`
 * accepting the pack and refusing it once one byte of any file changes.
 */

class RecordingDouble implements ChangeRecorder {
  readonly calls: { tenant: string; actor: ChangeActor; change: AdminChange }[] = [];
  record(tenant: string, actor: ChangeActor, change: AdminChange): Promise<RecordedChange> {
    this.calls.push({ tenant, actor, change });
    return Promise.resolve({
      id: `evt-${this.calls.length}`,
      stream: `vigil/admin/${tenant}`,
      seq: this.calls.length,
      hash: '0'.repeat(64),
    });
  }
}

const salts = randomSaltSource();
const DAY = 86_400_000;
const user = (id: string) => ({ type: 'user', id, name: `Name ${id}` });

describe('access review campaign: start, decide by CSV upload, revoke, close, verify', () => {
  let ts: TestStore;
  let app: FastifyInstance;
  let sink: SinkProcessor;
  let privacy: PrivacyService;
  const signer = MemorySigner.generate();
  const recorder = new RecordingDouble();
  let admin = '';
  let otherAdmin = '';
  let query = '';
  let offset = 0;
  let now = 0;
  const dirs: string[] = [];

  async function store(day: number, input: Partial<CompleteInput>): Promise<void> {
    const time = now + day * DAY;
    const stream = `app/s/${offset}`;
    const sealed = sealEvent(
      {
        category: 'access_change',
        outcome: 'success',
        actor: user('u-admin'),
        ...input,
        id: newEventId(time),
        time: new Date(time).toISOString(),
      } as CompleteInput,
      { stream, seq: 0, prev: ZERO_HASH },
      salts,
    ).event;
    await sink.process({
      partition: 0,
      records: [
        {
          partition: 0,
          offset,
          key: `acme/${stream}`,
          value: encodeEventMessage({
            v: 2,
            tenant: 'acme',
            keyId: 'k1',
            receivedAt: time,
            backfillBefore: time - DAY,
            stream,
            kind: 'sealed',
            events: [sealed],
          }),
          timestamp: time,
        },
      ],
      highWatermark: ++offset,
    });
  }
  const grant = (
    day: number,
    subject: string,
    role: string,
    change: 'grant' | 'revoke' = 'grant',
  ) =>
    store(day, {
      action: change === 'grant' ? 'role.granted' : 'role.revoked',
      access: { change, subject: user(subject), role, ticket: 'SEC-1' },
    });
  const call = (method: 'GET' | 'POST', url: string, key: string, body?: unknown, type?: string) =>
    app.inject({
      method,
      url,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': type ?? 'application/json' }),
      },
      ...(body === undefined
        ? {}
        : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
    });

  beforeAll(async () => {
    ts = await openTestStore();
    now = (await ts.now()) - 30 * DAY;
    privacy = new PrivacyService(ts.store, randomBytes(32), { refreshMs: 0 });
    sink = new SinkProcessor({
      store: ts.store,
      config: { group: 'g', maxBatchRecords: 100 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      salts,
      plugins: [
        new RetentionPlugin({ store: ts.store, defaults: DEFAULT_RETENTION_DAYS, refreshMs: 0 }),
        new AccessPlugin({
          store: ts.store,
          privacy,
          facts: { leaverActions: new Set(DEFAULT_REVIEW_POLICY.leaverActions) },
        }),
        new PrivacyPlugin({ store: ts.store, privacy }),
      ],
    });
    const directory = new TenantDirectory(ts.store);
    const registry = new KeyRegistry(directory);
    await directory.createTenant('acme');
    await directory.createTenant('other');
    admin = (await directory.createKey({ tenantId: 'acme', scopes: ['admin'] })).secret;
    query = (await directory.createKey({ tenantId: 'acme', scopes: ['query'] })).secret;
    otherAdmin = (await directory.createKey({ tenantId: 'other', scopes: ['admin'] })).secret;
    await registry.refresh();
    app = Fastify({ ajv: { customOptions: { removeAdditional: false, coerceTypes: false } } });
    registerAccessRoutes(app, {
      store: ts.store,
      registry,
      privacy,
      recorder,
      policy: DEFAULT_REVIEW_POLICY,
      signer,
    });
    await app.ready();
    await grant(0, 'u-alice', 'admin');
    await grant(1, 'u-bob', 'admin');
    await grant(2, 'u-zoë', 'viewer');
    await store(3, {
      action: 'user.deactivated',
      category: 'admin',
      actor: { type: 'service', id: 'hr' },
      target: user('u-bob'),
    });
  });
  afterAll(async () => {
    await app?.close();
    await ts?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const verify = async (dir: string): Promise<{ code: number; out: string }> => {
    const lines: string[] = [];
    const code = await verifyCommand.run(
      parseCommandLine(
        ['--evidence', dir, '--key', signer.publicKey().toString('base64url')],
        verifyCommand.flags,
      ),
      { env: {}, print: (l) => lines.push(l), printError: (l) => lines.push(l) },
    );
    return { code, out: lines.join('\n') };
  };

  it('goes from snapshot to a signed evidence pack that vigil verify accepts, and refuses once a byte changes', async () => {
    const asOf = new Date(now + 5 * DAY).toISOString();
    expect((await call('POST', '/v1/reviews', query, { asOf })).statusCode).toBe(403);
    const started = await call('POST', '/v1/reviews', admin, { asOf });
    expect(started.statusCode, started.body).toBe(201);
    const { campaign, items } = JSON.parse(started.body) as {
      campaign: { id: string };
      items: number;
    };
    expect(items).toBe(3);
    const id = campaign.id;
    // Another tenant's admin key does not find it.
    expect((await call('GET', `/v1/reviews/${id}`, otherAdmin)).statusCode).toBe(404);

    // The reminder: everything undecided.
    const before = JSON.parse((await call('GET', `/v1/reviews/${id}`, admin)).body) as {
      undecided: { item: string }[];
    };
    expect(before.undecided).toHaveLength(3);

    // The worksheet, filled by a reviewer in a spreadsheet and uploaded back.
    const worksheet = await call('GET', `/v1/reviews/${id}/worksheet?bom=true`, admin);
    expect(worksheet.body.startsWith('\ufeff')).toBe(true);
    const rows = parse(worksheet.body, { columns: true, bom: true }) as Record<string, string>[];
    expect(rows.map((r) => r['subject_id']).sort()).toEqual(['u-alice', 'u-bob', 'u-zoë']);
    const filled = rows.map((r) => {
      const bob = r['subject_id'] === 'u-bob';
      const alice = r['subject_id'] === 'u-alice';
      return {
        ...r,
        decision: bob ? 'revoke' : alice ? 'approve' : '',
        reviewer: bob || alice ? 'Zoë Reviewer' : '',
        justification: bob ? 'left the company' : '',
      };
    });
    const columns = Object.keys(rows[0] ?? {});
    const upload =
      csvHeader(columns) + csvRows(filled.map((r) => columns.map((c) => r[c as keyof typeof r])));
    const bad = await call(
      'POST',
      `/v1/reviews/${id}/decisions`,
      admin,
      upload.replace('left the company', '').replace(',"approve"', ',"approv"'),
      'text/csv',
    );
    expect(bad.statusCode).toBe(400);
    const decided = await call('POST', `/v1/reviews/${id}/decisions`, admin, upload, 'text/csv');
    expect(decided.statusCode, decided.body).toBe(200);
    expect(JSON.parse(decided.body)).toEqual({ decided: 2, undecided: 1 });
    // Each decision is its own audit event, its reviewer and justification committed.
    const decisionEvents = recorder.calls.filter(
      (c) => c.change.action === 'access_review.decided',
    );
    expect(decisionEvents).toHaveLength(2);
    expect(decisionEvents[0]?.change.personal).toEqual([
      '/metadata/justification',
      '/metadata/reviewer',
    ]);

    // The revocation arrives later, as an access event through the sink.
    await grant(10, 'u-bob', 'admin', 'revoke');

    const closed = await call('POST', `/v1/reviews/${id}/close`, admin);
    expect(closed.statusCode, closed.body).toBe(200);
    const pack = JSON.parse(closed.body) as { manifest: unknown; files: Record<string, string> };
    const remediation = parse(pack.files['remediation.csv'] ?? '', { columns: true }) as Record<
      string,
      string
    >[];
    expect(remediation.map((r) => r['outcome']).sort()).toEqual([
      'kept',
      'revoked as decided',
      'undecided, still held',
    ]);
    const revoked = remediation.find((r) => r['outcome'] === 'revoked as decided');
    expect(revoked?.['revoked_at (UTC)']).toBe(
      new Date(now + 10 * DAY).toISOString().slice(0, 19).replace('T', ' '),
    );
    const leavers = parse(pack.files['leavers.csv'] ?? '', { columns: true }) as Record<
      string,
      string
    >[];
    expect(leavers.map((l) => [l['days_to_removal']])).toEqual([['7']]);
    expect(
      (await call('POST', `/v1/reviews/${id}/decisions`, admin, { decisions: [] })).statusCode,
    ).toBe(409);

    const dir = mkdtempSync(join(tmpdir(), 'vigil-evidence-'));
    dirs.push(dir);
    for (const [name, content] of Object.entries(pack.files))
      writeFileSync(join(dir, name), content);
    writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(pack.manifest));
    const ok = await verify(dir);
    expect(ok.out).toContain('RESULT: OK');
    expect(ok.code).toBe(0);

    // One byte changed in any file, or in the manifest, and the pack no longer verifies.
    for (const name of [...Object.keys(pack.files), MANIFEST_FILE]) {
      const file = join(dir, name);
      const original = readFileSync(file);
      const changed = Buffer.from(original);
      const at = Math.floor(changed.length / 2);
      changed[at] = (changed[at] ?? 0) ^ 0x01;
      writeFileSync(file, changed);
      const result = await verify(dir);
      expect(result.code, `${name} changed`).toBe(1);
      expect(result.out).toContain('RESULT: FAILED');
      writeFileSync(file, original);
    }
    expect((await verify(dir)).code).toBe(0);
    // A file added to the pack is refused too.
    writeFileSync(join(dir, 'extra.csv'), 'x');
    expect((await verify(dir)).out).toContain('extra.csv: not listed in the signed manifest');
  });
});
