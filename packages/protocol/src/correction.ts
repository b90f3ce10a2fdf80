import { hasMembers } from './members.js';
import { escapeToken, parsePointer } from './pointer.js';
import type { JsonValue } from './types.js';

/**
 * Corrections (GDPR Art. 16, rectification; PROTOCOL.md §18). An audit log never edits an event:
 * its hash, the chain and every proof would break, and an auditor must still see what was first
 * recorded. A correction is a new event that names the one it corrects and carries the corrected
 * values:
 *
 *     "action": "event.corrected",
 *     "corrects": { "event": "<id of the corrected event>", "hash": "<its event hash>" },
 *     "metadata": { "corrected": { "<JSON pointer into the corrected event>": <new value>, … },
 *                   "reason": "…" }
 *
 * A reader shows the corrected view (the original with every correction applied in order) and
 * keeps the original available; both stay provable. A corrected value that may identify a person
 * is committed like any personal value, at `/metadata/corrected/<escaped pointer>`, so erasing
 * the person erases it too.
 */

export const CORRECTION_ACTION = 'event.corrected';
/** The member of `metadata` that holds the corrected values. */
export const CORRECTED_MEMBER = 'corrected';

/** Which event a correction corrects: its id and, so that no other copy is meant, its hash. */
export interface CorrectionRef {
  readonly event: string;
  readonly hash: string;
}

/** Members of an event that identify or chain it, or say what is personal: never corrected. */
const FIXED = new Set(['v', 'id', 'stream', 'seq', 'prev', 'personal', 'corrects']);

/** Why `path` cannot be corrected, or undefined when it can. */
export function correctablePathProblem(path: string): string | undefined {
  const tokens = parsePointer(path);
  if (!tokens || tokens.length === 0) return 'is not a JSON pointer to a field';
  const first = tokens[0] as string;
  if (FIXED.has(first))
    return `cannot be corrected: /${first} identifies, chains or describes the event itself`;
  if (tokens.some((t) => t === '')) return 'names an empty member';
  return undefined;
}

/** Where a correction holds the new value of `path`: `/metadata/corrected/<escaped path>`. */
export function correctedValuePath(path: string): string {
  return `/metadata/${CORRECTED_MEMBER}/${escapeToken(path)}`;
}

/** The corrected values of a correction event (as opened: personal values disclosed or null). */
export function correctedFields(view: {
  readonly metadata?: unknown;
}): ReadonlyMap<string, JsonValue> {
  const out = new Map<string, JsonValue>();
  const metadata = view.metadata;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) return out;
  const corrected = (metadata as Record<string, unknown>)[CORRECTED_MEMBER];
  if (typeof corrected !== 'object' || corrected === null || Array.isArray(corrected)) return out;
  for (const [path, value] of Object.entries(corrected as Record<string, JsonValue>)) {
    if (correctablePathProblem(path) === undefined) out.set(path, value);
  }
  return out;
}

/** The `corrects` member of an event, when it is a well-formed reference. */
export function correctionRef(record: { readonly corrects?: unknown }): CorrectionRef | undefined {
  const c = record.corrects;
  // Closed (§18.1): exactly event and hash.
  if (!hasMembers(c, ['event', 'hash'])) return undefined;
  const { event, hash } = c;
  return typeof event === 'string' && typeof hash === 'string' ? { event, hash } : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The corrected view of an event: a copy of `view` with the fields of each correction set, in
 * the order given (the order the corrections were recorded). Objects missing on a path are
 * created; nothing else of the view changes.
 */
export function applyCorrections<T extends Record<string, unknown>>(
  view: T,
  corrections: readonly ReadonlyMap<string, JsonValue>[],
): T {
  const out = structuredClone(view);
  for (const fields of corrections) {
    for (const [path, value] of fields) {
      const tokens = parsePointer(path);
      if (!tokens || tokens.length === 0) continue;
      let node: Record<string, unknown> = out;
      for (const token of tokens.slice(0, -1)) {
        if (!isObject(node[token])) node[token] = {};
        node = node[token] as Record<string, unknown>;
      }
      node[tokens[tokens.length - 1] as string] = value;
    }
  }
  return out;
}
