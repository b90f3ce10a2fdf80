import { canonicalJson } from '@vigil/protocol';

/**
 * Thrown inside {@link orderedCopy} when a value needs the general RFC 8785 serialiser. One
 * preallocated instance, compared by identity: the fallback costs no stack capture.
 */
export const NEEDS_GENERAL = new Error('value needs the general RFC 8785 serialiser');

const DEPTH_LIMIT = 32;

/** Keys that JS engines enumerate before all others (array indexes): insertion order cannot place them. */
function startsWithDigit(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 48 && c <= 57;
}

/**
 * A copy of a JSON value whose object keys are inserted in RFC 8785 order (UTF-16 code units,
 * §3.2.3), so that `JSON.stringify` of the copy is the canonical form: for finite numbers,
 * well-formed strings, booleans and null, JSON.stringify's output is exactly RFC 8785's
 * (§3.2.2). V8's JSON.stringify is several times faster than a general canonicaliser walking
 * the same value, and this runs for every event.
 *
 * Anything outside that safe subset throws {@link NEEDS_GENERAL} and the caller falls back to
 * the general serialiser: non-finite numbers, BigInt, objects with toJSON or a class, keys
 * starting with a digit (engines enumerate index-like keys first), undefined or functions
 * inside arrays, and deep nesting (which may be a cycle). Lone surrogates are caught on the
 * output by {@link stringifyOrdered}.
 */
export function orderedCopy(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null) {
    if (typeof value === 'number' ? !Number.isFinite(value) : typeof value === 'bigint') {
      throw NEEDS_GENERAL;
    }
    return value;
  }
  if (depth > DEPTH_LIMIT) throw NEEDS_GENERAL;
  if (Array.isArray(value)) {
    const out: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const kind = typeof item;
      if (kind === 'undefined' || kind === 'function' || kind === 'symbol') throw NEEDS_GENERAL;
      out[i] = orderedCopy(item, depth + 1);
    }
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw NEEDS_GENERAL;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') throw NEEDS_GENERAL;
  const keys = Object.keys(value);
  let sorted = true;
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      sorted = false;
      break;
    }
  }
  // Default sort compares UTF-16 code units, the order RFC 8785 §3.2.3 prescribes.
  if (!sorted) keys.sort();
  const out: Record<string, unknown> = {};
  const source = value as Record<string, unknown>;
  for (const key of keys) {
    if (startsWithDigit(key)) throw NEEDS_GENERAL;
    const item = source[key];
    const kind = typeof item;
    // JSON and RFC 8785 both leave out members whose value has no JSON form.
    if (kind === 'undefined' || kind === 'function' || kind === 'symbol') continue;
    out[key] = orderedCopy(item, depth + 1);
  }
  return out;
}

/**
 * JSON.stringify of a value built by {@link orderedCopy}. JSON.stringify escapes a lone
 * surrogate as `\udXXX` where RFC 8785 refuses the value; a `\ud` in the output can only come
 * from that (or from an escaped backslash followed by `ud`), so the rare output that holds it
 * goes through the general serialiser, which throws `NotCanonicalError` or agrees.
 */
export function stringifyOrdered(ordered: unknown): string {
  const json = JSON.stringify(ordered);
  return json.includes('\\ud') ? canonicalJson(ordered) : json;
}

/** RFC 8785 form of any value: the fast path when it applies, the general serialiser otherwise. */
export function canonicalFast(value: unknown): string {
  let ordered: unknown;
  try {
    ordered = orderedCopy(value);
  } catch (error) {
    if (error === NEEDS_GENERAL) return canonicalJson(value);
    throw error;
  }
  return stringifyOrdered(ordered);
}
