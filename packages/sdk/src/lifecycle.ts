import { STREAM_CLOSED, STREAM_OPENED, ZERO_HASH } from '@vigil/protocol';
import type { Admission, ChainStart } from './admission.js';
import { defaultStreamId } from './chain/identity.js';
import type { EventClock } from './chain/ids.js';
import type { DeadLetterFile } from './deliver/dead-letter.js';
import type { Sender } from './deliver/sender.js';
import type { AuditTransport } from './deliver/transport.js';
import { SdkError, SdkErrorCodes } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { Spool } from './spool/spool.js';
import { SDK_NAME, SDK_VERSION } from './version.js';

/**
 * Lifecycle of a client's stream: where it starts (a new stream with `stream.opened`, or where
 * the spool left one after a crash), flushes, and the close that drains what is pending within
 * a deadline, seals `stream.closed` and releases the spool, the dead-letter file and the
 * transport; optionally on SIGTERM, SIGINT and beforeExit.
 */

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

/** Where the client's chain starts: the spool's stream after a crash, else a new stream. */
export function chainStart(
  options: ResolvedOptions,
  spool: Spool | undefined,
  clock: EventClock,
  host: string,
): ChainStart {
  const head = spool?.head;
  const continues =
    head !== undefined &&
    (options.stream === undefined
      ? !head.closed && head.stream.startsWith(`${options.service}/`)
      : head.stream === options.stream);
  if (continues) {
    // A restart after a crash: the chain goes on where the spool left it.
    return { stream: head.stream, nextSeq: head.seq + 1, prevHash: head.hash, continues };
  }
  return {
    stream: options.stream ?? defaultStreamId(options.service, host, clock.id(Date.now())),
    nextSeq: 0,
    prevHash: ZERO_HASH,
    continues: false,
  };
}

/** What the lifecycle needs of the client around it. */
export interface LifecycleHost {
  readonly options: ResolvedOptions;
  readonly admission: Admission;
  readonly sender: Sender;
  readonly spool: Spool | undefined;
  readonly deadLetters: DeadLetterFile | undefined;
  readonly transport: AuditTransport;
  readonly counters: { readonly recorded: number };
  report(error: SdkError): void;
}

interface FlushTarget {
  readonly stream: string;
  readonly seq: number;
  readonly resolve: (done: boolean) => void;
}

export class Lifecycle {
  private readonly flushTargets: FlushTarget[] = [];
  private closePromise: Promise<CloseResult> | undefined;
  private exitHooks: (() => void) | undefined;

  constructor(private readonly host: LifecycleHost) {}

  /** Opens the stream (unless it continues), installs the exit hooks, starts delivery. */
  start(start: ChainStart, hostname: string): void {
    const o = this.host.options;
    if (!start.continues) {
      this.host.admission.appendSystem(STREAM_OPENED, {
        sdk: SDK_NAME,
        sdkVersion: SDK_VERSION,
        host: hostname,
        pid: process.pid,
      });
    }
    if (o.exitDeadlineMs !== undefined) this.installExitHooks(o.exitDeadlineMs);
    this.host.sender.kick();
  }

  /** See AuditClient.flush. */
  flush(deadlineMs: number): Promise<boolean> {
    const admission = this.host.admission;
    return this.waitFor(admission.stream, admission.nextSeq - 1, deadlineMs);
  }

  private waitFor(stream: string, seq: number, deadlineMs: number): Promise<boolean> {
    const sender = this.host.sender;
    if (this.host.admission.settledSeq(stream) >= seq) return Promise.resolve(true);
    sender.flushing++;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => finish(false), Math.max(0, deadlineMs));
      const finish = (done: boolean): void => {
        clearTimeout(timer);
        const i = this.flushTargets.indexOf(target);
        if (i >= 0) this.flushTargets.splice(i, 1);
        sender.flushing--;
        resolve(done);
      };
      const target: FlushTarget = { stream, seq, resolve: finish };
      this.flushTargets.push(target);
      sender.kick();
    });
  }

  /** Resolves the flushes whose events are all settled now. */
  checkFlushTargets(): void {
    for (const target of [...this.flushTargets]) {
      if (this.host.admission.settledSeq(target.stream) >= target.seq) target.resolve(true);
    }
  }

  /** See AuditClient.close. */
  close(options: CloseOptions = {}): Promise<CloseResult> {
    this.closePromise ??= this.shutdown(options.deadlineMs ?? 10_000);
    return this.closePromise;
  }

  private async shutdown(deadlineMs: number): Promise<CloseResult> {
    const { admission, sender, spool, deadLetters, transport } = this.host;
    const deadline = Date.now() + deadlineMs;
    let delivered = false;
    try {
      admission.closing = true;
      admission.admitWaiting();
      // First what the application recorded, while it may still record; then the closing event.
      await this.waitFor(admission.stream, admission.nextSeq - 1, (deadline - Date.now()) * 0.8);
      admission.appendSystem(STREAM_CLOSED, { recorded: this.host.counters.recorded + 1 });
      admission.closed = true;
      admission.admitWaiting();
      delivered = await this.waitFor(
        admission.stream,
        admission.nextSeq - 1,
        deadline - Date.now(),
      );
    } catch (error) {
      this.host.report(
        new SdkError(SdkErrorCodes.DELIVERY_FAILED, `close failed: ${(error as Error).message}`, {
          cause: error,
        }),
      );
    }
    admission.stop();
    sender.stop();
    const pending = delivered ? 0 : this.pendingCount();
    try {
      await spool?.close();
      await deadLetters?.idle();
      await transport.close?.();
    } catch (error) {
      this.host.report(
        new SdkError(SdkErrorCodes.SPOOL_IO, `close failed: ${(error as Error).message}`, {
          cause: error,
        }),
      );
    }
    this.exitHooks?.();
    return { delivered, pending };
  }

  private pendingCount(): number {
    const admission = this.host.admission;
    return Math.max(0, admission.nextSeq - 1 - admission.settledSeq(admission.stream));
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

  /** For crash tests: stop at once, writing nothing more, as a killed process would. */
  abandon(): void {
    this.host.admission.closed = true;
    this.host.sender.stop();
    this.host.spool?.abandon();
    this.exitHooks?.();
    void this.host.transport.close?.();
  }
}
