import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
import { builtinRules, DetectionEngine, type Alert } from '@vigil/detect';
import {
  BaselineRefresher,
  PrivacyService,
  Restrictions,
  runBacktest,
  StoreBaselines,
} from '@vigil/query';
import { openTestStore, storeNow, type TestStore } from '@vigil/query/testing';
import { DEFAULT_RETENTION_DAYS } from '../stage-config.js';
import { FileLog } from '../log/file/file-log.js';
import { encodeEventMessage, type EventMessage } from '../log/event-message.js';
import { EnrichmentPlugin } from '../sink/enrich.js';
import { GeoIp } from '../sink/geoip.js';
import { writeMmdb } from '../sink/mmdb.testkit.js';
import { PrivacyPlugin } from '../sink/privacy.js';
import { RetentionPlugin } from '../sink/retention.js';
import { SinkRunner } from '../sink/runner.js';
import { FileCheckpointStore } from './checkpoint.js';
import type { AlertOutput } from './outputs.js';
import { DetectorRestrictions } from './restrictions.js';
import { DetectorRunner } from './runner.js';

/*
 * The live detector as `vigil start` runs it, over the embedded log and chDB: a sink stores the
 * events (enriched, restrictions marked), the baselines are refreshed from the stored events,
 * and the detector reads the same log with the store-backed baselines and the restrictions.
 * Then the backtest over the stored range must give the alerts the live detector gave.
 */

const silent = { info() {}, warn() {}, error() {} };
const salts = randomSaltSource();
const RULES = builtinRules();
const DAY = 86_400_000;
const HOUR = 3_600_000;
const dir = mkdtempSync(join(tmpdir(), 'vigil-live-baselines-'));

const GB = '81.2.69.10';
const BR = '200.160.2.3';
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
    {
      network: '200.160.0.0/16',
      data: {
        country: { iso_code: 'BR', names: { en: 'Brazil' } },
        location: { latitude: -23.55, longitude: -46.63 },
      },
    },
  ],
});

let ts: TestStore;
let enrichment: EnrichmentPlugin;
let privacy: PrivacyService;
/** The store engine's clock: rows are received at it (their TTL runs on it). */
let NOW = 0;
/** Midnight UTC, eight days before NOW: the stored week starts here. */
let BASE = 0;
let run = 0;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  ts = await openTestStore();
  NOW = await storeNow(ts.store);
  BASE = Math.floor(NOW / DAY) * DAY - 8 * DAY;
  writeFileSync(join(dir, 'city.mmdb'), CITY);
  const geo = await GeoIp.open({
    cityDbs: [join(dir, 'city.mmdb')],
    asnDbs: [],
    warn: () => undefined,
  });
  enrichment = new EnrichmentPlugin({ geo, logger: silent });
  privacy = new PrivacyService(ts.store, randomBytes(32), { refreshMs: 0 });
}, 60_000);

afterAll(async () => {
  await ts.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

let nextId = 0;
const id = (): string => `0193a4b2-6c1e-7000-9000-${String(++nextId).padStart(12, '0')}`;

function login(
  account: string,
  at: number,
  outcome: 'failure' | 'success',
  ip: string,
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

/** One stream per account, sealed as the SDK seals; every record received at NOW. */
class Streams {
  private readonly heads = new Map<string, { seq: number; prev: string }>();
  constructor(
    private readonly log: FileLog,
    private readonly tenant: string,
  ) {}

  async append(inputs: Omit<EventInput, 'id'>[]): Promise<void> {
    const byStream = new Map<string, SealedEvent[]>();
    for (const input of inputs) {
      const stream = `user-${(input['actor'] as { id: string }).id}`;
      const head = this.heads.get(stream) ?? { seq: 0, prev: ZERO_HASH };
      const e = sealEvent(
        { ...input, id: id() } as EventInput & { id: string; time: string },
        { stream, seq: head.seq, prev: head.prev },
        salts,
      ).event;
      this.heads.set(stream, { seq: head.seq + 1, prev: e.hash });
      byStream.set(stream, [...(byStream.get(stream) ?? []), e]);
    }
    for (const [stream, events] of byStream) {
      const message: EventMessage = {
        v: 2,
        tenant: this.tenant,
        keyId: 'k1',
        receivedAt: NOW,
        backfillBefore: NOW - 30 * DAY,
        stream,
        kind: 'sealed',
        events,
      };
      await this.log.append([
        { key: `${this.tenant}/${stream}`, value: encodeEventMessage(message) },
      ]);
    }
  }
}

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function openLog(): Promise<FileLog> {
  const log = await FileLog.open({
    dir: join(dir, `log-${++run}`),
    topic: 'events',
    partitions: 4,
  });
  stops.push(() => log.close());
  return log;
}

/** A sink with the enrichment, retention and privacy plugins, until every record is stored. */
async function sinkAll(log: FileLog, tenant: string, events: number): Promise<void> {
  const sink = new SinkRunner({
    store: ts.store,
    log,
    config: { group: 'sink', maxBatchRecords: 100 },
    retentionDays: DEFAULT_RETENTION_DAYS,
    logger: silent,
    salts,
    plugins: [
      enrichment,
      new RetentionPlugin({ store: ts.store, defaults: DEFAULT_RETENTION_DAYS }),
      new PrivacyPlugin({ store: ts.store, privacy }),
    ],
  });
  await sink.start();
  stops.push(() => sink.stop());
  await until(async () => {
    const [row] = await ts.store.query<{ n: string | number }>(
      `SELECT count() AS n FROM ${ts.store.table('events')} WHERE tenant_id = {t:String}`,
      { t: tenant },
    );
    return Number(row?.n) >= events;
  }, 'the sink');
}

/** The live detector with the store-backed baselines; alerts as they stand, by id. */
async function detectAll(log: FileLog): Promise<{ alerts: Map<string, Alert> }> {
  const alerts = new Map<string, Alert>();
  const output: AlertOutput = {
    publish(updates) {
      for (const { alert } of updates) alerts.set(alert.id, alert);
      return Promise.resolve();
    },
  };
  const baselines = new StoreBaselines(ts.store, { privacy, maxEntitiesPerTenant: 10_000 });
  const group = `detector-${run}`;
  const runner = new DetectorRunner({
    log,
    config: { group, maxBatchRecords: 50, checkpointIntervalMs: 0 },
    engine: () => new DetectionEngine({ rules: RULES, baseline: baselines }),
    outputs: [output],
    checkpoints: new FileCheckpointStore(join(dir, `checkpoints-${run}`), group),
    enrichment,
    baselines,
    restrictions: new DetectorRestrictions(ts.store, privacy),
    logger: silent,
  });
  await runner.start();
  stops.push(() => runner.stop());
  await until(async () => {
    const lag = await log.groupLag(group);
    return runner.running && [...lag.values()].every((n) => n === 0);
  }, 'the detector');
  return { alerts };
}

async function refreshBaselines(tenant: string, asOf: number): Promise<void> {
  const report = await new BaselineRefresher(ts.store, { activationMs: 60_000 }).refresh(asOf, [
    tenant,
  ]);
  expect(report.generations.map((g) => g.tenant)).toEqual([tenant]);
}

/** What the comparison looks at. */
function shape(a: Alert) {
  return {
    ruleId: a.ruleId,
    entity: a.entity,
    firstEventTime: a.firstEventTime,
    lastEventTime: a.lastEventTime,
    eventCount: a.eventCount,
    eventIds: [...a.eventIds].sort(),
  };
}
const order = (x: ReturnType<typeof shape>, y: ReturnType<typeof shape>) =>
  x.ruleId.localeCompare(y.ruleId) ||
  JSON.stringify(x.entity).localeCompare(JSON.stringify(y.entity)) ||
  x.firstEventTime - y.firstEventTime;

describe('the live detector with the stored baselines', () => {
  it('raises auth.new_country for an account with history, not for its usual country', async () => {
    const tenant = 'acme';
    const log = await openLog();
    const streams = new Streams(log, tenant);
    // Five days of history from the United Kingdom for alice; none at all for bob.
    const history = Array.from({ length: 5 }, (_, d) =>
      login('alice', BASE + d * DAY + 9 * HOUR, 'success', GB),
    );
    await streams.append(history);
    await sinkAll(log, tenant, history.length);
    await refreshBaselines(tenant, BASE + 5 * DAY);
    // After the generation took over: alice from the UK (usual), from Brazil (new); bob, who
    // has no history, from Brazil (not judged).
    const usual = login('alice', BASE + 6 * DAY + 9 * HOUR, 'success', GB);
    const abroad = login('alice', BASE + 6 * DAY + 12 * HOUR, 'success', BR);
    const newcomer = login('bob', BASE + 6 * DAY + 12 * HOUR, 'success', BR);
    await streams.append([usual, abroad, newcomer]);
    await sinkAll(log, tenant, history.length + 3);

    const { alerts } = await detectAll(log);
    const newCountry = [...alerts.values()].filter((a) => a.ruleId === 'auth.new_country');
    expect(newCountry).toHaveLength(1);
    expect(newCountry[0]).toMatchObject({
      tenant,
      entity: { 'actor.id': 'alice' },
      eventCount: 1,
      firstEventTime: BASE + 6 * DAY + 12 * HOUR,
    });
    expect(newCountry[0]?.evidence).toMatchObject({ values: { 'geo.country': ['BR'] } });
  }, 30_000);

  it('gives the alerts a backtest over the stored week gives', async () => {
    const tenant = 'week';
    const log = await openLog();
    const streams = new Streams(log, tenant);
    const accounts = ['ann', 'ben', 'cal', 'dee', 'eve', 'fay'];
    const events: Omit<EventInput, 'id'>[] = [];
    // A week of working-day logins from the office (the history the baselines learn from).
    for (let d = 0; d < 7; d++)
      accounts.forEach((a, i) =>
        events.push(login(a, BASE + d * DAY + 9 * HOUR + i * 60_000, 'success', GB)),
      );
    // Day 1: password spraying from one address over 25 accounts.
    for (let i = 0; i < 25; i++)
      events.push(login(`sprayed-${i}`, BASE + DAY + 14 * HOUR + i * 2000, 'failure', BR));
    // Day 2: brute force on ben, then a success: the two rules' alerts.
    for (let i = 0; i < 30; i++)
      events.push(login('ben', BASE + 2 * DAY + 15 * HOUR + i * 1000, 'failure', BR));
    events.push(login('ben', BASE + 2 * DAY + 15 * HOUR + 40_000, 'success', BR));
    // Day 4 and 5: ann and cal from Brazil (new countries, once the generation answers).
    events.push(login('ann', BASE + 4 * DAY + 20 * HOUR, 'success', BR));
    events.push(login('cal', BASE + 5 * DAY + 11 * HOUR, 'success', BR));
    // Day 5: a brute force on mallory, whose processing is restricted (GDPR Art. 18).
    for (let i = 0; i < 30; i++)
      events.push(login('mallory', BASE + 5 * DAY + 10 * HOUR + i * 1000, 'failure', BR));
    await new Restrictions(ts.store, privacy).place(tenant, { id: 'mallory' }, 'legal claim', 'k1');
    await streams.append(events.sort((a, b) => String(a['time']).localeCompare(String(b['time']))));
    await sinkAll(log, tenant, events.length);
    // The generation as of day 3 answers for days 3-7, for the detector and the backtest alike.
    await refreshBaselines(tenant, BASE + 3 * DAY);

    const live = [...(await detectAll(log)).alerts.values()].filter((a) => a.tenant === tenant);
    const backtest = await runBacktest({
      store: ts.store,
      from: BASE,
      to: BASE + 7 * DAY,
      tenant,
      rules: RULES,
      privacy,
    });
    const rules = new Set(live.map((a) => a.ruleId));
    for (const rule of [
      'auth.new_country',
      'auth.brute_force_account',
      'auth.password_spraying',
      'auth.success_after_failures',
    ])
      expect(rules, `live alerts hold ${rule}`).toContain(rule);
    expect(live.some((a) => JSON.stringify(a.entity).includes('mallory'))).toBe(false);
    expect(live.length).toBeGreaterThanOrEqual(4);
    expect(backtest.alerts.map(shape).sort(order)).toEqual(live.map(shape).sort(order));
  }, 30_000);
});
