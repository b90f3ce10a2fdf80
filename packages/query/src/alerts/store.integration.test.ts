import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '@vigil/detect';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { AlertStore } from './store.js';

let t: TestStore;
let now: number;

beforeAll(async () => {
  t = await openTestStore();
  now = await t.now();
});
afterAll(async () => t.cleanup());

function alert(tenant: string, version: number, overrides: Partial<Alert> = {}): Alert {
  return {
    id: `a-${tenant}`,
    key: `auth.brute_force|${tenant}|actor.id=u-1|${now}`,
    ruleId: 'auth.brute_force_account',
    title: 'Brute force on one account',
    severity: 'high',
    attack: ['T1110.001'],
    tenant,
    entity: { 'actor.id': 'u-1' },
    firstEventTime: now - 60_000,
    lastEventTime: now - 60_000 + version * 1000,
    eventIds: Array.from({ length: version }, (_, i) => `e-${i}`),
    eventCount: 10 + version,
    evidence: { failures: 10 + version },
    version,
    ...overrides,
  };
}

describe('AlertStore', () => {
  it('keeps the newest version of a growing alert and the time it was first raised', async () => {
    const alerts = new AlertStore(t.store);
    await alerts.record([alert('acme', 1)], now - 5000);
    await alerts.record([alert('acme', 2)], now - 1000);
    await alerts.record([alert('acme', 2)], now); // written again after a restart
    const listed = await alerts.list('acme');
    expect(listed).toHaveLength(1);
    const [a] = listed;
    expect(a?.version).toBe(2);
    expect(a?.eventCount).toBe(12);
    expect(a?.evidence).toEqual({ failures: 12 });
    expect(a?.entity).toEqual({ 'actor.id': 'u-1' });
    expect(a?.raisedAt).toBe(now - 5000);
    expect(a?.lastEventTime).toBe(now - 58_000);
    expect(await alerts.get('acme', 'a-acme')).toEqual(a);
  });

  it('shows a tenant only its own alerts, filtered as asked', async () => {
    const alerts = new AlertStore(t.store);
    await alerts.record([alert('globex', 1, { severity: 'medium' })], now);
    expect((await alerts.list('globex')).map((a) => a.tenant)).toEqual(['globex']);
    expect(await alerts.get('globex', 'a-acme')).toBeUndefined();
    expect(await alerts.list('globex', { severity: 'high' })).toEqual([]);
    expect(await alerts.list('acme', { since: now + 1 })).toEqual([]);
    expect(await alerts.list('acme', { ruleId: 'auth.brute_force_account' })).toHaveLength(1);
  });
});
