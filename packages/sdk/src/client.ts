import { EventEmitter } from 'node:events';
import { hostname as osHostname } from 'node:os';
import {
  checkEventInput,
  InvalidEventError,
  STREAM_CLOSED,
  STREAM_OPENED,
  ZERO_HASH,
  type ErrorDetail,
  type EventInput,
  type SealedEvent,
} from '@vigil/protocol';
import { defaultStreamId } from './chain/identity.js';
import { EventClock, RandomBytes } from './chain/ids.js';
import { Sealer } from './chain/sealer.js';
import { DeadLetterFile, type DeadLetterRecord } from './deliver/dead-letter.js';
import { HttpTransport } from './deliver/http.js';
import { Sender, type Rejection } from './deliver/sender.js';
import type { AuditTransport } from './deliver/transport.js';
import {
  ClientClosedError,
  QueueFullError,
  SdkError,
  SdkErrorCodes,
  type SdkErrorCode,
} from './errors.js';
import { resolveOptions, type AuditClientOptions, type ResolvedOptions } from './options.js';
import { Entry } from './queue/entry.js';
import { EntryQueue } from './queue/queue.js';
import * as builders from './record/builders.js';
import { Spool, type DroppedRange } from './spool/spool.js';
import { SDK_NAME, SDK_VERSION } from './version.js';

/** Counters (since the client started) and gauges (now) that an application can read or export. */
export interface AuditClientStats {
  /** Events sealed by this client, including stream.opened and stream.closed. */
  recorded: number;
  /** Events written to the spool by this client. */
  spooled: number;
  /** Events the collector accepted (duplicates included). */
  sent: number;
  /** Of `sent`, events the collector already had (an idempotent resend). */
  duplicates: number;
  /** Requests that failed and were retried. */
  retried: number;
  /** Events dropped by the drop-oldest policy. */
  dropped: number;
  /** Events the collector refused, written to the dead-letter file. */
  deadLettered: number;
  /** Gauge: events held in memory, not yet acknowledged (queue + in flight + waiting under `block`). */
  queued: number;
  /** Gauge: events in the request in flight or waiting to be resent. */
  inFlight: number;
  /** Gauge: events waiting for room under the `block` policy. */
  blocked: number;
  /** Gauge: bytes of the spool files (0 without a spool). */
  spoolBytes: number;
}

export interface SentInfo {
  readonly accepted: number;
  readonly duplicates: number;
  readonly events: number;
}

export interface RetryInfo {
  readonly attempt: number;
  readonly delayMs: number;
  readonly reason: string;
  readonly status: number | undefined;
}

export interface DeadLetterInfo {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly events: readonly DeadLetterRecord[];
}

export interface DroppedInfo {
  readonly count: number;
  readonly reason: 'queue-full' | 'spool-full';
}

/** Events of an AuditClient. `error` is emitted only when it has a listener (see report). */
export interface AuditClientEvents {
  error: [SdkError];
  sent: [SentInfo];
  retry: [RetryInfo];
  deadLetter: [DeadLetterInfo];
  dropped: [DroppedInfo];
}

export interface CloseOptions {
  /** How long to try to deliver what is pending before giving up (it stays spooled). Default 10 s. */
  readonly deadlineMs?: number;
}

export interface CloseResult {
  /** Everything recorded was acknowledged by the collector before the deadline. */
  readonly delivered: boolean;
  /** Events not acknowledged (on disk with a spool, lost without one). */
  readonly pending: number;
}

/** A shared, already-resolved promise: what record() returns without a spool, at no cost per event. */
const RESOLVED: Promise<void> = Promise.resolve();

interface Waiter {
  readonly entry: Entry;
  readonly resolve: () => void;
}

interface FlushTarget {
  readonly stream: string;
  readonly seq: number;
  readonly resolve: (done: boolean) => void;
}

const REPORT_INTERVAL_MS = 10_000;

/**
 * Records audit events: validates them, chains and seals them, keeps them (in memory, or in the
 * spool when one is configured) and delivers them in order to the collector. Create one per
 * process with {@link createAuditClient}.
 *
 * Guarantees:
 * - misuse (an invalid event, a reserved action, a full queue under `throw`, a closed client) is
 *   a synchronous typed throw from the call;
 * - a delivery or disk problem never throws or rejects into the application: it is retried,
 *   counted, and reported through the `error` event (or the logger when nobody listens);
 * - `record()` resolves once the event is spooled per the fsync policy (with a spool) or queued
 *   in memory (without); it never rejects.
 */
export class AuditClient extends EventEmitter<AuditClientEvents> {
  /** The stream this client appends to. */
  readonly stream: string;

  private readonly options: ResolvedOptions;
  private readonly random = new RandomBytes();
  private readonly clock = new EventClock(this.random);
  private readonly sealer: Sealer;
  private readonly queue = new EntryQueue();
  private readonly sender: Sender;
  private readonly transport: AuditTransport;
  private readonly keepEvents: boolean;
  private readonly spool: Spool | undefined;
  private readonly deadLetters: DeadLetterFile | undefined;
  private nextSeq: number;
  private prevHash: string;
  private readonly counters = {
    recorded: 0,
    spooled: 0,
    sent: 0,
    duplicates: 0,
    retried: 0,
    dropped: 0,
    deadLettered: 0,
  };
  /** Events sealed but waiting for room under the block policy, in order. */
  private readonly waiting: Waiter[] = [];
  /** Highest seq per stream handed to memory (queue) so far: the spool reader continues after it. */
  private readonly loaded = new Map<string, number>();
  /** Highest seq per stream acknowledged, dead-lettered or dropped. */
  private readonly settled = new Map<string, number>();
  /** With a spool: events past the memory bound are on disk only, read back as the queue drains. */
  private diskOnly = false;
  private reading = false;
  private readRetry: NodeJS.Timeout | undefined;
  private readonly flushTargets: FlushTarget[] = [];
  private closing = false;
  private closed = false;
  private closePromise: Promise<CloseResult> | undefined;
  private readonly lastReport = new Map<SdkErrorCode, { at: number; suppressed: number }>();
  private exitHooks: (() => void) | undefined;

  constructor(options: AuditClientOptions) {
    super();
    this.options = resolveOptions(options);
    const o = this.options;
    this.sealer = new Sealer(this.random, o.personalPaths, o.saltSource);
    this.transport =
      o.transport ??
      new HttpTransport({
        endpoint: o.endpoint as string,
        apiKey: o.apiKey as string,
        gzip: o.gzip,
      });
    this.keepEvents = !(this.transport instanceof HttpTransport);
    this.sender = new Sender(
      this.queue,
      this.transport,
      {
        maxEvents: o.batch.maxEvents,
        maxBytes: o.batch.maxBytes,
        maxDelayMs: o.batch.maxDelayMs,
        initialDelayMs: o.retry.initialDelayMs,
        maxDelayBackoffMs: o.retry.maxDelayMs,
        refusedDelayMs: o.retry.refusedDelayMs,
        requestTimeoutMs: o.retry.requestTimeoutMs,
      },
      {
        refill: () => this.refill(),
        accepted: (entries, accepted, duplicates) => this.onAccepted(entries, accepted, duplicates),
        deadLettered: (entries, result, details) => this.onDeadLettered(entries, result, details),
        retrying: (attempt, delayMs, reason, status) =>
          this.onRetrying(attempt, delayMs, reason, status),
        refused: (result, delayMs) => this.onRefused(result, delayMs),
      },
    );
    this.sender.onSettled = () => this.checkFlushTargets();
    this.spool =
      o.spool &&
      Spool.open(o.spool, {
        onDurable: () => this.sender.kick(),
        onError: (error) => this.report(error),
      });
    this.deadLetters =
      o.deadLetterFile === undefined
        ? undefined
        : new DeadLetterFile(o.deadLetterFile, (error) =>
            this.report(
              new SdkError(
                SdkErrorCodes.SPOOL_IO,
                `cannot write dead-letter file ${o.deadLetterFile}: ${(error as Error).message}`,
                { cause: error },
              ),
            ),
          );

    const host = o.hostname ?? osHostname();
    const head = this.spool?.head;
    const continues =
      head !== undefined &&
      (o.stream === undefined
        ? !head.closed && head.stream.startsWith(`${o.service}/`)
        : head.stream === o.stream);
    if (continues) {
      // A restart after a crash: the chain goes on where the spool left it.
      this.stream = head.stream;
      this.nextSeq = head.seq + 1;
      this.prevHash = head.hash;
    } else {
      this.stream = o.stream ?? defaultStreamId(o.service, host, this.clock.id(Date.now()));
      this.nextSeq = 0;
      this.prevHash = ZERO_HASH;
    }
    if (this.spool !== undefined) {
      for (const [stream, seq] of this.spool.ackedPositions()) {
        this.loaded.set(stream, seq);
        this.settled.set(stream, seq);
      }
      this.diskOnly = this.spool.hasBacklog(this.loaded);
      const warnings = this.spool.openWarnings;
      if (warnings.length > 0) setImmediate(() => warnings.forEach((w) => this.report(w)));
    }
    if (!continues) {
      this.appendSystem(STREAM_OPENED, {
        sdk: SDK_NAME,
        sdkVersion: SDK_VERSION,
        host,
        pid: process.pid,
      });
    }
    if (o.exitDeadlineMs !== undefined) this.installExitHooks(o.exitDeadlineMs);
    this.sender.kick();
  }

  // --- recording ------------------------------------------------------------------------------

  /**
   * Records one event. Throws synchronously for misuse (`InvalidEventError` naming every problem,
   * `VIGIL_ERR_SDK_RESERVED_ACTION`, `QueueFullError` under `throw`, `ClientClosedError`).
   * The promise resolves when the event is spooled per the fsync policy (with a spool) or queued
   * in memory (without); under `block` it waits for room. It never rejects.
   */
  record(event: EventInput): Promise<void> {
    if (this.closed) throw new ClientClosedError();
    const checked = checkEventInput(event);
    if (!checked.ok)
      throw new InvalidEventError(
        `invalid audit event: ${describe(checked.details)}`,
        checked.details,
      );
    if (event.action.startsWith('stream.')) {
      throw new SdkError(
        SdkErrorCodes.RESERVED_ACTION,
        `action ${event.action} is written by the SDK itself; stream.* actions are reserved`,
        { details: [{ path: '/action', message: 'stream.* actions are reserved for the SDK' }] },
      );
    }
    this.refuseIfFull();
    return this.append(event);
  }

  private refuseIfFull(): void {
    const o = this.options;
    if (this.spool !== undefined && o.spool !== undefined) {
      if (o.spool.onFull === 'throw' && this.spool.bytes >= o.spool.maxBytes) {
        throw new QueueFullError(
          SdkErrorCodes.SPOOL_FULL,
          `the spool holds ${this.spool.bytes} bytes (spool.maxBytes ${o.spool.maxBytes}) and the collector has not taken them`,
        );
      }
      if (o.spool.onFull === 'block' && this.waiting.length >= o.queue.maxEvents) {
        throw new QueueFullError(
          SdkErrorCodes.SPOOL_FULL,
          `the spool is full and ${this.waiting.length} events already wait for room`,
        );
      }
      return;
    }
    if (o.queue.onFull === 'throw' && this.memoryFull(0)) {
      throw new QueueFullError(
        SdkErrorCodes.QUEUE_FULL,
        `the queue holds ${this.queue.length + this.sender.inFlight} events (queue.maxEvents ${o.queue.maxEvents}) and the collector has not taken them`,
      );
    }
    if (o.queue.onFull === 'block' && this.waiting.length >= o.queue.maxEvents) {
      throw new QueueFullError(
        SdkErrorCodes.QUEUE_FULL,
        `the queue is full and ${this.waiting.length} events already wait for room`,
      );
    }
  }

  private memoryFull(extraBytes: number): boolean {
    const q = this.options.queue;
    return (
      this.queue.length + this.sender.inFlight >= q.maxEvents ||
      this.queue.bytes + extraBytes > q.maxBytes
    );
  }

  /** Seals the next event of the stream and hands it to the spool or the queue. */
  private append(input: EventInput): Promise<void> {
    const now = Date.now();
    const id = input.id ?? this.clock.id(now);
    const time = input.time ?? this.clock.time(now);
    const seq = this.nextSeq;
    const sealed = this.sealer.seal(input, id, time, {
      stream: this.stream,
      seq,
      prev: this.prevHash,
    });
    this.nextSeq = seq + 1;
    this.prevHash = sealed.event.hash;
    const line = sealed.line;
    const entry = new Entry(
      this.stream,
      seq,
      id,
      sealed.event.hash,
      line,
      Buffer.byteLength(line),
      // The HTTP transport needs only the line; not keeping the object halves what a queued
      // event holds in memory (and what the garbage collector must move).
      this.keepEvents ? sealed.event : undefined,
      now,
      this.spool === undefined,
    );
    this.counters.recorded++;
    if (this.waiting.length > 0) return this.wait(entry);
    return this.spool === undefined
      ? this.admitToMemory(entry)
      : this.admitToSpool(entry, this.spool);
  }

  private appendSystem(action: string, metadata: Record<string, string | number>): void {
    const input: EventInput = {
      action,
      category: 'system',
      outcome: 'success',
      actor: { type: 'service', id: this.options.service },
      metadata,
    };
    // Under `throw` the SDK's own events are still kept (admitToMemory); under `block` they wait
    // their turn like any other, which keeps the queue in seq order.
    void this.append(input);
  }

  private wait(entry: Entry): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.push({ entry, resolve }));
  }

  private admitToMemory(entry: Entry): Promise<void> {
    if (this.memoryFull(entry.bytes)) {
      switch (this.options.queue.onFull) {
        case 'block':
          if (!this.closing) return this.wait(entry);
          break;
        case 'drop-oldest': {
          let dropped = 0;
          while (this.queue.length > 0 && this.memoryFull(entry.bytes)) {
            const old = this.queue.shift() as Entry;
            this.settle(old.stream, old.seq);
            dropped++;
          }
          if (dropped > 0) this.onDropped(dropped, 'queue-full');
          break;
        }
        case 'throw':
          // Checked before sealing; only the SDK's own events get here, and they are kept.
          break;
      }
    }
    this.queue.push(entry);
    this.loaded.set(entry.stream, entry.seq);
    const q = this.queue;
    if (
      q.length === 1 ||
      q.length >= this.options.batch.maxEvents ||
      q.bytes >= this.options.batch.maxBytes
    ) {
      this.sender.kick();
    }
    return RESOLVED;
  }

  private admitToSpool(entry: Entry, spool: Spool): Promise<void> {
    const lineBytes = entry.bytes + 22;
    if (spool.wouldOverflow(lineBytes)) {
      const policy = this.options.spool?.onFull;
      if (policy === 'block' && !this.closing) return this.wait(entry);
      if (policy === 'drop-oldest') {
        let range: DroppedRange | undefined;
        let dropped = 0;
        while (spool.wouldOverflow(lineBytes) && (range = spool.dropOldest()) !== undefined) {
          dropped += this.forget(range);
        }
        if (dropped > 0) this.onDropped(dropped, 'spool-full');
      }
    }
    const done = spool.append(entry);
    this.counters.spooled++;
    if (!this.diskOnly && !this.memoryFull(entry.bytes)) {
      this.queue.push(entry);
      this.loaded.set(entry.stream, entry.seq);
    } else {
      // Memory is full: later events stay on disk until the queue drains (see refill).
      this.diskOnly = true;
    }
    return done;
  }

  /** A dropped spool segment: its events leave memory too; returns how many were not yet delivered. */
  private forget(range: DroppedRange): number {
    let count = 0;
    const inMemory = this.queue.peek();
    if (inMemory !== undefined && inMemory.stream === range.stream) {
      while (
        this.queue.peek()?.stream === range.stream &&
        (this.queue.peek()?.seq ?? Infinity) <= range.lastSeq
      ) {
        this.queue.shift();
        count++;
      }
    }
    const loaded = this.loaded.get(range.stream) ?? -1;
    if (range.lastSeq > loaded) {
      count += range.lastSeq - Math.max(loaded, range.firstSeq - 1);
      this.loaded.set(range.stream, range.lastSeq);
    }
    this.settle(range.stream, range.lastSeq);
    return count;
  }

  /** Moves events waiting under `block` in, as far as there is room now. */
  private admitWaiting(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0] as Waiter;
      const full =
        this.spool === undefined
          ? this.memoryFull(next.entry.bytes)
          : this.spool.wouldOverflow(next.entry.bytes + 22);
      if (full && !this.closing) return;
      this.waiting.shift();
      const done =
        this.spool === undefined
          ? this.admitToMemory(next.entry)
          : this.admitToSpool(next.entry, this.spool);
      done.then(next.resolve, next.resolve);
    }
  }

  /** Reads events back from the spool when memory has room and some are on disk only. */
  private refill(): void {
    const spool = this.spool;
    if (spool === undefined || !this.diskOnly || this.reading || this.closed) return;
    const room = this.options.queue.maxEvents - this.queue.length - this.sender.inFlight;
    const roomBytes = this.options.queue.maxBytes - this.queue.bytes;
    if (room < Math.min(this.options.batch.maxEvents, this.options.queue.maxEvents / 2)) return;
    if (roomBytes < this.options.queue.maxBytes / 2) return;
    this.reading = true;
    spool.read(this.loaded, room, roomBytes).then(
      ({ entries, caughtUp }) => {
        this.reading = false;
        for (const entry of entries) {
          if (entry.seq <= (this.loaded.get(entry.stream) ?? -1)) continue;
          this.queue.push(entry);
          this.loaded.set(entry.stream, entry.seq);
        }
        // Checked in the same tick as the read ended: nothing can have been appended in between.
        if (caughtUp) this.diskOnly = false;
        // With nothing read and more on its way to disk, the end of that write calls kick()
        // again; kicking now would spin on reads that find nothing.
        if (entries.length > 0 || caughtUp) this.sender.kick();
      },
      (error: unknown) => {
        this.reading = false;
        this.report(
          new SdkError(
            SdkErrorCodes.SPOOL_IO,
            `cannot read the spool: ${(error as Error).message}`,
            { cause: error },
          ),
        );
        this.readRetry ??= setTimeout(() => {
          this.readRetry = undefined;
          this.sender.kick();
        }, 1000);
        this.readRetry.unref();
      },
    );
  }

  // --- delivery outcomes ----------------------------------------------------------------------

  private settle(stream: string, seq: number): void {
    if ((this.settled.get(stream) ?? -1) < seq) this.settled.set(stream, seq);
    this.spool?.ack(stream, seq);
  }

  private onAccepted(entries: readonly Entry[], accepted: number, duplicates: number): void {
    const last = entries[entries.length - 1] as Entry;
    this.settle(last.stream, last.seq);
    this.counters.sent += entries.length;
    this.counters.duplicates += duplicates;
    this.admitWaiting();
    if (this.listenerCount('sent') > 0)
      this.safeEmit('sent', { accepted, duplicates, events: entries.length });
  }

  private onDeadLettered(
    entries: readonly Entry[],
    result: Rejection,
    details: readonly (readonly ErrorDetail[])[],
  ): void {
    const time = new Date().toISOString();
    const records: DeadLetterRecord[] = entries.map((entry, i) => ({
      time,
      stream: entry.stream,
      seq: entry.seq,
      id: entry.eventId(),
      status: result.status,
      code: result.code,
      message: result.message,
      details: (details[i] ?? []).map(({ path, message }) => ({ path, message })),
      event: entry.sealed(),
    }));
    this.counters.deadLettered += entries.length;
    void this.deadLetters?.append(records);
    for (const entry of entries) this.settle(entry.stream, entry.seq);
    this.admitWaiting();
    const where =
      this.deadLetters === undefined
        ? 'no dead-letter file is configured'
        : `see ${this.deadLetters.path}`;
    this.report(
      new SdkError(
        SdkErrorCodes.DEAD_LETTERED,
        `the collector refused ${entries.length} event(s) (${result.status} ${result.code}: ${result.message}); ${where}`,
        {
          status: result.status,
          details: records.flatMap((r) => r.details),
          eventIds: records.map((r) => r.id),
        },
      ),
      true,
    );
    if (this.listenerCount('deadLetter') > 0) {
      this.safeEmit('deadLetter', {
        status: result.status,
        code: result.code,
        message: result.message,
        events: records,
      });
    }
  }

  private onRetrying(
    attempt: number,
    delayMs: number,
    reason: string,
    status: number | undefined,
  ): void {
    this.counters.retried++;
    if (this.listenerCount('retry') > 0)
      this.safeEmit('retry', { attempt, delayMs, reason, status });
    this.report(
      new SdkError(
        SdkErrorCodes.DELIVERY_FAILED,
        `delivery failed (${reason}); retry ${attempt} in ${delayMs} ms`,
        {
          retriable: true,
          ...(status === undefined ? {} : { status }),
        },
      ),
    );
  }

  private onRefused(result: Rejection, delayMs: number): void {
    const unauthorized = result.status === 401 || result.status === 403;
    this.report(
      new SdkError(
        unauthorized ? SdkErrorCodes.UNAUTHORIZED : SdkErrorCodes.REJECTED,
        `the collector refused the request (${result.status} ${result.code}: ${result.message}); events are kept, next try in ${Math.round(delayMs / 1000)} s`,
        { status: result.status, details: result.details },
      ),
      true,
    );
  }

  private onDropped(count: number, reason: DroppedInfo['reason']): void {
    this.counters.dropped += count;
    if (this.listenerCount('dropped') > 0) this.safeEmit('dropped', { count, reason });
    this.report(
      new SdkError(
        SdkErrorCodes.EVENTS_DROPPED,
        `dropped the ${count} oldest undelivered event(s): the ${reason === 'queue-full' ? 'queue' : 'spool'} is full (policy drop-oldest)`,
      ),
    );
  }

  /**
   * Reports a problem: to `error` listeners when there are any, otherwise to the logger, at
   * most once per code every 10 s (an outage must not flood the logs). Never throws: an
   * EventEmitter without an `error` listener would throw, which is why the count is checked.
   */
  private report(error: SdkError, loud = false): void {
    if (this.listenerCount('error') > 0) {
      this.safeEmit('error', error);
      return;
    }
    const logger = this.options.logger;
    if (logger === undefined) return;
    const now = Date.now();
    const last = this.lastReport.get(error.code as SdkErrorCode);
    if (!loud && last !== undefined && now - last.at < REPORT_INTERVAL_MS) {
      last.suppressed++;
      return;
    }
    this.lastReport.set(error.code as SdkErrorCode, { at: now, suppressed: 0 });
    const data = {
      code: error.code,
      stream: this.stream,
      ...(last !== undefined && last.suppressed > 0 ? { suppressed: last.suppressed } : {}),
    };
    try {
      if (error.retriable) logger.warn(data, error.message);
      else logger.error(data, error.message);
    } catch {
      // A broken logger must not break delivery.
    }
  }

  private safeEmit<K extends keyof AuditClientEvents>(
    name: K,
    ...args: AuditClientEvents[K]
  ): void {
    try {
      (this.emit as (n: K, ...a: AuditClientEvents[K]) => boolean)(name, ...args);
    } catch (error) {
      // A listener that throws must not break delivery; say so where an operator will see it.
      try {
        this.options.logger?.error(
          { code: SdkErrorCodes.INTEGRATION, event: name },
          `an audit client '${name}' listener threw: ${(error as Error)?.message}`,
        );
      } catch {
        // Nothing more can be done.
      }
    }
  }

  // --- flush and close ------------------------------------------------------------------------

  /**
   * Sends everything recorded so far without waiting for full batches. Resolves `true` once all
   * of it is acknowledged (accepted or dead-lettered), `false` if `deadlineMs` (default 30 s)
   * passes first. Never rejects.
   */
  flush(options: { readonly deadlineMs?: number } = {}): Promise<boolean> {
    return this.waitFor(this.stream, this.nextSeq - 1, options.deadlineMs ?? 30_000);
  }

  private waitFor(stream: string, seq: number, deadlineMs: number): Promise<boolean> {
    if ((this.settled.get(stream) ?? -1) >= seq) return Promise.resolve(true);
    this.sender.flushing++;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), Math.max(0, deadlineMs));
      const finish = (done: boolean): void => {
        clearTimeout(timer);
        const i = this.flushTargets.indexOf(target);
        if (i >= 0) this.flushTargets.splice(i, 1);
        this.sender.flushing--;
        resolve(done);
      };
      const target: FlushTarget = { stream, seq, resolve: finish };
      this.flushTargets.push(target);
      this.sender.kick();
    });
  }

  private checkFlushTargets(): void {
    for (const target of [...this.flushTargets]) {
      if ((this.settled.get(target.stream) ?? -1) >= target.seq) target.resolve(true);
    }
  }

  /**
   * Delivers what is pending within `deadlineMs` (default 10 s), records `stream.closed`, writes
   * the spool out and releases everything. Events still undelivered at the deadline stay in the
   * spool for the next start (without a spool they are lost, and `pending` says how many).
   * `record()` throws from the moment `stream.closed` is sealed. Never rejects; idempotent.
   */
  close(options: CloseOptions = {}): Promise<CloseResult> {
    this.closePromise ??= this.shutdown(options.deadlineMs ?? 10_000);
    return this.closePromise;
  }

  private async shutdown(deadlineMs: number): Promise<CloseResult> {
    const deadline = Date.now() + deadlineMs;
    let delivered = false;
    try {
      this.closing = true;
      this.admitWaiting();
      // First what the application recorded, while it may still record; then the closing event.
      await this.waitFor(this.stream, this.nextSeq - 1, (deadline - Date.now()) * 0.8);
      this.appendSystem(STREAM_CLOSED, { recorded: this.counters.recorded + 1 });
      this.closed = true;
      this.admitWaiting();
      delivered = await this.waitFor(this.stream, this.nextSeq - 1, deadline - Date.now());
    } catch (error) {
      this.report(
        new SdkError(SdkErrorCodes.DELIVERY_FAILED, `close failed: ${(error as Error).message}`, {
          cause: error,
        }),
      );
    }
    this.closed = true;
    this.sender.stop();
    clearTimeout(this.readRetry);
    for (const waiter of this.waiting.splice(0)) waiter.resolve();
    const pending = delivered ? 0 : this.pendingCount();
    try {
      await this.spool?.close();
      await this.deadLetters?.idle();
      await this.transport.close?.();
    } catch (error) {
      this.report(
        new SdkError(SdkErrorCodes.SPOOL_IO, `close failed: ${(error as Error).message}`, {
          cause: error,
        }),
      );
    }
    this.exitHooks?.();
    return { delivered, pending };
  }

  private pendingCount(): number {
    const settled = this.settled.get(this.stream) ?? -1;
    return Math.max(0, this.nextSeq - 1 - settled);
  }

  private installExitHooks(deadlineMs: number): void {
    const onSignal = (signal: NodeJS.Signals): void => {
      void this.close({ deadlineMs }).then(() => {
        this.exitHooks?.();
        // With no other handler left, re-raise so the process ends the way the signal means.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    };
    const onBeforeExit = (): void => {
      if (this.closePromise === undefined) void this.close({ deadlineMs });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('beforeExit', onBeforeExit);
    this.exitHooks = () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('beforeExit', onBeforeExit);
      this.exitHooks = undefined;
    };
  }

  /**
   * Reports a problem the way the client reports its own (the `error` event, else the logger).
   * The framework integrations use it; it never throws.
   */
  reportProblem(error: SdkError): void {
    this.report(error);
  }

  /** Counters and gauges, as a fresh object. */
  stats(): AuditClientStats {
    return {
      ...this.counters,
      queued: this.queue.length + this.sender.inFlight + this.waiting.length,
      inFlight: this.sender.inFlight,
      blocked: this.waiting.length,
      spoolBytes: this.spool?.bytes ?? 0,
    };
  }

  /** For crash tests: stop at once, writing nothing more, as a killed process would. */
  abandonForTesting(): void {
    this.closed = true;
    this.sender.stop();
    this.spool?.abandon();
    this.exitHooks?.();
    void this.transport.close?.();
  }

  // --- typed helpers (see record/builders.ts and README "Action names") ------------------------

  loginSucceeded(f: builders.LoginFields): Promise<void> {
    return this.record(builders.loginSucceeded(f));
  }
  loginFailed(f: builders.LoginFailedFields): Promise<void> {
    return this.record(builders.loginFailed(f));
  }
  logout(f: builders.ActorFields & { readonly reason?: string }): Promise<void> {
    return this.record(builders.logout(f));
  }
  mfaEnrolled(f: builders.MfaFields): Promise<void> {
    return this.record(builders.mfaEnrolled(f));
  }
  mfaDisabled(f: builders.MfaFields): Promise<void> {
    return this.record(builders.mfaDisabled(f));
  }
  mfaChallengeFailed(f: builders.MfaFields & { readonly reason?: string }): Promise<void> {
    return this.record(builders.mfaChallengeFailed(f));
  }
  passwordChanged(f: builders.PasswordFields): Promise<void> {
    return this.record(builders.passwordChanged(f));
  }
  passwordReset(f: builders.PasswordFields & { readonly via?: string }): Promise<void> {
    return this.record(builders.passwordReset(f));
  }
  sessionRevoked(f: builders.SessionRevokedFields): Promise<void> {
    return this.record(builders.sessionRevoked(f));
  }
  accessGranted(f: builders.PermissionChangeFields): Promise<void> {
    return this.record(builders.accessGranted(f));
  }
  accessRevoked(f: builders.PermissionChangeFields): Promise<void> {
    return this.record(builders.accessRevoked(f));
  }
  roleAssigned(f: builders.RoleChangeFields): Promise<void> {
    return this.record(builders.roleAssigned(f));
  }
  roleRemoved(f: builders.RoleChangeFields): Promise<void> {
    return this.record(builders.roleRemoved(f));
  }
  dataViewed(f: builders.DataFields): Promise<void> {
    return this.record(builders.dataViewed(f));
  }
  dataExported(
    f: builders.DataFields & { readonly format?: string; readonly destination?: string },
  ): Promise<void> {
    return this.record(builders.dataExported(f));
  }
  dataDeleted(f: builders.DataFields & { readonly reason?: string }): Promise<void> {
    return this.record(builders.dataDeleted(f));
  }
  configChanged(f: builders.ConfigChangedFields): Promise<void> {
    return this.record(builders.configChanged(f));
  }
  apiKeyCreated(f: builders.ApiKeyFields): Promise<void> {
    return this.record(builders.apiKeyCreated(f));
  }
  apiKeyUsed(f: builders.ApiKeyUsedFields): Promise<void> {
    return this.record(builders.apiKeyUsed(f));
  }
  apiKeyRevoked(f: builders.ApiKeyFields & { readonly reason?: string }): Promise<void> {
    return this.record(builders.apiKeyRevoked(f));
  }
  apiRequest(f: builders.ApiRequestFields): Promise<void> {
    return this.record(builders.apiRequest(f));
  }
  aiModelCalled(f: builders.AiModelCallFields): Promise<void> {
    return this.record(builders.aiModelCalled(f));
  }
  consentGiven(f: builders.ConsentFields): Promise<void> {
    return this.record(builders.consentGiven(f));
  }
  consentWithdrawn(f: builders.ConsentFields): Promise<void> {
    return this.record(builders.consentWithdrawn(f));
  }
}

function describe(details: readonly ErrorDetail[]): string {
  return details.map((d) => `${d.path} ${d.message}`).join('; ');
}

/** Creates the audit client of this process. Throws `InvalidOptionsError` or a spool error at once. */
export function createAuditClient(options: AuditClientOptions): AuditClient {
  return new AuditClient(options);
}

export type { SealedEvent };
