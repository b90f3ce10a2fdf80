import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CATEGORIES, type Category } from '@vigil/protocol';
import { QueryErrorCodes } from '../errors.js';
import { storeEvents, type TestEvent } from '../store/events.testkit.js';
import { fromChTime } from '../store/rows.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import type { RetentionDays } from './expiry.js';
import { LegalHolds, NO_HOLDS } from './holds.js';
import { DEFAULTS_TENANT, RetentionPolicies } from './policies.js';

const DAY = 86_400_000;
const DEFAULTS = Object.fromEntries(CATEGORIES.map((c) => [c, 365])) as RetentionDays;
// Fixed instants on either side of any date these tests run on: expiry never depends on today.
const LONG_AGO = Date.parse('2001-03-01T00:00:00.000Z');
const FAR_AHEAD = Date.parse('2090-03-01T00:00:00.000Z');
const NEVER = Math.floor(Date.parse('2100-01-01T00:00:00.000Z') / 1000);

function event(
  category: Category,
  actor: string,
  options: { target?: string; receivedAt?: number; expiresAt?: number; legalHold?: boolean } = {},
): TestEvent {
  return {
    input: {
      action: 'document.viewed',
      category,
      outcome: 'success',
      actor: { type: 'user', id: actor },
      ...(options.target ? { target: { type: 'user', id: options.target } } : {}),
    },
    receivedAt: options.receivedAt ?? FAR_AHEAD,
    expiresAt: options.expiresAt ?? NEVER,
    ...(options.legalHold ? { legalHold: true } : {}),
  };
}

interface StoredState {
  actor: string;
  category: string;
  held: number;
  expires: number;
  received: number;
}

async function stored(ts: TestStore, tenant: string): Promise<StoredState[]> {
  const rows = await ts.store.query<{
    actor: string;
    cat: string;
    held: number | string;
    exp: number | string;
    rcv: string;
  }>(
    `SELECT actor_id AS actor, category AS cat, legal_hold AS held,
            toUnixTimestamp(expires_at) AS exp, toString(received_at) AS rcv
     FROM ${ts.store.table('events')} WHERE tenant_id = {tenant:String} ORDER BY seq`,
    { tenant },
  );
  return rows.map((r) => ({
    actor: r.actor,
    category: r.cat,
    held: Number(r.held),
    expires: Number(r.exp),
    received: fromChTime(r.rcv),
  }));
}

describe('retention policies', () => {
  let ts: TestStore;
  let policies: RetentionPolicies;
  beforeEach(async () => {
    ts = await openTestStore();
    policies = new RetentionPolicies(ts.store, DEFAULTS);
  });
  afterEach(async () => {
    await ts.cleanup();
  });

  it('gives each category its own value over the default, and null goes back to the default', async () => {
    const changes = await policies.change(
      'acme',
      { authentication: 1095, security: 3650 },
      'key-1',
      'contract',
    );
    expect(changes.map((c) => [c.category, c.days, c.previousEffectiveDays])).toEqual([
      ['authentication', 1095, 365],
      ['security', 3650, 365],
    ]);
    const policy = await policies.policy('acme');
    expect(policy.authentication).toEqual({ days: 1095, source: 'tenant' });
    expect(policy.security).toEqual({ days: 3650, source: 'tenant' });
    expect(policy.api).toEqual({ days: 365, source: 'default' });
    expect((await policies.policy('other')).authentication).toEqual({
      days: 365,
      source: 'default',
    });

    // The same value again is no change; null returns the category to the default.
    expect(await policies.plan('acme', { authentication: 1095 }, 'key-1')).toEqual([]);
    await policies.change('acme', { authentication: null }, 'key-2');
    expect((await policies.policy('acme')).authentication).toEqual({
      days: 365,
      source: 'default',
    });

    const history = await policies.history('acme');
    const row = (c: (typeof history)[number]) => [c.category, c.days, c.previousDays, c.actorKeyId];
    expect(history.map(row)[0]).toEqual(['authentication', null, 1095, 'key-2']);
    // The first change wrote two categories at one instant: their order is the change ids'.
    expect(history.slice(1).map(row).sort()).toEqual([
      ['authentication', 1095, null, 'key-1'],
      ['security', 3650, null, 'key-1'],
    ]);
  });

  it('tells the days in force at a past moment from the recorded history', async () => {
    expect(await policies.recordDefaults()).toHaveLength(CATEGORIES.length);
    expect(await policies.recordDefaults()).toEqual([]);
    const t1 = Date.parse('2026-01-10T00:00:00.000Z');
    const t2 = Date.parse('2026-06-10T00:00:00.000Z');
    const first = await policies.plan('acme', { api: 30 }, 'key');
    await policies.write(first.map((c) => ({ ...c, changedAt: t1 })));
    const second = await policies.plan('acme', { api: 90 }, 'key');
    await policies.write(second.map((c) => ({ ...c, changedAt: t2 })));
    // The defaults were recorded now, after t1 and t2 (these dates are in the past).
    const afterBoth = Date.now() + 1000;
    expect((await policies.daysAt('acme', t1 - DAY)).api).toBeUndefined();
    expect((await policies.daysAt('acme', t1 + DAY)).api).toBe(30);
    expect((await policies.daysAt('acme', t2 + DAY)).api).toBe(90);
    expect(await policies.daysAt('acme', afterBoth)).toMatchObject({ api: 90, security: 365 });
    expect((await policies.ownDays([DEFAULTS_TENANT])).get(DEFAULTS_TENANT)).toMatchObject({
      security: 365,
    });
  });

  it('re-applies a period to the stored events of one tenant and category only', async () => {
    await storeEvents(ts.store, 'acme', [
      event('api', 'u1'),
      event('security', 'u2'),
      event('api', 'u3', { receivedAt: FAR_AHEAD + DAY }),
    ]);
    await storeEvents(ts.store, 'other', [event('api', 'u4')]);
    await policies.change('acme', { api: 30 }, 'key');

    const applied = await policies.applyToStored('acme', 'api');
    expect(applied).toMatchObject({ category: 'api', days: 30 });

    const rows = await stored(ts, 'acme');
    expect(rows.map((r) => (r.expires * 1000 - r.received) / DAY)).toEqual([
      30,
      (NEVER * 1000 - FAR_AHEAD) / DAY,
      30,
    ]);
    expect((await stored(ts, 'other'))[0]?.expires).toBe(NEVER);
  });

  it('deletes the events a shorter period expires, but not held ones', async () => {
    await storeEvents(ts.store, 'acme', [
      event('api', 'gone', { receivedAt: LONG_AGO }),
      event('api', 'held', { receivedAt: LONG_AGO, legalHold: true }),
      event('api', 'recent'),
    ]);
    await policies.applyToStored('acme', 'api', 30);
    expect((await stored(ts, 'acme')).map((r) => r.actor)).toEqual(['held', 'recent']);
  });
});

describe('legal holds', () => {
  let ts: TestStore;
  let holds: LegalHolds;
  beforeEach(async () => {
    ts = await openTestStore();
    holds = new LegalHolds(ts.store);
    await storeEvents(ts.store, 'acme', [
      event('data_access', 'alice'),
      event('data_access', 'carol', { target: 'alice' }),
      event('data_access', 'alice', { target: 'bob' }),
      event('data_access', 'carol'),
    ]);
    await storeEvents(ts.store, 'other', [event('data_access', 'alice')]);
  });
  afterEach(async () => {
    await ts.cleanup();
  });

  const held = async (tenant = 'acme'): Promise<number[]> =>
    (await stored(ts, tenant)).map((r) => r.held);

  it('flags the events that name a subject, in its tenant only, until released', async () => {
    const placed = await holds.place('acme', { subject: 'alice', reason: 'litigation' }, 'key-1');
    expect(placed.heldEvents).toBe(3);
    expect(placed.hold).toMatchObject({
      tenantId: 'acme',
      subject: 'alice',
      reason: 'litigation',
      placedBy: 'key-1',
      active: true,
    });
    expect(await held()).toEqual([1, 1, 1, 0]);
    expect(await held('other')).toEqual([0]);

    const bob = await holds.place('acme', { subject: 'bob', reason: 'audit' }, 'key-1');
    const active = await holds.active(['acme', 'other']);
    expect([...(active.get('acme')?.subjects ?? [])].sort()).toEqual(['alice', 'bob']);
    expect(active.get('other')).toBe(NO_HOLDS);

    // The event naming both stays held by bob's hold when alice's is released.
    const released = await holds.release('acme', placed.hold.id, 'key-2', 'settled');
    expect(released.stillHeld).toBe(false);
    expect(released.hold).toMatchObject({
      active: false,
      releasedBy: 'key-2',
      releaseReason: 'settled',
    });
    expect(await held()).toEqual([0, 0, 1, 0]);
    await holds.release('acme', bob.hold.id, 'key-2');
    expect(await held()).toEqual([0, 0, 0, 0]);
    expect(await holds.list('acme')).toEqual([]);
    expect(await holds.list('acme', { all: true })).toHaveLength(2);
  });

  it('keeps every event under a tenant hold, whatever subject holds are released', async () => {
    const tenantHold = await holds.place('acme', { reason: 'regulator' }, 'key');
    const alice = await holds.place('acme', { subject: 'alice', reason: 'x' }, 'key');
    expect(tenantHold.heldEvents).toBe(4);
    const released = await holds.release('acme', alice.hold.id, 'key');
    expect(released.stillHeld).toBe(true);
    expect(await held()).toEqual([1, 1, 1, 1]);
  });

  it('refuses to release a hold twice, or one of another tenant', async () => {
    const placed = await holds.place('acme', { subject: 'alice', reason: 'x' }, 'key');
    await expect(holds.release('other', placed.hold.id, 'key')).rejects.toMatchObject({
      code: QueryErrorCodes.HOLD_NOT_FOUND,
      status: 404,
    });
    await holds.release('acme', placed.hold.id, 'key');
    await expect(holds.release('acme', placed.hold.id, 'key')).rejects.toMatchObject({
      code: QueryErrorCodes.HOLD_RELEASED,
      status: 409,
    });
  });

  it('lets a release delete the held events already past their expiry', async () => {
    await storeEvents(ts.store, 'late', [
      event('data_access', 'alice', {
        receivedAt: LONG_AGO,
        expiresAt: LONG_AGO / 1000 + 86_400,
        legalHold: true,
      }),
      event('data_access', 'carol'),
    ]);
    const placed = await holds.place('late', { subject: 'alice', reason: 'x' }, 'key');
    expect((await stored(ts, 'late')).map((r) => r.actor)).toEqual(['alice', 'carol']);
    await holds.release('late', placed.hold.id, 'key');
    expect((await stored(ts, 'late')).map((r) => r.actor)).toEqual(['carol']);
  });

  it('also holds the events that name the subject by another form (a pseudonym)', async () => {
    const placed = await holds.place(
      'acme',
      { subject: 'alice-id', reason: 'x', forms: ['carol'] },
      'key',
    );
    expect(placed.heldEvents).toBe(2);
    expect(await held()).toEqual([0, 1, 0, 1]);
  });
});
