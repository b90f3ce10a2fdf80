import { isPersonTarget, subjectDigest, type Disclosures, type EventRecord } from '@vigil/protocol';
import type { EventRow } from '../store/event-columns.js';
import { toChTime } from '../store/rows.js';

/**
 * The access projection (issue 12; PROTOCOL.md §3.3): what the sink keeps of `access`, leaver and
 * `mfa.*` events so that "who had which right on date D" can be answered for any past D, after
 * the events themselves expired by retention. One row per fact in `access_projection`
 * (migration 9), written by the sink as it stores the event (collector sink/access.ts):
 *
 * - `grant` / `revoke`: one per right named by an `access` event (an event with both a role and
 *   a permission gives two);
 * - `leave`: the event's action is one of the configured leaver actions (`access.leaverActions`);
 * - `mfa`: an `mfa.*` event with outcome success (its action says enrolled or removed).
 *
 * **The subject key.** Commitments differ per event (each has its own salt), so subjects are
 * matched by their disclosed plain id: the key is the keyed digest of it, `subjectDigest(tenant
 * subject key, 'id', id)` (PROTOCOL.md §17.2), computed by the sink from the plain value before
 * pseudonymisation replaces it. So `u-1042` before `pseudonyms set` and `ps_…` after it are one
 * key; erasure receipts and restrictions name a person by exactly these digests, so an erasure or
 * a restriction finds the person's rows without anyone holding the plain id; and a digest cannot
 * be read back into the id. A fact whose subject id is not disclosed (withheld) has no key and is
 * not projected.
 */

export type FactKind = 'grant' | 'revoke' | 'leave' | 'mfa';

/** A row of `access_projection` as the sink inserts it. */
export interface AccessFactRow {
  tenant_id: string;
  kind: FactKind;
  subject_key: string;
  subject_type: string;
  /** As the events table shows it: the plain id, or its pseudonym where the tenant chose so. */
  subject_id: string;
  subject_name: string;
  right_kind: '' | 'role' | 'permission';
  right_name: string;
  resource_type: string;
  resource_id: string;
  /** ClickHouse DateTime64(3) text. */
  at: string;
  received_at: number;
  event_id: string;
  action: string;
  granted_by_key: string;
  granted_by_id: string;
  ticket: string;
  reason: string;
  expires_at: string | null;
  erased: number;
  version: number;
}

export interface FactOptions {
  /** Actions that say a person left (their own account deactivated, offboarded …). */
  readonly leaverActions: ReadonlySet<string>;
}

/** Which party of an event a leaver or MFA fact is about, and its id's pointer. */
interface PartyRef {
  readonly base: '/actor' | '/target' | '/access/subject';
  readonly column: 'actor_id' | 'target_id' | 'subject_id';
  readonly type: string;
  readonly clearId: string;
  readonly clearName: string | undefined;
}

function plainOf(
  record: EventRecord,
  disclosures: Disclosures | undefined,
  path: string,
  clear: string | undefined,
): string | undefined {
  if ((record.personal ?? []).includes(path)) {
    const v = disclosures?.[path]?.value;
    return typeof v === 'string' && v !== '' ? v : undefined;
  }
  return clear;
}

/** The person a leaver or MFA event is about: its target when a person, else its actor. */
function personOf(record: EventRecord): PartyRef {
  const target = record.target;
  if (target && isPersonTarget(target.type))
    return {
      base: '/target',
      column: 'target_id',
      type: target.type,
      clearId: target.id,
      clearName: target.name,
    };
  return {
    base: '/actor',
    column: 'actor_id',
    type: record.actor.type,
    clearId: record.actor.id,
    clearName: record.actor.name,
  };
}

/** Whether a fact should be derived from this event at all (cheap test for every row). */
export function hasFacts(record: EventRecord, options: FactOptions): boolean {
  return (
    record.access !== undefined ||
    options.leaverActions.has(record.action) ||
    (record.action.startsWith('mfa.') && record.outcome === 'success')
  );
}

/**
 * The facts of one event. `row` is the event's row as stored (after pseudonymisation, so the
 * ids and names shown are what the events table shows); `disclosures` are the plain ones the
 * sink received; `key` is the tenant's subject key (PrivacyService.subjectKey).
 */
export function factsOf(
  record: EventRecord,
  disclosures: Disclosures | undefined,
  row: Pick<EventRow, 'tenant_id' | 'received_at' | 'disclosures' | 'pseudonyms'> &
    Readonly<Record<'actor_id' | 'target_id' | 'subject_id' | 'granted_by_id', string>>,
  key: Buffer,
  options: FactOptions,
): AccessFactRow[] {
  const at = toChTime(record.time);
  const shown = shownValues(row);
  const base = {
    tenant_id: row.tenant_id,
    at,
    received_at: row.received_at,
    event_id: record.id,
    action: record.action,
    erased: 0,
    version: 0,
  };
  const out: AccessFactRow[] = [];
  const access = record.access;
  if (access) {
    const id = plainOf(record, disclosures, '/access/subject/id', access.subject.id);
    if (id !== undefined) {
      const grantor = access.grantedBy;
      const grantorId = grantor
        ? plainOf(record, disclosures, '/access/grantedBy/id', grantor.id)
        : undefined;
      const common = {
        ...base,
        kind: access.change,
        subject_key: subjectDigest(key, 'id', id),
        subject_type: access.subject.type,
        subject_id: row.subject_id,
        subject_name: shown('/access/subject/name', record, access.subject.name),
        resource_type: access.resource?.type ?? '',
        resource_id: access.resource?.id ?? '',
        granted_by_key: grantorId !== undefined ? subjectDigest(key, 'id', grantorId) : '',
        granted_by_id: grantor ? row.granted_by_id : '',
        ticket: access.ticket ?? '',
        reason: access.reason ?? '',
        expires_at: access.expiresAt !== undefined ? toChTime(access.expiresAt) : null,
      } as const;
      if (access.role !== undefined)
        out.push({ ...common, right_kind: 'role', right_name: access.role });
      if (access.permission !== undefined)
        out.push({ ...common, right_kind: 'permission', right_name: access.permission });
    }
  }
  const leaver = options.leaverActions.has(record.action);
  const mfa = record.action.startsWith('mfa.') && record.outcome === 'success';
  if (leaver || mfa) {
    const party = personOf(record);
    const id = plainOf(record, disclosures, `${party.base}/id`, party.clearId);
    if (id !== undefined) {
      const common = {
        ...base,
        subject_key: subjectDigest(key, 'id', id),
        subject_type: party.type,
        subject_id: row[party.column],
        subject_name: shown(`${party.base}/name`, record, party.clearName),
        right_kind: '',
        right_name: '',
        resource_type: '',
        resource_id: '',
        granted_by_key: '',
        granted_by_id: '',
        ticket: '',
        reason: '',
        expires_at: null,
      } as const;
      if (leaver) out.push({ ...common, kind: 'leave' });
      if (mfa) out.push({ ...common, kind: 'mfa' });
    }
  }
  return out;
}

/**
 * A committed name as the stored row shows it: its disclosure, else its pseudonym, else '' (a
 * name in the clear is a non-person's and is shown as it is).
 */
function shownValues(
  row: Pick<EventRow, 'disclosures' | 'pseudonyms'>,
): (path: string, record: EventRecord, clear: string | undefined) => string {
  let parsed: { d: Disclosures; p: Record<string, string> } | undefined;
  return (path, record, clear) => {
    if (!(record.personal ?? []).includes(path)) return clear ?? '';
    parsed ??= {
      d: row.disclosures ? (JSON.parse(row.disclosures) as Disclosures) : {},
      p: row.pseudonyms ? (JSON.parse(row.pseudonyms) as Record<string, string>) : {},
    };
    const v = parsed.d[path]?.value ?? parsed.p[path];
    return typeof v === 'string' ? v : '';
  };
}
