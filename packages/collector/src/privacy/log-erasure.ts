import {
  normalEmail,
  parsePointer,
  personalPathsOf,
  type Disclosures,
  type EventInput,
  type EventRecord,
  type SubjectRef,
} from '@vigil/protocol';
import { subjectPaths, subjectRoles, type MatchRow, type SubjectForms } from '@vigil/query';
import { decodeEventMessage, type EventMessage } from '../log/event-message.js';
import type { RecordTransform, RewriteRecord } from '../log/file/rewrite.js';

/**
 * Erasing a person from the embedded log (GDPR Art. 17). Log records hold what clients sent:
 * sealed events with their disclosures in plain text, unchained events as posted. The store's
 * erasure (query/privacy/erasure.ts) would be undone by a replay of such records into an empty
 * store, and the plain values would stay on disk for the log's retention; so every record that
 * holds a value of the person is rewritten in place (log/file/rewrite.ts):
 *
 * - in a sealed event, the person's disclosures (value and salt) are deleted: the record bytes
 *   and the hash are untouched, so a replay stores the same event, without the values;
 * - in an unchained event, the person's values are replaced by the empty string, which no
 *   protocol field admits (PROTOCOL.md §3): the sink stores such a field undisclosed
 *   (sink/privacy.ts), exactly as if it had been erased after storing.
 *
 * The message keeps its length: the shorter JSON is padded with spaces, which JSON allows after
 * a value (RFC 8259 §2). Only messages received before the erasure are touched: later ones are
 * new data. Kafka cannot be rewritten; its records go with its retention (README, "Privacy").
 */

/**
 * What any record holding a value of the subject must contain: the id as JSON.stringify wrote
 * it (quotes included), as bytes; each address in its normal form (§17.2), to be found in the
 * record's text lower-cased the same way (full Unicode lower-casing: `MÜLLER@…` holds
 * `müller@…`, which lower-casing only ASCII letters would miss).
 */
export function subjectNeedles(subject: SubjectRef): {
  readonly exact: readonly Buffer[];
  readonly lower: readonly string[];
} {
  return {
    exact: [Buffer.from(JSON.stringify(subject.id), 'utf8')],
    lower: (subject.emails ?? []).map(normalEmail),
  };
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/** A MatchRow (the columns subject matching reads) from plain values. */
function matchRow(personal: readonly string[], value: (path: string) => unknown): MatchRow {
  return {
    personal,
    actor_id: text(value('/actor/id')),
    target_id: text(value('/target/id')),
    subject_id: text(value('/access/subject/id')),
    granted_by_id: text(value('/access/grantedBy/id')),
    actor_email: text(value('/actor/email')),
  };
}

function getAt(root: unknown, path: string): unknown {
  let node: unknown = root;
  for (const t of parsePointer(path) ?? []) node = obj(node)?.[t];
  return node;
}

function setAt(root: unknown, path: string, value: unknown): boolean {
  const tokens = parsePointer(path) ?? [];
  let node = obj(root);
  for (const t of tokens.slice(0, -1)) node = obj(node?.[t]);
  const last = tokens.at(-1);
  if (!node || last === undefined || !(last in node)) return false;
  node[last] = value;
  return true;
}

/** Erases the subject from one sealed event of a message; whether anything changed. */
function eraseSealed(
  entry: { record: string; disclosures?: Disclosures },
  forms: SubjectForms,
  erasedEvents: ReadonlySet<string>,
): boolean {
  const d = entry.disclosures;
  if (!d || Object.keys(d).length === 0) return false;
  let record: EventRecord;
  try {
    record = JSON.parse(entry.record) as EventRecord;
  } catch {
    return false;
  }
  const personal = record.personal ?? [];
  const row = matchRow(personal, (p) => d[p]?.value);
  const roles = subjectRoles(row, d, {}, forms);
  let paths = subjectPaths(row, roles, 'erase');
  // Corrections of the person's events, or naming the person: their corrected values go too.
  const names = Object.values(d).some(
    (x) =>
      typeof x.value === 'string' &&
      (forms.ids.includes(x.value) || forms.emails.includes(normalEmail(x.value))),
  );
  if (record.corrects && (erasedEvents.has(record.corrects.event) || names))
    paths = [...paths, ...personal.filter((p) => p.startsWith('/metadata/corrected/'))];
  let changed = false;
  for (const p of paths) {
    if (d[p] !== undefined) {
      delete d[p];
      changed = true;
    }
  }
  if (changed && Object.keys(d).length === 0) delete entry.disclosures;
  return changed;
}

/** Erases the subject from one unchained event: their values become "". */
function eraseUnchained(input: EventInput, forms: SubjectForms): boolean {
  const personal = personalPathsOf(input);
  const value = (p: string): unknown => getAt(input, p);
  const row = matchRow(personal, value);
  const plain: Disclosures = {};
  for (const p of personal) {
    const v = value(p);
    if (v !== undefined) plain[p] = { salt: '', value: v as never };
  }
  const roles = subjectRoles(row, plain, {}, forms);
  let changed = false;
  for (const p of subjectPaths(row, roles, 'erase')) {
    if (value(p) !== undefined && value(p) !== '' && setAt(input, p, '')) changed = true;
  }
  return changed;
}

/**
 * The rewrite that erases `subject` of `tenant` from every log record received up to
 * `erasedAt`. `erasedEvents` are the ids of the person's events the store erasure found, so
 * corrections of them are recognised in the log too.
 */
export function subjectLogTransform(
  tenant: string,
  subject: SubjectRef,
  erasedAt: number,
  erasedEvents: ReadonlySet<string> = new Set(),
): { transform: RecordTransform; prefilter: (value: Buffer) => boolean } {
  const needles = subjectNeedles(subject);
  const forms: SubjectForms = {
    ids: [subject.id],
    emails: (subject.emails ?? []).map(normalEmail),
  };
  const ids = [...erasedEvents].map((id) => Buffer.from(id, 'utf8'));
  const prefilter = (value: Buffer): boolean => {
    if (needles.exact.some((n) => value.includes(n))) return true;
    if (ids.some((n) => value.includes(n))) return true;
    if (needles.lower.length === 0) return false;
    // A superset of what the transform matches: the value inside the record, lower-cased in
    // place, contains its trimmed normal form.
    const lower = value.toString('utf8').toLowerCase();
    return needles.lower.some((n) => lower.includes(n));
  };
  const transform = (record: RewriteRecord): Buffer | undefined => {
    let message: EventMessage;
    try {
      message = decodeEventMessage(record.value);
    } catch {
      return undefined;
    }
    if (message.tenant !== tenant || message.receivedAt > erasedAt) return undefined;
    let changed = false;
    if (message.kind === 'sealed') {
      for (const entry of message.events)
        if (eraseSealed(entry, forms, erasedEvents)) changed = true;
    } else {
      for (const entry of message.events) if (eraseUnchained(entry.input, forms)) changed = true;
    }
    if (!changed) return undefined;
    let rewritten: Buffer;
    try {
      rewritten = Buffer.from(JSON.stringify(message), 'utf8');
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      // Nested deeper than JSON.stringify survives (written before the limit of PROTOCOL.md
      // §3.5): it cannot be rewritten field by field, so it is erased whole, leaving a record
      // that names its tenant and that a sink sets aside.
      rewritten = Buffer.from(
        JSON.stringify({ v: 1, tenant, erased: 'nested too deep to rewrite; erased whole' }),
        'utf8',
      );
    }
    if (rewritten.length > record.value.length)
      throw new RangeError(
        `log record ${record.partition}/${record.offset} would grow when erased (${rewritten.length} > ${record.value.length} bytes)`,
      );
    return Buffer.concat([rewritten, Buffer.alloc(record.value.length - rewritten.length, 0x20)]);
  };
  return { transform, prefilter };
}
