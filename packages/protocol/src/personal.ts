import { LIMITS, NON_PERSON_TYPES, PERSON_TARGET_TYPES } from './constants.js';
import { parsePointer } from './pointer.js';

/**
 * Which fields identify a person (PROTOCOL.md §5.1). These must enter the hashed record only
 * as commitments; a producer may commit more fields (any path a producer is allowed to mark).
 */

interface PartyLike {
  type?: unknown;
  id?: unknown;
  name?: unknown;
  email?: unknown;
}

function asParty(value: unknown): PartyLike | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
}

function addParty(
  out: string[],
  base: string,
  party: PartyLike | undefined,
  person: boolean,
): void {
  if (!party) return;
  if (person) {
    if (party.id !== undefined) out.push(`${base}/id`);
    if (party.name !== undefined) out.push(`${base}/name`);
  }
  if (party.email !== undefined) out.push(`${base}/email`);
}

/** Actors, access subjects and grantors are people unless their type says otherwise. */
export function isPersonActor(type: unknown): boolean {
  return typeof type !== 'string' || !NON_PERSON_TYPES.has(type);
}

/** Targets are resources unless their type names a person. */
export function isPersonTarget(type: unknown): boolean {
  return typeof type === 'string' && PERSON_TARGET_TYPES.has(type);
}

/**
 * The JSON pointers that the protocol requires to be committed for this content, in the
 * order of PROTOCOL.md §5.1. Only fields that are present are listed.
 */
export function requiredPersonalPaths(content: {
  actor?: unknown;
  target?: unknown;
  context?: unknown;
  access?: unknown;
}): string[] {
  const out: string[] = [];
  const actor = asParty(content.actor);
  addParty(out, '/actor', actor, isPersonActor(actor?.type));
  const target = asParty(content.target);
  addParty(out, '/target', target, isPersonTarget(target?.type));
  const access = asParty(content.access) as { subject?: unknown; grantedBy?: unknown } | undefined;
  if (access) {
    const subject = asParty(access.subject);
    addParty(out, '/access/subject', subject, isPersonActor(subject?.type));
    const grantor = asParty(access.grantedBy);
    addParty(out, '/access/grantedBy', grantor, isPersonActor(grantor?.type));
  }
  const context = asParty(content.context) as { ip?: unknown; userAgent?: unknown } | undefined;
  if (context) {
    if (context.ip !== undefined) out.push('/context/ip');
    if (context.userAgent !== undefined) out.push('/context/userAgent');
  }
  return out;
}

/** Fields outside `/metadata/…` that a producer may commit in addition to the required ones. */
const COMMITTABLE = new Set([
  '/actor/id',
  '/actor/name',
  '/actor/email',
  '/target/id',
  '/target/name',
  '/target/email',
  '/access/subject/id',
  '/access/subject/name',
  '/access/subject/email',
  '/access/grantedBy/id',
  '/access/grantedBy/name',
  '/access/grantedBy/email',
  '/context/ip',
  '/context/userAgent',
  '/context/sessionId',
  '/context/requestId',
]);

/**
 * Why `path` may not be committed, or `undefined` when it may: structural fields (type,
 * action, time …) stay in the clear so every record remains queryable and checkable.
 */
export function committablePathProblem(path: string): string | undefined {
  const tokens = parsePointer(path);
  if (!tokens) return 'is not a JSON pointer (RFC 6901)';
  if (COMMITTABLE.has(path)) return undefined;
  if (tokens[0] === 'metadata' && tokens.length >= 2 && tokens[1] !== '') return undefined;
  return 'cannot be personal: only party ids, names and emails, context ip, userAgent, sessionId, requestId and /metadata/… fields can';
}

/**
 * Problems with a set of personal paths as a whole: one path inside another (`/metadata/a` and
 * `/metadata/a/b`) would commit a commitment, and the total must fit the wire limit.
 */
export function personalSetProblems(paths: readonly string[]): string[] {
  const out: string[] = [];
  if (paths.length > LIMITS.personalPaths) {
    out.push(
      `${paths.length} personal fields; at most ${LIMITS.personalPaths} (the required ones included)`,
    );
  }
  // Every ancestor of every path is looked up (comparing sorted neighbours is not enough:
  // `/metadata/a.x` sorts between `/metadata/a` and `/metadata/a/b`).
  const set = new Set(paths);
  for (const path of [...set].sort()) {
    for (let cut = path.indexOf('/', 1); cut > 0; cut = path.indexOf('/', cut + 1)) {
      const ancestor = path.slice(0, cut);
      if (set.has(ancestor)) {
        out.push(`${path} lies inside ${ancestor}; commit one or the other`);
        break;
      }
    }
  }
  return out;
}

const TEXT_LIMITS: ReadonlyMap<string, number> = new Map([
  ['id', LIMITS.idLength],
  ['name', LIMITS.nameLength],
  ['email', LIMITS.emailLength],
  ['userAgent', LIMITS.userAgentLength],
  ['requestId', LIMITS.contextIdLength],
  ['sessionId', LIMITS.contextIdLength],
]);

/**
 * What the plain value of a committed field must be, as the schema says of the field in the
 * clear: text within the field's limit (an address for /context/ip); any JSON under /metadata.
 */
export function plainValueProblem(
  path: string,
  value: unknown,
  isIp: (text: string) => boolean,
): string | undefined {
  if (path.startsWith('/metadata/')) return undefined;
  if (path === '/context/ip') {
    // 64, as for an address in the clear (an IPv6 zone id could otherwise be of any length).
    return typeof value === 'string' && value.length <= 64 && isIp(value)
      ? undefined
      : 'must be an IPv4 or IPv6 address (at most 64 characters)';
  }
  const field = path.slice(path.lastIndexOf('/') + 1);
  const max = TEXT_LIMITS.get(field) ?? LIMITS.nameLength;
  if (typeof value !== 'string' || value.length === 0) return 'must be a non-empty string';
  return value.length > max ? `must be at most ${max} characters` : undefined;
}
