import type { Alert } from '@vigil/detect';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';

/**
 * The alerts the detector raised, in the store's `alerts` table (migration 8). A grouped alert
 * grows: each update writes the alert again with its next version, and reads take the newest
 * (FINAL). Writing the same version twice (a detector that restarted between writing and
 * checkpointing) leaves one row.
 */
export interface StoredAlert {
  readonly tenant: string;
  readonly id: string;
  readonly key: string;
  readonly ruleId: string;
  readonly title: string;
  readonly severity: string;
  readonly attack: readonly string[];
  readonly entity: Readonly<Record<string, string>>;
  readonly firstEventTime: number;
  readonly lastEventTime: number;
  readonly eventIds: readonly string[];
  readonly eventCount: number;
  readonly evidence: Readonly<Record<string, unknown>>;
  readonly version: number;
  /** When the detector first raised it (its clock), and when it last grew. */
  readonly raisedAt: number;
  readonly updatedAt: number;
}

export interface AlertFilter {
  readonly ruleId?: string;
  readonly severity?: string;
  /** Alerts whose last event is at or after this time (epoch ms). */
  readonly since?: number;
  readonly limit?: number;
}

export interface AlertStoreOptions {
  /** How long an alert is kept after its last event (default 365 days). */
  readonly retentionDays?: number;
  readonly clock?: () => number;
}

const DAY_MS = 86_400_000;

/** A row of `alerts` as `SELECT * EXCEPT expires_at` returns it. */
export interface AlertRow {
  tenant_id: string;
  id: string;
  alert_key: string;
  rule_id: string;
  title: string;
  severity: string;
  attack: string[];
  entity: string;
  first_event_time: string;
  last_event_time: string;
  event_ids: string[];
  event_count: string | number;
  evidence: string;
  version: number;
  raised_at: string;
  updated_at: string;
}

const chTime = (ms: number): string => toChTime(new Date(ms).toISOString());

export class AlertStore {
  private readonly retentionMs: number;
  private readonly clock: () => number;

  constructor(
    private readonly store: Store,
    options: AlertStoreOptions = {},
  ) {
    this.retentionMs = (options.retentionDays ?? 365) * DAY_MS;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Writes new and grown alerts. `raisedAt` of a grown alert is read back from its first
   * version where the caller does not know it; pass the detector's clock as `now`.
   */
  async record(alerts: readonly Alert[], now = this.clock()): Promise<void> {
    if (alerts.length === 0) return;
    const grown = alerts.filter((a) => a.version > 1);
    const raised = grown.length > 0 ? await this.raisedTimes(grown) : new Map<string, string>();
    const rows = alerts.map((a) => ({
      tenant_id: a.tenant,
      id: a.id,
      alert_key: a.key,
      rule_id: a.ruleId,
      title: a.title,
      severity: a.severity,
      attack: a.attack,
      entity: JSON.stringify(a.entity),
      first_event_time: chTime(a.firstEventTime),
      last_event_time: chTime(a.lastEventTime),
      event_ids: a.eventIds,
      event_count: a.eventCount,
      evidence: JSON.stringify(a.evidence),
      version: a.version,
      raised_at: raised.get(`${a.tenant}\u0000${a.id}`) ?? chTime(now),
      updated_at: chTime(now),
      expires_at: Math.floor((a.lastEventTime + this.retentionMs) / 1000),
    }));
    await this.store.insert(this.store.table('alerts'), rows);
  }

  /** A tenant's alerts, newest last event first. */
  async list(tenant: string, filter: AlertFilter = {}): Promise<StoredAlert[]> {
    const where = ['tenant_id = {tenant:String}'];
    const params: Record<string, unknown> = { tenant, limit: filter.limit ?? 100 };
    if (filter.ruleId !== undefined) {
      where.push('rule_id = {rule:String}');
      params['rule'] = filter.ruleId;
    }
    if (filter.severity !== undefined) {
      where.push('severity = {severity:String}');
      params['severity'] = filter.severity;
    }
    if (filter.since !== undefined) {
      where.push("last_event_time >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')");
      params['since'] = filter.since;
    }
    const rows = await this.store.query<AlertRow>(
      `SELECT * EXCEPT expires_at FROM ${this.store.table('alerts')} FINAL
WHERE ${where.join(' AND ')}
ORDER BY last_event_time DESC, id
LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map(alertOfRow);
  }

  async get(tenant: string, id: string): Promise<StoredAlert | undefined> {
    const rows = await this.store.query<AlertRow>(
      `SELECT * EXCEPT expires_at FROM ${this.store.table('alerts')} FINAL
WHERE tenant_id = {tenant:String} AND id = {id:String}`,
      { tenant, id },
    );
    return rows[0] ? alertOfRow(rows[0]) : undefined;
  }

  private async raisedTimes(alerts: readonly Alert[]): Promise<Map<string, string>> {
    const rows = await this.store.query<{ tenant_id: string; id: string; raised_at: string }>(
      `SELECT tenant_id, id, min(raised_at) AS raised_at FROM ${this.store.table('alerts')}
WHERE tenant_id IN {tenants:Array(String)} AND id IN {ids:Array(String)}
GROUP BY tenant_id, id`,
      { tenants: [...new Set(alerts.map((a) => a.tenant))], ids: alerts.map((a) => a.id) },
    );
    return new Map(rows.map((r) => [`${r.tenant_id}\u0000${r.id}`, r.raised_at]));
  }
}

export function alertOfRow(row: AlertRow): StoredAlert {
  return {
    tenant: row.tenant_id,
    id: row.id,
    key: row.alert_key,
    ruleId: row.rule_id,
    title: row.title,
    severity: row.severity,
    attack: row.attack,
    entity: JSON.parse(row.entity) as Record<string, string>,
    firstEventTime: fromChTime(row.first_event_time),
    lastEventTime: fromChTime(row.last_event_time),
    eventIds: row.event_ids,
    eventCount: Number(row.event_count),
    evidence: JSON.parse(row.evidence) as Record<string, unknown>,
    version: row.version,
    raisedAt: fromChTime(row.raised_at),
    updatedAt: fromChTime(row.updated_at),
  };
}
