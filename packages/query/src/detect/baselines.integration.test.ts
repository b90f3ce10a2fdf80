import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localTime } from '@vigil/detect';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { StoreBaselines } from './baseline-lookup.js';
import { BaselineRefresher, eraseFromBaselines, listGenerations } from './baselines.js';
import { storeDetectEvents, type DetectInput } from './detect.testkit.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ACTIVATION = 10 * 60_000;

let t: TestStore;
/** Midnight UTC, 20 days before the store's clock: every date relative, never today's. */
let T0: number;
let asOf: number;

const user = (id: string) => ({ type: 'user', id });
const key = (id: string) => ({ type: 'api_key', id });

function history(): DetectInput[] {
  const out: DetectInput[] = [];
  for (let d = 0; d < 10; d++) {
    // u1: a successful login every morning at 08:30 UTC from France, on one network.
    out.push({
      tenant: 'acme',
      time: T0 + d * DAY + 8.5 * HOUR,
      action: 'user.login',
      actor: user('u1'),
      ip: '192.0.2.10',
      country: 'FR',
      lat: 48.85,
      lon: 2.35,
      asn: 3215,
      browser: 'Firefox',
      device: 'desktop',
    });
    // An attacker's failures from elsewhere teach nothing.
    out.push({
      tenant: 'acme',
      time: T0 + d * DAY + 3 * HOUR,
      action: 'user.login',
      outcome: 'failure',
      actor: user('u1'),
      ip: '203.0.113.5',
      country: 'CN',
      lat: 39.9,
      lon: 116.4,
      asn: 4134,
    });
    // The API key k1: 5 requests an hour for two hours a day, one day 20 in one hour.
    for (let h = 0; h < 2; h++) {
      const n = d === 4 && h === 0 ? 20 : 5;
      for (let i = 0; i < n; i++)
        out.push({
          tenant: 'acme',
          time: T0 + d * DAY + (10 + h) * HOUR + i * 60_000,
          action: 'api.request',
          category: 'api',
          actor: key('k1'),
          ip: '198.51.100.7',
          country: 'DE',
          lat: 50.1,
          lon: 8.7,
          asn: 16509,
        });
    }
  }
  // The same id in another tenant: another person.
  out.push({
    tenant: 'globex',
    time: T0 + 2 * DAY,
    action: 'user.login',
    actor: user('u1'),
    country: 'US',
    lat: 40.7,
    lon: -74,
    asn: 7922,
  });
  // u3 is restricted: kept, but no baseline learns from it.
  out.push({
    tenant: 'acme',
    time: T0 + 3 * DAY,
    action: 'user.login',
    actor: user('u3'),
    country: 'IT',
    lat: 41.9,
    lon: 12.5,
    restricted: true,
  });
  // u2 logged in once, long ago.
  out.push({
    tenant: 'acme',
    time: T0 + HOUR,
    action: 'user.login',
    actor: user('u2'),
    country: 'FR',
    lat: 1,
    lon: 1,
  });
  return out;
}

const zones = (tenant: string): string => (tenant === 'acme' ? 'Europe/Paris' : 'UTC');

beforeAll(async () => {
  t = await openTestStore();
  T0 = Math.floor((await t.now()) / DAY) * DAY - 20 * DAY;
  asOf = T0 + 11 * DAY;
  await storeDetectEvents(t.store, history());
});
afterAll(async () => t.cleanup());

async function lookupAt(ms: number, tenants = ['acme', 'globex']): Promise<StoreBaselines> {
  const lookup = new StoreBaselines(t.store);
  for (const tenant of tenants) await lookup.prepare(tenant, ms, ms + HOUR);
  lookup.at(ms);
  return lookup;
}

describe('baselines', () => {
  it('learns countries, networks, hours, devices, rates and last activity per actor and API key', async () => {
    const refresher = new BaselineRefresher(t.store, {
      historyMs: 30 * DAY,
      activationMs: ACTIVATION,
      timeZone: zones,
    });
    const report = await refresher.refresh(asOf);
    expect(report.generations.map((g) => g.tenant).sort()).toEqual(['acme', 'globex']);
    const [generation] = await listGenerations(t.store, 'acme');
    expect(generation).toMatchObject({
      asOf,
      effectiveFrom: asOf + ACTIVATION,
      timeZone: 'Europe/Paris',
    });

    const b = await lookupAt(asOf + ACTIVATION);
    expect(b.usual('acme', 'countries', 'u1', 'FR')).toBe('usual');
    expect(b.usual('acme', 'countries', 'u1', 'CN')).toBe('new'); // failures teach nothing
    expect(b.usual('acme', 'asns', 'u1', 3215)).toBe('usual');
    expect(b.usual('acme', 'asns', 'u1', 4134)).toBe('new');
    expect(b.usual('acme', 'devices', 'u1', 'desktop')).toBe('usual');
    expect(b.usual('acme', 'ua_families', 'u1', 'Firefox')).toBe('usual');
    // Hours in the tenant's zone, as the rules' time.hour reads them (DST included).
    const paris = localTime(T0 + 8.5 * HOUR, 'Europe/Paris').hour;
    expect(b.usual('acme', 'hours', 'u1', paris)).toBe('usual');
    expect(b.usual('acme', 'hours', 'u1', 8)).toBe(paris === 8 ? 'usual' : 'new');
    expect(b.usual('acme', 'countries', 'nobody', 'FR')).toBe('no_history');
    expect(b.usual('acme', 'countries', 'k1', 'DE')).toBe('usual'); // an API key entity
    // 20 active hours: 19 with 5 requests, one with 20 (quantileExact: p95 is the 19th of 20).
    expect(b.rate('acme', 'k1')).toEqual({ p50: 5, p95: 20, peak: 20 });
    expect(b.lastSeen('acme', 'u1', asOf + ACTIVATION)).toBe(T0 + 9 * DAY + 8.5 * HOUR);
    expect(b.lastSeen('acme', 'u2', asOf + ACTIVATION)).toBe(T0 + HOUR);
    expect(b.lastSeen('acme', 'u2', T0 + HOUR)).toBeUndefined(); // strictly before
    // Restricted subjects are left out, as search leaves them out.
    expect(b.usual('acme', 'countries', 'u3', 'IT')).toBe('no_history');
    expect(b.lastSeen('acme', 'u3', asOf + ACTIVATION)).toBeUndefined();
  });

  it('answers only from the activation on: before it, the generation does not exist yet', async () => {
    const b = await lookupAt(asOf + ACTIVATION - 1);
    expect(b.usual('acme', 'countries', 'u1', 'FR')).toBe('no_history');
    expect(b.lastSeen('acme', 'u1', asOf + ACTIVATION - 1)).toBeUndefined();
    // The time of each question picks the generation, not the cursor of another event.
    const c = await lookupAt(asOf + ACTIVATION - 1);
    await c.prepare('acme', asOf, asOf + DAY);
    expect(c.usual('acme', 'countries', 'u1', 'FR', asOf + ACTIVATION)).toBe('usual');
  });

  it('keeps tenants apart: the same id in another tenant is another history', async () => {
    const b = await lookupAt(asOf + ACTIVATION);
    expect(b.usual('globex', 'countries', 'u1', 'US')).toBe('usual');
    expect(b.usual('globex', 'countries', 'u1', 'FR')).toBe('new');
    expect(b.usual('acme', 'countries', 'u1', 'US')).toBe('new');
    expect(b.rate('globex', 'k1')).toBeUndefined();
    // A tenant never prepared knows nothing, even of ids other tenants have.
    const only = await lookupAt(asOf + ACTIVATION, ['globex']);
    expect(only.usual('acme', 'countries', 'u1', 'FR')).toBe('no_history');
    expect(only.stats().unprepared).toBeGreaterThan(0);
  });

  it('refreshing again at the same time changes nothing', async () => {
    const count = async () =>
      Number(
        (
          await t.store.query<{ n: string }>(
            `SELECT count() AS n FROM ${t.store.table('baselines')} FINAL`,
          )
        )[0]?.n,
      );
    const before = await count();
    const again = await new BaselineRefresher(t.store, {
      activationMs: ACTIVATION,
      timeZone: zones,
    }).refresh(asOf);
    expect(again.generations).toEqual([]);
    expect([...again.skipped].sort()).toEqual(['acme', 'globex']);
    expect(await count()).toBe(before);
    expect(await listGenerations(t.store, 'acme')).toHaveLength(1);
  });

  it('keeps generations: a later one answers from its own activation, the earlier before it', async () => {
    const later = asOf + 5 * DAY;
    await storeDetectEvents(t.store, [
      {
        tenant: 'acme',
        time: asOf + DAY,
        action: 'user.login',
        actor: user('u1'),
        country: 'ES',
        lat: 40.4,
        lon: -3.7,
      },
    ]);
    await new BaselineRefresher(t.store, { activationMs: ACTIVATION, timeZone: zones }).refresh(
      later,
      ['acme'],
    );
    const b = new StoreBaselines(t.store);
    await b.prepare('acme', asOf + ACTIVATION, later + ACTIVATION);
    expect(b.stats().generations).toBe(2);
    expect(b.usual('acme', 'countries', 'u1', 'ES', later + ACTIVATION - 1)).toBe('new');
    expect(b.usual('acme', 'countries', 'u1', 'ES', later + ACTIVATION)).toBe('usual');
    // Only what the range needs stays loaded.
    await b.prepare('acme', later + DAY, later + DAY);
    expect(b.stats().generations).toBe(1);
  });

  it('caps what it holds and counts what it leaves out', async () => {
    const b = new StoreBaselines(t.store, { maxTenants: 1, maxEntitiesPerTenant: 1 });
    await b.prepare('acme', asOf + ACTIVATION, asOf + ACTIVATION);
    b.at(asOf + ACTIVATION);
    // The most recently active entity is kept: k1 (api requests until the last day's noon).
    expect(b.usual('acme', 'countries', 'k1', 'DE')).toBe('usual');
    expect(b.usual('acme', 'countries', 'u2', 'FR')).toBe('no_history');
    expect(b.stats().truncatedEntities).toBeGreaterThan(0);
    await b.prepare('globex', asOf + ACTIVATION, asOf + ACTIVATION);
    expect(b.stats()).toMatchObject({ tenants: 1, evictedTenants: 1 });
  });

  it('an erasure removes the person from every generation, and from nobody else', async () => {
    const erased = await eraseFromBaselines(t.store, 'acme', ['u1']);
    expect(erased).toBeGreaterThan(0);
    const b = await lookupAt(asOf + ACTIVATION);
    expect(b.usual('acme', 'countries', 'u1', 'FR')).toBe('no_history');
    expect(b.lastSeen('acme', 'u1', asOf + ACTIVATION)).toBeUndefined();
    expect(b.usual('acme', 'countries', 'k1', 'DE')).toBe('usual');
    expect(b.usual('globex', 'countries', 'u1', 'US')).toBe('usual'); // another tenant's u1
    expect(await eraseFromBaselines(t.store, 'acme', ['u1'])).toBe(0);
  });
});
