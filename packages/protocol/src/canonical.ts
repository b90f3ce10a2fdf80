import canonicalize from 'canonicalize';
import { NotCanonicalError } from './errors.js';

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
