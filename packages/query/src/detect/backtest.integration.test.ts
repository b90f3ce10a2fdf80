import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { builtinRules, DetectionEngine, type Alert, type DetectionEvent } from '@vigil/detect';
import type { QueryError } from '../errors.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { StoreBaselines } from './baseline-lookup.js';
import { BaselineRefresher } from './baselines.js';
import {
  checkBacktestRequest,
  formatBacktest,
  runBacktest,
  type BacktestResult,
} from './backtest.js';
import { storeDetectEvents, type DetectInput } from './detect.testkit.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const RULES = builtinRules();
const WARMUP = Math.max(...RULES.map((r) => r.timespanMs));
const OVERRIDES = { tenants: { acme: { timeZone: 'Europe/Paris' } } };

let t: TestStore;
let from: number;
let to: number;
let inputs: DetectInput[];
let seen: DetectionEvent[];
let result: BacktestResult;

const user = (id: string) => ({ type: 'user', id });
const FR = { country: 'FR', lat: 48.85, lon: 2.35, asn: 3215, ip: '192.0.2.10' };
const BR = { country: 'BR', lat: -23.55, lon: -46.63, asn: 28573, ip: '203.0.113.77' };

function failures(
  tenant: string,
  id: string,
  start: number,
  n: number,
  extra: Partial<DetectInput> = {},
): DetectInput[] {
  return Array.from({ length: n }, (_, i) => ({
    tenant,
    time: start + i * 15_000,
    action: 'user.login',
    outcome: 'failure' as const,
    actor: user(id),
    ...FR,
    ip: '198.51.100.9',
    ...extra,
  }));
}

function week(): DetectInput[] {
  const out: DetectInput[] = [];
  // History: u1 and u5 log in from France every day of the two weeks before.
  for (let d = -14; d < 7; d++) {
    for (const id of ['u1', 'u5'])
      out.push({
        tenant: 'acme',
        time: from + d * DAY + 9 * HOUR,
        action: 'user.login',
        actor: user(id),
        ...FR,
      });
  }
  // Day 2: u1 logs in from Brazil (new country and network).
  out.push({
    tenant: 'acme',
    time: from + 2 * DAY + 15 * HOUR,
    action: 'user.login',
    actor: user('u1'),
    ...BR,
  });
  // Day 3: brute force on u5, then a success; the failures arrived after the range (late),
  // half of them as a backfill.
  const bf = from + 3 * DAY + 2 * HOUR;
  failures('acme', 'u5', bf, 12).forEach((e, i) =>
    out.push({ ...e, receivedAt: to + DAY, ...(i % 2 === 0 ? { flags: ['backfill'] } : {}) }),
  );
  out.push({
    tenant: 'acme',
    time: bf + 4 * MIN,
    action: 'user.login',
    actor: user('u5'),
    ...FR,
    ip: '198.51.100.9',
  });
  // Across the start: failures of u6 from 2 min before `from` to 1 min after it.
  out.push(...failures('acme', 'u6', from - 2 * MIN, 12));
  // Wholly before `from` (in the warm-up): u7's brute force is not reported.
  out.push(...failures('acme', 'u7', from - 2 * HOUR, 12));
  // After `to`: not read.
  out.push(...failures('acme', 'u8', to + MIN, 12));
  // A restricted subject's brute force: not read.
  out.push(...failures('acme', 'u9', from + DAY, 12, { restricted: true }));
  // Another tenant's brute force on the same ids at the same time.
  out.push(...failures('globex', 'u5', bf, 12));
  out.push(...failures('globex', 'u1', from + 4 * DAY, 12));
  return out;
}

beforeAll(async () => {
  t = await openTestStore();
  const midnight = Math.floor((await t.now()) / DAY) * DAY;
  from = midnight - 9 * DAY;
  to = from + 7 * DAY;
  inputs = week();
  seen = await storeDetectEvents(t.store, inputs);
  // Baselines as the live detector's refresher made them: every 6 hours from 2 days before.
  const refresher = new BaselineRefresher(t.store, {
    historyMs: 30 * DAY,
    activationMs: 10 * MIN,
    timeZone: (tenant) => (tenant === 'acme' ? 'Europe/Paris' : 'UTC'),
  });
  for (let at = from - 2 * DAY; at < to; at += 6 * HOUR) await refresher.refresh(at);
  result = await runBacktest({
    store: t.store,
    tenant: 'acme',
    from,
    to,
    rules: RULES,
    overrides: OVERRIDES,
    pageSize: 7, // many pages
  });
}, 120_000);
afterAll(async () => t.cleanup());

/** The same events, in time order, fed to an engine directly (what the live detector does). */
async function direct(tenant: string): Promise<Alert[]> {
  const baselines = new StoreBaselines(t.store);
  const engine = new DetectionEngine({ rules: RULES, overrides: OVERRIDES, baseline: baselines });
  const events = seen
    .map((e, i) => ({ e, input: inputs[i] as DetectInput }))
    .filter(
      ({ e, input }) =>
        e.tenant === tenant && !input.restricted && e.time >= from - WARMUP && e.time < to,
    )
    .map(({ e }) => e)
    .sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : 1));
  await baselines.prepare(tenant, from - WARMUP, to);
  const latest = new Map<string, Alert>();
  for (const e of events) {
    baselines.at(e.time);
    for (const { alert } of engine.process(e)) latest.set(alert.id, alert);
  }
  return [...latest.values()]
    .filter((a) => a.lastEventTime >= from && a.lastEventTime < to)
    .sort((a, b) => a.firstEventTime - b.firstEventTime || (a.id < b.id ? -1 : 1));
}

describe('backtest', () => {
  it('raises what the engine raises on the same events fed in order', async () => {
    const expected = await direct('acme');
    const got = result.alerts.map(({ startedBefore: _s, ...a }) => a);
    expect(got).toEqual(expected);
    const rules = new Set(got.map((a) => a.ruleId));
    for (const r of ['auth.brute_force_account', 'auth.success_after_failures', 'auth.new_country'])
      expect(rules).toContain(r);
  });

  it('reads by event time: late and backfilled events count, those after `to` do not', () => {
    const bf = result.alerts.find(
      (a) => a.ruleId === 'auth.brute_force_account' && a.entity['actor.id'] === 'u5',
    );
    expect(bf?.eventCount).toBeGreaterThanOrEqual(10);
    expect(result.alerts.some((a) => a.entity['actor.id'] === 'u8')).toBe(false);
  });

  it('warms windows up before `from` and reports only alerts whose window ends in range', () => {
    const across = result.alerts.filter((a) => a.entity['actor.id'] === 'u6');
    expect(across.length).toBeGreaterThan(0);
    expect(across.every((a) => a.startedBefore && a.firstEventTime < from)).toBe(true);
    expect(result.alerts.some((a) => a.entity['actor.id'] === 'u7')).toBe(false);
    expect(result.summary.readFrom).toBe(from - WARMUP);
  });

  it('reads only the tenant asked for, and no restricted subject', () => {
    expect(result.alerts.every((a) => a.tenant === 'acme')).toBe(true);
    const acmeRead = inputs.filter(
      (e) => e.tenant === 'acme' && !e.restricted && e.time >= from - WARMUP && e.time < to,
    ).length;
    expect(result.summary.events).toBe(acmeRead);
    expect(result.alerts.some((a) => a.entity['actor.id'] === 'u9')).toBe(false);
    expect(Object.keys(result.summary.baselineGenerations)).toEqual(['acme']);
  });

  it('uses the baseline generation of each event time', () => {
    const used = result.summary.baselineGenerations['acme'] ?? [];
    expect(used.length).toBeGreaterThan(5); // a day's events meet that day's generations
    expect(Math.min(...used)).toBeLessThan(from);
  });

  it('writes JSON, NDJSON and CSV that parse back', () => {
    const json = JSON.parse([...formatBacktest(result, 'json')].join('')) as {
      alerts: { id: string }[];
      summary: { alerts: number };
    };
    expect(json.alerts.map((a) => a.id)).toEqual(result.alerts.map((a) => a.id));
    expect(json.summary.alerts).toBe(result.alerts.length);
    const lines = [...formatBacktest(result, 'ndjson')].join('').trimEnd().split('\n');
    expect(lines).toHaveLength(result.alerts.length + 1);
    expect((JSON.parse(lines[0] as string) as { id: string }).id).toBe(result.alerts[0]?.id);
    expect(JSON.parse(lines.at(-1) as string)).toHaveProperty('summary');
    const csv = parse([...formatBacktest(result, 'csv')].join(''), { columns: true }) as Record<
      string,
      string
    >[];
    expect(csv.map((r) => r['id'])).toEqual(result.alerts.map((a) => a.id));
    expect(csv[0]?.['first_event_time (UTC)']).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(JSON.parse(csv[0]?.['evidence'] ?? '')).toEqual(result.alerts[0]?.evidence);
  });

  it('refuses a bad range, naming the field', () => {
    const bad = (input: object): QueryError => {
      try {
        checkBacktestRequest(input);
      } catch (e) {
        return e as QueryError;
      }
      throw new Error('accepted');
    };
    expect(bad({ from: 'yesterday', to: '2026-01-01' }).details?.map((d) => d.path)).toEqual([
      '/from',
    ]);
    expect(bad({ from: '2026-01-02', to: '2026-01-01' }).details?.map((d) => d.path)).toEqual([
      '/to',
    ]);
    expect(bad({ from: '2026-01-01', to: '2026-01-02', format: 'xml' }).code).toBe(
      'VIGIL_ERR_BACKTEST_INVALID',
    );
    expect(checkBacktestRequest({ from: '2026-01-01', to: '2026-01-08T00:00:00.000Z' })).toEqual({
      from: Date.parse('2026-01-01'),
      to: Date.parse('2026-01-08'),
      format: 'json',
    });
  });
});
