import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ErrorDetail, SealedEvent } from '@vigil/protocol';

/** One line of the dead-letter file. */
export interface DeadLetterRecord {
  /** When the collector refused the event. */
  readonly time: string;
  readonly stream: string;
  readonly seq: number;
  readonly id: string;
  /** HTTP status of the refusal (400, 409, 413). */
  readonly status: number;
  /** The collector's error code, such as VIGIL_ERR_INVALID_BATCH. */
  readonly code: string;
  readonly message: string;
  /** What was wrong with this event (paths inside the sealed event). */
  readonly details: readonly ErrorDetail[];
  /** The event as it was sent, so it can be inspected, repaired and posted again. */
  readonly event: SealedEvent;
}

/**
 * Appends refused events to an NDJSON file, one JSON object per line. Writes are chained so
 * lines never interleave; a failed write is reported and the next one is still attempted.
 */
export class DeadLetterFile {
  private tail: Promise<void> = Promise.resolve();
  private created = false;

  constructor(
    readonly path: string,
    private readonly onError: (error: unknown) => void,
  ) {}

  append(records: readonly DeadLetterRecord[]): Promise<void> {
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    this.tail = this.tail.then(async () => {
      try {
        if (!this.created) {
          // Dead letters are whole events, personal data included: owner-only.
          await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
          this.created = true;
        }
        await appendFile(this.path, text, { mode: 0o600 });
      } catch (error) {
        this.onError(error);
      }
    });
    return this.tail;
  }

  /** Resolves when every line appended so far is written (or has failed and been reported). */
  idle(): Promise<void> {
    return this.tail;
  }
}
