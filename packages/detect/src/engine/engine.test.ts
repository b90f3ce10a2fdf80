import { describe, expect, it } from 'vitest';
import { DAY, HOUR, MIN, MemoryBaseline, NEW_YORK, SYDNEY, T0, ev } from '../detect.testkit.js';
import { DetectError } from '../errors.js';
import type { DetectionEvent } from '../event.js';
import { builtinRules } from '../pack.js';
import { loadRules } from '../rules/load.js';
import { DetectionEngine, type AlertUpdate, type EngineSnapshot } from './engine.js';

const PACK = builtinRules();

const COUNT_RULE = loadRules([
  {
    file: 'count.yaml',
    text: `
id: test.count
title: three failures
description: three failed logins of one account in 5 minutes
severity: low
attack: [T1110]
source: test
detection:
  fail: { action: user.login, outcome: failure }
  condition: fail
correlation:
  type: event_count
  group-by: [actor.id]
  timespan: 5m
  condition: { gte: 3 }
`,
  },
]);

function fail(id: string, time: number, tenant = 't1'): DetectionEvent {
  return ev({ tenant, outcome: 'failure', actor: { type: 'user', id }, time });
}

/** A mixed day of traffic with several attacks, for restart tests. */
function scenario(): DetectionEvent[] {
  const events: DetectionEvent[] = [];
  for (let i = 0; i < 60; i++) {
    // background: users logging in, some typos
    const u = { type: 'user', id: `user${i % 12}` };
    if (i % 7 === 0) events.push(ev({ outcome: 'failure', actor: u, time: T0 + i * MIN }));
    events.push(ev({ actor: u, time: T0 + i * MIN + 1000 }));
  }
  // brute force on victim, growing across the middle of the stream
  for (let i = 0; i < 16; i++) {
    events.push(
      ev({
        outcome: 'failure',
        actor: { type: 'user', id: 'victim' },
        time: T0 + 20 * MIN + i * 15_000,
      }),
    );
  }
  // spraying from one address
  for (let i = 0; i < 14; i++) {
    events.push(
      ev({
        outcome: 'failure',
        actor: { type: 'user', id: `sprayed${i}` },
        context: { ip: '203.0.113.66' },
        time: T0 + 21 * MIN + i * 40_000,
      }),
    );
  }
  // impossible travel of user3 and a new country for him
  events.push(
    ev({
      actor: { type: 'user', id: 'user3' },
      time: T0 + 40 * MIN,
      context: { ip: '198.51.100.3' },
      enrichment: NEW_YORK,
    }),
  );
  events.push(
    ev({
      actor: { type: 'user', id: 'user3' },
      time: T0 + 50 * MIN,
      context: { ip: '198.51.100.4' },
      enrichment: SYDNEY,
    }),
  );
  // a second tenant with the same user ids: its state is its own
  for (let i = 0; i < 10; i++) events.push(fail('victim', T0 + 22 * MIN + i * 1000, 't2'));
  // arrival order: mostly by time, with some shuffling within a minute (out of order)
  return events
    .map((e, i) => ({ e, k: e.time + ((i * 7919) % 45_000) }))
    .sort((a, b) => a.k - b.k || a.e.id.localeCompare(b.e.id))
    .map((x) => x.e);
}

const baseline = () => new MemoryBaseline().learn('countries', 'user3', 'FR');

function runAll(engine: DetectionEngine, events: readonly DetectionEvent[]): AlertUpdate[] {
  const out: AlertUpdate[] = [];
  for (const e of events) {
    out.push(...engine.process(e));
    engine.advanceWatermark(e.time - MIN); // the caller's watermark trails the input
  }
  return out;
}

describe('DetectionEngine windows', () => {
  it('counts in event time: an out-of-order event inside the window completes it', () => {
    const engine = new DetectionEngine({ rules: COUNT_RULE });
    expect(engine.process(fail('a', T0 + 4 * MIN))).toEqual([]);
    expect(engine.process(fail('a', T0))).toEqual([]);
    const [u] = engine.process(fail('a', T0 + 2 * MIN));
    expect(u?.status).toBe('new');
    expect(u?.alert.firstEventTime).toBe(T0);
    expect(u?.alert.lastEventTime).toBe(T0 + 4 * MIN);
  });

  it('holds events at most the timespan apart (edges included)', () => {
    const edge = new DetectionEngine({ rules: COUNT_RULE });
    edge.process(fail('a', T0));
    edge.process(fail('a', T0 + MIN));
    expect(edge.process(fail('a', T0 + 5 * MIN))).toHaveLength(1);
    const past = new DetectionEngine({ rules: COUNT_RULE });
    past.process(fail('a', T0));
    past.process(fail('a', T0 + MIN));
    expect(past.process(fail('a', T0 + 5 * MIN + 1))).toEqual([]);
  });

  it('drops events older than watermark − lateness, counts them, and does not crash', () => {
    const engine = new DetectionEngine({ rules: COUNT_RULE, latenessMs: MIN });
    engine.advanceWatermark(T0 + 10 * MIN);
    expect(engine.process(fail('a', T0 + 8 * MIN))).toEqual([]);
    expect(engine.process(fail('a', T0 + 9 * MIN + 1))).toEqual([]);
    expect(engine.stats().droppedLate).toBe(1);
    // within the bound, late events still count
    engine.process(fail('a', T0 + 9 * MIN + 2));
    expect(engine.process(fail('a', T0 + 9 * MIN + 3))).toHaveLength(1);
  });

  it('expires state behind the watermark, so memory follows the window, not the history', () => {
    const engine = new DetectionEngine({ rules: COUNT_RULE, latenessMs: MIN });
    for (let i = 0; i < 100; i++) engine.process(fail(`u${i}`, T0 + i * 1000));
    expect(engine.snapshot().state[0]?.[1][0]?.[1]).toHaveLength(100);
    engine.advanceWatermark(T0 + HOUR);
    expect(engine.snapshot().state[0]?.[1][0]?.[1] ?? []).toHaveLength(0);
  });

  it('caps entities per rule and events per entity, counting what it evicts', () => {
    const engine = new DetectionEngine({
      rules: COUNT_RULE,
      maxGroupsPerRule: 2,
      maxEntriesPerGroup: 4,
    });
    engine.process(fail('a', T0));
    engine.process(fail('b', T0));
    engine.process(fail('c', T0)); // evicts a, the least recently updated
    for (let i = 0; i < 6; i++) engine.process(fail('c', T0 + i + 1));
    const s = engine.stats();
    expect(s.evictedGroups).toBe(1);
    expect(s.evictedEntries).toBe(3);
  });

  it('keys state by tenant and entity, and never groups absent values together', () => {
    const engine = new DetectionEngine({ rules: COUNT_RULE });
    engine.process(fail('a', T0, 't1'));
    engine.process(fail('a', T0, 't2'));
    expect(engine.process(fail('a', T0 + 1, 't1'))).toEqual([]);
    const anonymous = Array.from({ length: 10 }, (_, i) =>
      ev({ outcome: 'failure', actor: { type: 'user' }, time: T0 + i }),
    );
    expect(anonymous.flatMap((e) => engine.process(e))).toEqual([]);
  });

  it('grows one alert per attack and opens a new one after a quiet timespan', () => {
    const engine = new DetectionEngine({ rules: COUNT_RULE });
    const first = [0, 1, 2, 3].flatMap((i) => engine.process(fail('a', T0 + i * MIN)));
    expect(first.map((u) => u.status)).toEqual(['new', 'updated']);
    expect(first[1]?.alert.eventCount).toBe(4);
    expect(first[1]?.alert.version).toBe(2);
    const later = [0, 1, 2].flatMap((i) => engine.process(fail('a', T0 + HOUR + i * MIN)));
    expect(later.map((u) => u.status)).toEqual(['new']);
    expect(later[0]?.alert.key).not.toBe(first[0]?.alert.key);
  });

  it('remembers the alerts it raised after their entity was evicted: a replay raises none again', () => {
    const engine = new DetectionEngine({ rules: COUNT_RULE, maxGroupsPerRule: 1 });
    const attack = [0, 1, 2].map((i) => fail('a', T0 + i * 1000));
    const first = attack.flatMap((e) => engine.process(e));
    engine.process(fail('b', T0 + 5000)); // evicts a's window and its open alert
    const again = attack.flatMap((e) => engine.process(e));
    expect(first.map((u) => u.status)).toEqual(['new']);
    expect(again.map((u) => u.status)).toEqual(['updated']);
    expect(again[0]?.alert.key).toBe(first[0]?.alert.key);
  });

  it('counts a redelivered event once', () => {
    const engine = new DetectionEngine({ rules: COUNT_RULE });
    const e = fail('a', T0);
    engine.process(e);
    engine.process(e);
    expect(engine.process(e)).toEqual([]);
  });

  it('caps the event ids of an alert but counts every event', () => {
    const engine = new DetectionEngine({ rules: COUNT_RULE, maxEventIdsPerAlert: 5 });
    const out = Array.from({ length: 20 }, (_, i) =>
      engine.process(fail('a', T0 + i * 1000)),
    ).flat();
    const last = out[out.length - 1]?.alert;
    expect(last?.eventIds).toHaveLength(5);
    expect(last?.eventCount).toBe(20);
  });
});

describe('DetectionEngine distinct counts', () => {
  const [rule] = loadRules([
    {
      file: 'distinct.yaml',
      text: `
id: test.distinct
title: three accounts from one address
description: three distinct accounts failing from one address within a minute
severity: low
attack: [T1110.003]
source: test
detection:
  fail: { action: user.login, outcome: failure }
  condition: fail
correlation:
  type: value_count
  group-by: [context.ip]
  timespan: 1m
  condition: { gte: 3, field: actor.id }
`,
    },
  ]);

  it('agrees with a naive count on random arrivals, in order or not, across evictions', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const events: DetectionEvent[] = [];
      let t = T0;
      for (let i = 0; i < 30; i++) {
        t += rand(3) === 0 ? rand(90_000) : rand(20_000);
        const late = rand(5) === 0 ? rand(20_000) : 0;
        events.push(
          ev({ outcome: 'failure', actor: { type: 'user', id: `a${rand(12)}` }, time: t - late }),
        );
      }
      const engine = new DetectionEngine({
        rules: [rule!],
        maxEntriesPerGroup: 8,
        latenessMs: HOUR,
      });
      const seen: DetectionEvent[] = [];
      events.forEach((e, i) => {
        const got = engine.process(e).length > 0;
        seen.push(e);
        // naive: the newest 8 by time are kept; some 1-minute window holds e and 3 accounts
        const kept = [...seen]
          .sort((x, y) => x.time - y.time || x.id.localeCompare(y.id))
          .slice(-8);
        const want =
          kept.includes(e) &&
          kept.some((s) => {
            if (s.time > e.time || e.time - s.time > MIN) return false;
            const inWindow = kept.filter((k) => k.time >= s.time && k.time <= s.time + MIN);
            return new Set(inWindow.map((k) => k.actor.id)).size >= 3;
          });
        expect(got, `round ${round} event ${i}`).toBe(want);
        if (i % 10 === 9) engine.advanceWatermark(e.time);
      });
    }
  });
});

describe('DetectionEngine checkpoints', () => {
  it('after a restart in the middle raises the same alerts as one pass, none twice', () => {
    const events = scenario();
    const once = runAll(new DetectionEngine({ rules: PACK, baseline: baseline() }), events);
    expect(new Set(once.map((u) => u.alert.ruleId))).toEqual(
      new Set([
        'auth.brute_force_account',
        'auth.password_spraying',
        'auth.impossible_travel',
        'auth.new_country',
      ]),
    );
    // Every cut point: inside the brute force, the spraying, between the two travel logins …
    for (let cut = 1; cut < events.length; cut += 3) {
      const a = new DetectionEngine({ rules: PACK, baseline: baseline() });
      const before = runAll(a, events.slice(0, cut));
      // The checkpoint goes through JSON, as a file or a store row would.
      const saved = JSON.parse(JSON.stringify(a.snapshot())) as EngineSnapshot;
      const b = new DetectionEngine({ rules: PACK, baseline: baseline() });
      b.restore(saved);
      const after = runAll(b, events.slice(cut));
      expect([...before, ...after]).toEqual(once);
    }
    const raised = once.filter((u) => u.status === 'new').map((u) => u.alert.key);
    expect(new Set(raised).size).toBe(raised.length);
  });

  it('restores to the same output when caps evict entities (eviction order is state too)', () => {
    const events = scenario();
    const options = { rules: PACK, baseline: baseline(), maxGroupsPerRule: 4, latenessMs: 0 };
    const once = runAll(new DetectionEngine(options), events);
    expect(once.length).toBeGreaterThan(0);
    for (let cut = 1; cut < events.length; cut += 2) {
      const a = new DetectionEngine(options);
      const before = runAll(a, events.slice(0, cut));
      const b = new DetectionEngine(options);
      b.restore(JSON.parse(JSON.stringify(a.snapshot())) as EngineSnapshot);
      expect([...before, ...runAll(b, events.slice(cut))], `cut ${cut}`).toEqual(once);
    }
  });

  it('after a restart from an older checkpoint, replaying events raises nothing new', () => {
    const events = scenario();
    const a = new DetectionEngine({ rules: PACK, baseline: baseline() });
    const cut = Math.floor(events.length / 2);
    runAll(a, events.slice(0, cut - 40));
    const older = JSON.parse(JSON.stringify(a.snapshot())) as EngineSnapshot;
    const firstRun = runAll(a, events.slice(cut - 40, cut));
    const b = new DetectionEngine({ rules: PACK, baseline: baseline() });
    b.restore(older);
    // at-least-once delivery: the 40 events since the checkpoint come again, then the rest
    const replay = runAll(b, events.slice(cut - 40, cut));
    expect(replay).toEqual(firstRun);
    const once = runAll(new DetectionEngine({ rules: PACK, baseline: baseline() }), events);
    const rest = runAll(b, events.slice(cut));
    const total = [
      ...runAll(new DetectionEngine({ rules: PACK, baseline: baseline() }), events.slice(0, cut)),
      ...rest,
    ];
    expect(total).toEqual(once);
  });

  it('refuses a checkpoint of another format or of rules it does not have', () => {
    const engine = new DetectionEngine({ rules: COUNT_RULE });
    expect(() => engine.restore({ format: 'x' } as unknown as EngineSnapshot)).toThrow(DetectError);
    const other = new DetectionEngine({ rules: PACK }).snapshot();
    expect(() => engine.restore(other)).toThrow(/rules not loaded/);
  });

  it('is deterministic: the same input gives byte-identical output', () => {
    const events = scenario();
    const a = JSON.stringify(
      runAll(new DetectionEngine({ rules: PACK, baseline: baseline() }), events),
    );
    const b = JSON.stringify(
      runAll(new DetectionEngine({ rules: PACK, baseline: baseline() }), events),
    );
    expect(a).toBe(b);
  });
});

describe('DetectionEngine overrides', () => {
  const brute = (n: number, fields: Partial<DetectionEvent> = {}) =>
    Array.from({ length: n }, (_, i) => ev({ outcome: 'failure', time: T0 + i * 1000, ...fields }));
  const raised = (engine: DetectionEngine, events: readonly DetectionEvent[]) =>
    events
      .flatMap((e) => engine.process(e))
      .filter((u) => u.status === 'new')
      .map((u) => u.alert.ruleId);

  it('takes a tenant threshold, leaves other tenants on the pack value, and disables rules', () => {
    const overrides = { tenants: { t1: { thresholds: { 'auth.brute_force_account': 3 } } } };
    expect(raised(new DetectionEngine({ rules: PACK, overrides }), brute(3))).toEqual([
      'auth.brute_force_account',
    ]);
    expect(
      raised(new DetectionEngine({ rules: PACK, overrides }), brute(3, { tenant: 't2' })),
    ).toEqual([]);
    const off = { defaults: { disable: ['auth.brute_force_account'] } };
    expect(raised(new DetectionEngine({ rules: PACK, overrides: off }), brute(20))).toEqual([]);
  });

  it('maps an application action name onto the catalogue', () => {
    const overrides = {
      tenants: {
        t1: { actions: { 'auth.signin_failed': { action: 'user.login', outcome: 'failure' } } },
      },
    };
    const events = brute(10, { action: 'auth.signin_failed', outcome: 'success' });
    expect(raised(new DetectionEngine({ rules: PACK }), events)).toEqual([]);
    expect(raised(new DetectionEngine({ rules: PACK, overrides }), events)).toEqual([
      'auth.brute_force_account',
    ]);
  });

  it('applies allow-lists of addresses, networks and actors', () => {
    const events = brute(10, { context: { ip: '2001:db8::5' } });
    for (const allow of [
      { ips: ['2001:db8::5'] },
      { cidrs: ['2001:db8::/32'] },
      { asns: [3215] },
      { actors: ['u1'] },
    ]) {
      const overrides = { tenants: { t1: { rules: { 'auth.brute_force_account': { allow } } } } };
      expect(
        raised(new DetectionEngine({ rules: PACK, overrides }), events),
        JSON.stringify(allow),
      ).toEqual([]);
    }
    expect(raised(new DetectionEngine({ rules: PACK }), events)).toEqual([
      'auth.brute_force_account',
    ]);
  });

  it('refuses overrides naming unknown rules, bad zones or CIDRs, and says where', () => {
    const bad = (overrides: unknown) => {
      try {
        new DetectionEngine({ rules: PACK, overrides });
      } catch (err) {
        return (err as DetectError).details.map((d) => `${d.path}: ${d.message}`);
      }
      return [];
    };
    expect(bad({ tenants: { t1: { disable: ['nope'] } } })).toEqual([
      '/tenants/t1/disable: no rule "nope"',
    ]);
    expect(bad({ tenants: { t1: { timeZone: 'Mars/Olympus' } } })[0]).toMatch(
      /^\/tenants\/t1\/timeZone: /,
    );
    expect(bad({ defaults: { allow: { cidrs: ['10.0.0.0/99'] } } })).toEqual([
      '/defaults/allow/cidrs: not a CIDR block: 10.0.0.0/99',
    ]);
    expect(bad({ tenants: { t1: { apiKeys: { k1: { cidrs: ['300.1.2.0/24'] } } } } })).toEqual([
      '/tenants/t1/apiKeys/k1/cidrs: not a CIDR block: 300.1.2.0/24',
    ]);
    expect(bad({ tenants: { t1: { apiKeys: { k1: { actors: ['x'] } } } } })[0]).toMatch(
      /^\/tenants\/t1\/apiKeys\/k1: /,
    );
  });

  it('asks the baseline only for what the rule names', () => {
    const calls: string[] = [];
    const spy = {
      usual: (_t: string, facet: string, entity: string, value: string | number) => {
        calls.push(`${facet}:${entity}:${value}`);
        return 'usual' as const;
      },
      lastSeen: (_t: string, entity: string) => {
        calls.push(`last:${entity}`);
        return T0 - DAY;
      },
    };
    new DetectionEngine({ rules: PACK, baseline: spy }).process(ev({ enrichment: NEW_YORK }));
    expect(calls.sort()).toEqual(['asns:u1:7922', 'countries:u1:US', 'last:u1']);
  });
});

describe('incremental window bookkeeping (counts kept between events)', () => {
  const [DISTINCT_RULE] = loadRules([
    {
      file: 'distinct.yaml',
      text: `
id: test.distinct
title: four accounts from one address
description: four distinct accounts in 10 minutes
severity: low
attack: [T1110]
source: test
detection:
  login: { action: user.login }
  condition: login
correlation:
  type: value_count
  group-by: [context.ip]
  timespan: 10m
  condition: { gte: 4, field: actor.id }
`,
    },
  ]);
  const [ORDERED_RULE] = loadRules([
    {
      file: 'ordered.yaml',
      text: `
id: test.ordered
title: a then b
description: a step a, then a step b, within an hour
severity: low
attack: [T1556]
source: test
detection:
  a: { action: step.a }
  b: { action: step.b }
  condition: a or b
correlation:
  type: temporal_ordered
  rules: [a, b]
  group-by: [actor.id]
  timespan: 1h
`,
    },
  ]);
  const login = (user: string, time: number): DetectionEvent =>
    ev({ actor: { type: 'user', id: user }, time });
  const step = (action: string, time: number): DetectionEvent =>
    ev({ action, category: 'test', time });

  it('counts a distinct value that arrived out of order once an in-order event completes the window', () => {
    const engine = new DetectionEngine({ rules: [DISTINCT_RULE!] });
    const out: AlertUpdate[] = [];
    // Four events of two accounts, in order: their distinct values are counted (2 < 4).
    for (const [user, at] of [
      ['u1', 0],
      ['u2', 10_000],
      ['u2', 20_000],
      ['u1', 30_000],
    ] as const) {
      out.push(...engine.process(login(user, T0 + at)));
    }
    out.push(...engine.process(login('u3', T0 + 15_000))); // inserted inside the counted range
    expect(out).toEqual([]);
    out.push(...engine.process(login('u4', T0 + 40_000))); // in order: 4 accounts
    expect(out).toHaveLength(1);
    expect(out[0]?.alert.evidence).toMatchObject({ count: 6, distinct: 4 });
    expect(out[0]?.alert.eventCount).toBe(6);
  });

  it('moves the counted range when an event older than it is inserted', () => {
    const engine = new DetectionEngine({ rules: [DISTINCT_RULE!] });
    const out: AlertUpdate[] = [];
    out.push(...engine.process(login('u1', T0)));
    out.push(...engine.process(login('u2', T0 + 9 * MIN))); // window T0 … T0+9min
    out.push(...engine.process(login('u3', T0 + 11 * MIN))); // window starts after u1
    out.push(...engine.process(login('u1', T0 - 1_000))); // before everything counted
    expect(out).toEqual([]);
    // u1 (T0 − 1 s and T0) is out of the window ending here: u2, u3, u4 are 3 accounts.
    out.push(...engine.process(login('u4', T0 + 12 * MIN)));
    expect(out).toEqual([]);
    out.push(...engine.process(login('u5', T0 + 12 * MIN + 1)));
    expect(out).toHaveLength(1);
    expect(out[0]?.alert.evidence).toMatchObject({ count: 4, distinct: 4 });
  });

  it('keeps the per-step totals of a temporal rule through later steps, evictions and sweeps', () => {
    const engine = new DetectionEngine({ rules: [ORDERED_RULE!], maxEntriesPerGroup: 3 });
    const out: AlertUpdate[] = [];
    out.push(...engine.process(step('step.b', T0))); // totals known: no a yet
    out.push(...engine.process(step('step.a', T0 + 1_000))); // a after b: not in order
    expect(out).toEqual([]);
    out.push(...engine.process(step('step.b', T0 + 2_000)));
    expect(out.map((u) => u.status)).toEqual(['new']);
    // Two more b evict the oldest entries (b, then a): no a is left.
    out.push(...engine.process(step('step.b', T0 + 3_000)));
    out.push(...engine.process(step('step.b', T0 + 4_000)));
    expect(engine.stats().evictedEntries).toBe(2);
    // A quiet day: the window is swept, then a and b again raise a new alert.
    engine.advanceWatermark(T0 + 3 * HOUR);
    const again = [
      ...engine.process(step('step.a', T0 + 3 * HOUR + 1_000)),
      ...engine.process(step('step.b', T0 + 3 * HOUR + 2_000)),
    ];
    expect(again.map((u) => u.status)).toEqual(['new']);
    expect(again[0]?.alert.eventCount).toBe(2);
  });
});
