import canonicalize from 'canonicalize';
import { NotCanonicalError } from './errors.js';
import { escapeToken } from './pointer.js';

/**
 * RFC 8785 (JSON Canonicalization Scheme) serialisation. The `canonicalize` package is the
 * reference implementation by the RFC's co-author: keys sorted by UTF-16 code units, numbers in
 * ECMAScript shortest form, strings escaped as JSON.stringify does (RFC 8785 §3.2).
 *
 * It recurses, as does JSON.stringify: callers pass untrusted values only after the depth check
 * of PROTOCOL.md §3.5 (jsonShapeProblem, run by checkEventInput and checkSealedEvent). A value
 * too deep for the stack anyway ends here as a NotCanonicalError, not as a RangeError.
 */
export function canonicalJson(value: unknown): string {
  let out: string | undefined;
  try {
    out = canonicalize(value);
  } catch (error) {
    throw new NotCanonicalError(`value has no RFC 8785 form: ${(error as Error).message}`, error);
  }
  if (out === undefined) throw new NotCanonicalError('value has no JSON form (undefined)');
  return out;
}

/** String#isWellFormed (ES2024, in Node 20's V8; not in this project's ES2023 lib typings). */
export function isWellFormed(text: string): boolean {
  return (text as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/**
 * The JSON pointer (RFC 6901) of the first string in a parsed JSON value, a member name or a
 * value, for which `test` holds; `undefined` when there is none. A member name that fails is
 * reported at the member it names. Iterative, depth first in document order: the value is
 * untrusted input, and its depth is not bounded here.
 */
export function stringPath(value: unknown, test: (text: string) => boolean): string | undefined {
  const stack: { value: unknown; path: string }[] = [{ value, path: '' }];
  while (stack.length > 0) {
    const { value: v, path } = stack.pop() as { value: unknown; path: string };
    if (typeof v === 'string') {
      if (test(v)) return path;
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    const children: { value: unknown; path: string }[] = [];
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) children.push({ value: v[i], path: `${path}/${i}` });
    } else {
      for (const name of Object.keys(v)) {
        const at = `${path}/${escapeToken(name)}`;
        if (test(name)) return at;
        children.push({ value: (v as Record<string, unknown>)[name], path: at });
      }
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as (typeof children)[0]);
  }
  return undefined;
}

/**
 * The JSON pointer of the first string (name or value) holding a lone surrogate, which has no
 * UTF-8 and no RFC 8785 form (§2): hashed, it would be read as U+FFFD, so two different texts
 * would share one hash.
 */
export function illFormedPath(value: unknown): string | undefined {
  return stringPath(value, (text) => !isWellFormed(text));
}

/**
 * Whether every object in a parsed JSON value enumerates its members in RFC 8785 order (UTF-16
 * code units, which is how `<` compares strings) and every string, name or value, is well
 * formed (RFC 8785 §3.2.2.2 has no form for a lone surrogate).
 */
function sortedAndWellFormed(root: unknown): boolean {
  // Iterative (an explicit stack): this runs on records read from the log, which may predate
  // the depth limit of PROTOCOL.md §3.5.
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string') {
      if (!isWellFormed(value)) return false;
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
      continue;
    }
    let previous: string | undefined;
    for (const name of Object.keys(value)) {
      if ((previous !== undefined && !(previous < name)) || !isWellFormed(name)) return false;
      stack.push((value as Record<string, unknown>)[name]);
      previous = name;
    }
  }
  return true;
}

/**
 * Whether record bytes are exactly the RFC 8785 form of what they parse to. This rules out
 * whitespace, unsorted or duplicate member names (which parsers resolve differently, so two
 * verifiers could read different content under one hash) and non-canonical escapes. It costs a
 * serialisation, so the collector leaves it to the partition consumer and to verification.
 *
 * `parsed` is JSON.parse of `record`. When its members already enumerate in sorted order,
 * JSON.stringify writes exactly the RFC 8785 form — it escapes strings and writes numbers as
 * RFC 8785 §3.2.2 prescribes, and the `canonicalize` package uses it for both — in a fifth of
 * the time; the partition consumer checks every record, so that matters. Otherwise (unsorted
 * or duplicate names, integer-like names that V8 enumerates first, a lone surrogate) the full
 * serialisation decides.
 */
export function isCanonicalRecord(record: string, parsed: unknown): boolean {
  try {
    // JSON.stringify and canonicalJson recurse: reachable here only after the depth check of
    // PROTOCOL.md §3.5 (checkLoggedSealedEvent); the catch keeps a value that slipped past it
    // a "not canonical" verdict instead of an exception.
    if (sortedAndWellFormed(parsed)) return JSON.stringify(parsed) === record;
    return canonicalJson(parsed) === record;
  } catch {
    return false;
  }
}
