import type { Disclosures, SealedEvent } from '@vigil/protocol';

/*
 * The sealed wire framing of PROTOCOL.md §9 (protocol v2): a request body of lines, each
 *
 *     <record bytes> TAB <hash: 64 lowercase hex> TAB <disclosures JSON, or nothing> LF
 *
 * The record bytes are the record's RFC 8785 text exactly as hashed, unescaped: RFC 8785 escapes
 * every control character, so the record never holds a raw TAB, LF or CR and the first TAB ends
 * it. The disclosures field is empty when the record has no `personal`, else the same JSON
 * object as in the JSON form (§5.3); JSON.stringify never writes a raw TAB or LF either.
 *
 * The SDK builds each line once, when the event is sealed (see Sealer), and from then on keeps
 * only those bytes: the queue, the spool and every request body carry them unchanged.
 */

/** Request media type of a body in this framing. */
export const SEALED_CONTENT_TYPE = 'application/vnd.vigil.sealed.v2';

export const TAB = 0x09;
export const LF = 0x0a;
const CR = 0x0d;
export const HASH_HEX_LENGTH = 64;

/** One line (LF included) for a sealed event given as an object (tests and the general path). */
export function encodeSealedLine(event: SealedEvent): Buffer {
  const disclosures = event.disclosures === undefined ? '' : JSON.stringify(event.disclosures);
  return Buffer.from(`${event.record}\t${event.hash}\t${disclosures}\n`, 'utf8');
}

/** Where the fields of one line (LF excluded) end: the two TABs. Undefined when malformed. */
function tabsOf(line: Buffer, start: number, end: number): [number, number] | undefined {
  const first = line.indexOf(TAB, start);
  if (first < 0 || first >= end) return undefined;
  // The hash has a fixed length, so the second TAB has a fixed place.
  const second = first + 1 + HASH_HEX_LENGTH;
  if (second >= end || line[second] !== TAB) return undefined;
  return [first, second];
}

/** The hash field of a well-formed line the SDK built. */
export function lineHash(line: Buffer): string {
  const tab = line.indexOf(TAB);
  return line.toString('latin1', tab + 1, tab + 1 + HASH_HEX_LENGTH);
}

/** The record text of a well-formed line the SDK built. */
export function lineRecord(line: Buffer): string {
  return line.toString('utf8', 0, line.indexOf(TAB));
}

export type ParsedLine =
  | { readonly ok: true; readonly event: SealedEvent }
  | { readonly ok: false; readonly path: string; readonly message: string };

/**
 * Reads one line (`end` excludes the LF and any CR before it) back into the object form. Checks
 * the framing only (three fields, 64 hex hash, disclosures a JSON object); the event itself is
 * for checkSealedEvent.
 */
export function parseSealedLine(body: Buffer, start: number, end: number): ParsedLine {
  const tabs = tabsOf(body, start, end);
  if (tabs === undefined) {
    return {
      ok: false,
      path: '',
      message: 'is not three TAB-separated fields: record, 64-hex hash, disclosures',
    };
  }
  const [first, second] = tabs;
  if (body.indexOf(TAB, second + 1) >= 0 && body.indexOf(TAB, second + 1) < end) {
    return { ok: false, path: '/disclosures', message: 'holds a raw TAB' };
  }
  const record = body.toString('utf8', start, first);
  const hash = body.toString('latin1', first + 1, second);
  if (second + 1 === end) return { ok: true, event: { record, hash } };
  let disclosures: unknown;
  try {
    disclosures = JSON.parse(body.toString('utf8', second + 1, end));
  } catch {
    return { ok: false, path: '/disclosures', message: 'is not JSON' };
  }
  if (typeof disclosures !== 'object' || disclosures === null || Array.isArray(disclosures)) {
    return { ok: false, path: '/disclosures', message: 'must be a JSON object' };
  }
  return { ok: true, event: { record, hash, disclosures: disclosures as Disclosures } };
}

/**
 * Splits a body into its lines: [start, end) of each non-blank line, the LF and a CR before it
 * excluded, in order (error indexes count these lines from 0). The last LF is optional.
 */
export function splitSealedLines(body: Buffer): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  while (start < body.length) {
    let nl = body.indexOf(LF, start);
    if (nl < 0) nl = body.length;
    const end = nl > start && body[nl - 1] === CR ? nl - 1 : nl;
    if (end > start) out.push([start, end]);
    start = nl + 1;
  }
  return out;
}
