import { createHash } from 'node:crypto';
import { TextDecoder } from 'node:util';
import { canonicalJson, isCanonicalRecord } from './canonical.js';
import {
  checkpointId,
  verifyCheckpoint,
  type CheckpointStatement,
  type PublicKeyInput,
  type SignedCheckpoint,
} from './checkpoint.js';
import { sha256Hex } from './hash.js';
import {
  subjectEntryProblems,
  type BundleSubjectForms,
  type PartyEntry,
} from './bundle-subject.js';
import { columnDigestHex } from './columns.js';
import { hashLeaf, leafData, verifyInclusion } from './merkle.js';
import { closedObject, hasMembers, membersProblem } from './members.js';
import { domainSigningInput, parseCanonical, signatureProblem } from './signed.js';
import { normalEmail } from './subject.js';
import { parseTime } from './time.js';
import type { Disclosures, EventRecord, JsonObject } from './types.js';
import { checkSealedEvent } from './validate.js';

/**
 * Subject bundles (PROTOCOL.md §16): everything Vigil holds about one person (GDPR Art. 15 and
 * 20), in a form an auditor verifies offline with nothing but the public key. A bundle is UTF-8
 * text, one RFC 8785 JSON document per line, each line ended by LF:
 *
 *     line 1       header: tenant, subject, creation time, the signed checkpoint every proof uses
 *     lines 2…n-1  one entry per event: exact record bytes, hash, only this person's disclosures,
 *                  the inclusion proof against the header's checkpoint
 *     line n       the signed statement: the SHA-256 of lines 1…n-1 (bodyDigest), signed with
 *                  Ed25519 over "vigil.bundle.v1" 0x00 || statement
 *
 * One line per event lets a bundle of any size be written while the events are read, and read
 * back with bounded memory; the digest at the end binds every byte before it, so no byte of a
 * bundle can change without verification failing.
 */

export const BUNDLE_VERSION = 1 as const;
export const BUNDLE_FORMAT = 'vigil.bundle' as const;
/** Domain string of the bundle signature's signing input (PROTOCOL.md §16.4). */
export const BUNDLE_DOMAIN = 'vigil.bundle.v1';

/** How the subject takes part in an event. */
export const SUBJECT_ROLES = [
  'actor',
  'target',
  'accessSubject',
  'grantedBy',
  'correction',
] as const;
export type SubjectRole = (typeof SUBJECT_ROLES)[number];

export interface BundleSubject {
  readonly id: string;
  /** Lower-cased e-mail addresses the export matched as well, sorted. */
  readonly emails: readonly string[];
}

/** Line 1. */
export interface BundleHeader {
  readonly v: typeof BUNDLE_VERSION;
  readonly format: typeof BUNDLE_FORMAT;
  readonly tenant: string;
  readonly createdAt: string;
  readonly subject: BundleSubject;
  /** The signed checkpoint (§14.4) every entry's proof leads to. */
  readonly checkpoint: SignedCheckpoint;
}

/** Where an event's leaf is in the header checkpoint's tree of `partition` (§15.1, compact). */
export interface BundleProof {
  readonly partition: number;
  readonly leafIndex: number;
  /** RFC 9162 inclusion path, hex, deepest sibling first, in the tree of the checkpoint's size. */
  readonly auditPath: readonly string[];
}

/** Lines 2…n-1. */
export interface BundleEntry {
  readonly type: 'event';
  /** The exact record bytes. */
  readonly record: string;
  readonly hash: string;
  /** Only the subject's own disclosures; other people's values stay commitments. */
  readonly disclosures: Disclosures;
  readonly roles: readonly SubjectRole[];
  /** null: the event has no leaf (stored before trees existed); it cannot be proved. */
  readonly proof: BundleProof | null;
  /** Derived data about the subject (geolocation, parsed user agent): signed, not provable. */
  readonly enrichment?: JsonObject;
}

/** What line n signs. */
export interface BundleStatement {
  readonly v: typeof BUNDLE_VERSION;
  readonly tenant: string;
  readonly createdAt: string;
  readonly keyId: string;
  /** The id of the header's checkpoint. */
  readonly checkpoint: string;
  /** The number of entry lines. */
  readonly entries: number;
  /** hex SHA-256 of the bytes of lines 1…n-1, each with its LF. */
  readonly bodyDigest: string;
}

export type BundleCheck =
  | {
      readonly ok: true;
      readonly header: BundleHeader;
      readonly statement: BundleStatement;
      /** The checkpoint's statement. */
      readonly checkpoint: CheckpointStatement;
      readonly entries: number;
      /** Entries without a proof (no leaf): signed, but not proved against the checkpoint. */
      readonly unproven: number;
    }
  | {
      readonly ok: false;
      /** The first problem, in words: what failed and where. */
      readonly problem: string;
      /** Every problem found (at most 100). */
      readonly problems: readonly string[];
    };

/** The signing input of a bundle statement: "vigil.bundle.v1" 0x00 || UTF-8(statement). */
export function bundleSigningInput(statement: string): Buffer {
  return domainSigningInput(BUNDLE_DOMAIN, statement);
}

/**
 * Writes a bundle line by line: `header()` first, `entry()` per event, `finish()` last. Each
 * returns the line to write (ended by LF); the writer hashes what it returned, so the statement
 * signed at the end covers exactly the bytes written.
 */
export class BundleWriter {
  private readonly digest = createHash('sha256');
  private entries = 0;
  private started = false;

  constructor(private readonly head: BundleHeader) {}

  get count(): number {
    return this.entries;
  }

  header(): string {
    if (this.started) throw new Error('the header is written once, first');
    this.started = true;
    return this.add({ ...this.head, subject: normalSubject(this.head.subject) });
  }

  entry(entry: BundleEntry): string {
    if (!this.started) throw new Error('write the header first');
    this.entries++;
    return this.add(entry);
  }

  /** The statement this bundle's last line signs. */
  statement(keyId: string): BundleStatement {
    return {
      v: BUNDLE_VERSION,
      tenant: this.head.tenant,
      createdAt: this.head.createdAt,
      keyId,
      checkpoint: this.head.checkpoint.id,
      entries: this.entries,
      bodyDigest: this.digest.copy().digest('hex'),
    };
  }

  /** Signs the statement (`sign` returns the raw 64-byte Ed25519 signature) and returns line n. */
  async finish(keyId: string, sign: (input: Buffer) => Promise<Uint8Array>): Promise<string> {
    if (!this.started) throw new Error('write the header first');
    const statement = canonicalJson(this.statement(keyId));
    const signature = Buffer.from(await sign(bundleSigningInput(statement))).toString('base64url');
    return canonicalJson({ signature, statement }) + '\n';
  }

  private add(value: unknown): string {
    const line = canonicalJson(value) + '\n';
    this.digest.update(line, 'utf8');
    return line;
  }
}

function normalSubject(subject: BundleSubject): BundleSubject {
  return { id: subject.id, emails: [...new Set(subject.emails.map(normalEmail))].sort() };
}

// ---- verification --------------------------------------------------------------------------

const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const MAX_PROBLEMS = 100;
// Every line is closed (§16.2–§16.4): an unknown member is refused, naming it.
const HEADER_MEMBERS = ['checkpoint', 'createdAt', 'format', 'subject', 'tenant', 'v'];
const ENTRY_MEMBERS = ['disclosures', 'hash', 'proof', 'record', 'roles', 'type'];
const STATEMENT_MEMBERS = [
  'bodyDigest',
  'checkpoint',
  'createdAt',
  'entries',
  'keyId',
  'tenant',
  'v',
];
const LF = 0x0a;
/** How §8.1 refuses a stream reserved to Vigil (validate.ts), which a bundle may hold. */
const RESERVED_STREAM_MESSAGE = 'must not start with ';

class Problems {
  readonly list: string[] = [];
  add(problem: string): void {
    if (this.list.length < MAX_PROBLEMS) this.list.push(problem);
  }
}

function lineOf(bytes: Uint8Array, decoder: TextDecoder, label: string, p: Problems): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    p.add(`${label} is not UTF-8: a byte was altered`);
    return undefined;
  }
  const parsed = parseCanonical(text, label);
  if (parsed.ok) return parsed.value;
  // Still look inside a line that parses, so the message can say what in it changed.
  try {
    const value: unknown = JSON.parse(text);
    p.add(`${label} is not in RFC 8785 canonical form: it was altered`);
    return value;
  } catch {
    p.add(`${label} is not JSON: it was altered`);
    return undefined;
  }
}

/** The subject's forms when the header's subject is well formed (§16.2), else undefined. */
function subjectOf(subject: unknown, p: Problems): BundleSubjectForms | undefined {
  const subjectMembers = membersProblem(subject, 'header (line 1): subject', ['emails', 'id']);
  if (subjectMembers) {
    p.add(subjectMembers);
    return undefined;
  }
  if (
    !hasMembers(subject, ['emails', 'id']) ||
    typeof subject['id'] !== 'string' ||
    subject['id'].length === 0 ||
    !Array.isArray(subject['emails']) ||
    !subject['emails'].every((e) => typeof e === 'string')
  ) {
    p.add('header (line 1): subject must be {id: non-empty text, emails: [text]}');
    return undefined;
  }
  const emails = subject['emails'];
  // One text per subject: the normal forms (§17.2), sorted, no repeats.
  for (const [i, e] of emails.entries()) {
    if (normalEmail(e) !== e || e.length === 0) {
      p.add(
        `header (line 1): subject.emails[${i}] is not in its normal form (§17.2: trimmed, lower-cased)`,
      );
      return undefined;
    }
    if (i > 0 && (emails[i - 1] as string) >= e) {
      p.add('header (line 1): subject.emails must be sorted, without repeats');
      return undefined;
    }
  }
  return { id: subject['id'], emails: new Set(emails) };
}

function headerOf(
  line: unknown,
  keys: readonly PublicKeyInput[],
  p: Problems,
):
  | {
      header: BundleHeader;
      checkpoint: CheckpointStatement;
      subject: BundleSubjectForms | undefined;
    }
  | undefined {
  const value = closedObject(line, 'header (line 1)', HEADER_MEMBERS);
  if (typeof value === 'string') {
    p.add(value);
    return undefined;
  }
  if (value['v'] !== BUNDLE_VERSION || value['format'] !== BUNDLE_FORMAT)
    p.add(`header (line 1): not a ${BUNDLE_FORMAT} v${BUNDLE_VERSION} header`);
  if (typeof value['createdAt'] !== 'string' || parseTime(value['createdAt']) === undefined)
    p.add('header (line 1): createdAt must be a time of the form YYYY-MM-DDTHH:MM:SS.mmmZ');
  const subject = subjectOf(value['subject'], p);
  // The bundled checkpoint is the signed checkpoint of §14.4 and nothing else: the API's
  // unverified copies and a witness document's members have no place in a closed document.
  const envelope = membersProblem(value['checkpoint'], 'header (line 1): checkpoint', [
    'checkpoint',
    'id',
    'signature',
  ]);
  if (envelope) {
    p.add(envelope);
    return undefined;
  }
  const checked = verifyCheckpoint(value['checkpoint'] as SignedCheckpoint, keys);
  if (!checked.ok) {
    p.add(`header (line 1): checkpoint: ${checked.problem}`);
    return undefined;
  }
  if (checked.statement.tenant !== value['tenant'])
    p.add(
      `header (line 1): the checkpoint is of tenant ${checked.statement.tenant}, the bundle of ${String(value['tenant'])}`,
    );
  return { header: value as unknown as BundleHeader, checkpoint: checked.statement, subject };
}

function proofProblem(
  proof: unknown,
  record: EventRecord,
  hash: string,
  checkpoint: CheckpointStatement,
): string | undefined {
  const members = closedObject(proof, 'proof', ['auditPath', 'leafIndex', 'partition']);
  if (typeof members === 'string') return `${members} (or proof is null)`;
  const { partition, leafIndex, auditPath } = members;
  if (!Number.isSafeInteger(leafIndex) || (leafIndex as number) < 0)
    return 'proof.leafIndex must be a whole number';
  const head = checkpoint.partitions.find((h) => h.partition === partition);
  if (!head) return `the checkpoint states no tree for partition ${String(partition)}`;
  if ((leafIndex as number) >= head.size)
    return `leaf ${String(leafIndex)} is outside the checkpoint's tree of ${head.size} leaves`;
  if (!Array.isArray(auditPath) || !auditPath.every((h) => typeof h === 'string' && HEX64.test(h)))
    return 'proof.auditPath must be a list of 64-hex hashes';
  let leafHash: Buffer;
  try {
    leafHash = hashLeaf(
      leafData({
        tenant: checkpoint.tenant,
        stream: record.stream,
        seq: record.seq,
        eventHash: hash,
        columns: columnDigestHex(record),
      }),
    );
  } catch (error) {
    return `no leaf can be built for this record: ${(error as Error).message}`;
  }
  const path = auditPath.map((h) => Buffer.from(h as string, 'hex'));
  if (
    !verifyInclusion(leafIndex as number, head.size, leafHash, path, Buffer.from(head.root, 'hex'))
  )
    return `the inclusion proof does not lead from leaf ${String(leafIndex)} to the root the checkpoint signs for partition ${head.partition}: the proof or the event was altered`;
  return undefined;
}

/** What the entries checked so far leave for the next ones (§16.5 step 5). */
interface EntriesSeen {
  /** Hashes of the entries so far, with the entry number: an event appears once. */
  readonly hashes: Map<string, number>;
  /** Entries in which the subject is a proven party, by id 0x00 hash: for their corrections. */
  readonly parties: Map<string, PartyEntry>;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function checkEntry(
  line: unknown,
  number: number,
  head: { checkpoint: CheckpointStatement; subject: BundleSubjectForms | undefined } | undefined,
  seen: EntriesSeen,
  p: Problems,
): { proved: boolean } {
  const checkpoint = head?.checkpoint;
  const value = closedObject(line, `line ${number}: an entry`, ENTRY_MEMBERS, ['enrichment']);
  if (typeof value === 'string') {
    p.add(value);
    return { proved: false };
  }
  if (value['type'] !== 'event') {
    p.add(`line ${number}: an entry's type must be "event"`);
    return { proved: false };
  }
  const where = (id: string): string => `entry ${number - 1} (line ${number}, event ${id})`;
  const { record, hash, disclosures, roles, proof } = value;
  if (typeof record !== 'string' || typeof hash !== 'string' || !HEX64.test(hash)) {
    p.add(`line ${number}: record must be a string and hash 64 hex digits`);
    return { proved: false };
  }
  let parsed: EventRecord | undefined;
  try {
    const json: unknown = JSON.parse(record);
    if (isPlainObject(json)) parsed = json as unknown as EventRecord;
  } catch {
    // reported below
  }
  const id = typeof parsed?.id === 'string' ? parsed.id : '?';
  if (sha256Hex(record) !== hash)
    p.add(`${where(id)}: the record does not hash to its hash: the record or the hash was altered`);
  const before = seen.hashes.get(hash);
  if (before !== undefined)
    p.add(
      `${where(id)}: repeats entry ${before - 1} (line ${before}): each event appears once in a bundle`,
    );
  else seen.hashes.set(hash, number);
  // §16.3: the disclosures are an object, possibly empty; anything else would skip check 10.
  if (!isPlainObject(disclosures)) {
    p.add(`${where(id)}: disclosures must be a JSON object (possibly {})`);
    return { proved: false };
  }
  const wire =
    Object.keys(disclosures).length > 0 ? { record, hash, disclosures } : { record, hash };
  const checked = checkSealedEvent(wire);
  let opened = true;
  if (!checked.ok) {
    for (const d of checked.details) {
      // Streams Vigil writes itself (admin changes, corrections) are reserved for clients only;
      // every other rule of the stream still holds.
      if (d.path === '/record/stream' && d.message.startsWith(RESERVED_STREAM_MESSAGE)) continue;
      if (d.path === '/hash') continue; // reported above, in words for a bundle
      if (d.path.startsWith('/disclosures')) opened = false;
      p.add(
        `${where(id)}: ${d.path} ${d.message}${d.path.startsWith('/disclosures') ? ' (the disclosure was altered)' : ''}`,
      );
    }
  }
  // §8.1, §16.5 step 4: outside a whole-log verification no flag or integrity event vouches for
  // a non-canonical record, and two parsers may read it differently: refused. (After the
  // checks above, which include the depth limit the serialiser needs.)
  if (checked.ok && parsed && !isCanonicalRecord(record, parsed))
    p.add(
      `${where(id)}: the record is not in RFC 8785 form (§4), its own form: whitespace, member order or escapes differ`,
    );
  const rolesOk =
    Array.isArray(roles) &&
    roles.length > 0 &&
    roles.every((r) => (SUBJECT_ROLES as readonly unknown[]).includes(r)) &&
    roles.every(
      (r, i) =>
        i === 0 ||
        SUBJECT_ROLES.indexOf(roles[i - 1] as SubjectRole) <
          SUBJECT_ROLES.indexOf(r as SubjectRole),
    );
  if (!rolesOk)
    p.add(
      `${where(id)}: roles must be a non-empty list of ${SUBJECT_ROLES.join(', ')}, in that order, without repeats`,
    );
  // Whose values (§16.3, §16.5 step 5): only once the disclosures open their commitments, so
  // that a disclosed id or address is the one the record committed to.
  if (rolesOk && opened && parsed && head?.subject) {
    const subject = subjectEntryProblems(
      parsed,
      disclosures as Disclosures,
      roles as string[],
      head.subject,
      seen.parties,
    );
    for (const problem of subject.problems) p.add(`${where(id)}: ${problem}`);
    if (subject.party && before === undefined)
      seen.parties.set(`${id}\u0000${hash}`, subject.party);
  }
  if (value['enrichment'] !== undefined) {
    const enrichment = value['enrichment'];
    const members = membersProblem(enrichment, 'enrichment', [], ['geo', 'ua']);
    if (members) p.add(`${where(id)}: ${members}`);
    else if (isPlainObject(enrichment)) {
      // Derived from the subject's own address and agent only (§16.3).
      const from = { geo: '/context/ip', ua: '/context/userAgent' } as const;
      for (const k of ['geo', 'ua'] as const) {
        if (enrichment[k] === undefined) continue;
        if (!isPlainObject(enrichment[k])) p.add(`${where(id)}: enrichment.${k} must be an object`);
        else if (disclosures[from[k]] === undefined)
          p.add(
            `${where(id)}: enrichment.${k} is derived from ${from[k]}, which this entry does not disclose as the subject's`,
          );
      }
    }
  }
  if (proof === null) return { proved: false };
  if (!checkpoint || !parsed) return { proved: false };
  const problem = proofProblem(proof, parsed, hash, checkpoint);
  if (problem) p.add(`${where(id)}: ${problem}`);
  return { proved: true };
}

interface SignatureLine {
  readonly statement: BundleStatement;
  readonly text: string;
  readonly signature: unknown;
}

function statementOf(line: unknown, p: Problems): SignatureLine | undefined {
  const value = closedObject(line, 'signature line (last line)', ['signature', 'statement']);
  if (typeof value === 'string') {
    p.add(value);
    return undefined;
  }
  if (typeof value['statement'] !== 'string') {
    p.add('signature line (last line): statement must be the statement text (a string)');
    return undefined;
  }
  const parsed = parseCanonical(value['statement'], 'signed statement');
  if (!parsed.ok) {
    p.add(`signature line (last line): ${parsed.problem}: it was altered`);
    return undefined;
  }
  const s = parsed.value;
  const statementMembers = membersProblem(
    s,
    'signature line (last line): the statement',
    STATEMENT_MEMBERS,
  );
  if (statementMembers) {
    p.add(statementMembers);
    return undefined;
  }
  if (
    !hasMembers(s, STATEMENT_MEMBERS) ||
    s['v'] !== BUNDLE_VERSION ||
    typeof s['bodyDigest'] !== 'string' ||
    !HEX64.test(s['bodyDigest']) ||
    typeof s['keyId'] !== 'string' ||
    !KEY_ID.test(s['keyId']) ||
    !Number.isSafeInteger(s['entries'])
  ) {
    p.add(
      `signature line (last line): the statement must be {${STATEMENT_MEMBERS.join(', ')}} of bundle v1`,
    );
    return undefined;
  }
  return {
    statement: s as unknown as BundleStatement,
    text: value['statement'],
    signature: value['signature'],
  };
}

/**
 * Verifies a subject bundle offline with trusted public keys (PROTOCOL.md §16.5): the header's
 * checkpoint signature; every entry's record hash, the disclosures against their commitments,
 * and the inclusion proof against the checkpoint; the statement's counts and body digest; the
 * bundle signature. Every problem is reported with the line and event it concerns, the most
 * specific first, so a single altered byte is named where it was.
 */
export function verifyBundle(
  text: string | Uint8Array,
  publicKeys: readonly PublicKeyInput[],
): BundleCheck {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text);
  const p = new Problems();
  const fail = (): BundleCheck => ({
    ok: false,
    problem: p.list[0] ?? 'the bundle does not verify',
    problems: p.list,
  });
  if (bytes.length === 0 || bytes[bytes.length - 1] !== LF) {
    p.add('a bundle ends with a line feed after its signature line: the end was cut or altered');
    return fail();
  }
  // Split on LF into lines, each without its LF.
  const starts: number[] = [0];
  for (let i = 0; i < bytes.length - 1; i++) if (bytes[i] === LF) starts.push(i + 1);
  if (starts.length < 2) {
    p.add('a bundle has a header line and a signature line at least');
    return fail();
  }
  const line = (i: number): Uint8Array =>
    bytes.subarray(starts[i], (starts[i + 1] ?? bytes.length) - 1);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const lastIndex = starts.length - 1;

  const head = headerOf(lineOf(line(0), decoder, 'header (line 1)', p), publicKeys, p);
  let unproven = 0;
  const seen: EntriesSeen = { hashes: new Map(), parties: new Map() };
  for (let i = 1; i < lastIndex; i++) {
    const value = lineOf(line(i), decoder, `entry ${i} (line ${i + 1})`, p);
    if (value === undefined) continue;
    if (!checkEntry(value, i + 1, head, seen, p).proved) unproven++;
  }
  const signed = statementOf(
    lineOf(line(lastIndex), decoder, `signature line (line ${lastIndex + 1})`, p),
    p,
  );
  const statement = signed?.statement;
  if (statement && head) {
    const { header } = head;
    if (statement.tenant !== header.tenant)
      p.add('signature line (last line): the statement names another tenant than the header');
    if (statement.createdAt !== header.createdAt)
      p.add('signature line (last line): the statement has another createdAt than the header');
    if (statement.checkpoint !== checkpointId(header.checkpoint.checkpoint))
      p.add('signature line (last line): the statement names another checkpoint than the header');
  }
  if (statement && statement.entries !== lastIndex - 1)
    p.add(
      `the bundle has ${lastIndex - 1} entries, its signed statement says ${statement.entries}: entries were added or removed`,
    );
  if (signed && statement) {
    const body = bytes.subarray(0, starts[lastIndex]);
    if (sha256Hex(body) !== statement.bodyDigest)
      p.add(
        `the bundle was altered after it was signed: the SHA-256 of lines 1-${lastIndex} is not the bodyDigest its signature covers`,
      );
    const bad = signatureProblem(
      BUNDLE_DOMAIN,
      signed.text,
      signed.signature,
      statement.keyId,
      publicKeys,
    );
    if (bad) p.add(`bundle signature: ${bad}`);
  }
  if (p.list.length > 0 || !statement || !head) return fail();
  return {
    ok: true,
    header: head.header,
    statement,
    checkpoint: head.checkpoint,
    entries: lastIndex - 1,
    unproven,
  };
}
