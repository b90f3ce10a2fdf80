import { canonicalJson } from './canonical.js';
import type { PublicKeyInput } from './checkpoint.js';
import { PATTERNS } from './constants.js';
import { sha256Hex } from './hash.js';
import { parsePointer } from './pointer.js';
import { closedObject, hasMembers, membersProblem } from './members.js';
import { domainSigningInput, parseCanonical, signatureProblem } from './signed.js';
import { parseTime } from './time.js';

/**
 * Erasure receipts (PROTOCOL.md §17): a signed statement that Vigil erased a person's values
 * (GDPR Art. 17) from the listed events, which itself does not name the person. The subject
 * appears only as keyed digests (subject.ts); the events by id and hash, with the JSON pointers
 * whose disclosures (value and salt) were deleted. Anyone with the public key can check the
 * signature; the controller, who holds the digest key, can show which person a receipt concerns;
 * an auditor can check against the store that the listed events still hash as listed and hold no
 * disclosure at the listed paths.
 */

export const ERASURE_RECEIPT_VERSION = 1 as const;
export const ERASURE_RECEIPT_TYPE = 'vigil.erasure-receipt' as const;
/** Domain string of the signing input (PROTOCOL.md §17.3). */
export const ERASURE_RECEIPT_DOMAIN = 'vigil.erasure-receipt.v1';

/** One erased event: its id and hash, and the pointers whose disclosures were deleted. */
export interface ErasedEvent {
  readonly id: string;
  readonly hash: string;
  /** Sorted JSON pointers. */
  readonly paths: readonly string[];
}

/** What an erasure removed, counted. */
export interface ErasureCounts {
  /** Events whose disclosures were removed (the length of `events`). */
  readonly events: number;
  /** Disclosures (value and salt) deleted. */
  readonly disclosures: number;
  /** Derived values (geolocation, parsed user agent) blanked. */
  readonly derivedColumns: number;
  /** Records of the embedded log rewritten without the values. */
  readonly logRecords: number;
  /** Undecodable log records kept for inspection that held a value, deleted. */
  readonly rejectedRecords: number;
  /**
   * Alerts deleted (about the person) or rewritten without the person's values. Optional: a
   * receipt made before alerts existed has no such member.
   */
  readonly alerts?: number;
  /**
   * Rows of detection baselines (every generation) that named the person, deleted. Optional: a
   * receipt made before baselines existed has no such member.
   */
  readonly baselines?: number;
}

export interface ErasureReceiptStatement {
  readonly v: typeof ERASURE_RECEIPT_VERSION;
  readonly type: typeof ERASURE_RECEIPT_TYPE;
  /** The erasure's id: `era_` and 16 hex digits. */
  readonly erasure: string;
  readonly tenant: string;
  /** Keyed digests of the subject's id and e-mail addresses (subjectDigests), sorted. */
  readonly subject: readonly string[];
  /** When the erasure was made. */
  readonly time: string;
  /** The signing key (PROTOCOL.md §14.2). */
  readonly keyId: string;
  /** Why; it must not name the person. */
  readonly reason: string;
  /** Present when legal holds were overridden: the holds and why. */
  readonly holdOverride?: { readonly holds: readonly string[]; readonly reason: string };
  /** Sorted by id, then hash. */
  readonly events: readonly ErasedEvent[];
  readonly counts: ErasureCounts;
}

/** An erasure receipt as stored and handed out: the exact statement text and its signature. */
export interface SignedErasureReceipt {
  /** hex SHA-256 of the UTF-8 bytes of `receipt`. */
  readonly id: string;
  /** RFC 8785 text of an ErasureReceiptStatement. */
  readonly receipt: string;
  /** Ed25519 over erasureReceiptSigningInput(receipt), base64url. */
  readonly signature: string;
}

export type ErasureReceiptCheck =
  | { readonly ok: true; readonly statement: ErasureReceiptStatement }
  | { readonly ok: false; readonly problem: string };

const HEX64 = /^[0-9a-f]{64}$/;
const ERASURE_ID = /^era_[0-9a-f]{16}$/;
const HOLD_ID = /^hold_[0-9a-f]{16}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const COUNT_MEMBERS = [
  'derivedColumns',
  'disclosures',
  'events',
  'logRecords',
  'rejectedRecords',
] as const;
const OPTIONAL_COUNT_MEMBERS = ['alerts', 'baselines'] as const;

function sortedStrings(list: readonly string[]): boolean {
  for (let i = 1; i < list.length; i++)
    if ((list[i - 1] as string) >= (list[i] as string)) return false;
  return true;
}

function eventProblem(
  item: unknown,
  i: number,
  previous: ErasedEvent | undefined,
): string | undefined {
  const where = `events[${i}]`;
  const closed = closedObject(item, where, ['hash', 'id', 'paths']);
  if (typeof closed === 'string') return closed;
  const e = closed;
  if (typeof e['id'] !== 'string' || !PATTERNS.uuidV7.test(e['id']))
    return `${where}.id must be an event id (lower-case UUIDv7)`;
  if (typeof e['hash'] !== 'string' || !HEX64.test(e['hash']))
    return `${where}.hash must be 64 lower-case hex digits`;
  const paths = e['paths'];
  if (
    !Array.isArray(paths) ||
    paths.length === 0 ||
    !paths.every((p) => typeof p === 'string' && parsePointer(p) !== undefined) ||
    !sortedStrings(paths as string[])
  )
    return `${where}.paths must be a non-empty sorted list of JSON pointers without repeats`;
  if (previous) {
    const order = previous.id < e['id'] || (previous.id === e['id'] && previous.hash < e['hash']);
    if (!order) return `${where} must come after the one before (sorted by id, then hash)`;
  }
  return undefined;
}

/** Problems of a receipt's content, or undefined when it is a valid v1 receipt statement. */
export function erasureReceiptProblem(value: unknown): string | undefined {
  const required = [
    'counts',
    'erasure',
    'events',
    'keyId',
    'reason',
    'subject',
    'tenant',
    'time',
    'type',
    'v',
  ];
  const s = closedObject(value, 'a receipt', required, ['holdOverride']);
  if (typeof s === 'string') return s;
  if (s['v'] !== ERASURE_RECEIPT_VERSION) return 'v must be 1';
  if (s['type'] !== ERASURE_RECEIPT_TYPE) return `type must be ${ERASURE_RECEIPT_TYPE}`;
  if (typeof s['erasure'] !== 'string' || !ERASURE_ID.test(s['erasure']))
    return 'erasure must be era_ and 16 hex digits';
  if (typeof s['tenant'] !== 'string' || s['tenant'].length === 0 || s['tenant'].length > 256)
    return 'tenant must be a string of 1 to 256 characters';
  const subject = s['subject'];
  if (
    !Array.isArray(subject) ||
    subject.length === 0 ||
    !subject.every((d) => typeof d === 'string' && HEX64.test(d)) ||
    !sortedStrings(subject as string[])
  )
    return 'subject must be a non-empty sorted list of 64-hex digests';
  if (typeof s['time'] !== 'string' || parseTime(s['time']) === undefined)
    return 'time must be a real instant in the form YYYY-MM-DDTHH:MM:SS.mmmZ';
  if (typeof s['keyId'] !== 'string' || !KEY_ID.test(s['keyId']))
    return 'keyId must be 16 lower-case hex digits';
  if (typeof s['reason'] !== 'string' || s['reason'].length === 0 || s['reason'].length > 1000)
    return 'reason must be a string of 1 to 1000 characters';
  if (s['holdOverride'] !== undefined) {
    const o = s['holdOverride'];
    const overrideMembers = membersProblem(o, 'holdOverride', ['holds', 'reason']);
    if (overrideMembers) return overrideMembers;
    if (
      !hasMembers(o, ['holds', 'reason']) ||
      !Array.isArray(o['holds']) ||
      !o['holds'].every((h) => typeof h === 'string' && HOLD_ID.test(h)) ||
      !sortedStrings(o['holds'] as string[])
    )
      return 'holdOverride.holds must be a sorted list of hold ids (hold_ and 16 lower-case hex digits) without repeats';
    if (typeof o['reason'] !== 'string' || o['reason'].length === 0 || o['reason'].length > 1000)
      return 'holdOverride.reason must be a string of 1 to 1000 characters';
  }
  const events = s['events'];
  if (!Array.isArray(events)) return 'events must be an array';
  let previous: ErasedEvent | undefined;
  for (const [i, e] of events.entries()) {
    const problem = eventProblem(e, i, previous);
    if (problem) return problem;
    previous = e as ErasedEvent;
  }
  const counts = s['counts'];
  const countMembers = membersProblem(counts, 'counts', COUNT_MEMBERS, OPTIONAL_COUNT_MEMBERS);
  if (countMembers) return countMembers;
  if (
    !hasMembers(counts, COUNT_MEMBERS, OPTIONAL_COUNT_MEMBERS) ||
    !Object.values(counts).every((n) => Number.isSafeInteger(n) && (n as number) >= 0)
  )
    return `counts must have exactly the members ${COUNT_MEMBERS.join(', ')} (and optionally ${OPTIONAL_COUNT_MEMBERS.join(', ')}), each a whole number`;
  if (counts['events'] !== events.length) return 'counts.events must be the number of events';
  return undefined;
}

/**
 * The receipt text to sign: the RFC 8785 form of the statement with its lists sorted.
 * Throws a TypeError when the statement is not a valid v1 receipt.
 */
export function encodeErasureReceipt(statement: ErasureReceiptStatement): string {
  const normal = {
    ...statement,
    subject: [...new Set(statement.subject)].sort(),
    events: [...statement.events]
      .map((e) => ({ id: e.id, hash: e.hash, paths: [...new Set(e.paths)].sort() }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.hash < b.hash ? -1 : 1)),
    ...(statement.holdOverride
      ? {
          holdOverride: {
            holds: [...new Set(statement.holdOverride.holds)].sort(),
            reason: statement.holdOverride.reason,
          },
        }
      : {}),
  };
  const problem = erasureReceiptProblem(normal);
  if (problem) throw new TypeError(`invalid erasure receipt: ${problem}`);
  return canonicalJson(normal);
}

/** The bytes a signer signs: "vigil.erasure-receipt.v1" 0x00 || UTF-8(receipt text). */
export function erasureReceiptSigningInput(receipt: string): Buffer {
  return domainSigningInput(ERASURE_RECEIPT_DOMAIN, receipt);
}

/** A signed receipt from its text and the signer's raw Ed25519 signature. */
export function signedErasureReceipt(receipt: string, signature: Uint8Array): SignedErasureReceipt {
  return {
    id: sha256Hex(receipt),
    receipt,
    signature: Buffer.from(signature).toString('base64url'),
  };
}

/**
 * Verifies an erasure receipt with trusted public keys (PROTOCOL.md §17.4): the id is the hash
 * of the text, the text is a canonical v1 receipt, its key id names a trusted key, and the
 * signature verifies. Returns the statement or the first problem found.
 */
export function verifyErasureReceipt(
  signed: SignedErasureReceipt,
  keys: readonly PublicKeyInput[],
): ErasureReceiptCheck {
  const members = membersProblem(signed, 'a signed receipt', ['id', 'receipt', 'signature']);
  if (members) return { ok: false, problem: members };
  if (typeof signed.receipt !== 'string')
    return { ok: false, problem: 'receipt must be the statement text (a string)' };
  if (signed.id !== sha256Hex(signed.receipt))
    return {
      ok: false,
      problem: 'id is not the SHA-256 of the receipt text: the text was altered',
    };
  const parsed = parseCanonical(signed.receipt, 'receipt');
  if (!parsed.ok) return parsed;
  const problem = erasureReceiptProblem(parsed.value);
  if (problem) return { ok: false, problem };
  const statement = parsed.value as ErasureReceiptStatement;
  const bad = signatureProblem(
    ERASURE_RECEIPT_DOMAIN,
    signed.receipt,
    signed.signature,
    statement.keyId,
    keys,
  );
  if (bad) return { ok: false, problem: bad };
  return { ok: true, statement };
}
