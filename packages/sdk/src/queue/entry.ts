import type { SealedEvent } from '@vigil/protocol';

/**
 * One sealed event inside the SDK: its place in the chain and its serialised wire form, which is
 * computed once at `record()` and reused byte for byte for the spool file and every request body.
 */
export class Entry {
  constructor(
    readonly stream: string,
    readonly seq: number,
    /** Known for events recorded in this process; read from the record on demand otherwise. */
    private id: string | undefined,
    readonly hash: string,
    /** JSON of the SealedEvent: `{"record":"…","hash":"…","disclosures":{…}}`. */
    readonly line: string,
    /** UTF-8 length of `line`. */
    readonly bytes: number,
    /** The SealedEvent object when it is at hand (recorded in this process), else parsed on demand. */
    public event: SealedEvent | undefined,
    /** Date.now() when the event entered the queue, for `batch.maxDelayMs`. */
    public queuedAt: number,
    /** On disk per the fsync policy (always true without a spool): only durable events are sent. */
    public durable: boolean,
  ) {}

  eventId(): string {
    this.id ??= (JSON.parse(this.sealed().record) as { id: string }).id;
    return this.id;
  }

  sealed(): SealedEvent {
    this.event ??= JSON.parse(this.line) as SealedEvent;
    return this.event;
  }
}
