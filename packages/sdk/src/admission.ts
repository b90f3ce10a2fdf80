import {
  checkEventInput,
  InvalidEventError,
  type ErrorDetail,
  type EventInput,
} from '@vigil/protocol';
import type { EventClock } from './chain/ids.js';
import type { Sealer } from './chain/sealer.js';
import type { Sender } from './deliver/sender.js';
import { ClientClosedError, QueueFullError, SdkError, SdkErrorCodes } from './errors.js';
import type { ResolvedOptions } from './options.js';
import { Entry } from './queue/entry.js';
import type { EntryQueue } from './queue/queue.js';
import type { DroppedRange, Spool } from './spool/spool.js';

/**
 * Admission: how a recorded event gets in. The event is validated, sealed as the next link of
 * the client's chain and handed to the spool or the in-memory queue, applying the `onFull`
 * policy (throw, block, drop-oldest) when they are full. With a spool, events past the memory
 * bound stay on disk and are read back as the queue drains (refill).
 */

/** Why events were dropped under drop-oldest. */
export type DropReason = 'queue-full' | 'spool-full';

/** Where the chain of this client starts: a new stream, or where the spool left one. */
export interface ChainStart {
  readonly stream: string;
  readonly nextSeq: number;
  readonly prevHash: string;
  /** A restart after a crash: the stream goes on, with no stream.opened. */
  readonly continues: boolean;
}

/** What admission needs of the client around it. */
export interface AdmissionHost {
  readonly options: ResolvedOptions;
  readonly sealer: Sealer;
  readonly clock: EventClock;
  readonly queue: EntryQueue;
  readonly sender: Pick<Sender, 'inFlight' | 'kick'>;
  readonly spool: Spool | undefined;
  readonly counters: { recorded: number; spooled: number };
  dropped(count: number, reason: DropReason): void;
  report(error: SdkError): void;
}

/** A shared, already-resolved promise: what record() returns without a spool, at no cost per event. */
const RESOLVED: Promise<void> = Promise.resolve();

/** Bytes a spool line adds to the event's own (framing and checksum). */
const SPOOL_LINE_OVERHEAD = 22;

interface Waiter {
  readonly entry: Entry;
  readonly resolve: () => void;
}

export class Admission {
  /** The stream this client appends to. */
  readonly stream: string;
  /** The seq the next sealed event gets. */
  nextSeq: number;
  private prevHash: string;
  /** Set from the start of close(): `block` no longer waits. */
  closing = false;
  /** Set once stream.closed is sealed: record() throws. */
  closed = false;
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

  constructor(
    private readonly host: AdmissionHost,
    start: ChainStart,
  ) {
    this.stream = start.stream;
    this.nextSeq = start.nextSeq;
    this.prevHash = start.prevHash;
    const spool = host.spool;
    if (spool !== undefined) {
      for (const [stream, seq] of spool.ackedPositions()) {
        this.loaded.set(stream, seq);
        this.settled.set(stream, seq);
      }
      this.diskOnly = spool.hasBacklog(this.loaded);
      const warnings = spool.openWarnings;
      if (warnings.length > 0) setImmediate(() => warnings.forEach((w) => host.report(w)));
    }
  }

  /** Events waiting for room under `block`. */
  get blocked(): number {
    return this.waiting.length;
  }

  /** Highest seq of `stream` settled (acknowledged, dead-lettered or dropped); -1: none. */
  settledSeq(stream: string): number {
    return this.settled.get(stream) ?? -1;
  }

  /**
   * Checks and admits an application's event (see AuditClient.record): throws for misuse,
   * resolves once spooled or queued.
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

  /** The SDK's own events (stream.opened, stream.closed). */
  appendSystem(action: string, metadata: Record<string, string | number>): void {
    const input: EventInput = {
      action,
      category: 'system',
      outcome: 'success',
      actor: { type: 'service', id: this.host.options.service },
      metadata,
    };
    // Under `throw` the SDK's own events are still kept (admitToMemory); under `block` they wait
    // their turn like any other, which keeps the queue in seq order.
    void this.append(input);
  }

  private refuseIfFull(): void {
    const o = this.host.options;
    const spool = this.host.spool;
    if (spool !== undefined && o.spool !== undefined) {
      if (o.spool.onFull === 'throw' && spool.bytes >= o.spool.maxBytes) {
        throw new QueueFullError(
          SdkErrorCodes.SPOOL_FULL,
          `the spool holds ${spool.bytes} bytes (spool.maxBytes ${o.spool.maxBytes}) and the collector has not taken them`,
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
        `the queue holds ${this.host.queue.length + this.host.sender.inFlight} events (queue.maxEvents ${o.queue.maxEvents}) and the collector has not taken them`,
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
    const q = this.host.options.queue;
    const queue = this.host.queue;
    return (
      queue.length + this.host.sender.inFlight >= q.maxEvents ||
      queue.bytes + extraBytes > q.maxBytes
    );
  }

  /** Seals the next event of the stream and hands it to the spool or the queue. */
  private append(input: EventInput): Promise<void> {
    const { clock, sealer, spool } = this.host;
    const now = Date.now();
    const id = input.id ?? clock.id(now);
    const time = input.time ?? clock.time(now);
    const seq = this.nextSeq;
    sealer.seal(input, id, time, {
      stream: this.stream,
      seq,
      prev: this.prevHash,
    });
    this.nextSeq = seq + 1;
    this.prevHash = sealer.hash;
    // From here on the event is its wire line only (see Entry).
    const entry = new Entry(
      this.stream,
      seq,
      sealer.lineBuffer,
      sealer.lineStart,
      sealer.lineEnd,
      now,
      spool === undefined,
    );
    this.host.counters.recorded++;
    if (this.waiting.length > 0) return this.wait(entry);
    return spool === undefined ? this.admitToMemory(entry) : this.admitToSpool(entry, spool);
  }

  private wait(entry: Entry): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.push({ entry, resolve }));
  }

  private admitToMemory(entry: Entry): Promise<void> {
    const queue = this.host.queue;
    if (this.memoryFull(entry.bytes)) {
      switch (this.host.options.queue.onFull) {
        case 'block':
          if (!this.closing) return this.wait(entry);
          break;
        case 'drop-oldest': {
          let dropped = 0;
          while (queue.length > 0 && this.memoryFull(entry.bytes)) {
            const old = queue.shift() as Entry;
            this.settle(old.stream, old.seq);
            dropped++;
          }
          if (dropped > 0) this.host.dropped(dropped, 'queue-full');
          break;
        }
        case 'throw':
          // Checked before sealing; only the SDK's own events get here, and they are kept.
          break;
      }
    }
    queue.push(entry);
    this.loaded.set(entry.stream, entry.seq);
    const batch = this.host.options.batch;
    if (queue.length === 1 || queue.length >= batch.maxEvents || queue.bytes >= batch.maxBytes) {
      this.host.sender.kick();
    }
    return RESOLVED;
  }

  private admitToSpool(entry: Entry, spool: Spool): Promise<void> {
    const lineBytes = entry.bytes + SPOOL_LINE_OVERHEAD;
    if (spool.wouldOverflow(lineBytes)) {
      const policy = this.host.options.spool?.onFull;
      if (policy === 'block' && !this.closing) return this.wait(entry);
      if (policy === 'drop-oldest') {
        let range: DroppedRange | undefined;
        let dropped = 0;
        while (spool.wouldOverflow(lineBytes) && (range = spool.dropOldest()) !== undefined) {
          dropped += this.forget(range);
        }
        if (dropped > 0) this.host.dropped(dropped, 'spool-full');
      }
    }
    const done = spool.append(entry);
    this.host.counters.spooled++;
    if (!this.diskOnly && !this.memoryFull(entry.bytes)) {
      this.host.queue.push(entry);
      this.loaded.set(entry.stream, entry.seq);
    } else {
      // Memory is full: later events stay on disk until the queue drains (see refill).
      this.diskOnly = true;
    }
    return done;
  }

  /** A dropped spool segment: its events leave memory too; returns how many were not yet delivered. */
  private forget(range: DroppedRange): number {
    const queue = this.host.queue;
    let count = 0;
    const inMemory = queue.peek();
    if (inMemory !== undefined && inMemory.stream === range.stream) {
      while (
        queue.peek()?.stream === range.stream &&
        (queue.peek()?.seq ?? Infinity) <= range.lastSeq
      ) {
        queue.shift();
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

  /** Marks events up to `seq` of `stream` as done with (delivered, dead-lettered or dropped). */
  settle(stream: string, seq: number): void {
    if ((this.settled.get(stream) ?? -1) < seq) this.settled.set(stream, seq);
    this.host.spool?.ack(stream, seq);
  }

  /** Moves events waiting under `block` in, as far as there is room now. */
  admitWaiting(): void {
    const spool = this.host.spool;
    while (this.waiting.length > 0) {
      const next = this.waiting[0] as Waiter;
      const full =
        spool === undefined
          ? this.memoryFull(next.entry.bytes)
          : spool.wouldOverflow(next.entry.bytes + SPOOL_LINE_OVERHEAD);
      if (full && !this.closing) return;
      this.waiting.shift();
      const done =
        spool === undefined ? this.admitToMemory(next.entry) : this.admitToSpool(next.entry, spool);
      done.then(next.resolve, next.resolve);
    }
  }

  /** Reads events back from the spool when memory has room and some are on disk only. */
  refill(): void {
    const { spool, options, queue, sender } = this.host;
    if (spool === undefined || !this.diskOnly || this.reading || this.closed) return;
    const room = options.queue.maxEvents - queue.length - sender.inFlight;
    const roomBytes = options.queue.maxBytes - queue.bytes;
    if (room < Math.min(options.batch.maxEvents, options.queue.maxEvents / 2)) return;
    if (roomBytes < options.queue.maxBytes / 2) return;
    this.reading = true;
    spool.read(this.loaded, room, roomBytes).then(
      ({ entries, caughtUp }) => {
        this.reading = false;
        for (const entry of entries) {
          if (entry.seq <= (this.loaded.get(entry.stream) ?? -1)) continue;
          queue.push(entry);
          this.loaded.set(entry.stream, entry.seq);
        }
        // Checked in the same tick as the read ended: nothing can have been appended in between.
        if (caughtUp) this.diskOnly = false;
        // With nothing read and more on its way to disk, the end of that write calls kick()
        // again; kicking now would spin on reads that find nothing.
        if (entries.length > 0 || caughtUp) sender.kick();
      },
      (error: unknown) => {
        this.reading = false;
        this.host.report(
          new SdkError(
            SdkErrorCodes.SPOOL_IO,
            `cannot read the spool: ${(error as Error).message}`,
            { cause: error },
          ),
        );
        this.readRetry ??= setTimeout(() => {
          this.readRetry = undefined;
          sender.kick();
        }, 1000);
        this.readRetry.unref();
      },
    );
  }

  /** Stops for good: no more reads of the spool, and every waiting record() resolves. */
  stop(): void {
    this.closed = true;
    clearTimeout(this.readRetry);
    for (const waiter of this.waiting.splice(0)) waiter.resolve();
  }
}

function describe(details: readonly ErrorDetail[]): string {
  return details.map((d) => `${d.path} ${d.message}`).join('; ');
}
