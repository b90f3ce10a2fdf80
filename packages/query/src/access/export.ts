import { formatTime, parseTime } from '@vigil/protocol';
import {
  csvCell,
  csvHeader,
  csvTime,
  csvTimeHeader,
  TextBuilder,
  type CsvOptions,
} from '../export/csv.js';
import type { ReviewRow, ReviewSnapshot, Use } from './review.js';

/**
 * An access review as a file: CSV for spreadsheets (the shared writer, export/csv.ts: RFC 4180,
 * formula guard, optional BOM, times `YYYY-MM-DD HH:MM:SS` with the zone in the header, every text
 * cell quoted so ids stay text), JSON, and NDJSON (one row per line). The columns are stable and
 * documented in README.md ("Access reviews"); add new ones at the end, never rename one.
 */

export type ReviewFormat = 'csv' | 'json' | 'ndjson';
export const REVIEW_FORMATS: readonly ReviewFormat[] = ['csv', 'json', 'ndjson'];

/** The CSV columns, in order, with what each holds. */
export const REVIEW_COLUMNS: readonly (readonly [string, string])[] = [
  [csvTimeHeader('as_of'), 'the instant the review shows'],
  ['subject_key', "keyed digest of the subject's id: one subject across pseudonymisation"],
  ['subject_state', 'active, restricted (GDPR Art. 18; the view is recorded) or erased'],
  ['subject_type', 'user, service …'],
  ['subject_id', "the subject's id as stored (its pseudonym where the tenant pseudonymises ids)"],
  ['subject_name', 'display name as stored'],
  ['right_kind', 'role or permission'],
  ['right', 'the role or permission'],
  ['resource_type', 'what the right applies to (empty: no resource)'],
  ['resource_id', ''],
  [csvTimeHeader('granted_at'), 'time of the grant event'],
  ['granted_by', 'id of the grantor as stored'],
  ['ticket', 'change ticket of the grant'],
  ['reason', 'reason of the grant'],
  [csvTimeHeader('expires_at'), 'expiry of a time-boxed grant'],
  ['grant_event', 'id of the grant event'],
  [csvTimeHeader('last_login'), 'last successful login (access.loginActions) at or before as_of'],
  ['last_login_state', 'used, not_used (since tracking_since) or no_data'],
  [csvTimeHeader('last_resource_action'), "last action of the subject on the right's resource"],
  ['last_resource_action_state', 'used, not_used or no_data'],
  [
    csvTimeHeader('last_permission_use'),
    'last action mapped to the right (access.permissionActions)',
  ],
  ['last_permission_use_state', 'used, not_used or no_data (no mapping)'],
  [csvTimeHeader('last_used'), 'the measure the flags use'],
  ['last_used_state', 'used, not_used or no_data'],
  ['last_used_measure', 'permission (mapped), resource, or any (any action of the subject)'],
  [csvTimeHeader('tracking_since'), 'the earliest event of the tenant still retained'],
  ['flags', 'space-separated flags (access.flags)'],
  ['flag_explanations', 'one sentence per flag, separated by " | "'],
];

function useCells(u: Use): [string, string] {
  return [u.state === 'used' ? csvTime(u.at) : '', u.state];
}

/** The cells of one row of the review CSV, in the order of REVIEW_COLUMNS. */
export function reviewCells(
  r: ReviewRow,
  s: Pick<ReviewSnapshot, 'asOf' | 'trackingSince'>,
): unknown[] {
  return [
    csvTime(s.asOf),
    r.subjectKey,
    r.subjectState,
    r.subjectType,
    r.subjectId,
    r.subjectName,
    r.rightKind,
    r.right,
    r.resourceType,
    r.resourceId,
    csvTime(r.grantedAt),
    r.grantedBy,
    r.ticket,
    r.reason,
    csvTime(r.expiresAt),
    r.grantEvent,
    ...useCells(r.lastLogin),
    ...useCells(r.lastResourceAction),
    ...useCells(r.lastPermissionUse),
    ...useCells(r.lastUsed),
    r.lastUsed.measure,
    csvTime(s.trackingSince),
    r.flags.join(' '),
    r.explanations.join(' | '),
  ];
}

/**
 * One record of the review CSV: the bytes csvRows(reviewCells(r, s)) writes (a test compares
 * them), built from the row's fields without the array of 28 cells and its copies. `asOf` and
 * `trackingSince` are the quoted cells of the snapshot's times, the same on every row. Times,
 * states, measures and flags are cells Vigil writes (digits, spaces, dashes, colons and words
 * that need no formula guard and hold no quote); text from events goes through csvCell.
 */
function reviewRecord(r: ReviewRow, asOf: string, trackingSince: string): string {
  const time = (ms: number | null | undefined): string => `"${csvTime(ms)}"`;
  const use = (u: Use): string => `${u.state === 'used' ? time(u.at) : '""'},"${u.state}"`;
  return (
    `${asOf},${csvCell(r.subjectKey)},"${r.subjectState}",${csvCell(r.subjectType)},` +
    `${csvCell(r.subjectId)},${csvCell(r.subjectName)},${csvCell(r.rightKind)},${csvCell(r.right)},` +
    `${csvCell(r.resourceType)},${csvCell(r.resourceId)},${time(r.grantedAt)},` +
    `${csvCell(r.grantedBy)},${csvCell(r.ticket)},${csvCell(r.reason)},${time(r.expiresAt)},` +
    `${csvCell(r.grantEvent)},${use(r.lastLogin)},${use(r.lastResourceAction)},` +
    `${use(r.lastPermissionUse)},${use(r.lastUsed)},"${r.lastUsed.measure}",${trackingSince},` +
    `"${r.flags.join(' ')}",${csvCell(r.explanations.join(' | '))}\r\n`
  );
}

export function reviewCsv(snapshot: ReviewSnapshot, options: CsvOptions = {}): string {
  const text = new TextBuilder();
  text.append(
    csvHeader(
      REVIEW_COLUMNS.map(([name]) => name),
      options,
    ),
  );
  const asOf = csvCell(csvTime(snapshot.asOf));
  const trackingSince = csvCell(csvTime(snapshot.trackingSince));
  for (const r of snapshot.rows) text.append(reviewRecord(r, asOf, trackingSince));
  return text.toString();
}

const iso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : formatTime(ms);
const useJson = (u: Use): { state: string; at: string | null } => ({
  state: u.state,
  at: iso(u.at),
});

/** One row as JSON: times in the protocol's form (RFC 3339 UTC, milliseconds). */
export function reviewRowJson(r: ReviewRow): Record<string, unknown> {
  return {
    subjectKey: r.subjectKey,
    subjectState: r.subjectState,
    subjectType: r.subjectType,
    subjectId: r.subjectId,
    subjectName: r.subjectName,
    rightKind: r.rightKind,
    right: r.right,
    resourceType: r.resourceType,
    resourceId: r.resourceId,
    grantedAt: iso(r.grantedAt),
    grantedBy: r.grantedBy,
    ticket: r.ticket,
    reason: r.reason,
    expiresAt: iso(r.expiresAt),
    grantEvent: r.grantEvent,
    lastLogin: useJson(r.lastLogin),
    lastResourceAction: useJson(r.lastResourceAction),
    lastPermissionUse: useJson(r.lastPermissionUse),
    lastUsed: { ...useJson(r.lastUsed), measure: r.lastUsed.measure },
    flags: [...r.flags],
    explanations: [...r.explanations],
  };
}

export function reviewJson(snapshot: ReviewSnapshot): string {
  return JSON.stringify({
    tenant: snapshot.tenant,
    asOf: iso(snapshot.asOf),
    trackingSince: iso(snapshot.trackingSince),
    rows: snapshot.rows.map(reviewRowJson),
  });
}

/** NDJSON: one row per line, each with the review's asOf and trackingSince. */
export function reviewNdjson(snapshot: ReviewSnapshot): string {
  const head = { asOf: iso(snapshot.asOf), trackingSince: iso(snapshot.trackingSince) };
  return snapshot.rows.map((r) => `${JSON.stringify({ ...head, ...reviewRowJson(r) })}\n`).join('');
}

export function reviewFile(
  snapshot: ReviewSnapshot,
  format: ReviewFormat,
  options: CsvOptions = {},
): { body: string; contentType: string } {
  switch (format) {
    case 'csv':
      return { body: reviewCsv(snapshot, options), contentType: 'text/csv; charset=utf-8' };
    case 'json':
      return { body: reviewJson(snapshot), contentType: 'application/json' };
    case 'ndjson':
      return { body: reviewNdjson(snapshot), contentType: 'application/x-ndjson' };
  }
}

/**
 * The instant of `--as-of` / `asOf`: a date `YYYY-MM-DD` is the end of that day in UTC (rights
 * granted during the day count), a time is the protocol's form (`2026-03-31T23:59:59.999Z`).
 * undefined when it is neither.
 */
export function parseAsOf(text: string): number | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return parseTime(`${text}T23:59:59.999Z`);
  return parseTime(text);
}
