import { LIMITS } from './constants.js';
import { escapeToken } from './pointer.js';

/**
 * The structural limits of a JSON value (PROTOCOL.md §3.5): nesting depth, members per object,
 * elements per array. Checked right after parsing, before anything else walks the value: the
 * RFC 8785 serialiser, JSON.stringify and every other recursive walker throw RangeError on a
 * few thousand levels, which V8's JSON.parse accepts. This walk is iterative (an explicit
 * stack), so it is safe on input of any depth; no library offers that bound on a parsed value.
 */

export interface ShapeProblem {
  /** JSON pointer of the offending node, below the value checked. */
  readonly path: string;
  readonly message: string;
}

export interface ShapeLimits {
  readonly depth: number;
  readonly members: number;
  readonly elements: number;
}

const DEFAULT_LIMITS: ShapeLimits = {
  depth: LIMITS.jsonDepth,
  members: LIMITS.jsonMembers,
  elements: LIMITS.jsonElements,
};

interface Frame {
  readonly value: object;
  readonly depth: number;
  readonly parent: Frame | undefined;
  readonly token: string;
}

function pointerOf(frame: Frame | undefined, last?: string): string {
  const tokens: string[] = [];
  if (last !== undefined) tokens.push(last);
  for (let f = frame; f?.parent !== undefined; f = f.parent) tokens.push(f.token);
  let out = '';
  for (let i = tokens.length - 1; i >= 0; i--) out += '/' + escapeToken(tokens[i] as string);
  return out;
}

/**
 * The first node of `value` that breaks the limits, or `undefined`. `startDepth` is the level of
 * the value's parent: a value placed at `/metadata/a` of a record (a disclosure's plain value)
 * starts at 2, so its own objects are level 3 and on, as they would be in the record. Strings
 * and numbers are not limited here (their length is bounded by the record's size limit).
 */
export function jsonShapeProblem(
  value: unknown,
  startDepth = 0,
  limits: ShapeLimits = DEFAULT_LIMITS,
): ShapeProblem | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const stack: Frame[] = [{ value, depth: startDepth + 1, parent: undefined, token: '' }];
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    if (frame.depth > limits.depth) {
      return {
        path: pointerOf(frame),
        message: `nests deeper than ${limits.depth} levels (PROTOCOL.md §3.5)`,
      };
    }
    if (Array.isArray(frame.value)) {
      const items = frame.value as unknown[];
      if (items.length > limits.elements) {
        return {
          path: pointerOf(frame),
          message: `has ${items.length} elements; at most ${limits.elements} (PROTOCOL.md §3.5)`,
        };
      }
      for (let i = items.length - 1; i >= 0; i--) {
        const item = items[i];
        if (typeof item === 'object' && item !== null)
          stack.push({ value: item, depth: frame.depth + 1, parent: frame, token: String(i) });
      }
      continue;
    }
    const object = frame.value as Record<string, unknown>;
    const keys = Object.keys(object);
    if (keys.length > limits.members) {
      return {
        path: pointerOf(frame),
        message: `has ${keys.length} members; at most ${limits.members} (PROTOCOL.md §3.5)`,
      };
    }
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      const member = object[key];
      if (typeof member === 'object' && member !== null)
        stack.push({ value: member, depth: frame.depth + 1, parent: frame, token: key });
    }
  }
  return undefined;
}
