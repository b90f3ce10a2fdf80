import { EventEmitter } from 'node:events';
import { hostname as osHostname } from 'node:os';
import type { ErrorDetail, EventInput, SealedEvent } from '@vigil/protocol';
import { Admission, type DropReason } from './admission.js';
import { EventClock, RandomBytes } from './chain/ids.js';
import { Sealer } from './chain/sealer.js';
import { DeadLetterFile, type DeadLetterRecord } from './deliver/dead-letter.js';
import { HttpTransport } from './deliver/http.js';
import { Sender, type Rejection } from './deliver/sender.js';
import type { AuditTransport } from './deliver/transport.js';
import { SdkError, SdkErrorCodes, type SdkErrorCode } from './errors.js';
import { chainStart, Lifecycle, type CloseOptions, type CloseResult } from './lifecycle.js';
import { resolveOptions, type AuditClientOptions, type ResolvedOptions } from './options.js';
import type { Entry } from './queue/entry.js';
import { EntryQueue } from './queue/queue.js';
import * as builders from './record/builders.js';
import { Spool } from './spool/spool.js';

export type { CloseOptions, CloseResult } from './lifecycle.js';

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
  readonly reason: DropReason;
}

/** Events of an AuditClient. `error` is emitted only when it has a listener (see report). */
export interface AuditClientEvents {
  error: [SdkError];
  sent: [SentInfo];
  retry: [RetryInfo];
  deadLetter: [DeadLetterInfo];
  dropped: [DroppedInfo];
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
  private readonly queue = new EntryQueue();
  private readonly sender: Sender;
  private readonly transport: AuditTransport;
  private readonly spool: Spool | undefined;
  private readonly deadLetters: DeadLetterFile | undefined;
  /** Validation, sealing and admission to the spool or the queue (admission.ts). */
  private readonly admission: Admission;
  /** Start, flush and close (lifecycle.ts). */
  private readonly lifecycle: Lifecycle;
  private readonly counters = {
    recorded: 0,
    spooled: 0,
    sent: 0,
    duplicates: 0,
    retried: 0,
    dropped: 0,
    deadLettered: 0,
  };
  private readonly lastReport = new Map<SdkErrorCode, { at: number; suppressed: number }>();

  constructor(options: AuditClientOptions) {
    super();
    this.options = resolveOptions(options);
    const o = this.options;
    const random = new RandomBytes();
    const clock = new EventClock(random);
    this.transport =
      o.transport ??
      new HttpTransport({
        endpoint: o.endpoint as string,
        apiKey: o.apiKey as string,
        gzip: o.gzip,
      });
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
        refill: () => this.admission.refill(),
        accepted: (entries, accepted, duplicates) => this.onAccepted(entries, accepted, duplicates),
        deadLettered: (entries, result, details) => this.onDeadLettered(entries, result, details),
        retrying: (attempt, delayMs, reason, status) =>
          this.onRetrying(attempt, delayMs, reason, status),
        refused: (result, delayMs) => this.onRefused(result, delayMs),
      },
    );
    this.sender.onSettled = () => this.lifecycle.checkFlushTargets();
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
    const start = chainStart(o, this.spool, clock, host);
    this.stream = start.stream;
    this.admission = new Admission(
      {
        options: o,
        sealer: new Sealer(random, o.personalPaths, o.saltSource),
        clock,
        queue: this.queue,
        sender: this.sender,
        spool: this.spool,
        counters: this.counters,
        dropped: (count, reason) => this.onDropped(count, reason),
        report: (error) => this.report(error),
      },
      start,
    );
    this.lifecycle = new Lifecycle({
      options: o,
      admission: this.admission,
      sender: this.sender,
      spool: this.spool,
      deadLetters: this.deadLetters,
      transport: this.transport,
      counters: this.counters,
      report: (error) => this.report(error),
    });
    this.lifecycle.start(start, host);
  }

  // --- recording ------------------------------------------------------------------------------

  /**
   * Records one event. Throws synchronously for misuse (`InvalidEventError` naming every problem,
   * `VIGIL_ERR_SDK_RESERVED_ACTION`, `QueueFullError` under `throw`, `ClientClosedError`).
   * The promise resolves when the event is spooled per the fsync policy (with a spool) or queued
   * in memory (without); under `block` it waits for room. It never rejects.
   */
  record(event: EventInput): Promise<void> {
    return this.admission.record(event);
  }

  // --- delivery outcomes ----------------------------------------------------------------------

  private onAccepted(entries: readonly Entry[], accepted: number, duplicates: number): void {
    const last = entries[entries.length - 1] as Entry;
    this.admission.settle(last.stream, last.seq);
    this.counters.sent += entries.length;
    this.counters.duplicates += duplicates;
    this.admission.admitWaiting();
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
    for (const entry of entries) this.admission.settle(entry.stream, entry.seq);
    this.admission.admitWaiting();
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

  private onDropped(count: number, reason: DropReason): void {
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
    return this.lifecycle.flush(options.deadlineMs ?? 30_000);
  }

  /**
   * Delivers what is pending within `deadlineMs` (default 10 s), records `stream.closed`, writes
   * the spool out and releases everything. Events still undelivered at the deadline stay in the
   * spool for the next start (without a spool they are lost, and `pending` says how many).
   * `record()` throws from the moment `stream.closed` is sealed. Never rejects; idempotent.
   */
  close(options: CloseOptions = {}): Promise<CloseResult> {
    return this.lifecycle.close(options);
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
      queued: this.queue.length + this.sender.inFlight + this.admission.blocked,
      inFlight: this.sender.inFlight,
      blocked: this.admission.blocked,
      spoolBytes: this.spool?.bytes ?? 0,
    };
  }

  /** For crash tests: stop at once, writing nothing more, as a killed process would. */
  abandonForTesting(): void {
    this.lifecycle.abandon();
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

/** Creates the audit client of this process. Throws `InvalidOptionsError` or a spool error at once. */
export function createAuditClient(options: AuditClientOptions): AuditClient {
  return new AuditClient(options);
}

export type { SealedEvent };
