import { isPseudonym, pseudonymOf } from '../privacy/pseudonyms.js';
import { Restrictions } from '../privacy/restrictions.js';
import type { PrivacyService } from '../privacy/service.js';
import { fromChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { csvTime } from '../export/csv.js';
import {
  matchesPattern,
  splitPatterns,
  type ReviewFlag,
  type ReviewPolicy,
  REVIEW_FLAGS,
} from './policy.js';
import { ACCESS_TABLE } from './projection.js';

/**
 * An access review as of an instant T (issue 12): every right held at T, with how it was granted,
 * whether and when it was used, and the flags of the review policy.
 *
 * **Held at T**: a grant with granted_at ≤ T whose revocation, if any, is after T. A grant's
 * revocation is the first `revoke` of the same subject, right and resource at or after it (an
 * ASOF join), so a later grant of the same right does not hide the first, and one revocation
 * ends every grant of the right it follows.
 *
 * **Use** has three honest states: `used` (at a time ≤ T), `not_used` (no use in the events from
 * T0, the earliest event of the tenant still retained, to T) and `no_data` (T0 is after T, the
 * tenant has no events, the subject is erased, or no mapping says what a use of the permission
 * is). `no_data` never makes a right dormant or never used. Uses are matched by the actor's id as
 * stored (plain, or its pseudonym under the tenant's current key): the ids a subject has in the
 * projection, and the pseudonym of each plain one.
 */

export type UseState = 'used' | 'not_used' | 'no_data';

export interface Use {
  readonly state: UseState;
  /** When used (state used), epoch ms. */
  readonly at?: number;
}

export type SubjectState = 'active' | 'restricted' | 'erased';

export interface ReviewRow {
  readonly subjectKey: string;
  readonly subjectState: SubjectState;
  readonly subjectType: string;
  readonly subjectId: string;
  readonly subjectName: string;
  readonly rightKind: 'role' | 'permission';
  readonly right: string;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly grantedAt: number;
  readonly grantedBy: string;
  readonly ticket: string;
  readonly reason: string;
  readonly expiresAt: number | null;
  readonly grantEvent: string;
  readonly lastLogin: Use;
  readonly lastResourceAction: Use;
  readonly lastPermissionUse: Use;
  /** The measure the flags use: permission use where mapped, else action on the resource, else any action. */
  readonly lastUsed: Use & { readonly measure: 'permission' | 'resource' | 'any' };
  readonly flags: readonly ReviewFlag[];
  readonly explanations: readonly string[];
}

export interface ReviewScope {
  /** Only these roles or permissions. */
  readonly rights?: readonly string[];
  /** Only rights on this resource type, and id if given. */
  readonly resourceType?: string;
  readonly resourceId?: string;
}

export interface ReviewSnapshot {
  readonly tenant: string;
  readonly asOf: number;
  /** T0: the earliest event of the tenant still retained, or null when it has none. */
  readonly trackingSince: number | null;
  readonly rows: readonly ReviewRow[];
  /** Keys of restricted subjects shown (each view of them is recorded by the caller). */
  readonly restrictedSubjects: readonly string[];
}

interface GrantRow {
  sk: string;
  st: string;
  rk: 'role' | 'permission';
  rn: string;
  rt: string;
  ri: string;
  at: string;
  ev: string;
  gk: string;
  gi: string;
  ticket: string;
  reason: string;
  ex: string | null;
}

/** The columns of the grant query, in its order. */
const GRANT_COLUMNS = [
  'sk',
  'st',
  'rk',
  'rn',
  'rt',
  'ri',
  'at',
  'ev',
  'gk',
  'gi',
  'ticket',
  'reason',
  'ex',
] as const satisfies readonly (keyof GrantRow)[];

/**
 * The rows of a statement ending in `FORMAT JSONCompactEachRow` as objects with `columns` as
 * keys. The grant query answers one row per right held (70 000 in the benchmark); the client's
 * json() reads JSONEachRow through a stream transform with a string and a closure per row, most
 * of the ≈ 1 s of CPU per review spent reading rows (bench/README.md, "Access reviews"). Here the
 * whole answer is one JSON.parse: JSON text holds no raw newline inside a value, so newlines
 * separate the rows.
 */
async function compactRows<T>(
  store: Store,
  columns: readonly (keyof T & string)[],
  sql: string,
  params: Record<string, unknown>,
): Promise<T[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.stream(sql, params)) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8').trimEnd();
  if (text === '') return [];
  const arrays = JSON.parse(`[${text.replaceAll('\n', ',')}]`) as unknown[][];
  return arrays.map((values) => {
    const row: Record<string, unknown> = {};
    for (let i = 0; i < columns.length; i++) row[columns[i] as string] = values[i];
    return row as T;
  });
}

interface SubjectRow {
  sk: string;
  erased: number | string;
  leaves: number | string;
  left_at: string;
  mfas: number | string;
  mfa_last: string;
  forms: string[];
  shown_id: string;
  shown_name: string;
}

const DAY = 86_400_000;

export class AccessReviewer {
  private readonly restrictions: Restrictions;
  /** The flags the policy reports (built once, not per row). */
  private readonly enabled: ReadonlySet<ReviewFlag>;

  constructor(
    private readonly store: Store,
    private readonly privacy: PrivacyService,
    private readonly policy: ReviewPolicy,
  ) {
    this.restrictions = new Restrictions(store, privacy);
    this.enabled = new Set(policy.flags);
  }

  /** The grants held at `asOf` (epoch ms), with use and flags. */
  async snapshot(tenant: string, asOf: number, scope: ReviewScope = {}): Promise<ReviewSnapshot> {
    const t = chTime(asOf);
    const table = this.store.table(ACCESS_TABLE);
    const scopeSql = [
      scope.rights && scope.rights.length > 0 ? 'right_name IN {rights:Array(String)}' : '',
      scope.resourceType !== undefined ? 'resource_type = {rtype:String}' : '',
      scope.resourceId !== undefined ? 'resource_id = {rid:String}' : '',
    ]
      .filter(Boolean)
      .map((c) => ` AND ${c}`)
      .join('');
    const params = {
      tenant,
      t,
      rights: [...(scope.rights ?? [])],
      rtype: scope.resourceType ?? '',
      rid: scope.resourceId ?? '',
    };
    // ASOF LEFT JOIN (ClickHouse docs, "ASOF JOIN"): for each grant, the revocation of the same
    // right with the smallest time at or after the grant's; `found` is 0 where there is none.
    const grants = await compactRows<GrantRow>(
      this.store,
      GRANT_COLUMNS,
      `SELECT g.subject_key AS sk, g.subject_type AS st, g.right_kind AS rk, g.right_name AS rn,
              g.resource_type AS rt, g.resource_id AS ri, toString(g.at) AS at, toString(g.event_id) AS ev,
              g.granted_by_key AS gk, g.granted_by_id AS gi, g.ticket AS ticket, g.reason AS reason,
              toString(g.expires_at) AS ex
       FROM (SELECT * FROM ${table} FINAL
             WHERE tenant_id = {tenant:String} AND kind = 'grant' AND at <= {t:DateTime64(3, 'UTC')}${scopeSql}) AS g
       ASOF LEFT JOIN (SELECT subject_key, right_kind, right_name, resource_type, resource_id, at, 1 AS found
             FROM ${table} FINAL WHERE tenant_id = {tenant:String} AND kind = 'revoke'${scopeSql}) AS r
       ON g.subject_key = r.subject_key AND g.right_kind = r.right_kind AND g.right_name = r.right_name
          AND g.resource_type = r.resource_type AND g.resource_id = r.resource_id AND g.at <= r.at
       WHERE r.found = 0 OR r.at > {t:DateTime64(3, 'UTC')}
       ORDER BY sk, rk, rn, rt, ri, g.at, ev
       FORMAT JSONCompactEachRow`,
      params,
    );
    const keys = [...new Set(grants.map((g) => g.sk))];
    const subjects = new Map<string, SubjectRow>();
    if (keys.length > 0)
      for (const s of await this.store.query<SubjectRow>(
        `SELECT subject_key AS sk, max(erased) AS erased,
                countIf(kind = 'leave' AND at <= {t:DateTime64(3, 'UTC')}) AS leaves,
                toString(minIf(at, kind = 'leave' AND at <= {t:DateTime64(3, 'UTC')})) AS left_at,
                countIf(kind = 'mfa' AND at <= {t:DateTime64(3, 'UTC')}) AS mfas,
                argMaxIf(action, at, kind = 'mfa' AND at <= {t:DateTime64(3, 'UTC')}) AS mfa_last,
                groupUniqArrayIf(subject_id, subject_id != '') AS forms,
                argMaxIf(subject_id, at, subject_id != '') AS shown_id,
                argMaxIf(subject_name, at, subject_name != '') AS shown_name
         FROM ${table} FINAL
         WHERE tenant_id = {tenant:String} AND subject_key IN {keys:Array(String)}
         GROUP BY subject_key`,
        { tenant, t, keys },
      ))
        subjects.set(s.sk, s);
    const [mfaTracked] = await this.store.query<{ n: number | string }>(
      `SELECT count() AS n FROM ${table} FINAL
       WHERE tenant_id = {tenant:String} AND kind = 'mfa' AND at <= {t:DateTime64(3, 'UTC')}`,
      { tenant, t },
    );
    const restricted = new Set<string>();
    for (const r of (await this.restrictions.active([tenant])).get(tenant) ?? [])
      for (const d of r.digests) restricted.add(d);

    // The forms each subject's id takes in the events table.
    const privacy = await this.privacy.rowPrivacy(tenant);
    const current = await this.privacy.keys.current(tenant);
    const formOf = new Map<string, string>();
    for (const s of subjects.values()) {
      if (Number(s.erased) === 1) continue;
      for (const f of s.forms) {
        formOf.set(f, s.sk);
        if (current && !isPseudonym(f))
          formOf.set(pseudonymOf(current.pseudonymKey, 'id', f), s.sk);
      }
    }
    const trackingSince = await this.trackingSince(tenant);
    const usage = await this.usage(tenant, t, formOf, grants);

    const mfaRecorded = Number(mfaTracked?.n ?? 0) > 0;
    const noData = untracked(trackingSince, asOf);
    const held = new Map<string, Set<string>>();
    for (const g of grants) {
      const set = held.get(g.sk) ?? new Set<string>();
      set.add(g.rn);
      held.set(g.sk, set);
    }
    const rows: ReviewRow[] = [];
    const shownRestricted = new Set<string>();
    for (const g of grants) {
      const s = subjects.get(g.sk);
      const erased = Number(s?.erased ?? 0) === 1;
      const state: SubjectState = erased
        ? 'erased'
        : restricted.has(g.sk)
          ? 'restricted'
          : 'active';
      if (state === 'restricted') shownRestricted.add(g.sk);
      let shownId = erased ? '' : (s?.shown_id ?? '');
      let shownName = erased ? '' : (s?.shown_name ?? '');
      // Where the tenant pseudonymises now, a plain value kept from before is shown as its pseudonym.
      if (privacy && !erased) {
        if (privacy.fields.has('id') && shownId !== '' && !isPseudonym(shownId))
          shownId = pseudonymOf(privacy.pseudonymKey, 'id', shownId);
        if (privacy.fields.has('name') && shownName !== '' && !isPseudonym(shownName))
          shownName = pseudonymOf(privacy.pseudonymKey, 'name', shownName);
      }
      const grantedAt = fromChTime(g.at);
      const u = usage.of(g, erased);
      const window = (found: number | undefined): Use =>
        erased || noData ? NO_DATA : found !== undefined ? { state: 'used', at: found } : NOT_USED;
      const lastLogin = window(u.login);
      const lastResourceAction = window(u.resource);
      const mapped = this.policy.permissionActions[g.rn] !== undefined;
      const lastPermissionUse = mapped ? window(u.permission) : NO_DATA;
      const measure = mapped ? 'permission' : g.rt !== '' ? 'resource' : 'any';
      const lastUsed = {
        ...(measure === 'permission'
          ? lastPermissionUse
          : measure === 'resource'
            ? lastResourceAction
            : window(u.any)),
        measure,
      } as const;
      const expiresAt = g.ex === null || g.ex === '' ? null : fromChTime(g.ex);
      const { flags, explanations } = this.flags({
        asOf,
        trackingSince,
        grantedAt,
        lastUsed,
        right: g.rn,
        selfGranted: g.gk !== '' && g.gk === g.sk,
        ticket: g.ticket,
        expiresAt,
        leftAt: s && Number(s.leaves) > 0 ? fromChTime(s.left_at) : null,
        others: held.get(g.sk) ?? new Set(),
        mfa: mfaRecorded ? (s && Number(s.mfas) > 0 ? s.mfa_last : '') : null,
      });
      rows.push({
        subjectKey: g.sk,
        subjectState: state,
        subjectType: g.st,
        subjectId: shownId,
        subjectName: shownName,
        rightKind: g.rk,
        right: g.rn,
        resourceType: g.rt,
        resourceId: g.ri,
        grantedAt,
        grantedBy: g.gi,
        ticket: g.ticket,
        reason: g.reason,
        expiresAt,
        grantEvent: g.ev,
        lastLogin,
        lastResourceAction,
        lastPermissionUse,
        lastUsed,
        flags,
        explanations,
      });
    }
    return { tenant, asOf, trackingSince, rows, restrictedSubjects: [...shownRestricted].sort() };
  }

  /** T0: the time of the tenant's earliest retained event; null when it has none. */
  async trackingSince(tenant: string): Promise<number | null> {
    const [row] = await this.store.query<{ n: number | string; t: string }>(
      `SELECT count() AS n, toString(min(time)) AS t FROM ${this.store.table('events')}
       WHERE tenant_id = {tenant:String}`,
      { tenant },
    );
    return row && Number(row.n) > 0 ? fromChTime(row.t) : null;
  }

  /**
   * The last uses at or before T of every subject: logins and any action per actor, actions on
   * the resources of the grants, and actions of the mapped permissions. Three aggregate queries
   * over the events (no FINAL: a maximum is the same over a row written twice).
   */
  private async usage(
    tenant: string,
    t: string,
    formOf: ReadonlyMap<string, string>,
    grants: readonly GrantRow[],
  ): Promise<{
    of(
      g: GrantRow,
      erased: boolean,
    ): {
      login?: number | undefined;
      resource?: number | undefined;
      permission?: number | undefined;
      any?: number | undefined;
    };
  }> {
    const forms = [...formOf.keys()];
    const login = new Map<string, number>();
    const any = new Map<string, number>();
    const resource = new Map<string, number>();
    const byAction = new Map<string, Map<string, number>>();
    const events = this.store.table('events');
    const max = (m: Map<string, number>, k: string, v: number): void => {
      const before = m.get(k);
      if (before === undefined || v > before) m.set(k, v);
    };
    if (forms.length > 0) {
      const l = splitPatterns(this.policy.loginActions);
      const loginCond = `outcome = 'success' AND (action IN {le:Array(String)} OR arrayExists(p -> startsWith(action, p), {lp:Array(String)}))`;
      const base = `tenant_id = {tenant:String} AND time <= {t:DateTime64(3, 'UTC')} AND actor_id IN {forms:Array(String)}`;
      for (const r of await this.store.query<{
        a: string;
        any: string;
        login: string;
        n: string | number;
      }>(
        `SELECT actor_id AS a, toString(max(time)) AS any, toString(maxIf(time, ${loginCond})) AS login,
                countIf(${loginCond}) AS n
         FROM ${events} WHERE ${base} GROUP BY actor_id`,
        { tenant, t, forms, le: l.exact, lp: l.prefixes },
      )) {
        const sk = formOf.get(r.a);
        if (sk === undefined) continue;
        max(any, sk, fromChTime(r.any));
        if (Number(r.n) > 0) max(login, sk, fromChTime(r.login));
      }
      const resources = [
        ...new Set(grants.filter((g) => g.rt !== '').map((g) => `${g.rt}/${g.ri}`)),
      ];
      if (resources.length > 0)
        for (const r of await this.store.query<{ a: string; r: string; at: string }>(
          `SELECT actor_id AS a, concat(target_type, '/', target_id) AS r, toString(max(time)) AS at
           FROM ${events}
           WHERE ${base} AND concat(target_type, '/', target_id) IN {res:Array(String)}
           GROUP BY actor_id, r`,
          { tenant, t, forms, res: resources },
        )) {
          const sk = formOf.get(r.a);
          if (sk !== undefined) max(resource, `${sk}\u0000${r.r}`, fromChTime(r.at));
        }
      const patterns = Object.values(this.policy.permissionActions).flat();
      if (patterns.length > 0) {
        const p = splitPatterns(patterns);
        for (const r of await this.store.query<{ a: string; action: string; at: string }>(
          `SELECT actor_id AS a, action, toString(max(time)) AS at FROM ${events}
           WHERE ${base} AND (action IN {pe:Array(String)} OR arrayExists(x -> startsWith(action, x), {pp:Array(String)}))
           GROUP BY actor_id, action`,
          { tenant, t, forms, pe: p.exact, pp: p.prefixes },
        )) {
          const sk = formOf.get(r.a);
          if (sk === undefined) continue;
          const m = byAction.get(sk) ?? new Map<string, number>();
          max(m, r.action, fromChTime(r.at));
          byAction.set(sk, m);
        }
      }
    }
    const policy = this.policy;
    return {
      of(g, erased) {
        if (erased) return {};
        let permission: number | undefined;
        const patterns = policy.permissionActions[g.rn];
        if (patterns)
          for (const [action, at] of byAction.get(g.sk) ?? [])
            if (matchesPattern(action, patterns) && (permission === undefined || at > permission))
              permission = at;
        return {
          login: login.get(g.sk),
          any: any.get(g.sk),
          resource: g.rt !== '' ? resource.get(`${g.sk}\u0000${g.rt}/${g.ri}`) : undefined,
          permission,
        };
      },
    };
  }

  private flags(input: {
    asOf: number;
    trackingSince: number | null;
    grantedAt: number;
    lastUsed: Use;
    right: string;
    selfGranted: boolean;
    ticket: string;
    expiresAt: number | null;
    leftAt: number | null;
    others: ReadonlySet<string>;
    /** null: the tenant records no MFA events; '' none of the subject; else the last action. */
    mfa: string | null;
  }): { flags: ReviewFlag[]; explanations: string[] } {
    const p = this.policy;
    const enabled = this.enabled;
    const out: [ReviewFlag, string][] = [];
    const days = (ms: number): number => Math.floor(ms / DAY);
    const { lastUsed, asOf } = input;
    if (lastUsed.state === 'used' && lastUsed.at !== undefined) {
      const idle = asOf - lastUsed.at;
      if (idle >= p.dormantDays * DAY)
        out.push([
          'dormant',
          `dormant: last used ${csvTime(lastUsed.at)} UTC, ${days(idle)} days before the review date (limit ${p.dormantDays})`,
        ]);
    } else if (lastUsed.state === 'not_used' && input.trackingSince !== null) {
      const since = Math.max(input.trackingSince, input.grantedAt);
      if (asOf - since >= p.dormantDays * DAY)
        out.push([
          'dormant',
          `dormant: not used since ${csvTime(since)} UTC, ${days(asOf - since)} days (limit ${p.dormantDays})`,
        ]);
      if (input.trackingSince <= input.grantedAt)
        out.push([
          'never_used',
          `never used: no use since the grant at ${csvTime(input.grantedAt)} UTC (events retained since ${csvTime(input.trackingSince)} UTC)`,
        ]);
    }
    if (p.privileged.includes(input.right))
      out.push(['privileged', `privileged: ${input.right} is listed in access.privileged`]);
    if (input.selfGranted) out.push(['self_granted', 'self-granted: the grantor is the subject']);
    if (input.ticket === '') out.push(['no_ticket', 'outside process: the grant names no ticket']);
    if (input.expiresAt !== null && input.expiresAt <= asOf)
      out.push([
        'expired',
        `expired: expiry ${csvTime(input.expiresAt)} UTC passed and the right was not revoked`,
      ]);
    if (input.leftAt !== null)
      out.push(['leaver', `leaver: the subject left at ${csvTime(input.leftAt)} UTC`]);
    const conflicts = p.sodPairs
      .filter(
        ([a, b]) =>
          (a === input.right && input.others.has(b)) || (b === input.right && input.others.has(a)),
      )
      .map(([a, b]) => (a === input.right ? b : a));
    if (conflicts.length > 0)
      out.push([
        'sod_conflict',
        `segregation of duties: also holds ${[...new Set(conflicts)].sort().join(', ')}`,
      ]);
    if (input.mfa !== null && !p.mfaEnrolledActions.includes(input.mfa))
      out.push([
        'mfa_missing',
        input.mfa === ''
          ? 'MFA not enrolled: no mfa.* event of the subject'
          : `MFA not enrolled: the last mfa.* event of the subject is ${input.mfa}`,
      ]);
    const kept = out
      .filter(([f]) => enabled.has(f))
      .sort((a, b) => REVIEW_FLAGS.indexOf(a[0]) - REVIEW_FLAGS.indexOf(b[0]));
    return { flags: kept.map(([f]) => f), explanations: kept.map(([, e]) => e) };
  }
}

/** Shared by every row that has them: a Use is never modified. */
const NO_DATA: Use = { state: 'no_data' };
const NOT_USED: Use = { state: 'not_used' };

/** No use can be known: the tenant has no events, or none retained from before T. */
function untracked(trackingSince: number | null, asOf: number): boolean {
  return trackingSince === null || trackingSince > asOf;
}

/** Epoch ms as a ClickHouse DateTime64(3) parameter. */
function chTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}
