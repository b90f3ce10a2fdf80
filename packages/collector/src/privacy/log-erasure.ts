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
import {
  EVENT_MESSAGE_VERSION,
  splitEventMessage,
  type EventMessage,
  type UnchainedEntry,
} from '../log/event-message.js';
import type { RecordTransform, RewriteRecord } from '../log/file/rewrite.js';

/**
 * Erasing a person from the embedded log (GDPR Art. 17). Log records hold what clients sent:
 * sealed events with their disclosures in plain text, unchained events as posted. The store's
 * erasure (query/privacy/erasure.ts) would be undone by a replay of such records into an empty
 * store, and the plain values would stay on disk for the log's retention; so every record that
 * holds a value of the person is rewritten in place (log/file/rewrite.ts):
 *
 * - in a sealed event (a line of the framing, PROTOCOL.md §9), the person's disclosures (value
 *   and salt) are deleted and the disclosures field is written again at its length, padded with
 *   spaces: the record bytes and the hash are untouched, so a replay stores the same event,
 *   without the values;
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

/** Erases the subject from the disclosures `d` of one sealed event; whether anything changed. */
function eraseSealed(
  record: EventRecord,
  d: Disclosures,
  forms: SubjectForms,
  erasedEvents: ReadonlySet<string>,
): boolean {
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
  return changed;
}

function asObject(text: string): Obj | undefined {
  try {
    return obj(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * Erases the subject from the framed lines of a sealed message (event-message.ts), in a copy of
 * `value`: each changed disclosures field is written again in its place, at the same length,
 * padded with spaces (JSON allows them after a value; `{}` when nothing is left), so every byte
 * of the record, the hash and the other lines stays where it was. `undefined` when nothing
 * changed.
 */
function eraseSealedLines(
  value: Buffer,
  body: Buffer,
  forms: SubjectForms,
  erasedEvents: ReadonlySet<string>,
): Buffer | undefined {
  let out: Buffer | undefined;
  const base = body.byteOffset - value.byteOffset;
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(0x0a, start);
    if (end < 0) end = body.length;
    const lineStart = start;
    start = end + 1;
    const t1 = body.indexOf(0x09, lineStart);
    const t2 = t1 < 0 || t1 >= end ? -1 : body.indexOf(0x09, t1 + 1);
    if (t2 < 0 || t2 >= end || t2 + 1 === end) continue;
    const field = body.subarray(t2 + 1, end);
    const d = asObject(field.toString('utf8')) as Disclosures | undefined;
    if (!d) continue;
    const record = asObject(body.toString('utf8', lineStart, t1)) as EventRecord | undefined;
    if (!record || !eraseSealed(record, d, forms, erasedEvents)) continue;
    const text = Buffer.from(JSON.stringify(d), 'utf8');
    // Only members are deleted, so the object never grows.
    if (text.length > field.length) throw new RangeError('erased disclosures would grow');
    out ??= Buffer.from(value);
    const at = base + t2 + 1;
    text.copy(out, at);
    out.fill(0x20, at + text.length, at + field.length);
  }
  return out;
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
    let split: ReturnType<typeof splitEventMessage>;
    try {
      split = splitEventMessage(record.value);
    } catch {
      return undefined;
    }
    const { head, body } = split;
    const receivedAt = head['receivedAt'];
    if (head['tenant'] !== tenant || typeof receivedAt !== 'number' || receivedAt > erasedAt)
      return undefined;
    if (body !== undefined) return eraseSealedLines(record.value, body, forms, erasedEvents);
    const message = head as unknown as EventMessage;
    if (message.kind !== 'unchained') return undefined;
    const events: unknown = message.events;
    if (!Array.isArray(events)) return undefined;
    let changed = false;
    for (const entry of events as readonly UnchainedEntry[])
      if (eraseUnchained(entry.input, forms)) changed = true;
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
        JSON.stringify({
          v: EVENT_MESSAGE_VERSION,
          tenant,
          erased: 'nested too deep to rewrite; erased whole',
        }),
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
