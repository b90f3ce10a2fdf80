import { isIP } from 'node:net';
import { canonicalValue, commitmentOfSaltText, decodeSalt, encodeSalt } from './commitment.js';
import { LIMITS, RESERVED_INPUT_MEMBERS, RESERVED_STREAM_PREFIXES } from './constants.js';
import type { ErrorDetail } from './errors.js';
import { sha256Hex } from './hash.js';
import {
  committablePathProblem,
  personalSetProblems,
  plainValueProblem,
  requiredPersonalPaths,
} from './personal.js';
import type { Frame } from './framing.js';
import { jsonShapeProblem } from './json-shape.js';
import { escapeToken, getAt, parsePointer } from './pointer.js';
import {
  schemaDetails,
  validateEventInputShape,
  validateEventRecordShape,
  validateSealedEventShape,
} from './schema.js';
import { parseTime } from './time.js';
import type { Disclosures, EventInput, EventRecord, JsonValue, SealedEvent } from './types.js';

export type Checked<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly details: ErrorDetail[] };

export interface CheckedSealed {
  readonly event: SealedEvent;
  readonly record: EventRecord;
  /** `record.time` as epoch milliseconds. */
  readonly timeMs: number;
}

function detail(index: number | undefined, path: string, message: string): ErrorDetail {
  return index === undefined ? { path, message } : { index, path, message };
}

const isIpText = (text: string): boolean => isIP(text) !== 0;

function reservedStream(stream: string): boolean {
  const lower = stream.toLowerCase();
  return RESERVED_STREAM_PREFIXES.some((p) => lower.startsWith(p));
}

/** Dates inside the content that must name a real instant (the pattern alone allows 02-30). */
function timeProblems(
  content: { time?: unknown; access?: { expiresAt?: unknown } },
  prefix: string,
  index?: number,
): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  if (typeof content.time === 'string' && parseTime(content.time) === undefined) {
    out.push(detail(index, `${prefix}/time`, 'is not a real instant'));
  }
  const expires = content.access?.expiresAt;
  if (typeof expires === 'string' && parseTime(expires) === undefined) {
    out.push(detail(index, `${prefix}/access/expiresAt`, 'is not a real instant'));
  }
  return out;
}

/**
 * Everything about one sealed event that can be checked without knowing any other event:
 * shape, exact-bytes hash, record schema, personal paths and every disclosure's commitment
 * (PROTOCOL.md §8.1). Returns all problems, not just the first. Stream links are not checked
 * here (see checkBatchLinks and judgeLink).
 */
export function checkSealedEvent(wire: unknown, index?: number): Checked<CheckedSealed> {
  return checkSealed(wire, index, true);
}

/**
 * checkSealedEvent for one line of the sealed framing (PROTOCOL.md §9, parseFramedBody): the
 * record is hashed where it lies in the body and decoded and parsed once; the disclosures field
 * is parsed as JSON. Details carry the frame's index.
 */
export function checkFramedEvent(frame: Frame): Checked<CheckedSealed> {
  return checkFrame(frame, frame.index, true);
}

/** checkLoggedSealedEvent for one line of the framing, as a log record keeps it. */
export function checkLoggedFramedEvent(frame: Frame): Checked<CheckedSealed> {
  return checkFrame(frame, undefined, false);
}

function checkFrame(
  frame: Frame,
  index: number | undefined,
  full: boolean,
): Checked<CheckedSealed> {
  const record = frame.record.toString('utf8');
  if (frame.disclosures.length === 0)
    return checkSealed({ record, hash: frame.hash }, index, full, frame.record);
  let disclosures: unknown;
  try {
    disclosures = JSON.parse(frame.disclosures.toString('utf8'));
  } catch (error) {
    return {
      ok: false,
      details: [detail(index, '/disclosures', `is not JSON: ${(error as Error).message}`)],
    };
  }
  if (typeof disclosures !== 'object' || disclosures === null || Array.isArray(disclosures)) {
    return {
      ok: false,
      details: [
        detail(index, '/disclosures', 'must be a JSON object, or nothing when nothing is personal'),
      ],
    };
  }
  // `{}` says what an empty field says (an erasure of the embedded log leaves it so, §5.4).
  for (const _ in disclosures)
    return checkSealed({ record, hash: frame.hash, disclosures }, index, full, frame.record);
  return checkSealed({ record, hash: frame.hash }, index, full, frame.record);
}

/**
 * The checks a partition consumer repeats on a sealed event it reads from the log: shape,
 * exact-bytes hash, JSON, record schema, real instants — what must hold for the event to become
 * a well-formed stored row, whoever wrote the log record. Left out: the personal paths and the
 * disclosures' commitments (the collector checked them before it appended the event, every
 * verification checks them on the stored row, and repeating them here would about double the
 * consumer's cost per event), and the reserved streams, which Vigil's own writers use through
 * the log (recorded admin changes) and an erasure may leave a disclosure out of.
 */
export function checkLoggedSealedEvent(wire: unknown): Checked<CheckedSealed> {
  return checkSealed(wire, undefined, false);
}

function checkSealed(
  wire: unknown,
  index: number | undefined,
  full: boolean,
  recordBytes?: Buffer,
): Checked<CheckedSealed> {
  // Hand-written check of the wire shape first (the common, valid case); Ajv only to describe
  // what is wrong.
  if (!isSealedShape(wire) && !validateSealedEventShape(wire)) {
    return { ok: false, details: schemaDetails(validateSealedEventShape.errors, '', index) };
  }
  const event = wire as SealedEvent;
  const tooDeep = disclosureShapeProblems(event.disclosures, index);
  const details: ErrorDetail[] = [...tooDeep];
  // The bytes as received when there are any (the framing); a string is hashed as its UTF-8.
  if (sha256Hex(recordBytes ?? event.record) !== event.hash) {
    details.push(
      detail(
        index,
        '/hash',
        'is not the SHA-256 of the record bytes: the record was altered or the hash is wrong',
      ),
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(event.record);
  } catch (error) {
    details.push(detail(index, '/record', `is not JSON: ${(error as Error).message}`));
    return { ok: false, details };
  }
  // Depth and width first (PROTOCOL.md §3.5): everything after this may walk the record
  // recursively (the schema, RFC 8785, JSON.stringify when stored).
  const shape = jsonShapeProblem(parsed);
  if (shape !== undefined) {
    details.push(detail(index, `/record${shape.path}`, shape.message));
    return { ok: false, details };
  }
  if (!validateEventRecordShape(parsed)) {
    details.push(...schemaDetails(validateEventRecordShape.errors, '/record', index));
    return { ok: false, details };
  }
  const record = parsed as EventRecord;
  details.push(...timeProblems(record, '/record', index));
  // The disclosures' values are serialised (RFC 8785) there: only within the limits.
  if (full && tooDeep.length === 0) details.push(...personalProblems(record, event, index));
  if (full && reservedStream(record.stream)) {
    details.push(
      detail(
        index,
        '/record/stream',
        `must not start with ${RESERVED_STREAM_PREFIXES.join(' or ')}: those streams are written by Vigil itself`,
      ),
    );
  }
  if (details.length > 0) return { ok: false, details };
  return { ok: true, value: { event, record, timeMs: parseTime(record.time) as number } };
}

/**
 * The limits of §3.5 on the plain values of disclosures, each counted at the level of its path
 * in the record (a value disclosed for `/metadata/a` starts at level 3).
 */
function disclosureShapeProblems(
  disclosures: Disclosures | undefined,
  index: number | undefined,
): ErrorDetail[] {
  if (!disclosures) return [];
  const out: ErrorDetail[] = [];
  for (const path of Object.keys(disclosures)) {
    const value = (disclosures[path] as { value: unknown }).value;
    const levels = parsePointer(path)?.length ?? path.split('/').length - 1;
    const shape = jsonShapeProblem(value, levels);
    if (shape !== undefined)
      out.push(detail(index, `${disclosurePath(path)}/value${shape.path}`, shape.message));
  }
  return out;
}

/** The personal paths of a record and the disclosures that open them (PROTOCOL.md §5). */
function personalProblems(
  record: EventRecord,
  event: SealedEvent,
  index: number | undefined,
): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const personal = record.personal ?? [];
  const listed = new Set(personal);
  for (const path of personal) {
    const problem = committablePathProblem(path);
    if (problem !== undefined) {
      details.push(detail(index, '/record/personal', `${path} ${problem}`));
      continue;
    }
    const value = getAt(record, parsePointer(path) ?? []);
    if (typeof value !== 'string' || !isHex64(value)) {
      details.push(
        detail(
          index,
          `/record${path}`,
          'is listed as personal, so it must be a commitment (64 lower-case hex digits)',
        ),
      );
    }
  }
  for (const path of requiredPersonalPaths(record)) {
    if (!listed.has(path)) {
      details.push(
        detail(
          index,
          `/record${path}`,
          'identifies a person, so it must be sent as a commitment and listed in /record/personal',
        ),
      );
    }
  }
  if (personal.length > 1) {
    for (let i = 1; i < personal.length; i++) {
      if ((personal[i - 1] as string) >= (personal[i] as string)) {
        details.push(detail(index, '/record/personal', 'must be sorted and without repeats'));
        break;
      }
    }
  }
  details.push(...checkDisclosures(record, event.disclosures, listed, index));
  return details;
}

function isHex64(text: string): boolean {
  if (text.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

const SALT_TEXT = /^[A-Za-z0-9_-]{22,86}$/;

/** The sealed-event wire shape of schema.ts (sealedEventSchema), checked by hand. */
function isSealedShape(wire: unknown): wire is SealedEvent {
  if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) return false;
  let members = 0;
  for (const key in wire) {
    if (key !== 'record' && key !== 'hash' && key !== 'disclosures') return false;
    members++;
  }
  const { record, hash, disclosures } = wire as {
    record?: unknown;
    hash?: unknown;
    disclosures?: unknown;
  };
  if (typeof record !== 'string' || record.length < 2 || typeof hash !== 'string' || !isHex64(hash))
    return false;
  if (disclosures === undefined) return members === 2;
  if (typeof disclosures !== 'object' || disclosures === null || Array.isArray(disclosures))
    return false;
  let count = 0;
  for (const path in disclosures) {
    if (++count > LIMITS.personalPaths) return false;
    const d = (disclosures as Record<string, unknown>)[path];
    if (typeof d !== 'object' || d === null || Array.isArray(d)) return false;
    let keys = 0;
    for (const k in d) {
      if (k !== 'salt' && k !== 'value') return false;
      keys++;
    }
    const { salt, value } = d as { salt?: unknown; value?: unknown };
    if (keys !== 2 || value === undefined || typeof salt !== 'string' || !SALT_TEXT.test(salt))
      return false;
  }
  return true;
}

function disclosurePath(path: string): string {
  return `/disclosures/${escapeToken(path)}`;
}

function checkDisclosures(
  record: EventRecord,
  disclosures: Disclosures | undefined,
  listed: ReadonlySet<string>,
  index: number | undefined,
): ErrorDetail[] {
  if (!disclosures) return [];
  const out: ErrorDetail[] = [];
  for (const path of Object.keys(disclosures)) {
    const disclosure = disclosures[path] as { salt: string; value: JsonValue };
    if (!listed.has(path)) {
      out.push(
        detail(
          index,
          disclosurePath(path),
          'discloses a field that the record does not list in /record/personal',
        ),
      );
      continue;
    }
    const plain = plainValueProblem(path, disclosure.value, isIpText);
    if (plain !== undefined) out.push(detail(index, `${disclosurePath(path)}/value`, plain));
    let canonical: string;
    try {
      canonical = canonicalValue(disclosure.value);
    } catch (error) {
      out.push(detail(index, `${disclosurePath(path)}/value`, (error as Error).message));
      continue;
    }
    const commitment = commitmentOfSaltText(path, canonical, disclosure.salt);
    if (commitment === undefined) {
      const salt = decodeSalt(disclosure.salt);
      const message =
        encodeSalt(salt) !== disclosure.salt
          ? 'is not canonical base64url'
          : `must decode to ${LIMITS.minSaltBytes}-${LIMITS.maxSaltBytes} bytes`;
      out.push(detail(index, `${disclosurePath(path)}/salt`, message));
      continue;
    }
    if (getAt(record, parsePointer(path) ?? []) !== commitment) {
      out.push(
        detail(
          index,
          disclosurePath(path),
          'does not open the commitment in the record: value or salt was altered',
        ),
      );
    }
  }
  return out;
}

/**
 * Checks an event submitted without chain fields (PROTOCOL.md §7). Plain values are known here,
 * so formats of personal fields are checked too.
 */
export function checkEventInput(input: unknown, index?: number): Checked<EventInput> {
  // Depth and width first (PROTOCOL.md §3.5), before the schema, RFC 8785 or sealing walk it.
  const shape = jsonShapeProblem(input);
  if (shape !== undefined)
    return { ok: false, details: [detail(index, shape.path, shape.message)] };
  if (!validateEventInputShape(input)) {
    return { ok: false, details: schemaDetails(validateEventInputShape.errors, '', index) };
  }
  const event = input as EventInput;
  const details: ErrorDetail[] = timeProblems(event, '', index);
  for (const member of RESERVED_INPUT_MEMBERS) {
    if (Object.hasOwn(event, member)) {
      details.push(
        detail(
          index,
          `/${member}`,
          'is set by Vigil when it chains the event; leave it out (or send a sealed event)',
        ),
      );
    }
  }
  for (const path of event.personal ?? []) {
    const problem = committablePathProblem(path);
    if (problem !== undefined) {
      details.push(detail(index, '/personal', `${path} ${problem}`));
    } else if (getAt(event, parsePointer(path) ?? []) === undefined) {
      details.push(detail(index, '/personal', `${path} names no field of this event`));
    }
  }
  const all = new Set([...requiredPersonalPaths(event), ...(event.personal ?? [])]);
  for (const problem of personalSetProblems([...all]))
    details.push(detail(index, '/personal', problem));
  const ip = event.context?.ip;
  if (ip !== undefined) {
    const problem = plainValueProblem('/context/ip', ip, isIpText);
    if (problem !== undefined) details.push(detail(index, '/context/ip', problem));
  }
  return details.length > 0 ? { ok: false, details } : { ok: true, value: event };
}
