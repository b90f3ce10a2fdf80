import { isIPv4 } from 'node:net';
import {
  correctionRef,
  jsonShapeProblem,
  LIMITS,
  parsePointer,
  type Disclosures,
  type EventRecord,
} from '@vigil/protocol';
import type { EventRow } from './event-columns.js';
import { protectRow, type RowPrivacy } from '../privacy/pseudonyms.js';

/**
 * How an event becomes a row of `events`: typed columns for queries, derived from the hashed
 * record with personal values taken from the disclosures (they are commitments in the record).
 * Verification re-derives the columns from the bytes with this same function and compares, so
 * an edit to what queries read cannot go unnoticed (PROTOCOL.md §1).
 */

export type EventSource = 'sealed' | 'unchained' | 'vigil';

export const EVENT_FLAGS = [
  'backfill',
  'gap',
  'fork',
  'after_close',
  'conflict',
  'noncanonical',
] as const;
export type EventFlag = (typeof EVENT_FLAGS)[number];

export interface EventRowMeta {
  readonly tenantId: string;
  readonly receivedAt: number;
  readonly keyId: string;
  readonly source: EventSource;
  readonly submittedDigest: string;
  readonly logPartition: number;
  readonly logOffset: number;
  /** Position of the event inside its log record (one record holds a batch). */
  readonly logIndex: number;
  /** Epoch seconds. */
  readonly expiresAt: number;
  readonly flags: readonly EventFlag[];
}

type Obj = Record<string, unknown>;

function obj(value: unknown): Obj | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Obj)
    : undefined;
}

/** The plain text of a field: its disclosed value where it is personal, else the record's. */
function plain(
  record: Obj,
  disclosures: Disclosures,
  personal: ReadonlySet<string>,
  path: string,
  parent: Obj | undefined,
  key: string,
): string {
  if (personal.has(path)) {
    const d = disclosures[path];
    return d === undefined ? '' : textOf(d.value);
  }
  return textOf(parent?.[key]);
}

function textOf(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `2026-11-23T10:50:48.123Z` → `2026-11-23 10:50:48.123`, ClickHouse's DateTime64(3) text. */
export function toChTime(time: string): string {
  return time.slice(0, 10) + ' ' + time.slice(11, 23);
}

export function fromChTime(text: string): number {
  return Date.parse(text.replace(' ', 'T') + 'Z');
}

/**
 * The row of one event. With `privacy` (the tenant's pseudonymisation, privacy/pseudonyms.ts),
 * the chosen personal fields are stored as pseudonyms and their disclosures encrypted: the sink
 * applies that after its plugins (which need the plain values), a verifier in one call.
 */
export function eventRow(
  event: { readonly record: string; readonly hash: string; readonly bytes?: Buffer | undefined },
  parsed: EventRecord,
  disclosures: Disclosures | undefined,
  meta: EventRowMeta,
  privacy?: RowPrivacy,
): EventRow {
  const row = plainEventRow(event, parsed, disclosures, meta);
  if (privacy) protectRow(row, parsed, disclosures, privacy);
  return row;
}

function plainEventRow(
  event: { readonly record: string; readonly hash: string; readonly bytes?: Buffer | undefined },
  parsed: EventRecord,
  disclosures: Disclosures | undefined,
  meta: EventRowMeta,
): EventRow {
  const d = disclosures ?? {};
  const personal = new Set(parsed.personal ?? []);
  const r = parsed as unknown as Obj;
  const actor = obj(r['actor']);
  const target = obj(r['target']);
  const context = obj(r['context']);
  const access = obj(r['access']);
  const subject = obj(access?.['subject']);
  const resource = obj(access?.['resource']);
  const grantor = obj(access?.['grantedBy']);
  const ip = plain(r, d, personal, '/context/ip', context, 'ip');
  return {
    tenant_id: meta.tenantId,
    id: parsed.id,
    time: toChTime(parsed.time),
    received_at: meta.receivedAt,
    stream: parsed.stream,
    seq: parsed.seq,
    prev: parsed.prev,
    hash: event.hash,
    action: parsed.action,
    category: parsed.category,
    outcome: parsed.outcome,
    actor_type: textOf(actor?.['type']),
    actor_id: plain(r, d, personal, '/actor/id', actor, 'id'),
    actor_name: plain(r, d, personal, '/actor/name', actor, 'name'),
    actor_email: plain(r, d, personal, '/actor/email', actor, 'email'),
    target_type: textOf(target?.['type']),
    target_id: plain(r, d, personal, '/target/id', target, 'id'),
    target_name: plain(r, d, personal, '/target/name', target, 'name'),
    access_change: textOf(access?.['change']),
    subject_type: textOf(subject?.['type']),
    subject_id: plain(r, d, personal, '/access/subject/id', subject, 'id'),
    access_role: textOf(access?.['role']),
    access_permission: textOf(access?.['permission']),
    resource_type: textOf(resource?.['type']),
    resource_id: textOf(resource?.['id']),
    granted_by_id: plain(r, d, personal, '/access/grantedBy/id', grantor, 'id'),
    ip: ipColumn(ip),
    user_agent: plain(r, d, personal, '/context/userAgent', context, 'userAgent'),
    request_id: plain(r, d, personal, '/context/requestId', context, 'requestId'),
    session_id: plain(r, d, personal, '/context/sessionId', context, 'sessionId'),
    record: event.bytes ?? event.record,
    disclosures: disclosures === undefined ? '' : JSON.stringify(disclosures),
    personal: parsed.personal ?? [],
    flags: [...meta.flags],
    source: meta.source,
    submitted_digest: meta.submittedDigest,
    key_id: meta.keyId,
    log_partition: meta.logPartition,
    log_offset: meta.logOffset,
    log_index: meta.logIndex,
    expires_at: meta.expiresAt,
    corrects_id: correctionRef(parsed)?.event ?? '',
  };
}

/**
 * An address as the `ip` column holds it: IPv4 mapped into IPv6 (RFC 4291 §2.5.5.2), and an
 * IPv6 zone index (`fe80::1%eth0`, RFC 4007 §11) left out — ClickHouse's IPv6 type has no
 * zone, and a zone is only meaningful on the host that saw the address. The record and its
 * disclosure keep the exact text.
 */
export function ipColumn(text: string): string | null {
  if (text === '') return null;
  const zone = text.indexOf('%');
  const address = zone < 0 ? text : text.slice(0, zone);
  return isIPv4(address) ? `::ffff:${address}` : address;
}

/** Only depth: members and elements are bounded by the record size and serialise without recursion. */
export const DEPTH_ONLY = { depth: LIMITS.jsonDepth, members: Infinity, elements: Infinity };

/**
 * `value` (placed at `level` of a record) as readers can serialise it: a row stored before the
 * depth limit of PROTOCOL.md §3.5 (or written around it) may nest deeper than JSON.stringify
 * survives, so each member too deep is shown as a note instead, and the record bytes stay as
 * stored (verify reports the row). The check is iterative (jsonShapeProblem); the descent here
 * goes only as deep as the limit.
 */
export function withinDepth(value: unknown, level: number): unknown {
  const problem = jsonShapeProblem(value, level, DEPTH_ONLY);
  if (problem === undefined) return value;
  // Recurses only towards a node too deep, so never past the limit's depth.
  if (problem.path === '' || typeof value !== 'object' || value === null)
    return `[withheld: ${problem.message}; the stored record is unchanged]`;
  if (Array.isArray(value)) return value.map((item) => withinDepth(item, level + 1));
  const out: Obj = {};
  for (const [key, member] of Object.entries(value)) out[key] = withinDepth(member, level + 1);
  return out;
}

/**
 * The event as analysts see it: the record with every disclosed personal value put back in
 * place; a pseudonymised field reads as its pseudonym, and a personal field whose disclosure is
 * gone (erased) reads `null`.
 */
export function openRecord(record: string, disclosures: string, pseudonyms = ''): Obj {
  const view = withinDepth(JSON.parse(record), 0) as Obj;
  const d = disclosures === '' ? {} : (JSON.parse(disclosures) as Disclosures);
  for (const [path, disclosure] of Object.entries(d))
    d[path] = {
      ...disclosure,
      value: withinDepth(disclosure.value, parsePointer(path)?.length ?? 0) as never,
    };
  const p = pseudonyms === '' ? {} : (JSON.parse(pseudonyms) as Record<string, string>);
  const personal = (view['personal'] as string[] | undefined) ?? [];
  for (const path of personal) {
    const tokens = parsePointer(path);
    if (!tokens) continue;
    let node = view;
    for (let i = 0; i < tokens.length - 1; i++) {
      const next = obj(node[tokens[i] as string]);
      if (!next) break;
      node = next;
    }
    const leaf = tokens[tokens.length - 1] as string;
    const disclosed = d[path];
    node[leaf] = disclosed !== undefined ? disclosed.value : (p[path] ?? null);
  }
  delete view['personal'];
  return view;
}
