import {
  frameSealedEvent,
  parseFramedBody,
  SEALED_MEDIA_TYPE,
  type Disclosures,
  type ErrorDetail,
  type SealedEvent,
} from '@vigil/protocol';

/*
 * The sealed wire framing of PROTOCOL.md §9 (protocol v2), as the SDK uses it: each line is
 *
 *     <record bytes> TAB <hash: 64 lowercase hex> TAB <disclosures JSON, or nothing> LF
 *
 * The SDK builds each line once, when the event is sealed (see Sealer, which writes the bytes
 * itself into its shared buffer), and from then on keeps only those bytes: the queue, the spool
 * and every request body carry them unchanged. Parsing and the object-form encoder are the
 * protocol package's (parseFramedBody, frameSealedEvent); only the byte constants the sealer and
 * the spool need live here.
 */

/** Request media type of a body in this framing. */
export const SEALED_CONTENT_TYPE = SEALED_MEDIA_TYPE;

export const TAB = 0x09;
export const LF = 0x0a;
export const HASH_HEX_LENGTH = 64;

/** One line (LF included) for a sealed event given as an object (tests and the general path). */
export function encodeSealedLine(event: SealedEvent): Buffer {
  return Buffer.from(frameSealedEvent(event), 'utf8');
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

/**
 * A framed body read back into the JSON form: the events of its well-framed lines, in order,
 * and a detail for each line that is not (parseFramedBody's, or a disclosures field that is not
 * JSON). The events themselves are for checkSealedEvent.
 */
export function sealedEventsOf(body: Buffer): {
  events: (SealedEvent | undefined)[];
  details: ErrorDetail[];
} {
  const parsed = parseFramedBody(body);
  const details = [...parsed.details];
  const events: (SealedEvent | undefined)[] = new Array<SealedEvent | undefined>(parsed.lines);
  for (const frame of parsed.frames) {
    const event: SealedEvent = { record: frame.record.toString('utf8'), hash: frame.hash };
    if (frame.disclosures.length === 0) {
      events[frame.index] = event;
      continue;
    }
    try {
      const disclosures = JSON.parse(frame.disclosures.toString('utf8')) as Disclosures;
      events[frame.index] = { ...event, disclosures };
    } catch {
      details.push({ index: frame.index, path: '/disclosures', message: 'is not JSON' });
    }
  }
  return { events, details };
}
