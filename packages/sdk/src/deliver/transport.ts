import type { ErrorDetail, SealedEvent } from '@vigil/protocol';

/**
 * A batch of sealed events on its way to a collector. Every event of one stream in a batch
 * directly follows the previous one (seq + 1, prev = its hash): the collector checks links inside
 * a request, so the SDK never sends a batch with a hole in it.
 *
 * Both views are computed on first use and cached: an HTTP transport takes `body`, the events'
 * wire lines concatenated without re-serialising them; an in-process transport takes `events`.
 */
export interface OutgoingBatch {
  /** Number of events. */
  readonly size: number;
  /** The events in the JSON form (`{record, hash, disclosures}`), parsed from their lines. */
  readonly events: readonly SealedEvent[];
  /**
   * The request body of `POST /v1/events` in the sealed framing of PROTOCOL.md §9: one line
   * `record TAB hash TAB disclosures LF` per event.
   */
  readonly body: Buffer;
  /** Media type of `body`: `application/vnd.vigil.sealed.v2`. */
  readonly contentType: string;
}

/**
 * What became of a batch, mirroring the collector's HTTP answers:
 * - `accepted`: every event is durable at the collector (202); `duplicates` of them had been
 *   accepted before (same id and hash), which is how an idempotent resend shows.
 * - `rejected`: the collector refused the whole batch and stored nothing. `status` says why:
 *   400/409 with `details[].index` naming the bad events, 401/403 for the key, 413 when the batch
 *   is too large, anything else for a problem retrying soon cannot fix.
 * - `retry`: nothing is known to be stored; send the same batch again later, not before
 *   `retryAfterMs` when given (429/503 `Retry-After`, network errors, timeouts, 5xx).
 */
export type TransportResult =
  | { readonly kind: 'accepted'; readonly accepted: number; readonly duplicates: number }
  | {
      readonly kind: 'rejected';
      readonly status: number;
      readonly code: string;
      readonly message: string;
      readonly details: readonly ErrorDetail[];
    }
  | {
      readonly kind: 'retry';
      readonly reason: string;
      readonly status?: number;
      readonly retryAfterMs?: number;
    };

/**
 * How sealed events reach a collector. The SDK sends one batch at a time, in order, and resends
 * a batch after `retry` until it is `accepted` (so `send` must be idempotent, which the
 * collector's dedupe by event id and hash makes it). `send` should not throw: a thrown error is
 * treated as `retry`. When `signal` aborts (request timeout, close deadline) the transport
 * should give up promptly.
 *
 * The default transport posts to `POST {endpoint}/v1/events`; an embedded collector implements
 * this interface to take events in-process, with the same guarantees and no HTTP in between.
 */
export interface AuditTransport {
  send(batch: OutgoingBatch, signal: AbortSignal): Promise<TransportResult>;
  /** Releases connections or resources; called once by `close()`. */
  close?(): Promise<void>;
}
