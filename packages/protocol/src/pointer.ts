/**
 * JSON Pointer (RFC 6901) helpers. Personal-field paths are JSON pointers, so a metadata
 * key holding `/` or `~` still names exactly one field.
 */

/** Escapes one reference token (RFC 6901 §3: `~` → `~0`, `/` → `~1`). */
export function escapeToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

export function unescapeToken(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

export function toPointer(tokens: readonly string[]): string {
  let out = '';
  for (const token of tokens) out += '/' + escapeToken(token);
  return out;
}

const BAD_ESCAPE = /~(?![01])/;
const parsed = new Map<string, readonly string[] | undefined>();
const PARSED_CACHE_LIMIT = 4096;

function parseUncached(pointer: string): string[] | undefined {
  if (pointer.length === 0 || pointer[0] !== '/') return undefined;
  const raw = pointer.slice(1).split('/');
  if (!pointer.includes('~')) return raw;
  for (const token of raw) {
    // A `~` must be followed by 0 or 1 (RFC 6901 §3).
    if (BAD_ESCAPE.test(token)) return undefined;
  }
  return raw.map(unescapeToken);
}

/**
 * Splits a pointer into unescaped tokens; `undefined` if it is not a valid non-empty pointer.
 * The same few personal paths recur in every event, so results are cached (bounded); the
 * returned array is shared and must not be modified.
 */
export function parsePointer(pointer: string): readonly string[] | undefined {
  const hit = parsed.get(pointer);
  if (hit !== undefined || parsed.has(pointer)) return hit;
  const tokens = parseUncached(pointer);
  if (parsed.size >= PARSED_CACHE_LIMIT) parsed.clear();
  parsed.set(pointer, tokens);
  return tokens;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value at `tokens` inside objects only (arrays are not addressed by personal paths). */
export function getAt(root: unknown, tokens: readonly string[]): unknown {
  let node: unknown = root;
  for (const token of tokens) {
    if (!isObject(node) || !Object.hasOwn(node, token)) return undefined;
    node = node[token];
  }
  return node;
}

/** Replaces the value at `tokens`; returns false when the parent does not exist. */
export function setAt(root: unknown, tokens: readonly string[], value: unknown): boolean {
  let node: unknown = root;
  for (let i = 0; i < tokens.length - 1; i++) {
    const token = tokens[i] as string;
    if (!isObject(node) || !Object.hasOwn(node, token)) return false;
    node = node[token];
  }
  const last = tokens[tokens.length - 1];
  if (last === undefined || !isObject(node) || !Object.hasOwn(node, last)) return false;
  node[last] = value;
  return true;
}
