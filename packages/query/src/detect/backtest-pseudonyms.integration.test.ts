import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinRules, DetectionEngine, type Alert } from '@vigil/detect';
import { PrivacyService } from '../privacy/service.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { StoreBaselines } from './baseline-lookup.js';
import { BaselineRefresher } from './baselines.js';
import { runBacktest } from './backtest.js';
import { storeDetectEvents, type DetectInput } from './detect.testkit.js';

/**
 * A tenant that pseudonymises ids: stored columns (and so baselines) hold pseudonyms, the live
 * detector sees plain ids. The backtest opens the encrypted disclosures and the lookup asks by
 * the pseudonym, so both see what the live detector sees.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const RULES = builtinRules();

let t: TestStore;
let privacy: PrivacyService;
let from: number;
let to: number;
const user = (id: string) => ({ type: 'user', id });
const FR = { country: 'FR', lat: 48.85, lon: 2.35, asn: 3215 };
const BR = { country: 'BR', lat: -23.55, lon: -46.63, asn: 28573 };
let live: Alert[] = [];

beforeAll(async () => {
  t = await openTestStore();
  privacy = new PrivacyService(t.store, randomBytes(32));
  await privacy.setFields('pseudo', ['id'], 'k', 'test');
  const rowPrivacy = await privacy.rowPrivacy('pseudo');
  from = Math.floor((await t.now()) / DAY) * DAY - 5 * DAY;
  to = from + 3 * DAY;
  const inputs: DetectInput[] = [];
  for (let d = -10; d < 3; d++)
    inputs.push({
      tenant: 'pseudo',
      time: from + d * DAY + 9 * HOUR,
      action: 'user.login',
      actor: user('u1'),
      ...FR,
    });
  inputs.push({
    tenant: 'pseudo',
    time: from + DAY + 15 * HOUR,
    action: 'user.login',
    actor: user('u1'),
    ...BR,
  });
  for (let i = 0; i < 12; i++)
    inputs.push({
      tenant: 'pseudo',
      time: from + 2 * DAY + i * 10_000,
      action: 'user.login',
      outcome: 'failure',
      actor: user('u5'),
    });
  const seen = await storeDetectEvents(t.store, inputs, rowPrivacy);
  const [stored] = await t.store.query<{ a: string }>(
    `SELECT any(actor_id) AS a FROM ${t.store.table('events')} WHERE tenant_id = 'pseudo'`,
  );
  expect(stored?.a).toMatch(/^ps_/); // the columns hold pseudonyms
  await new BaselineRefresher(t.store, { activationMs: 10 * MIN }).refresh(from - DAY);
  // What the live detector does: plain events, the same lookup, in time order.
  const baselines = new StoreBaselines(t.store, { privacy });
  const engine = new DetectionEngine({ rules: RULES, baseline: baselines });
  const warmup = Math.max(...RULES.map((r) => r.timespanMs));
  await baselines.prepare('pseudo', from - warmup, to);
  const latest = new Map<string, Alert>();
  for (const e of seen
    .filter((x) => x.time >= from - warmup && x.time < to)
    .sort((a, b) => a.time - b.time)) {
    baselines.at(e.time);
    for (const { alert } of engine.process(e)) latest.set(alert.id, alert);
  }
  live = [...latest.values()].filter((a) => a.lastEventTime >= from && a.lastEventTime < to);
});
afterAll(async () => t.cleanup());

describe('backtest of a pseudonymising tenant', () => {
  it('sees plain ids and the baselines learned under pseudonyms, as the live detector', async () => {
    const result = await runBacktest({
      store: t.store,
      tenant: 'pseudo',
      from,
      to,
      rules: RULES,
      privacy,
    });
    const got = result.alerts.map(({ startedBefore: _s, ...a }) => a);
    expect(got).toEqual(
      live.sort((a, b) => a.firstEventTime - b.firstEventTime || (a.id < b.id ? -1 : 1)),
    );
    const byRule = new Map(got.map((a) => [a.ruleId, a]));
    expect(byRule.get('auth.new_country')?.entity).toEqual({ 'actor.id': 'u1' });
    expect(byRule.get('auth.brute_force_account')?.entity).toEqual({ 'actor.id': 'u5' });
  });

  it('without the tenant key, it works on pseudonyms throughout', async () => {
    const result = await runBacktest({
      store: t.store,
      tenant: 'pseudo',
      from,
      to,
      rules: RULES,
      baselines: new StoreBaselines(t.store),
    });
    const nc = result.alerts.find((a) => a.ruleId === 'auth.new_country');
    expect(String(nc?.entity['actor.id'])).toMatch(/^ps_/);
    const bf = result.alerts.find((a) => a.ruleId === 'auth.brute_force_account');
    expect(String(bf?.entity['actor.id'])).toMatch(/^ps_/);
  });
});
