import type { Disclosures, EventInput } from '@vigil/protocol';

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
