import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newEventId,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type AccessChange,
  type Category,
  type Party,
} from '@vigil/protocol';
import {
  AccessProjection,
  AccessReviewer,
  DEFAULT_REVIEW_POLICY,
  PrivacyService,
  pseudonymOf,
  Restrictions,
  RetentionPolicies,
  type ReviewPolicy,
  type ReviewRow,
} from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { DEFAULT_RETENTION_DAYS } from '../stage-config.js';
import { encodeEventMessage } from '../log/event-message.js';
import type { ConsumedBatch } from '../log/log.js';
import { AccessPlugin } from './access.js';
import { PrivacyPlugin } from './privacy.js';
import { RetentionPlugin } from './retention.js';
import { SinkProcessor } from './sink.js';

/**
 * The access projection end to end: events through the sink (retention, access and privacy
 * plugins) into chDB, then reviews as of several dates. A known history with a grant renewed and
 * revoked, a leaver, a self-grant, a segregation-of-duties pair, an expired grant, a grant whose
 * event retention deleted, a subject pseudonymised half way, one erased and one restricted. The
 * expected rows are written out by hand, and the rights held are checked against a plain replay
 * of the events at every instant where anything changes. Every date counts from the engine's
 * clock (TTL runs on it), so the test passes on any day.
 */

const salts = randomSaltSource();
const DAY = 86_400_000;
const TENANT = 'acme';
const user = (id: string) => ({ type: 'user', id, name: `Name ${id}` });

interface Step {
  readonly day: number;
  readonly input: {
    readonly action: string;
    readonly category?: Category;
    readonly actor: Party;
    readonly target?: Party;
    readonly access?: AccessChange;
  };
  /** Days before the engine's now that the collector received it (default 1). */
  readonly receivedDaysAgo?: number;
}

const grant = (
  day: number,
  subject: string,
  right: { role?: string; permission?: string },
  extra: Record<string, unknown> = {},
  change: 'grant' | 'revoke' = 'grant',
): Step => ({
  day,
  input: {
    action: change === 'grant' ? 'access.granted' : 'access.revoked',
    category: 'access_change',
    actor: user('u-alice'),
    access: { change, subject: user(subject), ...right, ...extra },
  },
});
const act = (day: number, actor: string, action: string, target?: string): Step => ({
  day,
  input: {
    action,
    category: 'data_change',
    actor: user(actor),
    ...(target
      ? { target: { type: target.split('/')[0] ?? '', id: target.split('/')[1] ?? '' } }
      : {}),
  },
});
const org = { resource: { type: 'org', id: 'acme' } };

/** Before pseudonymisation is switched on for the tenant. */
const BEFORE: Step[] = [
  {
    ...grant(1, 'u-gina', { role: 'auditor' }, { ticket: 'T-9', grantedBy: user('u-alice') }),
    receivedDaysAgo: 500, // past the tenant's 30 days of access_change: TTL deletes the event
  },
  grant(2, 'u-alice', { role: 'admin' }, { ...org, ticket: 'SEC-1', grantedBy: user('u-bob') }),
  act(2, 'u-alice', 'mfa.enrolled'),
  grant(
    3,
    'u-bob',
    { permission: 'payment.create' },
    { ...org, ticket: 'SEC-2', grantedBy: user('u-alice') },
  ),
  grant(
    3,
    'u-bob',
    { permission: 'payment.approve' },
    { ...org, ticket: 'SEC-3', grantedBy: user('u-alice') },
  ),
  act(4, 'u-bob', 'mfa.enrolled'),
  grant(
    5,
    'u-carol',
    { role: 'editor' },
    { resource: { type: 'doc', id: 'x' }, grantedBy: user('u-carol') },
  ),
  grant(6, 'u-dave', { role: 'viewer' }, { ticket: 'SEC-4', grantedBy: user('u-alice') }),
  grant(7, 'u-erin', { permission: 'report.read' }, { ticket: 'SEC-5', expiresAt: 'DAY200' }),
  grant(8, 'u-hank', { role: 'analyst' }, { ticket: 'SEC-8' }),
  grant(9, 'u-ivan', { role: 'viewer' }, { ticket: 'SEC-10' }),
  grant(10, 'u-frank', { role: 'support' }, { ticket: 'SEC-6' }),
  grant(11, 'u-judy', { role: 'viewer' }, { ticket: 'SEC-11' }),
  act(20, 'u-alice', 'user.login'),
  act(30, 'u-bob', 'payment.approved', 'org/acme'),
  grant(50, 'u-frank', { role: 'support' }, { ticket: 'SEC-7' }),
  grant(100, 'u-frank', { role: 'support' }, {}, 'revoke'),
  act(300, 'u-bob', 'mfa.removed'),
  {
    day: 350,
    input: {
      action: 'user.deactivated',
      category: 'admin',
      actor: { type: 'service', id: 'hr-sync' },
      target: user('u-dave'),
    },
  },
];
/** After `pseudonyms set id,name`. */
const AFTER: Step[] = [
  act(380, 'u-hank', 'user.login'),
  act(390, 'u-alice', 'org.updated', 'org/acme'),
  grant(390, 'u-hank', { permission: 'export.run' }, { ticket: 'SEC-9' }),
  act(395, 'u-carol', 'doc.edited', 'doc/x'),
];

const POLICY: ReviewPolicy = {
  ...DEFAULT_REVIEW_POLICY,
  dormantDays: 90,
  permissionActions: { 'payment.approve': ['payment.approved'] },
  privileged: ['admin'],
  sodPairs: [['payment.create', 'payment.approve']],
};

describe('access projection through the sink, reviewed as of several dates', () => {
  let ts: TestStore;
  let privacy: PrivacyService;
  let sink: SinkProcessor;
  let base: number;
  let now: number;
  let offset = 0;
  const timeOf = (day: number): number => base + day * DAY;

  async function store(steps: readonly Step[]): Promise<void> {
    for (const step of steps) {
      const time = timeOf(step.day);
      const input = JSON.parse(
        JSON.stringify(step.input).replace(
          '"DAY200"',
          JSON.stringify(new Date(timeOf(200)).toISOString()),
        ),
      ) as Step['input'];
      const stream = `app/s/${offset}`;
      const sealed = sealEvent(
        {
          category: 'data_change',
          outcome: 'success',
          ...input,
          id: newEventId(time),
          time: new Date(time).toISOString(),
        },
        { stream, seq: 0, prev: ZERO_HASH },
        salts,
      ).event;
      const receivedAt = now - (step.receivedDaysAgo ?? 1) * DAY;
      const batch: ConsumedBatch = {
        partition: 0,
        records: [
          {
            partition: 0,
            offset,
            key: `${TENANT}/${stream}`,
            value: encodeEventMessage({
              v: 2,
              tenant: TENANT,
              keyId: 'k1',
              receivedAt,
              backfillBefore: receivedAt - DAY,
              stream,
              kind: 'sealed',
              events: [sealed],
            }),
            timestamp: receivedAt,
          },
        ],
        highWatermark: ++offset,
      };
      await sink.process(batch);
    }
  }

  beforeAll(async () => {
    ts = await openTestStore();
    now = await ts.now();
    base = now - 600 * DAY;
    privacy = new PrivacyService(ts.store, randomBytes(32), { refreshMs: 0 });
    await new RetentionPolicies(ts.store, DEFAULT_RETENTION_DAYS).change(
      TENANT,
      { access_change: 30 },
      'key-admin',
    );
    sink = new SinkProcessor({
      store: ts.store,
      config: { group: 'g', maxBatchRecords: 100 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      salts,
      plugins: [
        new RetentionPlugin({ store: ts.store, defaults: DEFAULT_RETENTION_DAYS, refreshMs: 0 }),
        new AccessPlugin({
          store: ts.store,
          privacy,
          facts: { leaverActions: new Set(POLICY.leaverActions) },
        }),
        new PrivacyPlugin({ store: ts.store, privacy }),
      ],
    });
    await store(BEFORE);
    await privacy.setFields(TENANT, ['id', 'name'], 'key-admin', 'minimise');
    await store(AFTER);
    // Retention: the grant of u-gina was received 500 days ago, past 30 days.
    await ts.store.command(`OPTIMIZE TABLE ${ts.store.table('events')} FINAL`);
    await new AccessProjection(ts.store).erase(TENANT, privacy.digests(TENANT, { id: 'u-ivan' }));
    await new Restrictions(ts.store, privacy).place(
      TENANT,
      { id: 'u-judy' },
      'dispute',
      'key-admin',
    );
  });
  afterAll(async () => {
    await ts?.cleanup();
  });

  const review = (day: number) =>
    new AccessReviewer(ts.store, privacy, POLICY).snapshot(TENANT, timeOf(day));
  const key = async () => (await privacy.keys.current(TENANT))?.pseudonymKey as Buffer;
  const shown = async (id: string) => pseudonymOf(await key(), 'id', id);
  const brief = async (rows: readonly ReviewRow[]) => {
    const names = new Map<string, string>();
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'hank', 'judy'])
      names.set(await shown(`u-${u}`), u);
    return rows
      .map((r) => [
        r.subjectState === 'erased' ? '(erased)' : (names.get(r.subjectId) ?? r.subjectId),
        r.right,
        r.flags.join(' '),
      ])
      .sort((a, b) => `${a[0]} ${a[1]}`.localeCompare(`${b[0]} ${b[1]}`));
  };

  it('the grant whose event retention deleted is gone from the events and still held', async () => {
    const [row] = await ts.store.query<{ n: string }>(
      `SELECT count() AS n FROM ${ts.store.table('events')} WHERE tenant_id = {t:String} AND time < {d:DateTime64(3, 'UTC')}`,
      { t: TENANT, d: new Date(timeOf(2)).toISOString().replace('T', ' ').replace('Z', '') },
    );
    expect(Number(row?.n)).toBe(0);
    const snapshot = await review(400);
    expect(snapshot.trackingSince).toBe(timeOf(2));
    expect(snapshot.rows.some((r) => r.right === 'auditor')).toBe(true);
  });

  it('lists the rights held on day 400 with their flags', async () => {
    const snapshot = await review(400);
    expect(await brief(snapshot.rows)).toEqual([
      ['(erased)', 'viewer', 'mfa_missing'],
      ['alice', 'admin', 'privileged'],
      ['bob', 'payment.approve', 'dormant sod_conflict mfa_missing'],
      ['bob', 'payment.create', 'dormant sod_conflict mfa_missing'],
      ['carol', 'editor', 'self_granted no_ticket mfa_missing'],
      ['dave', 'viewer', 'dormant never_used leaver mfa_missing'],
      ['erin', 'report.read', 'dormant never_used expired mfa_missing'],
      ['gina', 'auditor', 'dormant mfa_missing'],
      ['hank', 'analyst', 'mfa_missing'],
      ['hank', 'export.run', 'mfa_missing'],
      ['judy', 'viewer', 'dormant never_used mfa_missing'],
    ]);
    expect(snapshot.restrictedSubjects).toEqual(privacy.digests(TENANT, { id: 'u-judy' }));
    const erased = snapshot.rows.find((r) => r.subjectState === 'erased');
    expect(erased).toMatchObject({
      subjectId: '',
      subjectName: '',
      lastUsed: { state: 'no_data' },
    });
    expect(erased?.subjectKey).toBe(privacy.digests(TENANT, { id: 'u-ivan' })[0]);
    const hankId = await shown('u-hank');
    const hank = snapshot.rows.filter((r) => r.subjectId === hankId);
    expect(new Set(hank.map((r) => r.subjectKey)).size).toBe(1);
    expect(hank[0]?.lastLogin).toEqual({ state: 'used', at: timeOf(380) });
    const bob = snapshot.rows.find((r) => r.right === 'payment.approve');
    expect(bob?.lastPermissionUse).toEqual({ state: 'used', at: timeOf(30) });
    expect(bob?.explanations[0]).toMatch(/370 days before the review date \(limit 90\)/);
  });

  it('lists the rights held on day 60, both grants of a renewed right among them', async () => {
    expect(await brief((await review(60)).rows)).toEqual([
      ['(erased)', 'viewer', 'mfa_missing'],
      ['alice', 'admin', 'never_used privileged'],
      ['bob', 'payment.approve', 'sod_conflict'],
      ['bob', 'payment.create', 'sod_conflict'],
      ['carol', 'editor', 'never_used self_granted no_ticket mfa_missing'],
      ['dave', 'viewer', 'never_used mfa_missing'],
      ['erin', 'report.read', 'never_used mfa_missing'],
      ['frank', 'support', 'never_used mfa_missing'],
      ['frank', 'support', 'never_used mfa_missing'],
      ['gina', 'auditor', 'mfa_missing'],
      ['hank', 'analyst', 'never_used mfa_missing'],
      ['judy', 'viewer', 'never_used mfa_missing'],
    ]);
  });

  it('reports no data, never dormant, before tracking began', async () => {
    const rows = (await review(1.5)).rows;
    expect(rows.map((r) => r.right)).toEqual(['auditor']);
    expect(rows[0]?.lastUsed.state).toBe('no_data');
    expect(rows[0]?.flags).not.toContain('dormant');
  });

  it('holds exactly the rights a plain replay of the events holds, at every instant that matters', async () => {
    const changes = [...BEFORE, ...AFTER].filter((s) => s.input.access);
    const instants = [
      ...new Set(changes.flatMap((s) => [s.day - 0.001, s.day, s.day + 0.001])),
    ].sort((a, b) => a - b);
    for (const day of instants) {
      // The replay: every grant at or before T, unless a revoke of the same right followed it by T.
      const expected = changes
        .filter((s) => s.input.access?.change === 'grant' && s.day <= day)
        .filter(
          (g) =>
            !changes.some(
              (r) =>
                r.input.access?.change === 'revoke' &&
                r.input.access.subject.id === g.input.access?.subject.id &&
                r.input.access.role === g.input.access?.role &&
                r.input.access.permission === g.input.access?.permission &&
                r.day >= g.day &&
                r.day <= day,
            ),
        )
        .map(
          (g) =>
            `${g.input.access?.subject.id === 'u-ivan' ? '' : 'x'} ${g.input.access?.role ?? g.input.access?.permission} ${timeOf(g.day)}`,
        )
        .sort();
      const got = (await review(day)).rows
        .map((r) => `${r.subjectState === 'erased' ? '' : 'x'} ${r.right} ${r.grantedAt}`)
        .sort();
      expect(got, `as of day ${day}`).toEqual(expected);
    }
  });
});
