import { frameSealedEvent, type Disclosures, type EventInput } from '@vigil/protocol';

/**
 * The payload of one log record: events of one stream from one request, as the collector
 * accepted them. Several events per record keep the broker from becoming the bottleneck (one
 * Kafka message per request and stream).
 *
 * - Sealed events: a header line (JSON: version, tenant, keyId, receivedAt, backfillBefore,
 *   stream, kind) and LF, then the events as lines of the sealed framing (PROTOCOL.md §9),
 *   `record TAB hash TAB disclosures LF`, exactly as the producer framed them: the record bytes
 *   go from the request to the store without being decoded or encoded again, whatever wire form
 *   the events came in (a JSON-form sealed event is framed once, by the collector).
 * - Unchained events: one JSON object (the header's members plus `events`), no LF in it
 *   (JSON.stringify escapes it): they travel as submitted (plus the id and time the collector
 *   filled in) and are sealed by the consumer that owns the partition.
 */
export const EVENT_MESSAGE_VERSION = 2;

const LF = 0x0a;
const LF_BUFFER = Buffer.from('\n');

export interface SealedEntry {
  readonly record: string;
  readonly hash: string;
  readonly disclosures?: Disclosures;
  /** The record bytes as the log record holds them (when read from one): what was hashed. */
  readonly bytes?: Buffer;
}

export interface UnchainedEntry {
  readonly input: EventInput & { id: string; time: string };
  /** SHA-256 of the RFC 8785 form of the event as submitted: "same bytes" for replays. */
  readonly digest: string;
}

export interface MessageHead {
  readonly v: typeof EVENT_MESSAGE_VERSION;
  readonly tenant: string;
  readonly keyId: string;
  /** Collector's clock when the request arrived, epoch ms: expiry and partitioning derive from it. */
  readonly receivedAt: number;
  /** Events timed before this (epoch ms) are backfill: received long after they happened. */
  readonly backfillBefore: number;
  readonly stream: string;
}

export type EventMessage =
  | (MessageHead & { readonly kind: 'sealed'; readonly events: readonly SealedEntry[] })
  | (MessageHead & { readonly kind: 'unchained'; readonly events: readonly UnchainedEntry[] });

/** The partitioning key: all events of one tenant's stream go to one partition, in order. */
export function messageKey(tenant: string, stream: string): string {
  return `${tenant}/${stream}`;
}

/** The header line of a sealed message, LF included (always of this version). */
export function sealedHeader(head: MessageHead): Buffer {
  const { tenant, keyId, receivedAt, backfillBefore, stream } = head;
  const v = EVENT_MESSAGE_VERSION;
  return Buffer.from(
    JSON.stringify({ v, tenant, keyId, receivedAt, backfillBefore, stream, kind: 'sealed' }) + '\n',
    'utf8',
  );
}

/**
 * A sealed message from its header and framed lines (each without its LF, as parseFramedBody
 * gives them): the lines are copied once, verbatim.
 */
export function encodeSealedLines(head: MessageHead, lines: readonly Uint8Array[]): Buffer {
  const parts: Uint8Array[] = [sealedHeader(head)];
  for (const line of lines) parts.push(line, LF_BUFFER);
  return Buffer.concat(parts);
}

export function encodeEventMessage(message: EventMessage): Buffer {
  if (message.kind === 'unchained')
    return Buffer.from(JSON.stringify({ ...message, v: EVENT_MESSAGE_VERSION }), 'utf8');
  let body = '';
  for (const e of message.events)
    body += frameSealedEvent(
      e.disclosures ? { record: e.record, hash: e.hash, disclosures: e.disclosures } : e,
    );
  return Buffer.concat([sealedHeader(message), Buffer.from(body, 'utf8')]);
}

/** A log record split into its header (parsed) and, for sealed events, the framed body. */
export interface SplitMessage {
  readonly head: Record<string, unknown>;
  /** The framed lines of a sealed message (a slice of the value); undefined for unchained. */
  readonly body?: Buffer;
}

function versionProblem(v: unknown): string {
  return `log record has version ${String(v)}; this sink reads version ${EVENT_MESSAGE_VERSION}`;
}

/**
 * Splits a log record into its header and framed body without reading the events. Throws when
 * the header is not JSON, not an object, or of another version.
 */
export function splitEventMessage(value: Buffer): SplitMessage {
  const lf = value.indexOf(LF);
  const head: unknown = JSON.parse(
    (lf < 0 ? value : value.subarray(0, lf)).toString('utf8'),
  ) as unknown;
  if (typeof head !== 'object' || head === null || Array.isArray(head))
    throw new Error('log record header is not a JSON object');
  const h = head as Record<string, unknown>;
  if (h['v'] !== EVENT_MESSAGE_VERSION) throw new Error(versionProblem(h['v']));
  return lf < 0 ? { head: h } : { head: h, body: value.subarray(lf + 1) };
}

/**
 * Decodes a log record whole, without checking the events (read-message.ts checks them): the
 * sealed lines are split at their TABs, the record bytes decoded, the disclosures parsed.
 */
export function decodeEventMessage(value: Buffer): EventMessage {
  const { head, body } = splitEventMessage(value);
  if (body === undefined) return head as unknown as EventMessage;
  const events: SealedEntry[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(LF, start);
    if (end < 0) end = body.length;
    const line = body.subarray(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    const t1 = line.indexOf(0x09);
    const t2 = line.indexOf(0x09, t1 + 1);
    if (t1 < 0 || t2 < 0) throw new Error('log record line is not record TAB hash TAB disclosures');
    const bytes = line.subarray(0, t1);
    const disclosures = line.subarray(t2 + 1);
    const entry = {
      record: bytes.toString('utf8'),
      hash: line.toString('latin1', t1 + 1, t2),
      bytes,
    };
    events.push(
      disclosures.length > 0
        ? { ...entry, disclosures: JSON.parse(disclosures.toString('utf8')) as Disclosures }
        : entry,
    );
  }
  return { ...(head as unknown as MessageHead), kind: 'sealed', events };
}

/**
 * The message without the events at `drop` (their positions in it), the others kept verbatim;
 * `undefined` when none is left. For the rare retried request whose events were partly appended.
 */
export function withoutEvents(value: Buffer, drop: ReadonlySet<number>): Buffer | undefined {
  const { head, body } = splitEventMessage(value);
  if (body === undefined) {
    const message = head as unknown as EventMessage & { kind: 'unchained' };
    const events = message.events.filter((_, slot) => !drop.has(slot));
    return events.length === 0 ? undefined : encodeEventMessage({ ...message, events });
  }
  const kept: Buffer[] = [];
  let slot = 0;
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(LF, start);
    if (end < 0) end = body.length;
    const line = body.subarray(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    if (!drop.has(slot++)) kept.push(line);
  }
  if (kept.length === 0) return undefined;
  return encodeSealedLines(head as unknown as MessageHead, kept);
}

/** The stream on which the partition owner chains the unchained events of an API key. */
export function keyStream(keyId: string): string {
  return `key/${keyId}`;
}
