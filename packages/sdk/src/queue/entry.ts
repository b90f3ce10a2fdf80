import type { SealedEvent } from '@vigil/protocol';
import { lineHash, lineRecord, sealedEventsOf } from '../deliver/framing.js';

/**
 * One sealed event inside the SDK: its place in the chain and its wire line (PROTOCOL.md §9,
 * `record TAB hash TAB disclosures LF`), built once at `record()` and reused byte for byte for
 * the spool file and every request body. Only bytes are kept: the line's memory lies outside
 * the JavaScript heap, so events waiting for acknowledgement cost the garbage collector one
 * small object each instead of strings and objects it must copy between generations.
 */
export class Entry {
  constructor(
    readonly stream: string,
    readonly seq: number,
    /** The wire line, LF included, is [start, end) of `buffer` (a slab shared with other lines). */
    private readonly buffer: Buffer,
    private readonly start: number,
    private readonly end: number,
    /** Date.now() when the event entered the queue, for `batch.maxDelayMs`. */
    public queuedAt: number,
    /** On disk per the fsync policy (always true without a spool): only durable events are sent. */
    public durable: boolean,
  ) {}

  /** Bytes of the wire line. */
  get bytes(): number {
    return this.end - this.start;
  }

  /** The wire line, LF included (a view: made on demand). */
  get line(): Buffer {
    return this.buffer.subarray(this.start, this.end);
  }

  /** Copies the wire line into `target` at `at`; returns its length. */
  copyTo(target: Buffer, at: number): number {
    return this.buffer.copy(target, at, this.start, this.end);
  }

  get hash(): string {
    return lineHash(this.line);
  }

  /** The event id, read from the record (dead letters only, so parsing is fine). */
  eventId(): string {
    return (JSON.parse(lineRecord(this.line)) as { id: string }).id;
  }

  /** The event in the JSON form (in-process transports, dead letters). */
  sealed(): SealedEvent {
    const { events, details } = sealedEventsOf(this.line);
    const event = events[0];
    if (event === undefined || details.length > 0)
      throw new Error(`malformed queued line: ${details[0]?.path} ${details[0]?.message}`);
    return event;
  }
}
