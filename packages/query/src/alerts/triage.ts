import { randomUUID } from 'node:crypto';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { InvalidQueryError, QueryError, QueryErrorCodes } from '../errors.js';
import { fieldOfPath, pseudonymOf, type RowPrivacy } from '../privacy/pseudonyms.js';
import { alertOfRow, type AlertRow, type StoredAlert } from './store.js';

/**
 * Triage of alerts: their state, assignee and notes, kept as an append-only list of changes per
 * alert (`alert_triage`, migration 11) and folded into the current triage when read. Every
 * change names the audit event that recorded it (the routes record it through the
 * ChangeRecorder first, and make no change that could not be recorded).
 *
 * An accepted risk has an expiry: once the store's clock (`now64(3)`) passes it, the alert reads
 * as open again. This is computed at read time, so no job has to reopen anything.
 */

export const TRIAGE_STATES = [
  'open',
  'acknowledged',
  'closed',
  'false_positive',
  'accepted_risk',
] as const;
export type TriageState = (typeof TRIAGE_STATES)[number];

export const ALERT_GROUPS = ['rule', 'entity', 'address'] as const;
export type AlertGrouping = (typeof ALERT_GROUPS)[number];

export interface TriageNote {
  /** The API key that wrote it. */
  readonly author: string;
  readonly at: number;
  readonly text: string;
}

export interface Triage {
  /** The state in force: an accepted risk past its expiry reads as `open`. */
  readonly state: TriageState;
  /** The state last set (differs from `state` only for an expired accepted risk). */
  readonly setState: TriageState;
  /** Expiry of an accepted risk (epoch ms), else null. */
  readonly until: number | null;
  readonly assignee: string | null;
  readonly notes: readonly TriageNote[];
  /** Field changes recorded (state, assignee, note), and when and by which key the last was made. */
  readonly changes: number;
  readonly changedAt: number | null;
  readonly changedBy: string | null;
}

export type TriagedAlert = StoredAlert & { readonly triage: Triage };

/** One triage change, applied to one or many alerts. */
export interface TriageChange {
  readonly state?: TriageState;
  /** Required with accepted_risk: when the acceptance ends (epoch ms, in the future). */
  readonly until?: number;
  /** A person or team; null unassigns. */
  readonly assignee?: string | null;
  readonly note?: string;
  /** Why the state changed (kept with the change). */
  readonly reason?: string;
}

export interface AlertQuery {
  readonly states?: readonly TriageState[];
  readonly severities?: readonly string[];
  readonly rules?: readonly string[];
  /** Alerts whose entity has this value (an account, an address, an API key). */
  readonly entity?: string;
  /** Alerts whose window overlaps [from, to) (epoch ms). */
  readonly from?: number;
  readonly to?: number;
  readonly assignee?: string;
  readonly limit?: number;
  readonly cursor?: string;
  /** Alerts of restricted subjects (GDPR Art. 18) too: only for admins, and recorded. */
  readonly includeRestricted?: boolean;
}

export interface AlertGroup {
  readonly key: string;
  readonly alerts: number;
  /** Alerts in each state in force. */
  readonly states: Readonly<Record<string, number>>;
  readonly severities: Readonly<Record<string, number>>;
  readonly rules: readonly string[];
  readonly firstEventTime: number;
  readonly lastEventTime: number;
}

export interface Page<T> {
  readonly items: T[];
  readonly nextCursor?: string;
}

export const MAX_PAGE = 500;
/** Alerts one bulk change may touch. */
export const MAX_BULK = 10_000;
const DAY_MS = 86_400_000;

interface TriageColumns {
  t_state: string;
  t_until: string;
  t_assignee: string;
  t_assigns: number | string;
  t_changes: number | string;
  t_changed_at: string;
  t_changed_by: string;
  t_notes: [string, string, string, string][];
  eff_state: string;
}

const msParam = (name: string): string => `fromUnixTimestamp64Milli({${name}:Int64}, 'UTC')`;

/**
 * Alerts with their triage folded in and the state in force computed (`eff_state`). The
 * restriction filter hides an alert any of whose events is restricted (GDPR Art. 18): the alert
 * was raised from them, so it holds the person's data as they do.
 */
function triagedSql(store: Store, where: string, includeRestricted: boolean): string {
  const restricted = includeRestricted
    ? ''
    : ` AND NOT hasAny(event_ids, (SELECT groupArray(toString(id)) FROM ${store.table('events')}
        WHERE tenant_id = {tenant:String} AND notEmpty(restricted_by)))`;
  return `SELECT *,
  multiIf(t_state = '', 'open',
          t_state = 'accepted_risk' AND t_until <= now64(3), 'open',
          t_state) AS eff_state
FROM (
  SELECT * EXCEPT expires_at FROM ${store.table('alerts')} FINAL
  WHERE tenant_id = {tenant:String}${where}${restricted}
) AS a
LEFT JOIN (
  SELECT alert_id,
    argMaxIf(state, (changed_at, change_id), kind = 'state') AS t_state,
    argMaxIf(until, (changed_at, change_id), kind = 'state') AS t_until,
    argMaxIf(assignee, (changed_at, change_id), kind = 'assign') AS t_assignee,
    countIf(kind = 'assign') AS t_assigns,
    count() AS t_changes,
    max(changed_at) AS t_changed_at,
    argMax(actor_key_id, (changed_at, change_id)) AS t_changed_by,
    arraySort(x -> (x.1, x.4), groupArrayIf((toString(changed_at), actor_key_id, note, change_id), kind = 'note')) AS t_notes
  FROM ${store.table('alert_triage')}
  WHERE tenant_id = {tenant:String}
  GROUP BY alert_id
) AS t ON t.alert_id = a.id`;
}

function triageOf(row: TriageColumns): Triage {
  const changes = Number(row.t_changes ?? 0);
  const setState = (row.t_state || 'open') as TriageState;
  return {
    state: (row.eff_state || 'open') as TriageState,
    setState,
    until: setState === 'accepted_risk' ? fromChTime(row.t_until) : null,
    assignee: Number(row.t_assigns ?? 0) > 0 && row.t_assignee !== '' ? row.t_assignee : null,
    notes: (row.t_notes ?? []).map(([at, author, text]) => ({
      at: fromChTime(at),
      author,
      text,
    })),
    changes,
    changedAt: changes > 0 ? fromChTime(row.t_changed_at) : null,
    changedBy: changes > 0 ? row.t_changed_by : null,
  };
}

function encodeCursor(parts: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(parts) &&
      parts.length === 2 &&
      Number.isSafeInteger(parts[0]) &&
      typeof parts[1] === 'string'
    )
      return [parts[0] as number, parts[1]];
  } catch {
    // refused below
  }
  throw new QueryError(
    QueryErrorCodes.INVALID_CURSOR,
    'cursor is not one this server issued; start again without it',
    { status: 400, details: [{ path: '/cursor', message: 'is invalid' }] },
  );
}

/** SQL of the group key of each grouping (over the columns of triagedSql). */
const GROUP_KEY: Readonly<Record<AlertGrouping, string>> = {
  rule: 'rule_id',
  // The account the alert is about; an alert without one is its own entity.
  entity: `multiIf(JSONExtractString(entity, 'actor.id') != '', JSONExtractString(entity, 'actor.id'),
    JSONExtractString(entity, 'target.id') != '', JSONExtractString(entity, 'target.id'),
    JSONExtractString(entity, 'api_key.id') != '', JSONExtractString(entity, 'api_key.id'),
    entity)`,
  // The address the alert is about, else the first one its evidence lists.
  address: `if(JSONExtractString(entity, 'context.ip') != '', JSONExtractString(entity, 'context.ip'),
    arrayElement(JSONExtract(evidence, 'values', 'context.ip', 'Array(String)'), 1))`,
};

export class AlertTriage {
  private readonly retentionMs: number;

  constructor(
    private readonly store: Store,
    options: { readonly retentionDays?: number } = {},
  ) {
    this.retentionMs = (options.retentionDays ?? 365) * DAY_MS;
  }

  /** One alert with its triage, or undefined (not the tenant's, not stored, or restricted). */
  async get(
    tenant: string,
    id: string,
    options: { includeRestricted?: boolean } = {},
  ): Promise<TriagedAlert | undefined> {
    const rows = await this.store.query<AlertRow & TriageColumns>(
      triagedSql(this.store, ' AND id = {id:String}', options.includeRestricted === true),
      { tenant, id },
    );
    return rows[0] ? { ...alertOfRow(rows[0]), triage: triageOf(rows[0]) } : undefined;
  }

  /** A page of alerts, newest last event first. */
  async list(tenant: string, query: AlertQuery = {}): Promise<Page<TriagedAlert>> {
    const { where, outer, params } = this.filters(tenant, query);
    const limit = pageSize(query.limit);
    if (query.cursor !== undefined) {
      const [t, id] = decodeCursor(query.cursor);
      outer.push(`(last_event_time, id) < (${msParam('ct')}, {cid:String})`);
      params['ct'] = t;
      params['cid'] = id;
    }
    const rows = await this.store.query<AlertRow & TriageColumns>(
      `SELECT * FROM (${triagedSql(this.store, where, query.includeRestricted === true)})
WHERE ${outer.join(' AND ')}
ORDER BY last_event_time DESC, id DESC
LIMIT {limit:UInt32}`,
      { ...params, limit: limit + 1 },
    );
    const items = rows.slice(0, limit).map((r) => ({ ...alertOfRow(r), triage: triageOf(r) }));
    const last = items[items.length - 1];
    return rows.length > limit && last
      ? { items, nextCursor: encodeCursor([last.lastEventTime, last.id]) }
      : { items };
  }

  /** Groups of alerts by rule, entity (account) or address, most recent first. */
  async groups(
    tenant: string,
    grouping: AlertGrouping,
    query: AlertQuery = {},
  ): Promise<Page<AlertGroup>> {
    const { where, outer, params } = this.filters(tenant, query);
    const limit = pageSize(query.limit);
    const having: string[] = [];
    if (query.cursor !== undefined) {
      const [t, key] = decodeCursor(query.cursor);
      having.push(`(last, gkey) < (${msParam('ct')}, {ckey:String})`);
      params['ct'] = t;
      params['ckey'] = key;
    }
    const rows = await this.store.query<{
      gkey: string;
      n: number | string;
      st: [string, number | string][];
      sev: [string, number | string][];
      rules: string[];
      first: string;
      last: string;
    }>(
      `SELECT ${GROUP_KEY[grouping]} AS gkey, count() AS n,
  arrayMap(s -> (s, countEqual(groupArray(eff_state), s)), arrayDistinct(groupArray(eff_state))) AS st,
  arrayMap(s -> (s, countEqual(groupArray(severity), s)), arrayDistinct(groupArray(severity))) AS sev,
  arraySort(groupUniqArray(rule_id)) AS rules,
  toString(min(first_event_time)) AS first, max(last_event_time) AS last
FROM (${triagedSql(this.store, where, query.includeRestricted === true)})
WHERE ${outer.join(' AND ')}
GROUP BY gkey
${having.length > 0 ? `HAVING ${having.join(' AND ')}` : ''}
ORDER BY last DESC, gkey DESC
LIMIT {limit:UInt32}`,
      { ...params, limit: limit + 1 },
    );
    const items = rows.slice(0, limit).map((r) => ({
      key: r.gkey,
      alerts: Number(r.n),
      states: Object.fromEntries(r.st.map(([s, n]) => [s, Number(n)])),
      severities: Object.fromEntries(r.sev.map(([s, n]) => [s, Number(n)])),
      rules: r.rules,
      firstEventTime: fromChTime(r.first),
      lastEventTime: fromChTime(r.last),
    }));
    const last = items[items.length - 1];
    return rows.length > limit && last
      ? { items, nextCursor: encodeCursor([last.lastEventTime, last.key]) }
      : { items };
  }

  /** Ids of the tenant's alerts that match (for bulk changes), at most MAX_BULK + 1. */
  async ids(tenant: string, query: AlertQuery): Promise<string[]> {
    const { where, outer, params } = this.filters(tenant, query);
    const rows = await this.store.query<{ id: string }>(
      `SELECT id FROM (${triagedSql(this.store, where, false)})
WHERE ${outer.join(' AND ')}
ORDER BY id LIMIT {limit:UInt32}`,
      { ...params, limit: MAX_BULK + 1 },
    );
    return rows.map((r) => r.id);
  }

  /** Of `ids`, those that are the tenant's visible alerts. */
  async existing(tenant: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.store.query<{ id: string }>(
      `SELECT id FROM (${triagedSql(this.store, ' AND id IN {ids:Array(String)}', false)})`,
      { tenant, ids: [...new Set(ids)] },
    );
    return new Set(rows.map((r) => r.id));
  }

  /**
   * Checks a change before anything is recorded: an accepted risk needs an expiry in the future
   * (by the store's clock); a change must change something.
   */
  async validate(change: TriageChange): Promise<void> {
    const details: { path: string; message: string }[] = [];
    if (change.state === undefined && change.assignee === undefined && change.note === undefined)
      details.push({ path: '/state', message: 'give a state, an assignee or a note' });
    if (change.state === 'accepted_risk') {
      if (change.until === undefined)
        details.push({ path: '/until', message: 'is required with state accepted_risk' });
      else if (change.until <= (await this.now()))
        details.push({ path: '/until', message: 'must be in the future' });
    } else if (change.until !== undefined) {
      details.push({ path: '/until', message: 'is allowed only with state accepted_risk' });
    }
    if (details.length > 0) throw new InvalidQueryError('invalid triage change', details);
  }

  /** Writes a change to each of `ids` (validated and recorded by the caller). */
  async apply(
    tenant: string,
    ids: readonly string[],
    change: TriageChange,
    by: { readonly keyId: string; readonly eventId: string },
  ): Promise<void> {
    const now = await this.now();
    const at = toChTime(new Date(now).toISOString());
    const expires = Math.floor((now + this.retentionMs) / 1000);
    const base = {
      tenant_id: tenant,
      changed_at: at,
      actor_key_id: by.keyId,
      state: '',
      until: toChTime(new Date(0).toISOString()),
      assignee: '',
      note: '',
      reason: '',
      event_id: by.eventId,
      expires_at: expires,
    };
    const rows: Record<string, unknown>[] = [];
    for (const id of ids) {
      if (change.state !== undefined)
        rows.push({
          ...base,
          alert_id: id,
          change_id: randomUUID(),
          kind: 'state',
          state: change.state,
          until: toChTime(new Date(change.until ?? 0).toISOString()),
          reason: change.reason ?? '',
        });
      if (change.assignee !== undefined)
        rows.push({
          ...base,
          alert_id: id,
          change_id: randomUUID(),
          kind: 'assign',
          assignee: change.assignee ?? '',
        });
      if (change.note !== undefined)
        rows.push({
          ...base,
          alert_id: id,
          change_id: randomUUID(),
          kind: 'note',
          note: change.note,
        });
    }
    for (let i = 0; i < rows.length; i += 5000)
      await this.store.insert(this.store.table('alert_triage'), rows.slice(i, i + 5000));
  }

  /**
   * The plain entity value whose pseudonym (under the tenant's current key) is `pseudonym`, so an
   * analyst who sees only pseudonyms can filter by one. The store cannot compute the keyed
   * pseudonyms, so the tenant's distinct entity values are read and pseudonymised here.
   */
  async entityValueOf(
    tenant: string,
    pseudonym: string,
    rp: RowPrivacy,
  ): Promise<string | undefined> {
    const rows = await this.store.query<{ k: string; v: string }>(
      `SELECT DISTINCT kv.1 AS k, kv.2 AS v
FROM ${this.store.table('alerts')} ARRAY JOIN JSONExtractKeysAndValues(entity, 'String') AS kv
WHERE tenant_id = {tenant:String}
LIMIT 1000000`,
      { tenant },
    );
    for (const { k, v } of rows) {
      const kind = fieldOfPath(`/${k.replaceAll('.', '/')}`);
      if (kind && rp.fields.has(kind) && pseudonymOf(rp.pseudonymKey, kind, v) === pseudonym)
        return v;
    }
    return undefined;
  }

  /** Open alerts (in force) per severity, across tenants (for metrics). */
  async openBySeverity(): Promise<Map<string, number>> {
    const rows = await this.store.query<{ severity: string; n: number | string }>(
      `SELECT a.severity AS severity, count() AS n
FROM (SELECT tenant_id, id, severity FROM ${this.store.table('alerts')} FINAL) AS a
LEFT JOIN (
  SELECT tenant_id, alert_id,
    argMaxIf(state, (changed_at, change_id), kind = 'state') AS s,
    argMaxIf(until, (changed_at, change_id), kind = 'state') AS u
  FROM ${this.store.table('alert_triage')} GROUP BY tenant_id, alert_id
) AS t ON t.tenant_id = a.tenant_id AND t.alert_id = a.id
WHERE t.s = '' OR t.s = 'open' OR (t.s = 'accepted_risk' AND t.u <= now64(3))
GROUP BY severity`,
    );
    return new Map(rows.map((r) => [r.severity, Number(r.n)]));
  }

  /** The store's clock (epoch ms): accepted risks expire by it. */
  async now(): Promise<number> {
    const [row] = await this.store.query<{ ms: string | number }>(
      'SELECT toUnixTimestamp64Milli(now64(3)) AS ms',
    );
    return Number(row?.ms);
  }

  private filters(
    tenant: string,
    query: AlertQuery,
  ): { where: string; outer: string[]; params: Record<string, unknown> } {
    const where: string[] = [];
    const outer = ['1'];
    const params: Record<string, unknown> = { tenant };
    if (query.severities && query.severities.length > 0) {
      where.push('severity IN {severities:Array(String)}');
      params['severities'] = query.severities;
    }
    if (query.rules && query.rules.length > 0) {
      where.push('rule_id IN {rules:Array(String)}');
      params['rules'] = query.rules;
    }
    if (query.entity !== undefined) {
      where.push(
        "has(arrayMap(x -> x.2, JSONExtractKeysAndValues(entity, 'String')), {entity:String})",
      );
      params['entity'] = query.entity;
    }
    if (query.from !== undefined) {
      where.push(`last_event_time >= ${msParam('from')}`);
      params['from'] = query.from;
    }
    if (query.to !== undefined) {
      where.push(`first_event_time < ${msParam('to')}`);
      params['to'] = query.to;
    }
    if (query.states && query.states.length > 0) {
      outer.push('eff_state IN {states:Array(String)}');
      params['states'] = query.states;
    }
    if (query.assignee !== undefined) {
      outer.push('t_assignee = {assignee:String} AND t_assigns > 0');
      params['assignee'] = query.assignee;
    }
    return { where: where.map((w) => ` AND ${w}`).join(''), outer, params };
  }
}

function pageSize(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? 100, 1), MAX_PAGE);
}
