import { isIP } from 'node:net';
import {
  checkLoggedFramedEvent,
  jsonShapeProblem,
  parseFramedBody,
  PATTERNS,
  parseTime,
  type ErrorDetail,
  type EventRecord,
} from '@vigil/protocol';
import { ipColumn } from '@vigil/query';
import { splitEventMessage, type EventMessage, type SealedEntry } from '../log/event-message.js';

/** A log record read and checked by a partition consumer: the message and, if sealed, its records. */
export interface ReadMessage {
  readonly message: EventMessage;
  /** The parsed record of each sealed event, in order; empty for unchained events. */
  readonly records: EventRecord[];
}

/** Latest instant the store's DateTime64 columns hold (2299-12-31, ClickHouse docs). */
const LAST_STORABLE_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999);

function refuse(path: string, message: string): never {
  throw new Error(`invalid log record: ${path} ${message}`);
}

function isEpochMs(value: unknown): value is number {
  return (
    Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= LAST_STORABLE_MS
  );
}

/** What the `ip` column would hold (the store's own ipColumn) must be an address it parses. */
function checkAddress(path: string, value: unknown): void {
  if (value === undefined) return;
  const column = typeof value === 'string' ? ipColumn(value) : undefined;
  if (column === undefined || (column !== null && isIP(column) === 0))
    refuse(path, 'must be an IP address');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function firstProblem(at: string, details: readonly ErrorDetail[]): never {
  const d = details[0];
  return refuse(`${at}${d?.path ?? ''}`, d?.message ?? 'is invalid');
}

/**
 * Decodes a log record and checks everything the consumer relies on to store it: the envelope,
 * each sealed event's framing, hash (over the record bytes where they lie in the log record),
 * record schema and depth, the record parsed once (checkLoggedFramedEvent), each
 * unchained event's id, time, shape and depth (PROTOCOL.md §3.5: the log may hold records written
 * before the limit, or by another writer), and the values that become typed columns.
 * The log is written by collectors, but a consumer trusts no input: a record that fails is kept
 * aside (`rejected_records`) instead of being stored, or of failing the insert of its whole
 * batch again and again. Throws an Error naming the field.
 */
export function readEventMessage(value: Buffer): ReadMessage {
  const { head: m, body } = splitEventMessage(value);
  if (typeof m['tenant'] !== 'string' || m['tenant'] === '')
    refuse('/tenant', 'must be a non-empty string');
  if (typeof m['keyId'] !== 'string') refuse('/keyId', 'must be a string');
  if (!isEpochMs(m['receivedAt'])) refuse('/receivedAt', 'must be a time in epoch milliseconds');
  if (typeof m['backfillBefore'] !== 'number' || !Number.isFinite(m['backfillBefore']))
    refuse('/backfillBefore', 'must be a time in epoch milliseconds');
  if (typeof m['stream'] !== 'string' || m['stream'] === '')
    refuse('/stream', 'must be a non-empty string');
  if (body !== undefined && m['kind'] !== 'sealed')
    refuse('/kind', "must be 'sealed' in a log record of framed lines");
  if (m['kind'] === 'sealed') {
    if (body === undefined) return refuse('/events', 'must be framed lines after the header');
    const { frames, details, lines } = parseFramedBody(body);
    if (lines === 0) refuse('/events', 'must hold at least one event');
    if (details.length > 0) firstProblem(`/events/${details[0]?.index ?? 0}`, details);
    const events: SealedEntry[] = [];
    const records: EventRecord[] = [];
    for (const frame of frames) {
      const i = frame.index;
      const checked = checkLoggedFramedEvent(frame);
      if (!checked.ok) return firstProblem(`/events/${i}`, checked.details);
      const { record, event } = checked.value;
      if (record.stream !== m['stream'])
        refuse(`/events/${i}/record/stream`, 'is not the stream of its log record');
      const disclosed = record.personal?.includes('/context/ip')
        ? event.disclosures?.['/context/ip']?.value
        : record.context?.ip;
      checkAddress(`/events/${i}/context/ip`, disclosed);
      events.push(
        event.disclosures
          ? {
              record: event.record,
              hash: event.hash,
              disclosures: event.disclosures,
              bytes: frame.record,
            }
          : { record: event.record, hash: event.hash, bytes: frame.record },
      );
      records.push(record);
    }
    return { message: { ...(m as unknown as EventMessage), kind: 'sealed', events }, records };
  }
  const events = m['events'];
  if (!Array.isArray(events) || events.length === 0) refuse('/events', 'must be a non-empty array');
  if (m['kind'] === 'unchained') {
    // Only what storing needs: an erasure rewrites the inputs of a log record (values of the
    // person become empty), so the collector's full input check no longer applies to them. A
    // value the sink cannot seal refuses that event alone, when the sink seals it (sink.ts).
    events.forEach((entry: unknown, i) => {
      if (!isObject(entry)) refuse(`/events/${i}`, 'must be an object');
      if (typeof entry['digest'] !== 'string' || !PATTERNS.hash.test(entry['digest']))
        refuse(`/events/${i}/digest`, 'must be 64 lower-case hex digits');
      const input = entry['input'];
      if (!isObject(input)) refuse(`/events/${i}/input`, 'must be an object');
      // The limits of PROTOCOL.md §3.5 before anything walks the input (sealing recurses).
      const shape = jsonShapeProblem(input);
      if (shape !== undefined) refuse(`/events/${i}/input${shape.path}`, shape.message);
      if (typeof input['id'] !== 'string' || !PATTERNS.uuidV7.test(input['id']))
        refuse(`/events/${i}/input/id`, 'must be the id the collector gave the event');
      if (typeof input['time'] !== 'string' || parseTime(input['time']) === undefined)
        refuse(`/events/${i}/input/time`, 'must be the time the collector gave the event');
      for (const member of ['action', 'category', 'outcome'])
        if (typeof input[member] !== 'string')
          refuse(`/events/${i}/input/${member}`, 'must be a string');
      for (const member of ['actor', 'target', 'access', 'context', 'metadata'])
        if (input[member] !== undefined && !isObject(input[member]))
          refuse(`/events/${i}/input/${member}`, 'must be an object');
      const context = input['context'] as Record<string, unknown> | undefined;
      checkAddress(`/events/${i}/input/context/ip`, context?.['ip']);
    });
    return { message: m as unknown as EventMessage, records: [] };
  }
  return refuse('/kind', "must be 'sealed' or 'unchained'");
}
