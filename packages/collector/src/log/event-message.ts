import { isIP } from 'node:net';
import {
  checkLoggedSealedEvent,
  PATTERNS,
  parseTime,
  type Disclosures,
  type ErrorDetail,
  type EventInput,
  type EventRecord,
} from '@vigil/protocol';

/**
 * The payload of one log record: events of one stream from one request, as the collector
 * accepted them. Sealed events travel with their exact record bytes untouched; unchained
 * events travel as submitted (plus the id and time the collector filled in) and are sealed by
 * the consumer that owns the partition. Several events per record keep the broker from
 * becoming the bottleneck (one Kafka message per request and stream).
 */
export const EVENT_MESSAGE_VERSION = 1;

export interface SealedEntry {
  readonly record: string;
  readonly hash: string;
  readonly disclosures?: Disclosures;
}

export interface UnchainedEntry {
  readonly input: EventInput & { id: string; time: string };
  /** SHA-256 of the RFC 8785 form of the event as submitted: "same bytes" for replays. */
  readonly digest: string;
}

interface MessageHead {
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

export function encodeEventMessage(message: EventMessage): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

export function decodeEventMessage(value: Buffer): EventMessage {
  const message = JSON.parse(value.toString('utf8')) as { v?: unknown };
  if (message.v !== EVENT_MESSAGE_VERSION) {
    throw new Error(
      `log record has version ${String(message.v)}; this sink reads version ${EVENT_MESSAGE_VERSION}`,
    );
  }
  return message as EventMessage;
}

/** The stream on which the partition owner chains the unchained events of an API key. */
export function keyStream(keyId: string): string {
  return `key/${keyId}`;
}

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

/** The address an `ip` column would get (store/rows.ts ipColumn) must be one the store parses. */
function checkAddress(path: string, value: unknown): void {
  if (value === undefined || value === '') return;
  if (typeof value !== 'string') refuse(path, 'must be an IP address');
  const zone = value.indexOf('%');
  if (isIP(zone < 0 ? value : value.slice(0, zone)) === 0) refuse(path, 'must be an IP address');
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
 * each sealed event's shape, hash and record schema (checkLoggedSealedEvent), each unchained
 * event's id, time and shape, and the values that become typed columns of strict types.
 * The log is written by collectors, but a consumer trusts no input: a record that fails is kept
 * aside (`rejected_records`) instead of being stored, or of failing the insert of its whole
 * batch again and again. Throws an Error naming the field.
 */
export function readEventMessage(value: Buffer): ReadMessage {
  const message = decodeEventMessage(value);
  const m = message as unknown as Record<string, unknown>;
  if (typeof m['tenant'] !== 'string' || m['tenant'] === '')
    refuse('/tenant', 'must be a non-empty string');
  if (typeof m['keyId'] !== 'string') refuse('/keyId', 'must be a string');
  if (!isEpochMs(m['receivedAt'])) refuse('/receivedAt', 'must be a time in epoch milliseconds');
  if (typeof m['backfillBefore'] !== 'number' || !Number.isFinite(m['backfillBefore']))
    refuse('/backfillBefore', 'must be a time in epoch milliseconds');
  if (typeof m['stream'] !== 'string' || m['stream'] === '')
    refuse('/stream', 'must be a non-empty string');
  const events = m['events'];
  if (!Array.isArray(events) || events.length === 0) refuse('/events', 'must be a non-empty array');
  if (m['kind'] === 'sealed') {
    const records = events.map((event, i) => {
      const checked = checkLoggedSealedEvent(event);
      if (!checked.ok) return firstProblem(`/events/${i}`, checked.details);
      const { record } = checked.value;
      if (record.stream !== m['stream'])
        refuse(`/events/${i}/record/stream`, 'is not the stream of its log record');
      const disclosed = record.personal?.includes('/context/ip')
        ? checked.value.event.disclosures?.['/context/ip']?.value
        : record.context?.ip;
      checkAddress(`/events/${i}/context/ip`, disclosed);
      return record;
    });
    return { message, records };
  }
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
    return { message, records: [] };
  }
  return refuse('/kind', "must be 'sealed' or 'unchained'");
}
