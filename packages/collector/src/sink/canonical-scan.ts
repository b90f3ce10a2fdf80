import { isCanonicalRecord } from '@vigil/protocol';

/**
 * Whether record text is the RFC 8785 form of what it parses to, decided in one pass over the
 * text, without serialising the parsed value again; `isCanonicalRecord` (parse, serialise,
 * compare) decides the rare text this pass cannot.
 *
 * Why here: the partition's consumer is where PROTOCOL.md §4 and §8.1 put the check (the
 * collector leaves it off the request path, and the log may hold records no collector checked),
 * and each sealed record reaches the consumer once per batch: BatchRun.apply calls this once per
 * record it stores. The serialisation behind `isCanonicalRecord` was one of the consumer's
 * largest costs per event (bench/README.md, e2e); reading the text once is a fraction of it.
 *
 * `text` has been parsed as JSON already (checkLoggedSealedEvent), so only what JSON allows and
 * RFC 8785 does not is looked for:
 * - whitespace between tokens (§3.2.1: none);
 * - escapes other than `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\u00xx` (lower-case hex)
 *   for the other control characters (§3.2.2.2); a character written as an escape it need not be
 *   (`\/`, `\u0041`, `\u00e9`) or a surrogate;
 * - numbers not written as ECMAScript writes them (§3.2.2.3): the token must equal
 *   `String(Number(token))`, which also refuses `-0`, exponents in the wrong form, leading zeros;
 * - member names out of order or repeated (§3.2.3): each object's names must increase strictly
 *   in UTF-16 code units, which is how JavaScript compares strings. A name that holds an escape
 *   is left to `isCanonicalRecord` (its order is that of the unescaped name).
 */
export function isCanonicalText(text: string, parsed: unknown): boolean {
  const verdict = scan(text);
  return verdict === undefined ? isCanonicalRecord(text, parsed) : verdict;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Escapes RFC 8785 writes in short form (§3.2.2.2), by the character after the backslash. */
function shortEscape(c: number): boolean {
  // " \ b f n r t
  return (
    c === QUOTE ||
    c === BACKSLASH ||
    c === 0x62 ||
    c === 0x66 ||
    c === 0x6e ||
    c === 0x72 ||
    c === 0x74
  );
}

function isLowerHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);
}

/** Whether text[a..aEnd) is before text[b..bEnd) in UTF-16 code units (strictly). */
function before(text: string, a: number, aEnd: number, b: number, bEnd: number): boolean {
  const la = aEnd - a;
  const lb = bEnd - b;
  const common = la < lb ? la : lb;
  for (let k = 0; k < common; k++) {
    const x = text.charCodeAt(a + k);
    const y = text.charCodeAt(b + k);
    if (x !== y) return x < y;
  }
  return la < lb;
}

/** true / false when the text decides, undefined when isCanonicalRecord must. */
function scan(text: string): boolean | undefined {
  const n = text.length;
  // Per open object or array: where the previous member name starts and ends in the text (start
  // -1 before the first), and whether it is an object. Names are compared in place, unsliced.
  const nameStart: number[] = [];
  const nameEnd: number[] = [];
  const inObject: boolean[] = [];
  let expectName = false;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i + 1;
      let escaped = false;
      i = start;
      for (;;) {
        if (i >= n) return false;
        const d = text.charCodeAt(i);
        if (d === QUOTE) break;
        if (d === BACKSLASH) {
          escaped = true;
          const e = text.charCodeAt(i + 1);
          if (shortEscape(e)) {
            i += 2;
            continue;
          }
          if (e !== 0x75) return false; // `\/` and anything else JSON allows
          // \u00xx for a control character without a short form, lower-case hex.
          if (text.charCodeAt(i + 2) !== 0x30 || text.charCodeAt(i + 3) !== 0x30) return false;
          const h1 = text.charCodeAt(i + 4);
          const h2 = text.charCodeAt(i + 5);
          if ((h1 !== 0x30 && h1 !== 0x31) || !isLowerHex(h2)) return false;
          const code = parseInt(text.slice(i + 4, i + 6), 16);
          if (code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d)
            return false;
          i += 6;
          continue;
        }
        // A surrogate: a well-formed pair is written as it is, a lone one has no form (§3.2.2.2).
        if (d >= 0xd800 && d <= 0xdfff) {
          const low = text.charCodeAt(i + 1);
          if (d > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) return false;
          i += 2;
          continue;
        }
        i++;
      }
      const end = i;
      i++;
      if (expectName) {
        if (escaped) return undefined;
        const top = nameStart.length - 1;
        const lastStart = nameStart[top] as number;
        if (lastStart >= 0 && !before(text, lastStart, nameEnd[top] as number, start, end))
          return false;
        nameStart[top] = start;
        nameEnd[top] = end;
        expectName = false;
      }
      continue;
    }
    switch (c) {
      case 0x7b: // {
        nameStart.push(-1);
        nameEnd.push(-1);
        inObject.push(true);
        expectName = true;
        i++;
        continue;
      case 0x5b: // [
        nameStart.push(-1);
        nameEnd.push(-1);
        inObject.push(false);
        i++;
        continue;
      case 0x7d: // }
      case 0x5d: // ]
        nameStart.pop();
        nameEnd.pop();
        inObject.pop();
        expectName = false;
        i++;
        continue;
      case 0x2c: // ,
        expectName = inObject[inObject.length - 1] === true;
        i++;
        continue;
      case 0x3a: // :
        i++;
        continue;
      case 0x74: // true
      case 0x66: // false
      case 0x6e: // null
        i += c === 0x66 ? 5 : 4;
        continue;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      let plain = c !== 0x2d;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (
          (d >= 0x30 && d <= 0x39) ||
          d === 0x2e ||
          d === 0x65 ||
          d === 0x45 ||
          d === 0x2b ||
          d === 0x2d
        )
          i++;
        else break;
      }
      // Digits only, no leading zero, below 2^53: written as they are. Else ask ECMAScript.
      for (let k = start; plain && k < i; k++) {
        const d = text.charCodeAt(k);
        if (d < 0x30 || d > 0x39) plain = false;
      }
      if (plain && i - start <= 15 && (c !== 0x30 || i - start === 1)) continue;
      const token = text.slice(start, i);
      if (String(Number(token)) !== token) return false;
      continue;
    }
    // Whitespace, or anything else JSON.parse let through.
    return false;
  }
  return true;
}
