import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type EventInput,
  type SealedEvent,
} from '@vigil/protocol';
import { builtinRules, DetectionEngine, type AlertUpdate } from '@vigil/detect';
import { AlertStore } from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { FileLog } from '../log/file/file-log.js';
import { encodeEventMessage, type EventMessage } from '../log/event-message.js';
import { EnrichmentPlugin } from '../sink/enrich.js';
import { GeoIp } from '../sink/geoip.js';
import { writeMmdb } from '../sink/mmdb.testkit.js';
import { FileCheckpointStore } from './checkpoint.js';
import { AlertStoreOutput, type AlertOutput } from './outputs.js';
import { DetectorRunner, type DetectorBatchReport } from './runner.js';

/*
 * The detector over the real embedded log and chDB: log records in, alerts in the AlertStore out,
 * through restarts, late events, a record it cannot read, and several tenants.
 */

const silent = { info() {}, warn() {}, error() {} };
const salts = randomSaltSource();
const RULES = builtinRules();
const dir = mkdtempSync(join(tmpdir(), 'vigil-detector-'));
// Event times relative to a base that does not depend on today's date.
const BASE = Date.UTC(2030, 0, 7, 9, 0, 0);

const CITY = writeMmdb({
  databaseType: 'GeoLite2-City',
  networks: [
    {
      network: '81.2.69.0/24',
      data: {
        country: { iso_code: 'GB', names: { en: 'United Kingdom' } },
        location: { latitude: 51.5, longitude: -0.09 },
      },
    },
  ],
});

let ts: TestStore;
let log: FileLog;
let enrichment: EnrichmentPlugin;
let run = 0;
const runners: DetectorRunner[] = [];

beforeAll(async () => {
  ts = await openTestStore();
  writeFileSync(join(dir, 'city.mmdb'), CITY);
  const geo = await GeoIp.open({
    cityDbs: [join(dir, 'city.mmdb')],
    asnDbs: [],
    warn: () => undefined,
  });
  enrichment = new EnrichmentPlugin({ geo, logger: silent });
}, 60_000);

afterAll(async () => {
  await ts.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop();
  await log.close();
});

async function openLog(): Promise<FileLog> {
  log = await FileLog.open({ dir: join(dir, `log-${++run}`), topic: 'events', partitions: 4 });
  return log;
}

let nextId = 0;
function id(): string {
  return `0193a4b2-6c1e-7000-8000-${String(++nextId).padStart(12, '0')}`;
}

/** A chain of events on one stream, sealed as the SDK seals them. */
class Stream {
  private seq = 0;
  private prev = ZERO_HASH;
  constructor(
    readonly tenant: string,
    readonly name: string,
  ) {}

  events(inputs: Omit<EventInput, 'id'>[]): SealedEvent[] {
    return inputs.map((input) => {
      const e = sealEvent(
        { ...input, id: id() } as EventInput & { id: string; time: string },
        { stream: this.name, seq: this.seq, prev: this.prev },
        salts,
      ).event;
      this.seq++;
      this.prev = e.hash;
      return e;
    });
  }

  async append(inputs: Omit<EventInput, 'id'>[], receivedAt = BASE + 3_600_000): Promise<void> {
    const message: EventMessage = {
      v: 2,
      tenant: this.tenant,
      keyId: 'k1',
      receivedAt,
      backfillBefore: BASE - 86_400_000,
      stream: this.name,
      kind: 'sealed',
      events: this.events(inputs),
    };
    await log.append([{ key: `${this.tenant}/${this.name}`, value: encodeEventMessage(message) }]);
  }
}

function login(
  account: string,
  at: number,
  outcome: 'failure' | 'success',
  ip = '81.2.69.10',
): Omit<EventInput, 'id'> {
  return {
    time: new Date(at).toISOString(),
    action: 'user.login',
    category: 'authentication',
    outcome,
    actor: { type: 'user', id: account },
    context: { ip },
  };
}

function fails(account: string, from: number, count: number, stepMs = 1000) {
  return Array.from({ length: count }, (_, i) => login(account, from + i * stepMs, 'failure'));
}

interface Harness {
  runner: DetectorRunner;
  updates: AlertUpdate[];
  reports: DetectorBatchReport[];
  checkpoint: FileCheckpointStore;
}

function detector(
  options: {
    group?: string;
    checkpointDir?: string;
    latenessMs?: number;
    extraOutputs?: AlertOutput[];
  } = {},
): Harness {
  const updates: AlertUpdate[] = [];
  const reports: DetectorBatchReport[] = [];
  const group = options.group ?? `detector-${run}`;
  const checkpoint = new FileCheckpointStore(
    options.checkpointDir ?? join(dir, `state-${run}`),
    group,
  );
  const runner = new DetectorRunner({
    log,
    config: { group, maxBatchRecords: 3, checkpointIntervalMs: 0 },
    engine: () =>
      new DetectionEngine({
        rules: RULES,
        ...(options.latenessMs !== undefined ? { latenessMs: options.latenessMs } : {}),
      }),
    outputs: [
      new AlertStoreOutput(new AlertStore(ts.store)),
      {
        publish: (u) => {
          updates.push(...u);
          return Promise.resolve();
        },
      },
      ...(options.extraOutputs ?? []),
    ],
    checkpoints: checkpoint,
    enrichment,
    logger: silent,
    observer: { batch: (r) => reports.push(r), watermarkLag: () => undefined },
    restartDelayMs: 50,
  });
  runners.push(runner);
  return { runner, updates, reports, checkpoint };
}

async function until<T>(
  what: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await what();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the group has committed every record of the log. */
async function drained(group: string): Promise<void> {
  await until(async () => {
    const lag = await log.groupLag(group);
    return [...lag.values()].every((v) => v === 0) ? true : undefined;
  });
}

const sum = (reports: DetectorBatchReport[], key: keyof DetectorBatchReport): number =>
  reports.reduce((n, r) => n + r[key], 0);

describe('the detector role on the embedded log', () => {
  it('raises an alert in the AlertStore from failed logins spread over streams and partitions, enriched as the sink enriches', async () => {
    await openLog();
    const tenant = `acme-${run}`;
    // One account's failed logins from two streams (two services): different log partitions.
    const web = new Stream(tenant, 'web');
    const mobile = new Stream(tenant, 'mobile-api');
    expect(log.partitionFor(`${tenant}/web`)).not.toBe(log.partitionFor(`${tenant}/mobile-api`));
    await web.append(fails('alice', BASE, 5));
    await mobile.append(fails('alice', BASE + 5000, 5));
    const { runner, updates } = detector();
    await runner.start();
    const alerts = new AlertStore(ts.store);
    const [alert] = await until(async () => {
      const list = await alerts.list(tenant, { ruleId: 'auth.brute_force_account' });
      return list.length > 0 ? list : undefined;
    });
    expect(alert?.entity).toEqual({ 'actor.id': 'alice' });
    expect(alert?.eventCount).toBe(10);
    // GeoIP from the same enrichment as the sink's: the test database's country.
    expect((alert?.evidence['values'] as Record<string, unknown>)['geo.country']).toEqual(['GB']);
    expect(updates.filter((u) => u.status === 'new')).toHaveLength(1);
  });

  it('resumes from its checkpoint in the middle of a window: the same alerts as one pass, none twice', async () => {
    await openLog();
    const tenant = `acme-${run}`;
    const web = new Stream(tenant, 'web');
    const mobile = new Stream(tenant, 'mobile-api');
    await web.append(fails('bob', BASE, 4));
    await mobile.append(fails('bob', BASE + 4000, 3));
    const stateDir = join(dir, `state-restart-${run}`);
    const first = detector({ group: 'restarted', checkpointDir: stateDir });
    await first.runner.start();
    await drained('restarted');
    await first.runner.stop();
    expect(first.updates).toHaveLength(0);
    // The checkpoint file is the owner's only.
    expect(statSync(first.checkpoint.where).mode & 0o777).toBe(0o600);
    // The rest of the window, then more of the same attack, after the restart.
    await web.append(fails('bob', BASE + 7000, 3));
    await mobile.append(fails('bob', BASE + 10_000, 4));
    const second = detector({ group: 'restarted', checkpointDir: stateDir });
    await second.runner.start();
    await drained('restarted');

    // One pass over the same log, from nothing, in another group.
    const once = detector({ group: 'one-pass', checkpointDir: join(dir, `state-once-${run}`) });
    await once.runner.start();
    await drained('one-pass');

    const finalOf = (u: AlertUpdate[]) => {
      const last = new Map<string, AlertUpdate['alert']>();
      for (const { alert } of u) last.set(alert.id, alert);
      // Not the id: it names the time of the opening trigger, and which event completes the
      // threshold first depends on how the partitions interleave.
      return [...last.values()].map((a) => ({
        rule: a.ruleId,
        count: a.eventCount,
        first: a.firstEventTime,
        last: a.lastEventTime,
      }));
    };
    expect(finalOf(second.updates)).toEqual(finalOf(once.updates));
    expect(finalOf(once.updates).length).toBeGreaterThan(0);
    const brute = second.updates.filter((u) => u.alert.ruleId === 'auth.brute_force_account');
    expect(brute.filter((u) => u.status === 'new')).toHaveLength(1);
  });

  it('after a crash between its checkpoint and the commit, skips what the checkpoint holds and raises nothing twice', async () => {
    await openLog();
    const tenant = `acme-${run}`;
    const web = new Stream(tenant, 'web');
    await web.append(fails('carol', BASE, 10));
    await web.append(fails('carol', BASE + 10_000, 2));
    const stateDir = join(dir, `state-crash-${run}`);
    const first = detector({ group: 'before-crash', checkpointDir: stateDir });
    await first.runner.start();
    await drained('before-crash');
    await first.runner.stop();
    expect(first.updates.filter((u) => u.status === 'new')).toHaveLength(1);
    // The group's commit lost (a crash right after the checkpoint): the same checkpoint with a
    // group that has committed nothing reads the whole log again.
    // The same checkpoint under a group name that has committed nothing on the log.
    const moved = new FileCheckpointStore(stateDir, 'after-crash');
    const saved = await first.checkpoint.load();
    await moved.save({ ...(saved as NonNullable<typeof saved>), group: 'after-crash' });
    const replay = detector({ group: 'after-crash', checkpointDir: stateDir });
    await replay.runner.start();
    await drained('after-crash');
    expect(replay.updates).toHaveLength(0);
    expect(replay.runner.stats().events).toBe(first.runner.stats().events);
    // One row per alert in the store.
    const rows = await ts.store.query<{ n: string }>(
      `SELECT count() AS n FROM ${ts.store.table('alerts')} FINAL WHERE tenant_id = {t:String}`,
      { t: tenant },
    );
    expect(Number(rows[0]?.n)).toBe(new Set(first.updates.map((u) => u.alert.id)).size);
  });

  it('restarts from its checkpoint when an output fails, and the store holds each alert version once', async () => {
    await openLog();
    const tenant = `acme-${run}`;
    const web = new Stream(tenant, 'web');
    let failures = 1;
    const flaky: AlertOutput = {
      publish: (u) => {
        if (u.length > 0 && failures-- > 0)
          return Promise.reject(new Error('webhook receiver down'));
        return Promise.resolve();
      },
    };
    await web.append(fails('dave', BASE, 12));
    const h = detector({ extraOutputs: [flaky] });
    await h.runner.start();
    await drained(`detector-${run}`);
    expect(failures).toBeLessThan(0);
    // Delivered again after the restart: "new" twice to the outputs before the checkpoint, once
    // in the store.
    const stored = await new AlertStore(ts.store).list(tenant, {
      ruleId: 'auth.brute_force_account',
    });
    expect(stored).toHaveLength(1);
    const rows = await ts.store.query<{ n: string }>(
      `SELECT count() AS n FROM ${ts.store.table('alerts')} FINAL WHERE tenant_id = {t:String} AND rule_id = 'auth.brute_force_account'`,
      { t: tenant },
    );
    expect(Number(rows[0]?.n)).toBe(1);
  });

  it('counts out-of-order events within the lateness bound and drops those beyond it', async () => {
    await openLog();
    const tenant = `acme-${run}`;
    const web = new Stream(tenant, 'web');
    const other = new Stream(tenant, 'batch');
    // Out of order within the bound: the last failures first.
    await web.append(fails('erin', BASE + 5000, 5).reverse());
    await web.append(fails('erin', BASE, 5));
    // An account whose window is completed by an event 10 minutes late (bound: 1 minute).
    await web.append(fails('frank', BASE, 9));
    await other.append([login('zed', BASE + 11 * 60_000, 'success', '81.2.69.11')]);
    const h = detector({ latenessMs: 60_000 });
    await h.runner.start();
    await drained(`detector-${run}`);
    await web.append([login('frank', BASE + 9000, 'failure')]);
    await drained(`detector-${run}`);
    const rules = h.updates.map((u) => `${u.alert.ruleId}:${u.alert.entity['actor.id']}`);
    expect(rules).toContain('auth.brute_force_account:erin');
    expect(rules).not.toContain('auth.brute_force_account:frank');
    expect(sum(h.reports, 'droppedLate')).toBe(1);
  });

  it('skips and counts a log record it cannot read, and goes on', async () => {
    await openLog();
    const tenant = `acme-${run}`;
    const web = new Stream(tenant, 'web');
    await web.append(fails('gina', BASE, 5));
    await log.append([{ key: `${tenant}/web`, value: Buffer.from('{"v":2,"tenant":"') }]);
    await web.append(fails('gina', BASE + 5000, 5));
    const h = detector();
    await h.runner.start();
    await drained(`detector-${run}`);
    expect(sum(h.reports, 'skippedRecords')).toBe(1);
    expect(h.runner.stats().skippedRecords).toBe(1);
    expect(h.updates.map((u) => u.alert.ruleId)).toContain('auth.brute_force_account');
  });

  it('keeps tenants apart: the same account name in two tenants is two entities', async () => {
    await openLog();
    const a = new Stream(`tenant-a-${run}`, 'web');
    const b = new Stream(`tenant-b-${run}`, 'web');
    await a.append(fails('root', BASE, 6));
    await b.append(fails('root', BASE, 6));
    const h = detector();
    await h.runner.start();
    await drained(`detector-${run}`);
    expect(h.updates.filter((u) => u.alert.ruleId === 'auth.brute_force_account')).toHaveLength(0);
    await a.append(fails('root', BASE + 6000, 4));
    await drained(`detector-${run}`);
    const alerts = new AlertStore(ts.store);
    expect(
      await alerts.list(`tenant-a-${run}`, { ruleId: 'auth.brute_force_account' }),
    ).toHaveLength(1);
    expect(await alerts.list(`tenant-b-${run}`)).toHaveLength(0);
  });

  it('flags a chain gap it sees in the log, so the integrity rule fires', async () => {
    await openLog();
    const tenant = `acme-${run}`;
    const web = new Stream(tenant, 'web');
    await web.append(fails('hal', BASE, 2));
    web.events([login('hal', BASE + 3000, 'success')]); // sealed but never sent: a gap
    await web.append([login('hal', BASE + 4000, 'success')]);
    const h = detector();
    await h.runner.start();
    await drained(`detector-${run}`);
    const integrity = h.updates.filter((u) => u.alert.ruleId === 'integrity.chain_finding');
    expect(integrity).toHaveLength(1);
    expect(integrity[0]?.alert.entity).toEqual({ stream: 'web' });
    expect((integrity[0]?.alert.evidence['values'] as Record<string, unknown>)['flags']).toEqual([
      'gap',
    ]);
  });
});
