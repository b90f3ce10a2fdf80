import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '@vigil/detect';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { AlertStore } from './store.js';
import { AlertTriage } from './triage.js';

let t: TestStore;
let now: number;
let alerts: AlertStore;
let triage: AlertTriage;

beforeAll(async () => {
  t = await openTestStore();
  now = await t.now();
  alerts = new AlertStore(t.store);
  triage = new AlertTriage(t.store);
});
afterAll(async () => t.cleanup());

function alert(tenant: string, n: number, overrides: Partial<Alert> = {}): Alert {
  return {
    id: `${tenant}-${String(n).padStart(3, '0')}`,
    key: `k|${tenant}|${n}`,
    ruleId: n % 2 === 0 ? 'auth.brute_force_account' : 'auth.password_spraying',
    title: 'an alert',
    severity: n % 3 === 0 ? 'high' : 'medium',
    attack: ['T1110'],
    tenant,
    entity: n % 2 === 0 ? { 'actor.id': `u-${n % 4}` } : { 'context.ip': `192.0.2.${n % 5}` },
    firstEventTime: now - 3_600_000 + n * 1000,
    lastEventTime: now - 3_600_000 + n * 1000 + 500,
    eventIds: [`e-${tenant}-${n}`],
    eventCount: 10,
    evidence: { count: 10, values: { 'context.ip': [`198.51.100.${n % 3}`] } },
    version: 1,
    ...overrides,
  };
}

const by = { keyId: 'k-analyst', eventId: 'ev-1' };

describe('AlertTriage', () => {
  it('an alert is open until changed; changes fold into the current triage', async () => {
    await alerts.record([alert('acme', 1)], now);
    expect((await triage.get('acme', 'acme-001'))?.triage).toMatchObject({
      state: 'open',
      assignee: null,
      notes: [],
      changes: 0,
    });
    await triage.apply('acme', ['acme-001'], { state: 'acknowledged', assignee: 'ana' }, by);
    await triage.apply('acme', ['acme-001'], { note: 'looking into it' }, by);
    await triage.apply('acme', ['acme-001'], { note: 'it is the VPN' }, by);
    await triage.apply('acme', ['acme-001'], { state: 'closed', assignee: null }, by);
    const got = await triage.get('acme', 'acme-001');
    expect(got?.triage.state).toBe('closed');
    expect(got?.triage.assignee).toBeNull();
    // Six field changes: state and assignee twice, two notes.
    expect(got?.triage.changes).toBe(6);
    expect(got?.triage.changedBy).toBe('k-analyst');
    expect(got?.triage.notes.map((n) => [n.text, n.author])).toEqual([
      ['looking into it', 'k-analyst'],
      ['it is the VPN', 'k-analyst'],
    ]);
    expect(await triage.get('globex', 'acme-001')).toBeUndefined();
  });

  it('an accepted risk reads as open again once the store clock passes its expiry', async () => {
    await alerts.record([alert('acme', 2)], now);
    const until = (await triage.now()) + 1500;
    await triage.validate({ state: 'accepted_risk', until });
    await triage.apply('acme', ['acme-002'], { state: 'accepted_risk', until }, by);
    const accepted = await triage.get('acme', 'acme-002');
    expect(accepted?.triage).toMatchObject({ state: 'accepted_risk', until });
    while ((await triage.now()) <= until) await new Promise((r) => setTimeout(r, 200));
    const expired = await triage.get('acme', 'acme-002');
    expect(expired?.triage).toMatchObject({ state: 'open', setState: 'accepted_risk', until });
    expect((await triage.list('acme', { states: ['open'] })).items.map((a) => a.id)).toContain(
      'acme-002',
    );
  });

  it('refuses an accepted risk without a future expiry, naming the field', async () => {
    await expect(triage.validate({ state: 'accepted_risk' })).rejects.toMatchObject({
      details: [{ path: '/until' }],
    });
    await expect(
      triage.validate({ state: 'accepted_risk', until: (await triage.now()) - 1 }),
    ).rejects.toMatchObject({ details: [{ path: '/until', message: 'must be in the future' }] });
    await expect(triage.validate({ state: 'closed', until: now + 1e6 })).rejects.toMatchObject({
      details: [{ path: '/until' }],
    });
    await expect(triage.validate({})).rejects.toMatchObject({ status: 400 });
  });

  it('filters, pages with a cursor and groups', async () => {
    const many = Array.from({ length: 23 }, (_, i) => alert('paged', i + 1));
    await alerts.record(many, now);
    await triage.apply('paged', ['paged-003', 'paged-006'], { state: 'false_positive' }, by);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await triage.list('paged', { limit: 5, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(5);
      seen.push(...page.items.map((a) => a.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(many.map((a) => a.id).reverse());

    const fp = await triage.list('paged', { states: ['false_positive'] });
    expect(fp.items.map((a) => a.id)).toEqual(['paged-006', 'paged-003']);
    const open = await triage.list('paged', { states: ['open'], severities: ['high'] });
    expect(open.items.every((a) => a.severity === 'high' && a.triage.state === 'open')).toBe(true);
    expect(open.items).toHaveLength(5); // 9, 12, 15, 18, 21 (3 and 6 are false positives)
    const u0 = await triage.list('paged', { entity: 'u-0' });
    expect(u0.items.map((a) => a.id)).toEqual([
      'paged-020',
      'paged-016',
      'paged-012',
      'paged-008',
      'paged-004',
    ]);
    const window = await triage.list('paged', {
      from: now - 3_600_000 + 10_000,
      to: now - 3_600_000 + 12_000,
    });
    expect(window.items.map((a) => a.id)).toEqual(['paged-011', 'paged-010']); // 9 ended before `from`

    const byRule = await triage.groups('paged', 'rule');
    expect(byRule.items.map((g) => [g.key, g.alerts])).toEqual([
      ['auth.password_spraying', 12],
      ['auth.brute_force_account', 11],
    ]);
    expect(byRule.items[0]?.states).toEqual({ open: 11, false_positive: 1 });
    const byEntity = await triage.groups('paged', 'entity', {
      rules: ['auth.brute_force_account'],
    });
    expect(byEntity.items.map((g) => [g.key, g.alerts])).toEqual([
      ['u-2', 6],
      ['u-0', 5],
    ]);
    const byAddress = await triage.groups('paged', 'address', { limit: 2 });
    expect(byAddress.items).toHaveLength(2);
    expect(byAddress.nextCursor).toBeDefined();
    const rest = await triage.groups('paged', 'address', { cursor: byAddress.nextCursor! });
    const keys = [...byAddress.items, ...rest.items].map((g) => g.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect([...byAddress.items, ...rest.items].reduce((n, g) => n + g.alerts, 0)).toBe(23);
  });

  it('refuses a cursor it did not issue', async () => {
    await expect(triage.list('acme', { cursor: 'bm9wZQ' })).rejects.toMatchObject({
      code: 'VIGIL_ERR_INVALID_CURSOR',
    });
  });
});

describe('retention of alerts and their triage', () => {
  it('expire alerts.retentionDays after the last event (alerts) or the change (triage)', async () => {
    const day = 86_400_000;
    const kept = new AlertStore(t.store, { retentionDays: 1 });
    const storeNowMs = await t.now();
    await kept.record(
      [
        alert('retained', 1, {
          lastEventTime: storeNowMs - 2 * day,
          firstEventTime: storeNowMs - 2 * day,
        }),
        alert('retained', 2, { lastEventTime: storeNowMs, firstEventTime: storeNowMs }),
      ],
      storeNowMs,
    );
    const shortTriage = new AlertTriage(t.store, { retentionDays: 1 });
    await shortTriage.apply('retained', ['retained-002'], { note: 'kept a day' }, by);
    const rows = await t.store.query<{ id: string; left: string | number }>(
      `SELECT id, toUnixTimestamp(expires_at) * 1000 - toUnixTimestamp64Milli(last_event_time) AS left
       FROM ${t.store.table('alerts')} WHERE tenant_id = 'retained' AND id = 'retained-002'`,
    );
    expect(Number(rows[0]?.left)).toBeGreaterThan(day - 1000);
    expect(Number(rows[0]?.left)).toBeLessThanOrEqual(day);
    const triageLeft = await t.store.query<{ left: string | number }>(
      `SELECT toUnixTimestamp(expires_at) * 1000 - toUnixTimestamp64Milli(changed_at) AS left
       FROM ${t.store.table('alert_triage')} WHERE tenant_id = 'retained'`,
    );
    expect(Number(triageLeft[0]?.left)).toBeGreaterThan(day - 1000);
    expect(Number(triageLeft[0]?.left)).toBeLessThanOrEqual(day);
    // TTL deletes when parts are written or merged: forced here.
    await t.store.command(`OPTIMIZE TABLE ${t.store.table('alerts')} FINAL`);
    expect((await kept.list('retained')).map((a) => a.id)).toEqual(['retained-002']);
  });
});
