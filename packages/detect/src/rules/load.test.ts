import { describe, expect, it } from 'vitest';
import { T0, ev } from '../detect.testkit.js';
import type { DetectionEvent } from '../event.js';
import { loadRules, RuleLoadError, type RuleProblem } from './load.js';

const HEADER = `id: test.rule
title: a test rule
description: a rule for the tests
severity: low
attack: [T1078]
source: test
`;

function problems(text: string): RuleProblem[] {
  try {
    loadRules([{ file: 'r.yaml', text }]);
  } catch (err) {
    expect(err).toBeInstanceOf(RuleLoadError);
    expect((err as RuleLoadError).code).toBe('VIGIL_ERR_RULE_INVALID');
    return [...(err as RuleLoadError).problems];
  }
  return [];
}

/** Whether a one-selection rule matches the event (tenant time zone as given). */
function matches(selection: string, event: DetectionEvent, zone = 'UTC'): boolean {
  const [rule] = loadRules([
    { file: 'm.yaml', text: `${HEADER}detection:\n  sel:\n${selection}\n  condition: sel\n` },
  ]);
  return rule!.filter(event, zone);
}

describe('rule validation errors', () => {
  it('name the rule, the line and the field', () => {
    const text = `${HEADER}detection:
  sel:
    action: user.login
    context.ip|cidrr: 10.0.0.0/8
  condition: sel
`;
    expect(problems(text)).toEqual([
      {
        file: 'r.yaml',
        line: 10,
        rule: 'test.rule',
        field: 'detection.sel.context.ip|cidrr',
        message: expect.stringMatching(/^unknown modifier "cidrr"/),
      },
    ]);
  });

  it('report schema errors at their line, and every problem of every document', () => {
    const text = `${HEADER.replace('severity: low', 'severity: urgent')}detection:
  sel: { action: user.login }
  condition: sel
---
${HEADER.replace('test.rule', 'second')}detection:
  sel: { actor.nme: x }
  condition: sel or other
correlation:
  type: event_count
  timespan: 5 minutes
  condition: { gte: 3 }
`;
    const found = problems(text).map((p) => `${p.rule}@${p.line} ${p.field}: ${p.message}`);
    expect(found).toEqual([
      expect.stringMatching(/^test\.rule@4 severity: /),
      expect.stringMatching(/^second@22 correlation\.timespan: a duration/),
    ]);
  });

  it('report compile errors: unknown fields and selections, bad regular expressions and CIDRs', () => {
    const text = `${HEADER}detection:
  sel:
    actr.id: x
    action|re: "(("
    context.ip|cidr: 10.0.0.0/40
  condition: sel and not missing
`;
    expect(problems(text).map((p) => [p.line, p.field, p.message.split(':')[0]])).toEqual([
      [9, 'detection.sel.actr.id', 'unknown field "actr.id"'],
      [10, 'detection.sel.action|re', 'bad regular expression'],
      [11, 'detection.sel.context.ip|cidr', 'not a CIDR block'],
      [12, 'detection.condition', 'unknown selection "missing"'],
    ]);
  });

  it('report YAML syntax errors and duplicate keys and ids with their line', () => {
    expect(problems(`${HEADER}detection: x: y\n`)[0]).toMatchObject({
      line: 7,
      message: expect.stringMatching(/^Nested mappings are not allowed/),
    });
    const dup = `${HEADER}severity: high\ndetection:\n  s: { action: a.b }\n  condition: s\n`;
    expect(problems(dup)[0]?.line).toBe(7);
    const rule = `${HEADER}detection:\n  s: { action: a.b }\n  condition: s\n`;
    expect(() =>
      loadRules([
        { file: 'a.yaml', text: rule },
        { file: 'b.yaml', text: rule },
      ]),
    ).toThrow(/b\.yaml:1: rule test\.rule: id: duplicate rule id \(also in a\.yaml\)/);
  });

  it('check correlation cross-field rules', () => {
    const base = `${HEADER}detection:\n  s: { action: a.b }\n  condition: s\ncorrelation:\n`;
    const msg = (c: string) => problems(base + c).map((p) => p.message);
    expect(msg('  type: value_count\n  timespan: 5m\n  condition: { gte: 3 }\n')).toEqual([
      'value_count needs condition.field',
    ]);
    expect(msg('  type: temporal_ordered\n  rules: [s]\n  timespan: 5m\n')).toEqual([
      'temporal_ordered needs at least two steps',
    ]);
    expect(
      msg(
        '  type: event_count\n  timespan: 5m\n  condition: { gte: 3 }\n  share: { rule: s, gte: 0.5 }\n',
      ),
    ).toEqual(['name one of correlation.rules, which must list at least two selections']);
    expect(msg('  type: geo_velocity\n  timespan: 5m\n  max_speed_kmh: 900\n')).toEqual([
      'geo_velocity needs a group-by (the account)',
    ]);
  });
});

describe('field conditions (Sigma modifiers)', () => {
  const e = ev({
    action: 'user.login',
    actor: { type: 'user', id: 'Alice', email: 'alice@example.com' },
    context: { ip: '10.1.2.3', userAgent: 'Mozilla/5.0 (X11; Linux x86_64)' },
    metadata: { records: 250, tags: ['bulk', 'nightly'] },
    enrichment: {
      geo: { country: 'FR', lat: 0, lon: 0 },
      asn: { number: 3215 },
      ua: { family: 'Firefox' },
    },
  });
  it('matches equality case-insensitively unless |cased, lists as OR, |all as AND', () => {
    expect(matches('    actor.id: alice', e)).toBe(true);
    expect(matches('    actor.id|cased: alice', e)).toBe(false);
    expect(matches('    action: [user.logout, user.login]', e)).toBe(true);
    expect(matches('    context.userAgent|contains|all: [linux, mozilla]', e)).toBe(true);
    expect(matches('    context.userAgent|contains|all: [linux, windows]', e)).toBe(false);
  });
  it('supports contains, startswith, endswith, re, cidr and numeric comparisons', () => {
    expect(matches('    actor.email|endswith: "@EXAMPLE.com"', e)).toBe(true);
    expect(matches('    actor.email|startswith: bob', e)).toBe(false);
    expect(matches('    context.userAgent|re: "^Mozilla/\\\\d"', e)).toBe(true);
    expect(matches('    context.ip|cidr: [192.168.0.0/16, 10.0.0.0/8]', e)).toBe(true);
    expect(matches('    context.ip|cidr: 2001:db8::/32', e)).toBe(false);
    expect(matches('    metadata.records|gte: 250', e)).toBe(true);
    expect(matches('    metadata.records|gt: 250', e)).toBe(false);
    expect(matches('    metadata.tags: nightly', e)).toBe(true);
  });
  it('reads derived fields: geo, asn, user agent', () => {
    expect(matches('    geo.country: FR\n    asn.number: 3215\n    ua.family: firefox', e)).toBe(
      true,
    );
  });
  it('treats absent as absent: never equal, never matching, even to another absent field', () => {
    const bare = ev({ actor: { type: 'user' }, context: {}, enrichment: {} });
    expect(matches('    actor.id|fieldref: actor.email', bare)).toBe(false);
    expect(matches('    context.ip|cidr: 0.0.0.0/0', bare)).toBe(false);
    expect(matches('    geo.country|contains: ""', bare)).toBe(false);
    expect(matches('    actor.id: null', bare)).toBe(true);
    expect(matches('    actor.id|exists: false', bare)).toBe(true);
    expect(matches('    actor.id|exists: true', e)).toBe(true);
  });
  it("computes time of day and weekday in the tenant's zone, across daylight saving time", () => {
    // 2026-03-29 is the night Paris moves to CEST: 00:30 UTC is 01:30 CET, 01:30 UTC is 03:30 CEST.
    const before = ev({ time: Date.UTC(2026, 2, 29, 0, 30) });
    const after = ev({ time: Date.UTC(2026, 2, 29, 1, 30) });
    expect(matches('    time.hour: 1', before, 'Europe/Paris')).toBe(true);
    expect(matches('    time.hour: 3', after, 'Europe/Paris')).toBe(true);
    expect(matches('    time.weekday: 7', after, 'Europe/Paris')).toBe(true);
    // T0 is Monday 10:00 UTC; in Auckland (UTC+13) it is already 23:00.
    expect(
      matches('    time.hour: 23\n    time.weekday: 1', ev({ time: T0 }), 'Pacific/Auckland'),
    ).toBe(true);
  });
});

describe('conditions', () => {
  const rule = (condition: string) =>
    loadRules([
      {
        file: 'c.yaml',
        text: `${HEADER}detection:
  sel_login: { action: user.login }
  sel_fail: { outcome: failure }
  filter_svc: { actor.type: service }
  condition: ${condition}
`,
      },
    ])[0]!;
  const fail = ev({ outcome: 'failure' });
  const svcFail = ev({ outcome: 'failure', actor: { type: 'service', id: 's' } });
  it('parses and, or, not, parentheses, 1 of and all of', () => {
    expect(rule('sel_login and sel_fail and not filter_svc').filter(fail, 'UTC')).toBe(true);
    expect(rule('sel_login and sel_fail and not filter_svc').filter(svcFail, 'UTC')).toBe(false);
    expect(rule('all of sel_* and not filter_svc').filter(fail, 'UTC')).toBe(true);
    expect(rule('1 of sel_* and filter_svc').filter(svcFail, 'UTC')).toBe(true);
    expect(rule('not (sel_fail or filter_svc)').filter(ev(), 'UTC')).toBe(true);
    expect(rule('not (sel_fail or filter_svc)').filter(fail, 'UTC')).toBe(false);
  });
  it('knows which actions a rule can match, so the engine skips it on the others', () => {
    const actions = (condition: string) => {
      const a = rule(condition).actions;
      return a === undefined ? undefined : [...a].sort();
    };
    expect(actions('sel_login and sel_fail')).toEqual(['user.login']);
    expect(actions('sel_login or sel_fail')).toBeUndefined();
    expect(actions('sel_fail and not sel_login')).toBeUndefined();
    const [r] = loadRules([
      {
        file: 'a.yaml',
        text: `${HEADER}detection:
  a: { action: [User.Login, mfa.challenge] }
  b: [{ action: api_key.used }, { action: api_key.created, outcome: success }]
  condition: a or b
`,
      },
    ]);
    expect([...(r!.actions ?? [])].sort()).toEqual([
      'api_key.created',
      'api_key.used',
      'mfa.challenge',
      'user.login',
    ]);
  });

  it('refuses a malformed condition', () => {
    for (const c of [
      'sel_login and',
      '(sel_login',
      'sel_login sel_fail',
      'or sel_login',
      '1 of nothing*',
    ]) {
      expect(
        problems(
          `${HEADER}detection:\n  sel_login: { action: a.b }\n  sel_fail: { outcome: failure }\n  condition: "${c}"\n`,
        ),
        c,
      ).toHaveLength(1);
    }
    const deep = `${'not '.repeat(40)}sel_login`;
    expect(
      problems(`${HEADER}detection:\n  sel_login: { action: a.b }\n  condition: ${deep}\n`)[0]
        ?.message,
    ).toBe('condition nested too deeply');
  });
});
