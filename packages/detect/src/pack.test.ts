import { describe, expect, it } from 'vitest';
import { DAY, HOUR, LYON, MIN, MemoryBaseline, NEW_YORK, PARIS, T0, ev } from './detect.testkit.js';
import {
  DetectionEngine,
  type AlertUpdate,
  type EngineOptions,
  type EngineSnapshot,
} from './engine/engine.js';
import type { DetectionEvent } from './event.js';
import { builtinRules } from './pack.js';

const RULES = builtinRules();

function run(
  events: readonly DetectionEvent[],
  options: Partial<EngineOptions> = {},
): AlertUpdate[] {
  const engine = new DetectionEngine({ rules: RULES, ...options });
  return events.flatMap((e) => engine.process(e));
}

/** The alerts of one rule: the last version of each, in the order they were raised. */
function alerts(updates: readonly AlertUpdate[], ruleId: string) {
  const byKey = new Map<string, AlertUpdate['alert']>();
  for (const u of updates) if (u.alert.ruleId === ruleId) byKey.set(u.alert.key, u.alert);
  return [...byKey.values()];
}

function failures(n: number, fields: Partial<DetectionEvent> = {}, stepMs = 20_000) {
  return Array.from({ length: n }, (_, i) =>
    ev({ outcome: 'failure', time: T0 + i * stepMs, ...fields }),
  );
}

describe('the built-in pack', () => {
  it('has an id, severity, description, ATT&CK technique and cited source in every rule', () => {
    expect(RULES.length).toBeGreaterThanOrEqual(17);
    for (const r of RULES) {
      expect(r.spec.attack.length, r.id).toBeGreaterThan(0);
      expect(r.spec.source.length, r.id).toBeGreaterThan(40);
      expect(r.spec.description.length, r.id).toBeGreaterThan(20);
    }
  });
});

describe('auth.brute_force_account', () => {
  const id = 'auth.brute_force_account';
  it('raises one alert for ten failures on one account within 5 minutes, and grows it', () => {
    const updates = run(failures(14));
    const [a, ...rest] = alerts(updates, id);
    expect(rest).toEqual([]);
    expect(a?.entity).toEqual({ 'actor.id': 'u1' });
    expect(a?.eventCount).toBe(14);
    expect(updates.filter((u) => u.alert.ruleId === id && u.status === 'new')).toHaveLength(1);
  });
  it('needs ten within the window: nine, or ten spread over more than 5 minutes, are not enough', () => {
    expect(alerts(run(failures(9)), id)).toEqual([]);
    // 10 failures 34 s apart span 5 min 6 s: no 5-minute window holds all ten.
    expect(alerts(run(failures(10, {}, 34_000)), id)).toEqual([]);
    // 33.33 s apart: the first and the tenth are exactly 5 minutes apart (edges included).
    expect(alerts(run(failures(10, {}, 300_000 / 9)), id)).toHaveLength(1);
  });
  it('ignores typos: a few failures before each success, day after day', () => {
    const events = [0, 1, 2].flatMap((d) => [
      ...failures(3, { time: T0 + d * DAY }),
      ev({ time: T0 + d * DAY + MIN }),
    ]);
    expect(alerts(run(events), id)).toEqual([]);
  });
  it('counts per account, not per address: an office NAT of single failures is no brute force', () => {
    const events = Array.from({ length: 30 }, (_, i) =>
      ev({ outcome: 'failure', actor: { type: 'user', id: `u${i}` }, time: T0 + i * 1000 }),
    );
    expect(alerts(run(events), id)).toEqual([]);
  });
});

describe('auth.password_spraying', () => {
  const id = 'auth.password_spraying';
  const spray = (n: number, ip = '203.0.113.7') =>
    Array.from({ length: n }, (_, i) =>
      ev({
        outcome: 'failure',
        actor: { type: 'user', id: `victim${i}` },
        context: { ip },
        time: T0 + i * MIN,
      }),
    );
  it('raises an alert for more than ten accounts failing from one address in 30 minutes', () => {
    const [a] = alerts(run(spray(11)), id);
    expect(a?.entity).toEqual({ 'context.ip': '203.0.113.7' });
    expect(a?.evidence['distinct']).toBe(11);
    // the accounts tried, for the analyst (capped at 20 values)
    expect((a?.evidence['values'] as Record<string, string[]>)['actor.id']).toHaveLength(11);
  });
  it('stays silent at ten accounts (the threshold is "more than 10")', () => {
    expect(alerts(run(spray(10)), id)).toEqual([]);
  });
  it('survives an office NAT: hundreds of users, a few typos', () => {
    const office = '198.51.100.1';
    const events: DetectionEvent[] = [];
    for (let i = 0; i < 300; i++) {
      const actor = { type: 'user', id: `staff${i}` };
      const time = T0 + i * 5000;
      if (i % 40 === 0)
        events.push(ev({ outcome: 'failure', actor, context: { ip: office }, time }));
      events.push(ev({ actor, context: { ip: office }, time: time + 2000 }));
    }
    expect(alerts(run(events), id)).toEqual([]);
  });
  it('survives a busy office NAT with more than ten typos in half an hour (failure share)', () => {
    const office = '198.51.100.2';
    const events: DetectionEvent[] = [];
    for (let i = 0; i < 300; i++) {
      const actor = { type: 'user', id: `staff${i}` };
      const time = T0 + i * 5000; // 25 minutes of arrivals
      if (i % 20 === 0)
        events.push(ev({ outcome: 'failure', actor, context: { ip: office }, time }));
      events.push(ev({ actor, context: { ip: office }, time: time + 2000 }));
    }
    const failing = new Set(events.filter((e) => e.outcome === 'failure').map((e) => e.actor.id));
    expect(failing.size).toBeGreaterThan(10);
    expect(alerts(run(events), id)).toEqual([]);
    expect(alerts(run(events), 'auth.credential_stuffing')).toEqual([]);
  });
  it('is silenced for a tenant that allow-lists its office range', () => {
    const events = spray(15, '198.51.100.77');
    expect(alerts(run(events), id)).toHaveLength(1);
    const overrides = { tenants: { t1: { allow: { cidrs: ['198.51.100.0/24'] } } } };
    expect(alerts(run(events, { overrides }), id)).toEqual([]);
  });
  it('does not count one account failing many times as many accounts', () => {
    expect(alerts(run(failures(30, { context: { ip: '203.0.113.9' } })), id)).toEqual([]);
  });
});

describe('auth.credential_stuffing', () => {
  const id = 'auth.credential_stuffing';
  const stuffing = (accounts: number, sources: number) =>
    Array.from({ length: accounts }, (_, i) =>
      ev({
        outcome: 'failure',
        actor: { type: 'user', id: `acct${i}` },
        context: { ip: `203.0.113.${i % sources}` },
        time: T0 + i * 10_000,
      }),
    );
  it('raises an alert for twenty accounts from ten or more addresses in 10 minutes', () => {
    const [a] = alerts(run(stuffing(25, 25)), id);
    expect(a?.entity).toEqual({});
    expect(a?.evidence['distinct:context.ip']).toBeGreaterThanOrEqual(10);
  });
  it('survives a busy morning: many accounts failing once among thousands of logins', () => {
    const events: DetectionEvent[] = [];
    for (let i = 0; i < 2000; i++) {
      const actor = { type: 'user', id: `emp${i}` };
      const context = { ip: `198.51.100.${i % 200}` };
      const time = T0 + i * 300; // 10 minutes
      if (i % 40 === 0) events.push(ev({ outcome: 'failure', actor, context, time }));
      events.push(ev({ actor, context, time: time + 100 }));
    }
    expect(alerts(run(events), id)).toEqual([]);
  });
  it('is not one office NAT (one address), nor nineteen accounts', () => {
    expect(alerts(run(stuffing(25, 1)), id)).toEqual([]);
    expect(alerts(run(stuffing(19, 19)), id)).toEqual([]);
    expect(alerts(run(stuffing(25, 9)), id)).toEqual([]);
  });
});

describe('auth.success_after_failures', () => {
  const id = 'auth.success_after_failures';
  it('raises an alert for a success after ten failures within the hour', () => {
    const [a] = alerts(run([...failures(10), ev({ time: T0 + 10 * MIN })]), id);
    expect(a?.evidence['steps']).toEqual({ failed_login: 10, success: 1 });
  });
  it('ignores typos, a success before the failures, and failures more than an hour before', () => {
    expect(alerts(run([...failures(3), ev({ time: T0 + MIN })]), id)).toEqual([]);
    expect(alerts(run([ev({ time: T0 - MIN }), ...failures(10)]), id)).toEqual([]);
    // Failures in the first 3 minutes, success at 61 min: the hour holds only 9 of them.
    expect(alerts(run([...failures(10), ev({ time: T0 + 61 * MIN })]), id)).toEqual([]);
  });
});

describe('auth.mfa_fatigue', () => {
  const id = 'auth.mfa_fatigue';
  const denies = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      ev({ action: 'mfa.challenge', outcome: 'denied', time: T0 + i * 30_000 }),
    );
  it('raises an alert for more than five denied challenges, then a success', () => {
    const events = [...denies(6), ev({ action: 'mfa.challenge', time: T0 + 4 * MIN })];
    expect(alerts(run(events), id)).toHaveLength(1);
  });
  it('stays silent at five denials, or when no success follows (a broken app)', () => {
    expect(alerts(run([...denies(5), ev({ time: T0 + 4 * MIN })]), id)).toEqual([]);
    expect(alerts(run(denies(12)), id)).toEqual([]);
  });
});

describe('auth.impossible_travel', () => {
  const id = 'auth.impossible_travel';
  const paris = ev({ time: T0 });
  it('raises an alert for Paris then New York an hour later, with distance and speed', () => {
    const ny = ev({ time: T0 + HOUR, context: { ip: '198.51.100.50' }, enrichment: NEW_YORK });
    const [a] = alerts(run([paris, ny]), id);
    expect(a?.evidence['distanceKm']).toBeGreaterThan(5800);
    expect(a?.evidence['distanceKm']).toBeLessThan(5900);
    expect(a?.evidence['speedKmh']).toBeGreaterThan(5000);
    expect(a?.eventIds).toEqual([paris.id, ny.id]);
  });
  it('finds it when the events arrive out of order', () => {
    const ny = ev({ time: T0 + HOUR, context: { ip: '198.51.100.50' }, enrichment: NEW_YORK });
    expect(alerts(run([ny, paris]), id)).toHaveLength(1);
  });
  it('allows real travel, a GeoIP move of one address, relay networks and short hops', () => {
    const flight = ev({
      time: T0 + 9 * HOUR,
      context: { ip: '198.51.100.50' },
      enrichment: NEW_YORK,
    });
    expect(alerts(run([paris, flight]), id)).toEqual([]);
    const sameIp = ev({ time: T0 + HOUR, enrichment: NEW_YORK });
    expect(alerts(run([paris, sameIp]), id)).toEqual([]);
    const relay = ev({
      time: T0 + HOUR,
      context: { ip: '172.224.0.9' },
      enrichment: { ...NEW_YORK, asn: { number: 36183, org: 'Akamai (Private Relay)' } },
    });
    expect(alerts(run([paris, relay]), id)).toEqual([]);
    const lyon = ev({ time: T0 + 10 * MIN, context: { ip: '192.0.2.99' }, enrichment: LYON });
    expect(alerts(run([paris, lyon]), id)).toEqual([]);
  });
});

describe('auth.new_country and auth.new_asn', () => {
  const baseline = new MemoryBaseline().learn('countries', 'u1', 'FR').learn('asns', 'u1', 3215);
  const fromNy = ev({ time: T0 + DAY, enrichment: NEW_YORK });
  it('raises alerts for an account with history logging in from a new country and network', () => {
    const updates = run([fromNy], { baseline });
    expect(alerts(updates, 'auth.new_country')[0]?.entity).toEqual({ 'actor.id': 'u1' });
    expect(alerts(updates, 'auth.new_asn')).toHaveLength(1);
  });
  it('stays silent for usual places, accounts without history, unknown places, service accounts', () => {
    expect(run([ev({ enrichment: PARIS })], { baseline })).toEqual([]);
    const newcomer = ev({ actor: { type: 'user', id: 'u9' }, enrichment: NEW_YORK });
    expect(run([newcomer], { baseline })).toEqual([]);
    expect(run([ev({ enrichment: {} })], { baseline })).toEqual([]);
    const overrides = { tenants: { t1: { allow: { serviceAccounts: ['u1'] } } } };
    expect(run([fromNy], { baseline, overrides })).toEqual([]);
  });
  it('is silent without a baseline source (cannot tell new from usual)', () => {
    expect(run([fromNy])).toEqual([]);
  });
});

describe('access.privileged_grant and access.self_granted', () => {
  const grant = (role: string, subject: string | undefined, actor: string | undefined = 'u1') =>
    ev({
      action: 'role.assigned',
      category: 'access_change',
      actor: actor === undefined ? { type: 'user' } : { type: 'user', id: actor },
      access: {
        change: 'grant',
        role,
        subject: subject === undefined ? { type: 'user' } : { type: 'user', id: subject },
      },
    });
  it('raises an alert for an admin role granted, keyed by who got it', () => {
    const [a] = alerts(run([grant('org:admin', 'u2')]), 'access.privileged_grant');
    expect(a?.entity).toEqual({ 'access.subject.id': 'u2' });
    expect(alerts(run([grant('Owner', 'u2')]), 'access.privileged_grant')).toHaveLength(1);
  });
  it('ignores ordinary roles, even one whose name contains "admin" inside a word', () => {
    expect(run([grant('billing:viewer', 'u2')])).toEqual([]);
    expect(run([grant('badminton-club', 'u2')])).toEqual([]);
  });
  it('raises a self-grant only when both ids are known and equal', () => {
    expect(alerts(run([grant('editor', 'u1')]), 'access.self_granted')).toHaveLength(1);
    expect(alerts(run([grant('editor', 'u2')]), 'access.self_granted')).toEqual([]);
    // Neither disclosed: absent is never equal to absent.
    expect(alerts(run([grant('editor', undefined, undefined)]), 'access.self_granted')).toEqual([]);
  });
});

describe('auth.mfa_disabled_then_sensitive', () => {
  const id = 'auth.mfa_disabled_then_sensitive';
  const disabled = (time: number) => ev({ action: 'mfa.disabled', time });
  const exported = (time: number) => ev({ action: 'data.exported', category: 'data_access', time });
  it('raises an alert for MFA disabled then an export within the hour', () => {
    expect(alerts(run([disabled(T0), exported(T0 + 20 * MIN)]), id)).toHaveLength(1);
  });
  it('ignores the export first, or an export hours later', () => {
    expect(alerts(run([exported(T0), disabled(T0 + MIN)]), id)).toEqual([]);
    expect(alerts(run([disabled(T0), exported(T0 + 2 * HOUR)]), id)).toEqual([]);
  });
});

describe('api.key_new_source', () => {
  const id = 'api.key_new_source';
  const created = (asn: number) =>
    ev({
      action: 'api_key.created',
      category: 'security',
      target: { type: 'api_key', id: 'k1' },
      enrichment: { ...PARIS, asn: { number: asn } },
    });
  const used = (asn: number | undefined) =>
    ev({
      action: 'api_key.used',
      category: 'api',
      actor: { type: 'api_key', id: 'k1' },
      time: T0 + HOUR,
      enrichment: asn === undefined ? {} : { asn: { number: asn } },
    });
  it('raises an alert for a key used from another network than its creation', () => {
    const [a] = alerts(run([created(3215), used(14061)]), id);
    expect(a?.entity).toEqual({ key: 'k1' });
  });
  it('stays silent for the same network (a CI job minting and using its key) or an unknown one', () => {
    expect(alerts(run([created(16509), used(16509)]), id)).toEqual([]);
    expect(alerts(run([created(3215), used(undefined)]), id)).toEqual([]);
  });
});

describe('auth.concurrent_sessions', () => {
  const id = 'auth.concurrent_sessions';
  const act = (time: number, enrichment = PARIS, fields: Partial<DetectionEvent> = {}) =>
    ev({
      action: 'data.viewed',
      category: 'data_access',
      time,
      context: { ip: enrichment === PARIS ? '192.0.2.10' : '198.51.100.9', sessionId: 's1' },
      enrichment,
      ...fields,
    });
  it('raises an alert for activity from two countries within 15 minutes, and grows it', () => {
    const updates = run([act(T0), act(T0 + 5 * MIN, NEW_YORK), act(T0 + 6 * MIN, NEW_YORK)]);
    const [a, ...rest] = alerts(updates, id);
    expect(rest).toEqual([]);
    expect(a?.entity).toEqual({ 'actor.id': 'u1' });
    expect(a?.eventCount).toBe(3);
    expect((a?.evidence['values'] as Record<string, string[]>)['geo.country']).toEqual([
      'FR',
      'US',
    ]);
  });
  it('counts 15 minutes edges included, and not one second more', () => {
    expect(alerts(run([act(T0), act(T0 + 15 * MIN, NEW_YORK)]), id)).toHaveLength(1);
    expect(alerts(run([act(T0), act(T0 + 15 * MIN + 1000, NEW_YORK)]), id)).toEqual([]);
  });
  it('ignores one country (laptop and phone at home), real travel, relays and events without a session', () => {
    expect(alerts(run([act(T0), act(T0 + MIN, LYON)]), id)).toEqual([]);
    // Paris in the morning, New York eight hours later.
    expect(alerts(run([act(T0), act(T0 + 8 * HOUR, NEW_YORK)]), id)).toEqual([]);
    const relay = { ...NEW_YORK, asn: { number: 36183 } };
    expect(alerts(run([act(T0), act(T0 + MIN, relay)]), id)).toEqual([]);
    const noSession = act(T0 + MIN, NEW_YORK, { context: { ip: '198.51.100.9' } });
    expect(alerts(run([act(T0), noSession]), id)).toEqual([]);
    const failed = act(T0 + MIN, NEW_YORK, { outcome: 'denied' });
    expect(alerts(run([act(T0), failed]), id)).toEqual([]);
  });
  it('leaves service accounts and allow-listed networks out', () => {
    const svc = { type: 'service', id: 'svc' };
    const overrides = { tenants: { t1: { allow: { serviceAccounts: ['svc'] } } } };
    const events = [act(T0, PARIS, { actor: svc }), act(T0 + MIN, NEW_YORK, { actor: svc })];
    expect(alerts(run(events, { overrides }), id)).toEqual([]);
    const vpn = { tenants: { t1: { rules: { [id]: { allow: { asns: [7922] } } } } } };
    expect(alerts(run([act(T0), act(T0 + MIN, NEW_YORK)], { overrides: vpn }), id)).toEqual([]);
  });
});

describe('api.key_outside_allowlist', () => {
  const id = 'api.key_outside_allowlist';
  const overrides = {
    tenants: { t1: { apiKeys: { k1: { cidrs: ['203.0.113.0/24'], asns: [16509] } } } },
  };
  const use = (ip: string | undefined, time = T0, asn = 3215, key = 'k1') =>
    ev({
      action: 'api_key.used',
      category: 'api',
      actor: { type: 'api_key', id: key },
      time,
      context: ip === undefined ? {} : { ip },
      enrichment: { ...PARIS, asn: { number: asn } },
    });
  it('raises an alert for a key used from outside its allow-list, and grows it', () => {
    const updates = run([use('198.51.100.7'), use('198.51.100.7', T0 + 10 * MIN)], { overrides });
    const [a, ...rest] = alerts(updates, id);
    expect(rest).toEqual([]);
    expect(a?.entity).toEqual({ 'actor.id': 'k1' });
    expect(a?.eventCount).toBe(2);
  });
  it('stays silent inside the list (edge addresses of the block, a listed ASN)', () => {
    const inside = [use('203.0.113.0'), use('203.0.113.255'), use('198.51.100.7', T0, 16509)];
    expect(alerts(run(inside, { overrides }), id)).toEqual([]);
    // Just outside the block.
    expect(alerts(run([use('203.0.114.0')], { overrides }), id)).toHaveLength(1);
  });
  it('does not judge keys without a list, undisclosed addresses, or a caller-set verdict', () => {
    expect(alerts(run([use('198.51.100.7', T0, 3215, 'k2')], { overrides }), id)).toEqual([]);
    expect(alerts(run([use(undefined)], { overrides }), id)).toEqual([]);
    // A producer cannot set the engine's derived field itself.
    const forged = {
      ...use('203.0.113.5'),
      derived: { apikey: { allowlist: 'outside' as const } },
    };
    expect(alerts(run([forged], { overrides }), id)).toEqual([]);
    expect(alerts(run([forged]), id)).toEqual([]);
  });
  it('opens a new alert after a quiet hour (one per hour of use, not one per call)', () => {
    const events = [use('198.51.100.7'), use('198.51.100.7', T0 + 3 * HOUR)];
    expect(alerts(run(events, { overrides }), id)).toHaveLength(2);
  });
});

describe('data.mass_export', () => {
  const id = 'data.mass_export';
  const exports = (n: number, actor: DetectionEvent['actor']) =>
    Array.from({ length: n }, (_, i) =>
      ev({ action: 'data.exported', category: 'data_access', actor, time: T0 + i * 30_000 }),
    );
  it('raises an alert for a hundred exports by one person in an hour', () => {
    expect(alerts(run(exports(100, { type: 'user', id: 'u1' })), id)).toHaveLength(1);
  });
  it('ignores 99, and service accounts doing bulk work', () => {
    expect(alerts(run(exports(99, { type: 'user', id: 'u1' })), id)).toEqual([]);
    expect(alerts(run(exports(300, { type: 'service', id: 'etl' })), id)).toEqual([]);
    const overrides = { tenants: { t1: { allow: { serviceAccounts: ['sync-bot'] } } } };
    expect(alerts(run(exports(300, { type: 'user', id: 'sync-bot' }), { overrides }), id)).toEqual(
      [],
    );
  });
});

describe('auth.dormant_account', () => {
  const id = 'auth.dormant_account';
  it('raises an alert for a login 60 days after the last activity, not after 30 or with none', () => {
    const at = T0 + 60 * DAY;
    const dormant = new MemoryBaseline().seen('u1', T0);
    expect(alerts(run([ev({ time: at })], { baseline: dormant }), id)).toHaveLength(1);
    const recent = new MemoryBaseline().seen('u1', at - 30 * DAY);
    expect(alerts(run([ev({ time: at })], { baseline: recent }), id)).toEqual([]);
    expect(alerts(run([ev({ time: at })], { baseline: new MemoryBaseline() }), id)).toEqual([]);
  });
});

describe('access.denied_burst', () => {
  const id = 'access.denied_burst';
  const denied = (n: number, action = 'data.viewed') =>
    Array.from({ length: n }, (_, i) =>
      ev({ action, category: 'data_access', outcome: 'denied', time: T0 + i * 10_000 }),
    );
  it('raises an alert for twenty denials in 10 minutes, not nineteen, not login refusals', () => {
    expect(alerts(run(denied(20)), id)).toHaveLength(1);
    expect(alerts(run(denied(19)), id)).toEqual([]);
    expect(alerts(run(denied(40, 'user.login')), id)).toEqual([]);
  });
});

describe('admin.off_hours', () => {
  const id = 'admin.off_hours';
  const change = (utc: number) =>
    ev({
      action: 'config.changed',
      category: 'admin',
      time: utc,
      target: { type: 'org', id: 'o' },
    });
  const paris = { tenants: { t1: { timeZone: 'Europe/Paris' } } };
  // Tuesday 2026-01-06, 21:30 UTC = 22:30 in Paris (CET) = 16:30 in New York (EST).
  const late = Date.UTC(2026, 0, 6, 21, 30);
  it("raises an alert for a change at night in the tenant's time zone, and at the weekend", () => {
    expect(alerts(run([change(late)], { overrides: paris }), id)).toHaveLength(1);
    const saturday = Date.UTC(2026, 0, 10, 10, 0);
    expect(alerts(run([change(saturday)], { overrides: paris }), id)).toHaveLength(1);
  });
  it('uses the time zone: the same instant is working hours in New York', () => {
    const ny = { tenants: { t1: { timeZone: 'America/New_York' } } };
    expect(alerts(run([change(late)], { overrides: ny }), id)).toEqual([]);
  });
  it('ignores working hours and night-shift administrators whose usual hours are at night', () => {
    expect(alerts(run([change(Date.UTC(2026, 0, 6, 9, 0))], { overrides: paris }), id)).toEqual([]);
    const nightShift = new MemoryBaseline().learn('hours', 'u1', 21, 22, 23, 0, 1, 2, 3, 4, 5);
    expect(alerts(run([change(late)], { overrides: paris, baseline: nightShift }), id)).toEqual([]);
  });
});

describe('integrity.chain_finding', () => {
  const id = 'integrity.chain_finding';
  it('raises one alert per stream that grows with the finding and its security event', () => {
    const flagged = ev({ action: 'data.viewed', stream: 's1', flags: ['gap'] });
    const security = ev({
      action: 'integrity.chain_gap',
      category: 'security',
      outcome: 'failure',
      actor: { type: 'system', id: 'vigil-sink' },
      target: { type: 'stream', id: 's1' },
      stream: 'vigil/integrity/p0',
      time: T0 + 1000,
    });
    const updates = run([flagged, security]);
    const [a, ...rest] = alerts(updates, id);
    expect(rest).toEqual([]);
    expect(a?.entity).toEqual({ stream: 's1' });
    expect(a?.eventIds).toEqual([flagged.id, security.id]);
  });
  it('is not silenced by allow-lists, and ignores events without findings', () => {
    const overrides = { tenants: { t1: { allow: { actors: ['u1'] } } } };
    const flagged = ev({ stream: 's1', flags: ['fork'] });
    expect(alerts(run([flagged], { overrides }), id)).toHaveLength(1);
    expect(alerts(run([ev({ stream: 's1', flags: ['backfill'] })]), id)).toEqual([]);
  });
});

/** One positive case per rule, for the checks every rule must pass. */
const POSITIVES: Record<
  string,
  { events: () => DetectionEvent[]; options?: Partial<EngineOptions> }
> = {
  'auth.brute_force_account': { events: () => failures(12) },
  'auth.password_spraying': {
    events: () =>
      Array.from({ length: 12 }, (_, i) =>
        ev({
          outcome: 'failure',
          actor: { type: 'user', id: `v${i}` },
          context: { ip: '203.0.113.7' },
          time: T0 + i * MIN,
        }),
      ),
  },
  'auth.credential_stuffing': {
    events: () =>
      Array.from({ length: 22 }, (_, i) =>
        ev({
          outcome: 'failure',
          actor: { type: 'user', id: `a${i}` },
          context: { ip: `203.0.113.${i}` },
          time: T0 + i * 10_000,
        }),
      ),
  },
  'auth.success_after_failures': { events: () => [...failures(10), ev({ time: T0 + 5 * MIN })] },
  'auth.mfa_fatigue': {
    events: () => [
      ...Array.from({ length: 6 }, (_, i) =>
        ev({ action: 'mfa.challenge', outcome: 'denied', time: T0 + i * 30_000 }),
      ),
      ev({ action: 'mfa.challenge', time: T0 + 4 * MIN }),
    ],
  },
  'auth.impossible_travel': {
    events: () => [
      ev(),
      ev({ time: T0 + HOUR, context: { ip: '198.51.100.50' }, enrichment: NEW_YORK }),
    ],
  },
  'auth.new_country': {
    events: () => [ev({ enrichment: NEW_YORK }), ev({ time: T0 + MIN, enrichment: NEW_YORK })],
    options: { baseline: new MemoryBaseline().learn('countries', 'u1', 'FR') },
  },
  'auth.new_asn': {
    events: () => [ev({ enrichment: NEW_YORK })],
    options: { baseline: new MemoryBaseline().learn('asns', 'u1', 3215) },
  },
  'auth.dormant_account': {
    events: () => [ev({ time: T0 + 60 * DAY })],
    options: { baseline: new MemoryBaseline().seen('u1', T0) },
  },
  'auth.mfa_disabled_then_sensitive': {
    events: () => [
      ev({ action: 'mfa.disabled' }),
      ev({ action: 'api_key.created', time: T0 + 5 * MIN }),
    ],
  },
  'access.privileged_grant': {
    events: () => [
      ev({
        action: 'access.granted',
        access: { change: 'grant', permission: 'org.admin', subject: { type: 'user', id: 'u2' } },
      }),
    ],
  },
  'access.self_granted': {
    events: () => [
      ev({
        action: 'role.assigned',
        access: { change: 'grant', role: 'editor', subject: { type: 'user', id: 'u1' } },
      }),
    ],
  },
  'access.denied_burst': {
    events: () =>
      Array.from({ length: 21 }, (_, i) =>
        ev({ action: 'api.request', outcome: 'denied', time: T0 + i * 5000 }),
      ),
  },
  'api.key_new_source': {
    events: () => [
      ev({ action: 'api_key.created', target: { type: 'api_key', id: 'k9' } }),
      ev({
        action: 'api_key.used',
        actor: { type: 'api_key', id: 'k9' },
        time: T0 + 2 * HOUR,
        enrichment: NEW_YORK,
      }),
    ],
  },
  'auth.concurrent_sessions': {
    events: () => [
      ev({ action: 'data.viewed', context: { ip: '192.0.2.10', sessionId: 's1' } }),
      ev({
        action: 'data.viewed',
        time: T0 + 4 * MIN,
        context: { ip: '198.51.100.9', sessionId: 's1' },
        enrichment: NEW_YORK,
      }),
    ],
  },
  'api.key_outside_allowlist': {
    events: () => [
      ev({ action: 'api_key.used', actor: { type: 'api_key', id: 'k1' } }),
      ev({ action: 'api_key.used', actor: { type: 'api_key', id: 'k1' }, time: T0 + 5 * MIN }),
    ],
    options: { overrides: { tenants: { t1: { apiKeys: { k1: { ips: ['203.0.113.1'] } } } } } },
  },
  'data.mass_export': {
    events: () =>
      Array.from({ length: 100 }, (_, i) => ev({ action: 'data.exported', time: T0 + i * 20_000 })),
  },
  'admin.off_hours': {
    events: () => [ev({ action: 'config.changed', category: 'admin', time: T0 + 12 * HOUR })],
  },
  'integrity.chain_finding': {
    events: () => [ev({ stream: 's1', flags: ['gap'] }), ev({ stream: 's1', flags: ['fork'] })],
  },
};

describe.each(RULES.map((r) => r.id))('rule %s', (id) => {
  const positive = POSITIVES[id];
  it('has a positive case that raises exactly one alert of this rule', () => {
    expect(positive, 'add a positive case to POSITIVES').toBeDefined();
    expect(alerts(run(positive!.events(), positive!.options), id)).toHaveLength(1);
  });
  it('raises the same alerts after a restart anywhere in the window', () => {
    const events = positive!.events();
    const once = run(events, positive!.options);
    for (let cut = 1; cut < events.length; cut++) {
      const a = new DetectionEngine({ rules: RULES, ...positive!.options });
      const before = events.slice(0, cut).flatMap((e) => a.process(e));
      const b = new DetectionEngine({ rules: RULES, ...positive!.options });
      b.restore(JSON.parse(JSON.stringify(a.snapshot())) as EngineSnapshot);
      expect([...before, ...events.slice(cut).flatMap((e) => b.process(e))]).toEqual(once);
    }
  });
  it('still raises one alert when the events arrive in reverse order within the lateness bound', () => {
    const events = positive!.events().reverse();
    expect(alerts(run(events, positive!.options), id)).toHaveLength(1);
  });
  it('counts events behind the watermark as dropped and raises nothing', () => {
    const engine = new DetectionEngine({ rules: RULES, ...positive!.options });
    const events = positive!.events();
    engine.advanceWatermark(Math.max(...events.map((e) => e.time)) + HOUR);
    expect(events.flatMap((e) => engine.process(e))).toEqual([]);
    expect(engine.stats().droppedLate).toBe(events.length);
  });
});
