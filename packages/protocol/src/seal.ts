import { canonicalJson } from './canonical.js';
import { canonicalValue, commitmentOfCanonical, encodeSalt } from './commitment.js';
import { PROTOCOL_VERSION } from './constants.js';
import { InvalidEventError, type ErrorDetail } from './errors.js';
import { sha256Hex } from './hash.js';
import { committablePathProblem, personalSetProblems, requiredPersonalPaths } from './personal.js';
import { getAt, parsePointer } from './pointer.js';
import type { SaltSource } from './random.js';
import type {
  ChainLink,
  Disclosures,
  EventInput,
  EventRecord,
  JsonValue,
  SealedEvent,
} from './types.js';

export interface Sealed {
  /** What goes on the wire and into storage. */
  readonly event: SealedEvent;
  /** The record as an object (with commitments in place of personal values). */
  readonly record: EventRecord;
}

/** An input ready to seal: `id` and `time` are known. */
export type CompleteInput = EventInput & { id: string; time: string };

/** The personal paths of an input: the required ones plus those the producer marked, sorted. */
export function personalPathsOf(input: EventInput): string[] {
  const paths = new Set(requiredPersonalPaths(input));
  if (input.personal) for (const p of input.personal) paths.add(p);
  // Default JS sort compares UTF-16 code units, the order RFC 8785 uses for keys too.
  return [...paths].sort();
}

/**
 * Copies `root` along `tokens` so that setting the leaf never touches the caller's objects.
 * Only the objects on the path are copied; everything else is shared, which keeps sealing
 * cheap on the SDK's hot path.
 */
function setCopying(
  root: Record<string, unknown>,
  tokens: readonly string[],
  value: unknown,
): void {
  let node = root;
  for (let i = 0; i < tokens.length - 1; i++) {
    const key = tokens[i] as string;
    const child = node[key] as Record<string, unknown>;
    const copy = { ...child };
    node[key] = copy;
    node = copy;
  }
  node[tokens[tokens.length - 1] as string] = value;
}

/**
 * Builds the hashed record of one event (PROTOCOL.md §4): every personal field is replaced by
 * its commitment with a fresh salt, `personal` lists the committed paths, and the record is
 * serialised with RFC 8785 and hashed with SHA-256. The input is not modified.
 *
 * Throws {@link InvalidEventError} when a marked personal path cannot be committed or does not
 * exist; schema checks are the caller's (see {@link checkEventInput}).
 */
export function sealEvent(input: CompleteInput, link: ChainLink, salts: SaltSource): Sealed {
  const paths = personalPathsOf(input);
  const { personal: _marked, ...content } = input;
  const record: Record<string, unknown> = {
    ...content,
    v: PROTOCOL_VERSION,
    stream: link.stream,
    seq: link.seq,
    prev: link.prev,
  };
  const disclosures: Disclosures = {};
  const problems: ErrorDetail[] = personalSetProblems(paths).map((message) => ({
    path: '/personal',
    message,
  }));
  if (problems.length > 0)
    throw new InvalidEventError('event has invalid personal paths', problems);
  for (const path of paths) {
    const problem = committablePathProblem(path);
    const tokens = parsePointer(path);
    const value = tokens ? getAt(input, tokens) : undefined;
    if (problem !== undefined || !tokens) {
      problems.push({ path: `/personal`, message: `${path} ${problem ?? 'is invalid'}` });
      continue;
    }
    if (value === undefined) {
      problems.push({ path: '/personal', message: `${path} names no field of this event` });
      continue;
    }
    const salt = salts.salt();
    const canonical = canonicalValue(value);
    setCopying(record, tokens, commitmentOfCanonical(path, canonical, salt));
    disclosures[path] = { salt: encodeSalt(salt), value: value as JsonValue };
  }
  if (problems.length > 0)
    throw new InvalidEventError('event has invalid personal paths', problems);
  if (paths.length > 0) record['personal'] = paths;
  const json = canonicalJson(record);
  const event: SealedEvent =
    paths.length > 0
      ? { record: json, hash: sha256Hex(json), disclosures }
      : { record: json, hash: sha256Hex(json) };
  return { event, record: record as EventRecord };
}
