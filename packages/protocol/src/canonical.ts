import canonicalize from 'canonicalize';
import { NotCanonicalError } from './errors.js';

/**
 * RFC 8785 (JSON Canonicalization Scheme) serialisation. The `canonicalize` package is the
 * reference implementation by the RFC's co-author: keys sorted by UTF-16 code units, numbers in
 * ECMAScript shortest form, strings escaped as JSON.stringify does (RFC 8785 §3.2).
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
 * Whether record bytes are exactly the RFC 8785 form of what they parse to. This rules out
 * whitespace, unsorted or duplicate member names (which parsers resolve differently, so two
 * verifiers could read different content under one hash) and non-canonical escapes. It costs a
 * serialisation, so the collector leaves it to the partition consumer and to verification.
 */
export function isCanonicalRecord(record: string, parsed: unknown): boolean {
  try {
    return canonicalJson(parsed) === record;
  } catch {
    return false;
  }
}
