import { normalEmail } from '@vigil/protocol';
import type { ClickHouseSettings } from '@clickhouse/client';
import { alterTable } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { fieldOfPath, pseudonymOf, type RowPrivacy } from '../privacy/pseudonyms.js';
import type { SubjectForms } from '../privacy/service.js';
import { alertOfRow, type AlertRow, type StoredAlert } from './store.js';

/**
 * Personal data in alerts (issue 11 item 8). An alert's entity (the account, address or API key
 * it is about), the distinct values its evidence lists and the ids of the events it was raised
 * from are personal data of the people in those events. So:
 *
 * - **Erasure**: an alert whose entity is one of the person's values is about the person and is
 *   deleted, with its triage; any other alert whose evidence lists one of the person's values is
 *   rewritten without them (event ids stay: they name events, whose own values the erasure of
 *   the events removes). The receipt counts both (`counts.alerts`).
 * - **Restriction**: an alert raised from a restricted subject's events is hidden from lists and
 *   reads, as the events are (alerts/triage.ts).
 * - **Pseudonymisation**: the detector sees plain values; where the tenant pseudonymises a kind
 *   of field, the values of that kind in an alert's entity and evidence are shown as the tenant's
 *   pseudonyms (the same ones its events show).
 * - **Export**: the person's export lists the alerts that name them or their events.
 * - **Retention**: alerts and their triage expire `alerts.retentionDays` after their last event.
 */

/** A dotted field name as rules use it (`actor.id`) as the JSON pointer of its kind. */
function kindOf(field: string, rp: RowPrivacy): ReturnType<typeof fieldOfPath> {
  const kind = fieldOfPath(`/${field.replaceAll('.', '/')}`);
  return kind !== undefined && rp.fields.has(kind) ? kind : undefined;
}

/** The alert as an analyst of the tenant may see it: pseudonymised fields as pseudonyms. */
export function pseudonymiseAlert<T extends StoredAlert>(alert: T, rp: RowPrivacy | undefined): T {
  if (!rp) return alert;
  const entity: Record<string, string> = {};
  for (const [field, value] of Object.entries(alert.entity)) {
    const kind = kindOf(field, rp);
    entity[field] = kind ? pseudonymOf(rp.pseudonymKey, kind, value) : value;
  }
  const values = alert.evidence['values'];
  let evidence = alert.evidence;
  if (typeof values === 'object' && values !== null && !Array.isArray(values)) {
    const shown: Record<string, unknown> = {};
    for (const [field, list] of Object.entries(values as Record<string, unknown>)) {
      const kind = kindOf(field, rp);
      shown[field] =
        kind && Array.isArray(list)
          ? (list as unknown[]).map((v) =>
              typeof v === 'string' || typeof v === 'number'
                ? pseudonymOf(rp.pseudonymKey, kind, v)
                : v,
            )
          : list;
    }
    evidence = { ...alert.evidence, values: shown };
  }
  return { ...alert, entity, evidence };
}

/** The person's values that alerts may hold: ids, addresses, and the values erased from events. */
export function subjectNeedles(forms: SubjectForms, values: Iterable<string> = []): Set<string> {
  const out = new Set<string>([...forms.ids, ...forms.emails]);
  for (const v of values) {
    out.add(v);
    if (v.includes('@')) out.add(normalEmail(v));
  }
  return out;
}

function names(value: string, needles: ReadonlySet<string>): boolean {
  return needles.has(value) || (value.includes('@') && needles.has(normalEmail(value)));
}

/** Evidence without the needles, and whether anything was removed (no recursion past depth 8). */
function withoutNeedles(
  value: unknown,
  needles: ReadonlySet<string>,
  depth = 0,
): { value: unknown; removed: boolean } {
  if (typeof value === 'string') return { value, removed: names(value, needles) };
  if (depth > 8 || typeof value !== 'object' || value === null) return { value, removed: false };
  let removed = false;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const item of value) {
      const r = withoutNeedles(item, needles, depth + 1);
      if (r.removed && typeof item === 'string') {
        removed = true;
        continue;
      }
      removed ||= r.removed;
      out.push(r.value);
    }
    return { value: out, removed };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const r = withoutNeedles(v, needles, depth + 1);
    if (r.removed && typeof v === 'string') {
      removed = true;
      continue;
    }
    removed ||= r.removed;
    out[k] = r.value;
  }
  return { value: out, removed };
}

export interface AlertErasurePlan {
  readonly tenant: string;
  /** Alerts about the person: deleted with their triage. */
  readonly deleted: readonly string[];
  /** Other alerts that list the person's values: their newest version, rewritten. */
  readonly rewritten: readonly Record<string, unknown>[];
}

type RawAlertRow = AlertRow & { expires_at: string | number };

export class AlertPrivacy {
  constructor(private readonly store: Store) {}

  /**
   * Alerts that name one of `needles` (in entity or evidence) or were raised from one of
   * `eventIds`: a JSON-text prefilter in the store, checked exactly here.
   */
  private async candidates(
    tenant: string,
    needles: ReadonlySet<string>,
    eventIds: readonly string[],
  ): Promise<RawAlertRow[]> {
    const quoted = [...needles].map((n) => JSON.stringify(n).slice(1, -1));
    return this.store.query<RawAlertRow>(
      `SELECT * FROM ${this.store.table('alerts')} FINAL
WHERE tenant_id = {tenant:String}
  AND (hasAny(event_ids, {ids:Array(String)})
       OR arrayExists(n -> positionCaseInsensitiveUTF8(entity, n) > 0 OR positionCaseInsensitiveUTF8(evidence, n) > 0, {needles:Array(String)}))`,
      { tenant, ids: [...eventIds], needles: quoted },
    );
  }

  /** What erasing a person means for the tenant's alerts; changes nothing. */
  async planErasure(
    tenant: string,
    needles: ReadonlySet<string>,
    eventIds: readonly string[],
  ): Promise<AlertErasurePlan> {
    const deleted: string[] = [];
    const rewritten: Record<string, unknown>[] = [];
    for (const row of await this.candidates(tenant, needles, eventIds)) {
      const entity = JSON.parse(row.entity) as Record<string, string>;
      if (Object.values(entity).some((v) => names(v, needles))) {
        deleted.push(row.id);
        continue;
      }
      const evidence = withoutNeedles(JSON.parse(row.evidence) as unknown, needles);
      if (evidence.removed) rewritten.push({ ...row, evidence: JSON.stringify(evidence.value) });
    }
    return { tenant, deleted: deleted.sort(), rewritten };
  }

  /**
   * Applies a plan: every version of the affected alerts is deleted (a mutation, waited for),
   * then the rewritten ones are written back at the version they had, so the detector's next
   * version of a grown alert still supersedes them. Triage of deleted alerts goes with them;
   * triage notes of rewritten ones that quote the person lose the note text.
   */
  async applyErasure(
    plan: AlertErasurePlan,
    needles: ReadonlySet<string>,
  ): Promise<{ deleted: number; rewritten: number; notes: number; deliveries: number }> {
    const ids = [...plan.deleted, ...plan.rewritten.map((r) => String(r['id']))];
    if (ids.length === 0) return { deleted: 0, rewritten: 0, notes: 0, deliveries: 0 };
    const settings: ClickHouseSettings = { mutations_sync: '2' };
    const params = { tenant: plan.tenant, ids, deleted: [...plan.deleted] };
    await this.store.command(
      alterTable(
        this.store,
        'alerts',
        'DELETE WHERE tenant_id = {tenant:String} AND id IN {ids:Array(String)}',
      ),
      params,
      settings,
    );
    if (plan.rewritten.length > 0)
      await this.store.insert(this.store.table('alerts'), [...plan.rewritten]);
    if (plan.deleted.length > 0)
      await this.store.command(
        alterTable(
          this.store,
          'alert_triage',
          'DELETE WHERE tenant_id = {tenant:String} AND alert_id IN {deleted:Array(String)}',
        ),
        params,
        settings,
      );
    const quoted = [...needles];
    const notes = await this.store.query<{ n: number | string }>(
      `SELECT count() AS n FROM ${this.store.table('alert_triage')}
WHERE tenant_id = {tenant:String} AND alert_id IN {ids:Array(String)}
  AND (arrayExists(n -> positionCaseInsensitiveUTF8(note, n) > 0, {needles:Array(String)}) OR has({needles:Array(String)}, assignee))`,
      { ...params, needles: quoted },
    );
    const n = Number(notes[0]?.n ?? 0);
    if (n > 0)
      await this.store.command(
        alterTable(
          this.store,
          'alert_triage',
          `UPDATE note = if(arrayExists(n -> positionCaseInsensitiveUTF8(note, n) > 0, {needles:Array(String)}), '', note),
                  assignee = if(has({needles:Array(String)}, assignee), '', assignee)
           WHERE tenant_id = {tenant:String} AND alert_id IN {ids:Array(String)}`,
        ),
        { ...params, needles: quoted },
        settings,
      );
    const deliveries = await this.eraseDeliveries(plan.tenant, ids, settings);
    return {
      deleted: plan.deleted.length,
      rewritten: plan.rewritten.length,
      notes: n,
      deliveries,
    };
  }

  /**
   * Webhook deliveries of the affected alerts (webhooks/outbox.ts) hold the alert as it was
   * sent, the person's values with it: every one is deleted, those still waiting to be sent
   * too (an erased person's values must not leave Vigil afterwards; the receiver already holds
   * what was delivered before). A delivery's event id is `<alert id>.<version>`.
   */
  private async eraseDeliveries(
    tenant: string,
    ids: readonly string[],
    settings: ClickHouseSettings,
  ): Promise<number> {
    const where = `tenant_id = {tenant:String} AND splitByChar('.', event_id)[1] IN {ids:Array(String)}`;
    const params = { tenant, ids };
    const [row] = await this.store.query<{ n: number | string }>(
      `SELECT uniqExact(id) AS n FROM ${this.store.table('webhook_deliveries')} WHERE ${where}`,
      params,
    );
    const n = Number(row?.n ?? 0);
    if (n > 0)
      await this.store.command(
        alterTable(this.store, 'webhook_deliveries', `DELETE WHERE ${where}`),
        params,
        settings,
      );
    return n;
  }

  /** The alerts an export of the person lists: those that name them or their events. */
  async ofSubject(
    tenant: string,
    needles: ReadonlySet<string>,
    eventIds: readonly string[],
  ): Promise<StoredAlert[]> {
    const rows = await this.candidates(tenant, needles, eventIds);
    const ids = new Set(eventIds);
    return rows
      .filter((row) => {
        if (row.event_ids.some((id) => ids.has(id))) return true;
        return withoutNeedles(
          {
            entity: JSON.parse(row.entity) as unknown,
            evidence: JSON.parse(row.evidence) as unknown,
          },
          needles,
        ).removed;
      })
      .map((row) => alertOfRow(row))
      .sort((a, b) => a.firstEventTime - b.firstEventTime || (a.id < b.id ? -1 : 1));
  }
}

/** An alert as the person's own export shows it: their values, never anyone else's. */
export interface SubjectAlert {
  readonly id: string;
  readonly ruleId: string;
  readonly title: string;
  readonly severity: string;
  readonly attack: readonly string[];
  readonly firstEventTime: string;
  readonly lastEventTime: string;
  readonly raisedAt: string;
  /** The entity's fields; null where the value is not the person's. */
  readonly entity: Readonly<Record<string, string | null>>;
  /** Whether the alert is about the person (its entity is theirs). */
  readonly about: boolean;
  /** The person's events among those the alert was raised from. */
  readonly eventIds: readonly string[];
  readonly eventCount: number;
  /**
   * For an alert about the person, its evidence; the listed distinct values only where they are
   * the person's. For others, only those values.
   */
  readonly evidence: Readonly<Record<string, unknown>>;
}

export function subjectAlert(
  alert: StoredAlert,
  needles: ReadonlySet<string>,
  eventIds: ReadonlySet<string>,
): SubjectAlert {
  const entity: Record<string, string | null> = {};
  let about = false;
  for (const [k, v] of Object.entries(alert.entity)) {
    const theirs = names(v, needles);
    about ||= theirs;
    entity[k] = theirs ? v : null;
  }
  const values: Record<string, string[]> = {};
  const listed = alert.evidence['values'];
  if (typeof listed === 'object' && listed !== null && !Array.isArray(listed))
    for (const [field, list] of Object.entries(listed as Record<string, unknown>)) {
      const theirs = Array.isArray(list)
        ? list.filter((v): v is string => typeof v === 'string' && names(v, needles))
        : [];
      if (theirs.length > 0) values[field] = theirs;
    }
  const rest = Object.fromEntries(Object.entries(alert.evidence).filter(([k]) => k !== 'values'));
  const time = (ms: number): string => new Date(ms).toISOString();
  return {
    id: alert.id,
    ruleId: alert.ruleId,
    title: alert.title,
    severity: alert.severity,
    attack: alert.attack,
    firstEventTime: time(alert.firstEventTime),
    lastEventTime: time(alert.lastEventTime),
    raisedAt: time(alert.raisedAt),
    entity,
    about,
    eventIds: alert.eventIds.filter((id) => eventIds.has(id)),
    eventCount: alert.eventCount,
    evidence: {
      ...(about ? rest : {}),
      ...(Object.keys(values).length > 0 ? { values } : {}),
    },
  };
}
