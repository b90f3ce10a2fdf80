import { describe, expect, it } from 'vitest';
import { builtinRules, DetectionEngine, type DetectionEvent } from '@vigil/detect';
import { partitionKeys, PartitionPunctuations } from './messages.js';
import { overridesFor, RekeyRouter, rekeySets } from './route.js';
import { partitionForKey } from '../../log/partitioner.js';
import { chunks } from './rekey-stage.js';

const RULES = builtinRules();
const T = Date.UTC(2030, 0, 7, 9, 0, 0);

function event(over: Partial<DetectionEvent>): DetectionEvent {
  return {
    tenant: 't1',
    id: 'e1',
    time: T,
    action: 'user.login',
    category: 'authentication',
    outcome: 'failure',
    actor: { type: 'user', id: 'alice' },
    context: { ip: '81.2.69.10' },
    ...over,
  };
}

describe('rekeySets', () => {
  it('groups rules by their group-by fields; tenant-wide rules share one set; aliased rules are sets of their own', () => {
    const sets = new Map(rekeySets(RULES).map((s) => [s.id, s.rules.map((r) => r.id)]));
    expect(sets.get('by:actor.id')).toContain('auth.brute_force_account');
    expect(sets.get('by:context.ip')).toContain('auth.password_spraying');
    expect(sets.get('tenant')).toContain('auth.credential_stuffing');
    const aliased = [...sets.keys()].filter((k) => k.startsWith('rule:'));
    expect(aliased.length).toBeGreaterThan(0);
    for (const id of aliased) expect(sets.get(id)).toHaveLength(1);
    // Every rule is in exactly one set.
    expect([...sets.values()].flat().sort()).toEqual(RULES.map((r) => r.id).sort());
  });
});

describe('RekeyRouter', () => {
  const router = new RekeyRouter(RULES);

  it('sends a failed login once per set that counts it, keyed by (tenant, entity)', () => {
    const routed = router.route(event({}));
    expect(routed).toContainEqual({ set: 'by:actor.id', key: '["t1","alice"]' });
    expect(routed).toContainEqual({ set: 'by:context.ip', key: '["t1","81.2.69.10"]' });
    expect(routed).toContainEqual({ set: 'tenant', key: '["t1"]' });
    // One message per set, whatever the number of rules of the set that count it.
    expect(new Set(routed.map((r) => r.set)).size).toBe(routed.length);
  });

  it('skips a set whose field the event lacks, and events no rule counts', () => {
    const routed = router.route(event({ context: {} }));
    expect(routed.map((r) => r.set)).not.toContain('by:context.ip');
    expect(routed.map((r) => r.set)).toContain('by:actor.id');
    expect(router.route(event({ action: 'document.viewed', outcome: 'success' }))).toEqual([]);
  });

  it('keys an aliased rule by the fields of the step the event matches', () => {
    const aliased = rekeySets(RULES).find((s) => s.id === 'rule:api.key_new_source');
    expect(aliased).toBeDefined();
    const set = (aliased as { id: string }).id;
    const created = router.route(
      event({
        action: 'api_key.created',
        category: 'configuration',
        outcome: 'success',
        target: { type: 'api_key', id: 'key-9' },
      }),
    );
    const used = router.route(
      event({
        action: 'api_key.used',
        category: 'api',
        outcome: 'success',
        actor: { type: 'api_key', id: 'key-9' },
      }),
    );
    const keyOf = (r: typeof created) => r.find((x) => x.set === set)?.key;
    expect(keyOf(created)).toBe('["t1","key-9"]');
    expect(keyOf(used)).toBe(keyOf(created));
  });

  it("applies the tenant's action names and disabled rules as the engine does", () => {
    const mapped = new RekeyRouter(RULES, {
      tenants: {
        t1: { actions: { 'auth.signin_failed': { action: 'user.login', outcome: 'failure' } } },
      },
    });
    expect(
      mapped.route(event({ action: 'auth.signin_failed', outcome: 'x' })).map((r) => r.set),
    ).toContain('by:actor.id');
    const set = rekeySets(RULES).find((s) => s.id === 'by:context.ip');
    const disabled = new RekeyRouter(RULES, {
      defaults: { disable: (set?.rules ?? []).map((r) => r.id) },
    });
    expect(disabled.route(event({})).map((r) => r.set)).not.toContain('by:context.ip');
  });
});

describe('overridesFor', () => {
  it('keeps only what names the rules of one set, so the set engine accepts it', () => {
    const overrides = {
      defaults: {
        disable: ['auth.brute_force_account', 'auth.password_spraying'],
        thresholds: { 'auth.brute_force_account': 20, 'auth.password_spraying': 30 },
      },
      tenants: {
        t1: { timeZone: 'Europe/Paris', rules: { 'auth.password_spraying': { allow: {} } } },
      },
    };
    const set = rekeySets(RULES).find((s) => s.id === 'by:actor.id');
    const rules = set?.rules ?? [];
    // The whole overrides name a rule outside the set: the set's engine refuses them.
    expect(() => new DetectionEngine({ rules, overrides })).toThrow();
    const own = overridesFor(overrides, new Set(rules.map((r) => r.id)));
    expect(own).toEqual({
      defaults: {
        disable: ['auth.brute_force_account'],
        thresholds: { 'auth.brute_force_account': 20 },
      },
      tenants: { t1: { timeZone: 'Europe/Paris', rules: {} } },
    });
    expect(() => new DetectionEngine({ rules, ...(own ? { overrides: own } : {}) })).not.toThrow();
  });
});

describe('punctuation', () => {
  it('finds a key for every partition', () => {
    const log = { partitions: 12, partitionFor: (k: string) => partitionForKey(k, 12) };
    const keys = partitionKeys(log);
    expect(keys.map((k) => log.partitionFor(k))).toEqual([...Array(12).keys()]);
  });

  it('is the minimum over live instances; one silent past the liveness bound stops counting', () => {
    const p = new PartitionPunctuations(1_000);
    expect(p.value()).toBe(-Infinity);
    p.observe({ instance: 'a', watermark: 500, at: 10_000 });
    p.observe({ instance: 'b', watermark: 300, at: 10_100 });
    expect(p.value()).toBe(300);
    p.observe({ instance: 'a', watermark: 900, at: 10_900 });
    expect(p.value()).toBe(300);
    // b said nothing for more than a second (by the senders' clocks): a alone counts.
    p.observe({ instance: 'a', watermark: 1_200, at: 11_200 });
    expect(p.value()).toBe(1_200);
    const copy = new PartitionPunctuations(1_000);
    copy.load(JSON.parse(JSON.stringify(p.toJSON())) as ReturnType<typeof p.toJSON>);
    expect(copy.value()).toBe(1_200);
  });
});

describe('re-key appends', () => {
  it('are cut in order into runs of bounded size, a larger message alone', () => {
    const m = (n: number) => ({ key: 'k', value: Buffer.alloc(n) });
    const runs = chunks([m(100), m(100), m(1000), m(10), m(10), m(10)], 400, 2);
    expect(runs.map((r) => r.map((x) => x.value.length))).toEqual([
      [100, 100],
      [1000],
      [10, 10],
      [10],
    ]);
  });
});
