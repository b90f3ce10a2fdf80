import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import {
  checkSealedEvent,
  newEventId,
  randomSaltSource,
  sealEvent,
  sha256Hex,
  verifyBundle,
  verifyErasureReceipt,
  verifyInclusionProof,
  ZERO_HASH,
  type EventContent,
  type SealedEvent,
  type SignedErasureReceipt,
} from '@vigil/protocol';
import {
  BaselineRefresher,
  AccessReviewer,
  CheckpointStore,
  DEFAULT_REVIEW_POLICY,
  eventRow,
  KeyRegistry,
  PrivacyService,
  ProofService,
  TenantDirectory,
  verifyLog,
  type Store,
} from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { Checkpointer } from '@vigil/collector';
import { MemorySigner } from '@vigil/collector';
import { TreeWriter } from '@vigil/collector';
import { DEFAULT_RETENTION_DAYS } from '../config/config.js';
import { Ingestor } from '@vigil/collector';
import { FileLog } from '@vigil/collector';
import { buildApp } from '../server/app.js';
import { Metrics } from '../server/metrics.js';
import { TEST_INGEST } from '../server/test-app.testkit.js';
import { openEnrichment } from '@vigil/collector';
import { MerklePlugin } from '@vigil/collector';
import type { SinkPlugin } from '@vigil/collector';
import { PrivacyPlugin } from '@vigil/collector';
import { AccessPlugin } from '@vigil/collector';
import { RetentionPlugin } from '@vigil/collector';
import { SinkRunner } from '@vigil/collector';
import { SystemRecorder } from '@vigil/collector';
import { subjectLogTransform } from '@vigil/collector';

/**
 * The data-subject rights end to end in one process, on chDB and the embedded file log, through
 * the real sink (enrichment, retention, trees, privacy plugins) and the admin API: signed subject
 * bundles, erasure that keeps every proof, holds, corrections, restrictions and pseudonyms.
 */

const logger = pino({ level: 'silent' });
const salts = randomSaltSource();
const SUBJECT = 'u-1042';
const EMAIL = 'zoe@example.eu';
const NAME = 'Zoë Müller';
const IP = '8.8.8.8';
const PHONE = '+33 6 12 34 56 78';
const UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

interface Harness {
  readonly runner: SinkRunner;
  /** false: the log is left as it is, as Kafka's would be. */
  logErasure: boolean;
  readonly store: Store;
  readonly log: FileLog;
  readonly app: FastifyInstance;
  readonly signer: MemorySigner;
  readonly checkpointer: Checkpointer;
  readonly privacy: PrivacyService;
  readonly keys: Map<string, { admin: string; query: string; ingest: string }>;
  call(
    method: 'GET' | 'POST' | 'PUT',
    url: string,
    key: string,
    body?: unknown,
  ): Promise<LightMyRequestResponse>;
  plugins(store: Store): Promise<SinkPlugin[]>;
  close(): Promise<void>;
}

async function harness(
  tenants: readonly string[],
): Promise<Harness & { ts: TestStore; dir: string }> {
  const ts = await openTestStore();
  const store = ts.store;
  const dir = mkdtempSync(join(tmpdir(), 'vigil-privacy-'));
  const log = await FileLog.open({
    dir,
    topic: 'events',
    partitions: 2,
    fsync: 'never',
    segmentBytes: 64 * 1024,
  });
  const signer = MemorySigner.generate();
  const trees = new TreeWriter(store);
  const checkpoints = new CheckpointStore(store);
  await checkpoints.publishKeys(signer.publishedKeys());
  const checkpointer = new Checkpointer({
    heads: trees,
    tree: trees,
    sink: checkpoints,
    signer,
    everyEvents: 1_000_000,
    intervalMs: 0,
  });
  const privacy = new PrivacyService(store, randomBytes(32), { refreshMs: 0 });
  const enrichment = await openEnrichment(
    { geoip: { enabled: true, cityDb: [], asnDb: [] }, userAgent: { enabled: true } },
    logger,
  );
  const plugins = (target: Store): Promise<SinkPlugin[]> =>
    Promise.resolve([
      enrichment,
      new RetentionPlugin({ store: target, defaults: DEFAULT_RETENTION_DAYS, refreshMs: 0 }),
      new MerklePlugin({ store: target, ...(target === store ? { observer: checkpointer } : {}) }),
      ...(target === store
        ? [
            new AccessPlugin({
              store: target,
              privacy,
              facts: { leaverActions: new Set(DEFAULT_REVIEW_POLICY.leaverActions) },
            }),
          ]
        : []),
      new PrivacyPlugin({
        store: target,
        privacy: target === store ? privacy : new PrivacyService(target, randomBytes(32)),
      }),
    ]);
  const runner = new SinkRunner({
    store,
    log,
    plugins: await plugins(store),
    config: { group: 'sink', maxBatchRecords: 50 },
    retentionDays: DEFAULT_RETENTION_DAYS,
    logger,
    salts,
  });
  await runner.start();
  const directory = new TenantDirectory(store);
  const registry = new KeyRegistry(directory);
  const keys = new Map<string, { admin: string; query: string; ingest: string }>();
  for (const tenant of tenants) {
    await directory.createTenant(tenant);
    keys.set(tenant, {
      admin: (await directory.createKey({ tenantId: tenant, scopes: ['admin', 'query'] })).secret,
      query: (await directory.createKey({ tenantId: tenant, scopes: ['query'] })).secret,
      ingest: (await directory.createKey({ tenantId: tenant, scopes: ['ingest'] })).secret,
    });
  }
  await registry.refresh();
  const recorder = new SystemRecorder(log, { host: 'test-host' });
  const metrics = new Metrics();
  const handle = { logErasure: true };
  const app = await buildApp({
    logger,
    metrics,
    registry,
    readiness: () => Promise.resolve({ ready: true, checks: {} }),
    ingest: {
      ingestor: new Ingestor(log, TEST_INGEST, { observer: metrics.ingestObserver() }),
      maxBodyBytes: TEST_INGEST.maxBodyBytes,
    },
    query: { store },
    admin: { directory, recorder },
    retention: {
      defaults: DEFAULT_RETENTION_DAYS,
      recordChange: (tenant, key, event) =>
        recorder.record(tenant, key, event).then(() => undefined),
    },
    privacy: {
      privacy,
      recorder,
      signer,
      eraseLog: async (tenant, subject, at, ids) => {
        if (!handle.logErasure) return { kind: 'kafka', records: 0 };
        const { transform, prefilter } = subjectLogTransform(tenant, subject, at, new Set(ids));
        return {
          kind: 'file',
          records: (await log.rewriteRecords(transform, { prefilter })).records,
        };
      },
      checkpointNow: () => checkpointer.flush(),
    },
    version: 'test',
  });
  return Object.assign(handle, {
    runner,
    ts,
    dir,
    store,
    log,
    app,
    signer,
    checkpointer,
    privacy,
    keys,
    plugins,
    call: (method: 'GET' | 'POST' | 'PUT', url: string, key: string, body?: unknown) =>
      app.inject({
        method,
        url,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      }),
    async close() {
      await app.close();
      await runner.stop();
      await log.close();
      await ts.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

/** The sealed chain of one producer stream. */
function chain(stream: string, inputs: (EventContent & { personal?: string[] })[]): SealedEvent[] {
  let prev = ZERO_HASH;
  return inputs.map((input, seq) => {
    const e = sealEvent(
      { id: newEventId(), time: new Date(Date.now() - 1000 + seq).toISOString(), ...input },
      { stream, seq, prev },
      salts,
    ).event;
    prev = e.hash;
    return e;
  });
}

/** The subject in every role, another person, and a lure for spreadsheets. */
function subjectEvents(stream: string): SealedEvent[] {
  return chain(stream, [
    {
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: SUBJECT, name: NAME, email: EMAIL },
      context: { ip: IP, userAgent: UA, requestId: 'req-1' },
    },
    {
      action: 'document.shared',
      category: 'data_access',
      outcome: 'success',
      actor: { type: 'user', id: 'u-7', email: 'kim@example.eu' },
      target: { type: 'user', id: SUBJECT },
      context: { ip: '198.51.100.7' },
    },
    {
      action: 'role.granted',
      category: 'access_change',
      outcome: 'success',
      actor: { type: 'user', id: 'u-1', email: 'admin@example.eu' },
      access: {
        change: 'grant',
        subject: { type: 'user', id: SUBJECT },
        role: 'billing:manager',
        grantedBy: { type: 'user', id: 'u-1' },
      },
      metadata: { phone: PHONE },
      personal: ['/metadata/phone'],
    },
    {
      action: 'document.viewed',
      category: 'data_access',
      outcome: 'success',
      actor: { type: 'user', id: 'u-7' },
      target: { type: 'document', id: 'doc-1' },
    },
    {
      action: 'document.exported',
      category: 'data_access',
      outcome: 'success',
      actor: { type: 'user', id: SUBJECT },
      target: { type: 'document', id: 'doc-2', name: '=HYPERLINK("http://evil.example")' },
      metadata: { note: '+SUM(1,1)' },
      personal: ['/metadata/note'],
    },
  ]);
}

async function ingest(h: Harness, tenant: string, events: unknown[]): Promise<void> {
  const res = await h.call('POST', '/v1/events', h.keys.get(tenant)?.ingest ?? '', { events });
  expect(res.statusCode, res.body).toBe(202);
}

async function stored(h: Harness, tenant: string, n: number): Promise<void> {
  await expect
    .poll(
      async () =>
        Number(
          (
            await h.store.query<{ c: string }>(
              `SELECT count() AS c FROM ${h.store.table('events')} FINAL WHERE tenant_id = {t:String}`,
              { t: tenant },
            )
          )[0]?.c,
        ),
      { timeout: 15_000, interval: 50 },
    )
    .toBeGreaterThanOrEqual(n);
}

type Row = Record<string, unknown> & {
  id: string;
  hash: string;
  record: string;
  disclosures: string;
  stream: string;
  seq: number | string;
};

async function rows(store: Store, tenant: string): Promise<Row[]> {
  return store.query<Row>(
    `SELECT *, toString(id) AS id FROM ${store.table('events')} FINAL WHERE tenant_id = {t:String} ORDER BY stream, seq`,
    { t: tenant },
  );
}

/** Every stored record hashes to its hash, every chain links, every disclosure opens. */
function checkIntegrity(all: readonly Row[]): void {
  const streams = new Map<string, Row[]>();
  for (const r of all) {
    expect(sha256Hex(r.record)).toBe(r.hash);
    const d = r.disclosures === '' ? undefined : (JSON.parse(r.disclosures) as object);
    const wire =
      d && Object.keys(d).length > 0
        ? { record: r.record, hash: r.hash, disclosures: d }
        : { record: r.record, hash: r.hash };
    const checked = checkSealedEvent(wire);
    if (!checked.ok) expect(checked.details.filter((x) => x.path !== '/record/stream')).toEqual([]);
    const list = streams.get(r.stream) ?? [];
    list.push(r);
    streams.set(r.stream, list);
  }
  for (const list of streams.values()) {
    list.sort((a, b) => Number(a.seq) - Number(b.seq));
    for (let i = 1; i < list.length; i++)
      expect((JSON.parse((list[i] as Row).record) as { prev: string }).prev).toBe(
        (list[i - 1] as Row).hash,
      );
  }
}

/** Whether any value of the subject is anywhere in these rows. */
function mentions(all: readonly unknown[]): string[] {
  const text = JSON.stringify(all);
  return [SUBJECT, EMAIL, 'Zo\u00eb', IP, PHONE, '+SUM'].filter((v) => text.includes(v));
}

function logBytes(dir: string): Buffer {
  const out: Buffer[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.log')) out.push(readFileSync(p));
    }
  };
  walk(dir);
  return Buffer.concat(out);
}

describe('data-subject rights on chDB and the embedded log', () => {
  let h: Harness & { ts: TestStore; dir: string };
  beforeAll(async () => {
    h = await harness(['acme', 'beta', 'gamma', 'delta', 'epsilon']);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('exports a signed bundle that verifies offline and fails on any flipped byte', async () => {
    const events = subjectEvents('app/bundle/1');
    await ingest(h, 'acme', events);
    // An unchained event too, sealed by the sink.
    await ingest(h, 'acme', [
      {
        action: 'user.login',
        category: 'authentication',
        outcome: 'failure',
        actor: { type: 'user', id: SUBJECT },
        context: { ip: '8.8.4.4' },
      },
    ]);
    await stored(h, 'acme', 7);
    const admin = h.keys.get('acme')?.admin ?? '';
    const res = await h.call('POST', '/v1/admin/subjects/export', admin, {
      subject: SUBJECT,
      emails: [EMAIL],
      format: 'bundle',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toContain('application/x-ndjson');
    const bundle = res.body;
    const check = verifyBundle(bundle, [h.signer.publicKey()]);
    expect(check.ok ? 'ok' : check.problem).toBe('ok');
    // The login, the share, the grant, the export and the unchained login; not u-7's view.
    expect(check.ok && check.entries).toBe(5);
    const lines = bundle
      .trimEnd()
      .split('\n')
      .slice(1, -1)
      .map(
        (l) =>
          JSON.parse(l) as { roles: string[]; disclosures: Record<string, { value: unknown }> },
      );
    const grant = lines.find((l) => l.roles.includes('accessSubject'));
    // Only the subject's own values: not the grantor's id, not the phone two people share.
    expect(Object.keys(grant?.disclosures ?? {})).toEqual(['/access/subject/id']);
    expect(bundle).not.toContain('kim@example.eu');
    expect(bundle).not.toContain('admin@example.eu');
    const login = lines.find((l) => l.disclosures['/context/ip']?.value === IP) as unknown as {
      enrichment?: { geo?: { country?: string } };
    };
    expect(login.enrichment?.geo?.country).toBe('US');
    // One flipped byte in a disclosure, a record, a proof, the signature: each named.
    const bytes = Buffer.from(bundle);
    const verdict = (b: Buffer): string => {
      const c = verifyBundle(b, [h.signer.publicKey()]);
      expect(c.ok).toBe(false);
      return c.ok ? '' : c.problem;
    };
    const flip = (at: number): string => {
      const b = Buffer.from(bytes);
      b[at] = (b[at] as number) ^ 1;
      return verdict(b);
    };
    /** Another hex digit in place of a hex digit: the text stays well-formed, the hash changes. */
    const otherHex = (at: number): string => {
      const b = Buffer.from(bytes);
      b[at] = b[at] === 0x30 ? 0x31 : 0x30;
      return verdict(b);
    };
    expect(flip(bytes.indexOf(IP) + 1)).toMatch(
      /entry \d \(line \d, event .*\): \/disclosures\/~1context~1ip/,
    );
    expect(flip(bytes.indexOf(`"value":"${EMAIL}`) + 12)).toMatch(
      /\/disclosures\/~1actor~1email does not open the commitment/,
    );
    expect(flip(bytes.indexOf('"record":"') + 30)).toMatch(/the record does not hash to its hash/);
    expect(otherHex(bytes.indexOf('"auditPath":["') + 20)).toMatch(/inclusion proof does not lead/);
    expect(flip(bytes.lastIndexOf('{"signature":"') + 20)).toMatch(/bundle signature/);
    expect(flip(bytes.length - 3)).toMatch(/signature line/);
    // The subject named in the header is covered by the signed digest of the body.
    expect(flip(bytes.indexOf(EMAIL) + 1)).toMatch(/altered after it was signed/);
    // The export itself is recorded, naming the person only by digests.
    const audit = await h.store.query<{ d: string; r: string }>(
      `SELECT disclosures AS d, record AS r FROM ${h.store.table('events')} FINAL WHERE tenant_id = 'acme' AND action = 'subject.exported'`,
    );
    await expect
      .poll(
        async () =>
          (
            await h.store.query(
              `SELECT 1 FROM ${h.store.table('events')} FINAL WHERE tenant_id = 'acme' AND action = 'subject.exported'`,
            )
          ).length,
        { timeout: 10_000 },
      )
      .toBe(1);
    expect(mentions(audit)).toEqual([]);
  });

  it('exports JSON and CSV that open in Excel and survive it', async () => {
    const admin = h.keys.get('acme')?.admin ?? '';
    const json = await h.call('POST', '/v1/admin/subjects/export', admin, {
      subject: SUBJECT,
      emails: [EMAIL],
    });
    expect(json.statusCode, json.body).toBe(200);
    const doc = JSON.parse(json.body) as {
      events: number;
      items: {
        roles: string[];
        event: Record<string, Record<string, unknown>>;
        committed: string[];
      }[];
    };
    expect(doc.events).toBe(5);
    const shared = doc.items.find((i) => i.roles.includes('target'));
    expect(shared?.event['target']?.['id']).toBe(SUBJECT);
    // The other person's values stay commitments.
    expect(shared?.event['actor']?.['id']).toMatch(/^[0-9a-f]{64}$/);
    expect(shared?.committed).toContain('/actor/id');

    const csv = await h.call('POST', '/v1/admin/subjects/export', admin, {
      subject: SUBJECT,
      emails: [EMAIL],
      format: 'csv',
    });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toContain('text/csv');
    const text = csv.body;
    expect(text.startsWith('\ufeff')).toBe(true);
    expect(text.includes('\r\n')).toBe(true);
    expect(text).toContain(`"'=HYPERLINK(""http://evil.example"")"`);
    // A formula inside a JSON cell is harmless: the cell starts with {.
    expect(text).toContain(`"{""note"":""+SUM(1,1)""}"`);
    expect(text).not.toMatch(/(^|,)"?[=+@]/m);
    expect(text).toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/);
    expect(text).toContain(NAME);
  });

  it('refuses to erase under a legal hold unless overridden with a recorded reason', async () => {
    const admin = h.keys.get('acme')?.admin ?? '';
    const hold = await h.call('POST', '/v1/admin/holds', admin, {
      subject: SUBJECT,
      reason: 'litigation 2026-17',
    });
    expect(hold.statusCode, hold.body).toBe(201);
    const refused = await h.call('POST', '/v1/admin/subjects/erase', admin, {
      subject: SUBJECT,
      emails: [EMAIL],
      reason: 'Art. 17 request 42',
    });
    expect(refused.statusCode, refused.body).toBe(409);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'VIGIL_ERR_ERASURE_HELD' } });
    // Nothing changed.
    expect(mentions(await rows(h.store, 'acme')).length).toBeGreaterThan(0);
    const noReason = await h.call('POST', '/v1/admin/subjects/erase', admin, {
      subject: SUBJECT,
      reason: 'x',
      overrideHold: true,
    });
    expect(noReason.statusCode).toBe(400);
  });

  it('erases the person from the store, derived columns and the log; every hash, chain and proof still verifies', async () => {
    const admin = h.keys.get('acme')?.admin ?? '';
    await h.checkpointer.flush();
    const before = await rows(h.store, 'acme');
    const geo = before.find((r) => r['geo_country'] === 'US');
    expect(geo).toBeDefined();
    const heads = await h.store.query<{ e: string }>(
      `SELECT sum(events) AS e FROM ${h.store.table('stream_heads')} WHERE tenant_id = 'acme'`,
    );
    // Detection baselines learned the person (an actor of successful events).
    await new BaselineRefresher(h.store).refresh(Date.now() + 60_000, ['acme']);
    const learned = async (): Promise<number> =>
      Number(
        (
          await h.store.query<{ n: string }>(
            `SELECT count() AS n FROM ${h.store.table('baselines')} WHERE entity = {s:String}`,
            { s: SUBJECT },
          )
        )[0]?.n,
      );
    const inBaselines = await learned();
    expect(inBaselines).toBeGreaterThan(0);
    const res = await h.call('POST', '/v1/admin/subjects/erase', admin, {
      subject: SUBJECT,
      emails: [EMAIL],
      reason: 'Art. 17 request 42',
      overrideHold: true,
      holdOverrideReason: 'the court allowed the erasure',
      purge: true,
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = JSON.parse(res.body) as {
      receipt: SignedErasureReceipt;
      counts: Record<string, number>;
      detection: { baselineRows: number };
      accessRows: number;
      purged: { oldVersionsLeft: number };
    };
    // The receipt verifies with the public key and names the person only by digests.
    const receipt = verifyErasureReceipt(body.receipt, [h.signer.publicKey()]);
    expect(receipt.ok ? receipt.statement.counts.events : receipt.problem).toBeGreaterThanOrEqual(
      6,
    );
    expect(mentions([body.receipt])).toEqual([]);
    expect(receipt.ok && receipt.statement.holdOverride?.holds).toHaveLength(1);
    expect(body.counts['logRecords']).toBeGreaterThan(0);
    expect(body.counts['derivedColumns']).toBeGreaterThan(0);
    expect(body.purged.oldVersionsLeft).toBe(0);
    expect(body.detection.baselineRows).toBe(inBaselines);
    expect(receipt.ok && receipt.statement.counts.baselines).toBe(inBaselines);
    expect(await learned()).toBe(0);

    const after = await rows(h.store, 'acme');
    expect(mentions(after)).toEqual([]);
    // The access projection: the grant stays, its subject shows as erased, not as someone new.
    expect(body.accessRows).toBe(1);
    const projected = await h.store.query(
      `SELECT * FROM ${h.store.table('access_projection')} FINAL WHERE tenant_id = 'acme'`,
    );
    expect(mentions(projected)).toEqual([]);
    const review = await new AccessReviewer(h.store, h.privacy, DEFAULT_REVIEW_POLICY).snapshot(
      'acme',
      Date.now() + 60_000,
    );
    expect(review.rows.map((r) => [r.right, r.subjectState, r.subjectId])).toEqual([
      ['billing:manager', 'erased', ''],
    ]);
    // The other person's values are kept.
    expect(JSON.stringify(after)).toContain('kim@example.eu');
    const erased = after.find((r) => r.id === geo?.id) as Row;
    expect(erased['geo_country']).toBe('');
    expect(erased['ip']).toBeNull();
    expect(erased['erased_paths']).toEqual(expect.arrayContaining(['/actor/id', '/context/ip']));
    expect(erased['leaf_hash']).toBe(geo?.['leaf_hash']);
    expect(erased['record']).toBe(geo?.record);
    checkIntegrity(after);
    // The stream heads did not count the new row versions as new events.
    const headsAfter = await h.store.query<{ e: string }>(
      `SELECT sum(events) AS e FROM ${h.store.table('stream_heads')} WHERE tenant_id = 'acme'`,
    );
    expect(Number(headsAfter[0]?.e)).toBeLessThanOrEqual(Number(heads[0]?.e) + 10);
    // Every inclusion proof of every event still verifies against a signed checkpoint.
    await h.checkpointer.flush();
    const proofs = new ProofService(h.store);
    for (const r of before) {
      const proof = await proofs.inclusion('acme', r.id, { hash: r.hash });
      expect(verifyInclusionProof(proof, [h.signer.publicKey()]).ok).toBe(true);
    }
    // No search, no export finds the person again.
    const search = await h.call('GET', `/v1/events?limit=1000`, h.keys.get('acme')?.query ?? '');
    expect(mentions(JSON.parse(search.body) as unknown[])).toEqual([]);
    const exported = await h.call('POST', '/v1/admin/subjects/export', admin, {
      subject: SUBJECT,
      emails: [EMAIL],
    });
    expect((JSON.parse(exported.body) as { events: number }).events).toBe(0);
    // The embedded log's segments no longer hold the values.
    const bytes = logBytes(h.dir);
    for (const v of [SUBJECT, EMAIL, NAME, IP, PHONE])
      expect(bytes.includes(Buffer.from(v)), v).toBe(false);
  });

  it('gives nothing back when the log is replayed from offset 0 into an empty store', async () => {
    const fresh = await openTestStore();
    try {
      const replay = new SinkRunner({
        store: fresh.store,
        log: h.log,
        plugins: await h.plugins(fresh.store),
        config: { group: 'replay', maxBatchRecords: 50 },
        retentionDays: DEFAULT_RETENTION_DAYS,
        logger,
        salts,
      });
      await replay.start();
      try {
        await expect
          .poll(async () => (await rows(fresh.store, 'acme')).length, { timeout: 15_000 })
          .toBeGreaterThanOrEqual(7);
      } finally {
        await replay.stop();
      }
      const replayed = await rows(fresh.store, 'acme');
      expect(mentions(replayed)).toEqual([]);
      checkIntegrity(replayed.filter((r) => !r.stream.startsWith('key/')));
    } finally {
      await fresh.cleanup();
    }
  });

  it('erases events that were in the log, not yet stored, when the erasure ran (a log it cannot rewrite, as Kafka)', async () => {
    const admin = h.keys.get('beta')?.admin ?? '';
    await ingest(h, 'beta', subjectEvents('app/late/1').slice(0, 1));
    await stored(h, 'beta', 1);
    // The next events are accepted while the sink is stopped: they reach the store only after
    // the erasure, from a log the erasure leaves as it is.
    await h.runner.stop();
    h.logErasure = false;
    try {
      await ingest(
        h,
        'beta',
        chain('app/late/2', [
          {
            action: 'user.logout',
            category: 'authentication',
            outcome: 'success',
            actor: { type: 'user', id: SUBJECT, email: EMAIL },
            context: { ip: IP, userAgent: UA },
          },
        ]),
      );
      await ingest(h, 'beta', [
        {
          action: 'user.login',
          category: 'authentication',
          outcome: 'success',
          actor: { type: 'user', id: 'u-9', email: EMAIL },
        },
      ]);
      const erased = await h.call('POST', '/v1/admin/subjects/erase', admin, {
        subject: SUBJECT,
        emails: [EMAIL],
        reason: 'request 7',
      });
      expect(erased.statusCode, erased.body).toBe(200);
      expect(logBytes(h.dir).includes(Buffer.from('u-1042'))).toBe(true);
    } finally {
      h.logErasure = true;
      await h.runner.start();
    }
    // The erasure's own audit event, and the stream.opened of the key stream, come too.
    await stored(h, 'beta', 5);
    const all = await rows(h.store, 'beta');
    expect(mentions(all)).toEqual([]);
    const logout = all.find((r) => r['action'] === 'user.logout') as Row;
    expect(logout['erased_paths']).toEqual(
      expect.arrayContaining(['/actor/email', '/actor/id', '/context/ip']),
    );
    expect(logout['ua_browser']).toBe('');
    // Another person who gave the same address is the subject by that address.
    expect(
      (all.find((r) => r['action'] === 'user.login' && r.stream.startsWith('key/')) as Row)[
        'actor_email'
      ],
    ).toBe('');
    checkIntegrity(all);
  });

  it('shows corrections by default and the original on request; both stay provable', async () => {
    const admin = h.keys.get('gamma')?.admin ?? '';
    const query = h.keys.get('gamma')?.query ?? '';
    const [login] = subjectEvents('app/fix/1');
    await ingest(h, 'gamma', [login]);
    await stored(h, 'gamma', 1);
    const id = (JSON.parse(login?.record ?? '{}') as { id: string }).id;
    const res = await h.call('POST', `/v1/admin/events/${id}/corrections`, admin, {
      fields: { '/actor/email': 'zoe.mueller@example.eu', '/outcome': 'failure' },
      reason: 'the address was mistyped',
    });
    expect(res.statusCode, res.body).toBe(201);
    const correction = (JSON.parse(res.body) as { correction: { id: string } }).correction.id;
    await stored(h, 'gamma', 3);
    const view = async (extra = ''): Promise<Record<string, unknown>> => {
      const page = JSON.parse(
        (await h.call('GET', `/v1/events?action=user.login${extra}`, query)).body,
      ) as { events: Record<string, unknown>[] };
      return page.events[0] as Record<string, unknown>;
    };
    const corrected = await view();
    expect(corrected).toMatchObject({
      event: { outcome: 'failure', actor: { email: 'zoe.mueller@example.eu' } },
      server: { correctedBy: [correction] },
    });
    expect(await view('&original=true')).toMatchObject({
      event: { outcome: 'success', actor: { email: EMAIL } },
    });
    expect((await view('&original=true'))['server']).not.toHaveProperty('correctedBy');
    await h.checkpointer.flush();
    const proofs = new ProofService(h.store);
    for (const event of [id, correction])
      expect(
        verifyInclusionProof(await proofs.inclusion('gamma', event), [h.signer.publicKey()]).ok,
      ).toBe(true);
    // The person's bundle holds the correction after the event it corrects, disclosing the
    // corrected value of their address only, and verifies with the subject rules (§16.5).
    const exported = await h.call('POST', '/v1/admin/subjects/export', admin, {
      subject: SUBJECT,
      emails: [EMAIL],
      format: 'bundle',
    });
    expect(exported.statusCode, exported.body).toBe(200);
    const check = verifyBundle(exported.body, [h.signer.publicKey()]);
    expect(check.ok ? 'ok' : check.problems).toBe('ok');
    const entries = exported.body
      .trimEnd()
      .split('\n')
      .slice(1, -1)
      .map((l) => JSON.parse(l) as { roles: string[]; disclosures: Record<string, unknown> });
    expect(entries.map((e) => e.roles)).toEqual([['actor'], ['correction']]);
    expect(Object.keys(entries[1]?.disclosures ?? {})).toEqual([
      '/metadata/corrected/~1actor~1email',
    ]);
    // Erasing the person erases the corrected value of their address too.
    const erased = await h.call('POST', '/v1/admin/subjects/erase', admin, {
      subject: SUBJECT,
      reason: 'request 9',
    });
    expect(erased.statusCode, erased.body).toBe(200);
    expect(JSON.stringify(await rows(h.store, 'gamma'))).not.toContain('zoe.mueller');
  });

  it('finds a person by an address recorded with white space and upper case beyond ASCII (§17.2)', async () => {
    const admin = h.keys.get('epsilon')?.admin ?? '';
    await ingest(h, 'epsilon', [
      {
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'u-9', email: '\u00a0ZOË.MÜLLER@Example.EU\n' },
      },
    ]);
    await stored(h, 'epsilon', 1);
    const res = await h.call('POST', '/v1/admin/subjects/export', admin, {
      subject: 'u-unknown',
      emails: ['zoë.müller@example.eu'],
      format: 'bundle',
    });
    expect(res.statusCode, res.body).toBe(200);
    const check = verifyBundle(res.body, [h.signer.publicKey()]);
    expect(check.ok ? check.entries : check.problems).toBe(1);
  });

  it('hides a restricted person from search, shows them to an admin who asks (recorded), and lifts', async () => {
    const admin = h.keys.get('delta')?.admin ?? '';
    const query = h.keys.get('delta')?.query ?? '';
    await ingest(h, 'delta', subjectEvents('app/restrict/1'));
    await stored(h, 'delta', 5);
    type Item = { event: Record<string, unknown>; server: Record<string, unknown> };
    const list = async (key: string, extra = ''): Promise<Item[]> =>
      (
        JSON.parse((await h.call('GET', `/v1/events?limit=1000${extra}`, key)).body) as {
          events: Item[];
        }
      ).events;
    // Detection baselines learned the person before the restriction.
    await new BaselineRefresher(h.store).refresh(Date.now() + 60_000, ['delta']);
    const learned = async (): Promise<number> =>
      Number(
        (
          await h.store.query<{ n: string }>(
            `SELECT count() AS n FROM ${h.store.table('baselines')}
             WHERE tenant_id = 'delta' AND entity = {s:String}`,
            { s: SUBJECT },
          )
        )[0]?.n,
      );
    const inBaselines = await learned();
    expect(inBaselines).toBeGreaterThan(0);
    const placed = await h.call('POST', '/v1/admin/subjects/restrict', admin, {
      subject: SUBJECT,
      reason: 'accuracy contested (Art. 18(1)(a))',
    });
    expect(placed.statusCode, placed.body).toBe(201);
    const restriction = JSON.parse(placed.body) as {
      restriction: { id: string; digests: string[] };
      restrictedEvents: number;
      detection: { baselineRows: number };
    };
    expect(restriction.restrictedEvents).toBe(4);
    // Hidden from detection: gone from every generation of the baselines.
    expect(restriction.detection.baselineRows).toBe(inBaselines);
    expect(await learned()).toBe(0);
    expect(mentions([restriction])).toEqual([]);
    // New events of the person are restricted as they arrive.
    await ingest(
      h,
      'delta',
      chain('app/restrict/2', [
        {
          action: 'user.login',
          category: 'authentication',
          outcome: 'success',
          actor: { type: 'user', id: SUBJECT },
        },
      ]),
    );
    await expect
      .poll(
        async () =>
          (await rows(h.store, 'delta')).filter((r) => (r['restricted_by'] as string[]).length > 0)
            .length,
        { timeout: 15_000 },
      )
      .toBe(5);
    const visible = await list(query);
    expect(mentions(visible)).toEqual([]);
    expect(visible.some((e) => e.event['action'] === 'document.viewed')).toBe(true);
    expect((await h.call('GET', '/v1/events?includeRestricted=true', query)).statusCode).toBe(403);
    const shown = await list(admin, '&includeRestricted=true');
    expect(
      shown.filter((e) =>
        (e.server['restrictedBy'] as string[] | undefined)?.includes(restriction.restriction.id),
      ),
    ).toHaveLength(5);
    await expect
      .poll(
        async () =>
          (await rows(h.store, 'delta')).some((r) => r['action'] === 'restricted_events.viewed'),
        { timeout: 10_000 },
      )
      .toBe(true);
    const lifted = await h.call(
      'POST',
      `/v1/admin/restrictions/${restriction.restriction.id}/lift`,
      admin,
      { reason: 'accuracy verified' },
    );
    expect(lifted.statusCode, lifted.body).toBe(200);
    expect(
      (await rows(h.store, 'delta')).every((r) => (r['restricted_by'] as string[]).length === 0),
    ).toBe(true);
  });

  it('shows pseudonyms to analysts, plain values to the person, and nothing once the key is destroyed', async () => {
    const admin = h.keys.get('delta')?.admin ?? '';
    const query = h.keys.get('delta')?.query ?? '';
    const set = await h.call('PUT', '/v1/admin/privacy', admin, {
      pseudonymise: ['email', 'ip', 'id'],
      reason: 'DPA annex 3',
    });
    expect(set.statusCode, set.body).toBe(200);
    const events = chain('app/pseudo/1', [
      {
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'u-77', email: 'Pat@Example.eu' },
        context: { ip: '9.9.9.9' },
      },
      {
        action: 'user.logout',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'u-77', email: 'pat@example.eu' },
        context: { ip: '9.9.9.9' },
      },
    ]);
    await ingest(h, 'delta', events);
    await expect
      .poll(
        async () =>
          (await rows(h.store, 'delta')).filter((r) => r.stream === 'app/pseudo/1').length,
        { timeout: 15_000 },
      )
      .toBe(2);
    const page = JSON.parse(
      (await h.call('GET', '/v1/events?stream=app/pseudo/1&order=asc', query)).body,
    ) as { events: { event: { actor: { id: string; email: string }; context: { ip: string } } }[] };
    const [a, b] = page.events.map((e) => e.event);
    expect(a?.actor.email).toMatch(/^ps_[A-Za-z0-9_-]{22}$/);
    // One person, one pseudonym (addresses compared without case); addresses in 100::/64.
    expect(b?.actor.email).toBe(a?.actor.email);
    expect(a?.context.ip.startsWith('100::')).toBe(true);
    expect(JSON.stringify(page)).not.toContain('9.9.9.9');
    const stored1 = (await rows(h.store, 'delta')).filter((r) => r.stream === 'app/pseudo/1');
    expect(JSON.stringify(stored1)).not.toMatch(/u-77|pat@example|9\.9\.9\.9/i);
    // A legal hold on the person covers the rows that name them by pseudonym.
    const hold = await h.call('POST', '/v1/admin/holds', admin, {
      subject: 'u-77',
      reason: 'claim 8',
    });
    expect(hold.statusCode, hold.body).toBe(201);
    expect((JSON.parse(hold.body) as { heldEvents: number }).heldEvents).toBeGreaterThanOrEqual(2);
    // The hold is itself an audit event naming the person as its target: part of their data
    // once the sink has stored it.
    await expect
      .poll(
        async () =>
          (await rows(h.store, 'delta')).filter((r) => r['action'] === 'legal_hold.placed').length,
        { timeout: 15_000 },
      )
      .toBe(1);
    // The person still gets their own values.
    const mine = JSON.parse(
      (await h.call('POST', '/v1/admin/subjects/export', admin, { subject: 'u-77' })).body,
    ) as { events: number; items: { event: { action: string; actor: { email?: string } } }[] };
    expect(mine.items.map((i) => i.event.action)).toEqual([
      'user.login',
      'user.logout',
      'legal_hold.placed',
    ]);
    expect(mine.events).toBe(3);
    expect(mine.items[0]?.event.actor.email).toBe('Pat@Example.eu');
    // Destroying the key anonymises: nothing readable is left, every proof still holds.
    const destroyed = await h.call('POST', '/v1/admin/privacy/destroy-key', admin, {
      reason: 'contract ended',
    });
    expect(destroyed.statusCode, destroyed.body).toBe(200);
    expect(JSON.parse(destroyed.body)).toMatchObject({ purged: true });
    const after = JSON.parse(
      (
        await h.call('POST', '/v1/admin/subjects/export', admin, {
          subject: 'u-77',
          emails: ['pat@example.eu'],
        })
      ).body,
    ) as { items: unknown[] };
    // No one can find the person any more, nor read what was stored about them.
    expect(after.items).toEqual([]);
    const stillStored = (await rows(h.store, 'delta')).filter((r) => r.stream === 'app/pseudo/1');
    for (const r of stillStored) {
      const opened = await h.privacy.plainDisclosures(r as never);
      expect(opened.readable).toBe(false);
      expect(JSON.stringify(opened.disclosures)).not.toMatch(/pat@example|9\.9\.9\.9/i);
    }
    const keyRows = await h.store.query(
      `SELECT * FROM ${h.store.table('tenant_keys')} WHERE tenant_id = 'delta' AND wrapped_key != ''`,
    );
    // Only the new key made for new events is left.
    expect(keyRows).toHaveLength(1);
    checkIntegrity(stored1);
    await h.checkpointer.flush();
    const proofs = new ProofService(h.store);
    for (const r of stored1)
      expect(
        verifyInclusionProof(await proofs.inclusion('delta', r.id), [h.signer.publicKey()]).ok,
      ).toBe(true);
  });
  it('serves, exports, verifies and erases a row stored before the depth limit, without failing', async () => {
    // A row whose record nests 7 000 levels deep: stored before PROTOCOL.md §3.5 (or written
    // around the sink). Every reader must handle it or report it, never fail on it.
    const sealed = sealEvent(
      {
        id: newEventId(),
        time: new Date().toISOString(),
        action: 'document.viewed',
        category: 'data_access',
        outcome: 'success',
        actor: { type: 'user', id: 'deep-subject' },
      },
      { stream: 'app/deep-stored', seq: 0, prev: ZERO_HASH },
      salts,
    );
    const deep = '['.repeat(7000) + ']'.repeat(7000);
    const record = sealed.event.record.replace('"outcome":', `"metadata":{"a":${deep}},"outcome":`);
    const hash = sha256Hex(record);
    const row = eventRow({ record, hash }, sealed.record, sealed.event.disclosures, {
      tenantId: 'acme',
      receivedAt: Date.now(),
      keyId: 'k-old',
      source: 'sealed',
      submittedDigest: '',
      logPartition: 0,
      logOffset: 9_999_999,
      logIndex: 0,
      expiresAt: Date.now() + 30 * 86_400_000,
      flags: [],
    });
    await h.store.insert(h.store.table('events'), [row]);
    const admin = h.keys.get('acme')?.admin ?? '';

    const search = await h.call(
      'GET',
      '/v1/events?stream=app/deep-stored',
      h.keys.get('acme')?.query ?? '',
    );
    expect(search.statusCode, search.body.slice(0, 300)).toBe(200);
    const [view] = (
      JSON.parse(search.body) as {
        events: { event: { metadata: { a: unknown } }; hash: string }[];
      }
    ).events;
    expect(view?.hash).toBe(hash);
    expect(JSON.stringify(view?.event.metadata.a)).toMatch(/withheld: nests deeper than 32 levels/);

    for (const format of ['json', 'csv'] as const) {
      const res = await h.call('POST', '/v1/admin/subjects/export', admin, {
        subject: 'deep-subject',
        format,
      });
      expect(res.statusCode).toBe(200);
      if (format === 'json')
        expect((JSON.parse(res.body) as { items: unknown[] }).items).toHaveLength(1);
      else expect(res.body).toMatch(/withheld/);
    }

    const report = await verifyLog(h.store, { tenant: 'acme', keys: [h.signer.publicKey()] });
    expect(report.findings.map((f) => f.message).join('\n')).toMatch(/deeper than 32 levels/);

    const erased = await h.call('POST', '/v1/admin/subjects/erase', admin, {
      subject: 'deep-subject',
      reason: 'Art. 17 request 43',
      overrideHold: true,
      holdOverrideReason: 'test',
    });
    expect(erased.statusCode, erased.body.slice(0, 300)).toBe(200);
    const after = await h.call(
      'GET',
      '/v1/events?stream=app/deep-stored',
      h.keys.get('acme')?.query ?? '',
    );
    expect(JSON.stringify(JSON.parse(after.body))).not.toContain('deep-subject');
  });
});
