import type { ErrorDetail, SealedEvent } from '@vigil/protocol';
import type { Entry } from '../queue/entry.js';
import type { EntryQueue } from '../queue/queue.js';
import { backoffDelay } from './backoff.js';
import { SEALED_CONTENT_TYPE } from './framing.js';
import type { AuditTransport, OutgoingBatch, TransportResult } from './transport.js';

/**
 * A batch built from queue entries. The body is the entries' wire lines one after the other
 * (PROTOCOL.md §9): one copy into one buffer, nothing re-encoded. The object view is only built
 * for transports that ask for it.
 */
export class EntryBatch implements OutgoingBatch {
  private buffer: Buffer | undefined;
  private list: SealedEvent[] | undefined;

  constructor(private readonly entries: readonly Entry[]) {}

  get size(): number {
    return this.entries.length;
  }

  get contentType(): string {
    return SEALED_CONTENT_TYPE;
  }

  get body(): Buffer {
    if (this.buffer === undefined) {
      let length = 0;
      for (const entry of this.entries) length += entry.bytes;
      const body = Buffer.allocUnsafe(length);
      let at = 0;
      for (const entry of this.entries) at += entry.copyTo(body, at);
      this.buffer = body;
    }
    return this.buffer;
  }

  get events(): readonly SealedEvent[] {
    this.list ??= this.entries.map((e) => e.sealed());
    return this.list;
  }
}

export interface SenderSettings {
  readonly maxEvents: number;
  readonly maxBytes: number;
  readonly maxDelayMs: number;
  readonly initialDelayMs: number;
  readonly maxDelayBackoffMs: number;
  readonly refusedDelayMs: number;
  readonly requestTimeoutMs: number;
}

/** What the sender tells its owner; the owner keeps counters, spool and dead letters. */
export interface SenderHost {
  /** The queue may take more events from disk. */
  refill(): void;
  accepted(entries: readonly Entry[], accepted: number, duplicates: number): void;
  /** The collector named these events as bad; they leave the chain for the dead-letter file. */
  deadLettered(
    entries: readonly Entry[],
    result: Rejection,
    details: readonly (readonly ErrorDetail[])[],
  ): void;
  retrying(attempt: number, delayMs: number, reason: string, status: number | undefined): void;
  /** A refusal no retry soon can fix (401/403/404 …): events are kept, retried after a long wait. */
  refused(result: Rejection, delayMs: number): void;
}

export type Rejection = Extract<TransportResult, { kind: 'rejected' }>;

/**
 * Sends the queue's events in order, one request at a time, so a stream's chain reaches the
 * collector in order. A batch is sent when it is full (count or bytes), when its oldest event
 * has waited `maxDelayMs`, or at once while flushing. A batch never spans a hole in a stream
 * (a seq that is not the previous one plus one), because the collector checks links inside a
 * request; holes come from dead-lettered and dropped events.
 *
 * After `retry` the same events are sent again after a backoff; after a rejection naming events,
 * those leave and the rest are resent in contiguous pieces; after 413 the batch is halved.
 */
export class Sender {
  /** Pieces of the batch in flight or waiting to be resent, in order. */
  private runs: Entry[][] = [];
  private sending = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private attempt = 0;
  private notBefore = 0;
  private controller: AbortController | undefined;
  private stopped = false;
  /** While > 0, partial batches go at once (flush and close). */
  flushing = 0;
  /** Called after each request settles; lets flush() and close() re-check their targets. */
  onSettled: () => void = () => undefined;

  constructor(
    private readonly queue: EntryQueue,
    private readonly transport: AuditTransport,
    private readonly settings: SenderSettings,
    private readonly host: SenderHost,
    private readonly random: () => number = Math.random,
  ) {}

  /** Events taken from the queue and not yet settled. */
  get inFlight(): number {
    let n = 0;
    for (const run of this.runs) n += run.length;
    return n;
  }

  get busy(): boolean {
    return this.sending;
  }

  /**
   * Looks for work: sends if a batch is due, or arms a timer for when one will be. Cheap enough
   * to call after every change.
   */
  kick(): void {
    if (this.stopped || this.sending) return;
    const now = Date.now();
    if (now < this.notBefore) {
      this.arm(this.notBefore, now);
      return;
    }
    if (this.runs.length === 0) {
      this.host.refill();
      const first = this.queue.peek();
      if (first === undefined || !first.durable) return;
      const full =
        this.queue.length >= this.settings.maxEvents || this.queue.bytes >= this.settings.maxBytes;
      const due = first.queuedAt + this.settings.maxDelayMs;
      if (!full && this.flushing === 0 && due > now) {
        this.arm(due, now);
        return;
      }
      const batch = this.take();
      if (batch.length === 0) return;
      this.runs.push(batch);
    }
    this.disarm();
    void this.send(this.runs[0] as Entry[]);
  }

  private arm(at: number, now: number): void {
    if (this.timer !== undefined && this.timerAt <= at) return;
    this.disarm();
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.kick();
      },
      Math.max(0, at - now),
    );
    // Pending deliveries alone do not keep the process alive; close() or the exit hooks drain.
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Takes the next batch off the queue: durable, one stream, contiguous seqs, within bounds. */
  private take(): Entry[] {
    const batch: Entry[] = [];
    let bytes = 0;
    let last: Entry | undefined;
    while (batch.length < this.settings.maxEvents) {
      const entry = this.queue.peek();
      if (entry === undefined || !entry.durable) break;
      if (last !== undefined) {
        if (entry.stream !== last.stream || entry.seq !== last.seq + 1) break;
        if (bytes + entry.bytes > this.settings.maxBytes) break;
      }
      this.queue.shift();
      batch.push(entry);
      bytes += entry.bytes;
      last = entry;
    }
    return batch;
  }

  private async send(run: Entry[]): Promise<void> {
    this.sending = true;
    const controller = new AbortController();
    this.controller = controller;
    const timeout = setTimeout(() => controller.abort(), this.settings.requestTimeoutMs);
    timeout.unref();
    let result: TransportResult;
    try {
      result = await this.transport.send(new EntryBatch(run), controller.signal);
      if (typeof result !== 'object' || result === null) {
        result = { kind: 'retry', reason: 'transport returned no result' };
      }
    } catch (error) {
      result = {
        kind: 'retry',
        reason: `transport failed: ${(error as Error)?.message ?? String(error)}`,
      };
    } finally {
      clearTimeout(timeout);
      this.controller = undefined;
    }
    this.sending = false;
    if (this.stopped) return;
    this.settle(run, result);
    this.onSettled();
    this.kick();
  }

  private settle(run: Entry[], result: TransportResult): void {
    const now = Date.now();
    switch (result.kind) {
      case 'accepted':
        this.runs.shift();
        this.attempt = 0;
        this.host.accepted(run, result.accepted, result.duplicates);
        return;
      case 'retry': {
        const delay = backoffDelay(
          this.attempt,
          {
            initialDelayMs: this.settings.initialDelayMs,
            maxDelayMs: this.settings.maxDelayBackoffMs,
          },
          this.random,
          result.retryAfterMs,
        );
        this.attempt++;
        this.notBefore = now + delay;
        this.host.retrying(this.attempt, delay, result.reason, result.status);
        return;
      }
      case 'rejected':
        this.rejected(run, result, now);
        return;
    }
  }

  /** Splits the run at the head of the queue in two, or dead-letters it when it is one event. */
  private halveOrSetAside(run: Entry[], result: Rejection): void {
    if (run.length > 1) {
      const half = Math.ceil(run.length / 2);
      this.runs.splice(0, 1, run.slice(0, half), run.slice(half));
    } else {
      this.runs.shift();
      this.host.deadLettered(run, result, [result.details]);
    }
  }

  private rejected(run: Entry[], result: Rejection, now: number): void {
    if (result.status === 413) {
      this.halveOrSetAside(run, result);
      return;
    }
    if (result.status === 400 || result.status === 409) {
      const named = new Map<number, ErrorDetail[]>();
      for (const detail of result.details) {
        if (detail.index !== undefined && detail.index >= 0 && detail.index < run.length) {
          const list = named.get(detail.index) ?? [];
          list.push(detail);
          named.set(detail.index, list);
        }
      }
      if (named.size === 0) {
        // Nothing named: halve until the culprit is alone, then set it aside.
        this.halveOrSetAside(run, result);
        return;
      }
      const dead: Entry[] = [];
      const deadDetails: (readonly ErrorDetail[])[] = [];
      const pieces: Entry[][] = [];
      let piece: Entry[] = [];
      run.forEach((entry, index) => {
        const details = named.get(index);
        if (details !== undefined) {
          dead.push(entry);
          deadDetails.push(details);
          if (piece.length > 0) pieces.push(piece);
          piece = [];
        } else {
          piece.push(entry);
        }
      });
      if (piece.length > 0) pieces.push(piece);
      // The rest goes again, split at each removed event: each request stays contiguous and
      // the collector's stream owner records the hole as a chain gap.
      this.runs.splice(0, 1, ...pieces);
      this.attempt = 0;
      this.host.deadLettered(dead, result, deadDetails);
      return;
    }
    const delay = this.settings.refusedDelayMs;
    this.notBefore = now + delay;
    this.host.refused(result, delay);
  }

  /** Stops sending: aborts the request in flight and clears timers. Pending events stay put. */
  stop(): void {
    this.stopped = true;
    this.disarm();
    this.controller?.abort();
  }

  /** Entries not yet settled, in order: in flight first, then the queue. */
  pending(): number {
    return this.inFlight + this.queue.length;
  }
}
