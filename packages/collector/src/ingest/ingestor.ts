import type { ErrorDetail } from '@vigil/protocol';
import type { IngestConfig } from '../stage-config.js';
import {
  CollectorError,
  CollectorErrorCodes,
  LogUnavailableError,
  type CollectorErrorCode,
} from '../errors.js';
import { withoutEvents } from '../log/event-message.js';
import type { Log, LogMessage } from '../log/log.js';
import {
  checkBatch,
  checkBody,
  type BatchCheck,
  type CheckedBatch,
  type CheckLimits,
} from './batch-check.js';
import type { CheckPool } from './check-pool.js';
import { RecentIds } from './recent-ids.js';

export interface IngestResult {
  readonly accepted: number;
  readonly duplicates: number;
}

/** Who sent a batch; both come from the authenticated key. */
export interface IngestSource {
  readonly tenantId: string;
  readonly keyId: string;
}

export interface IngestObserver {
  /** A batch was refused; `reason` is the error code. */
  rejected(reason: string, events: number): void;
  accepted(events: number, duplicates: number): void;
  appendLatency(seconds: number): void;
}

const noopObserver: IngestObserver = { rejected() {}, accepted() {}, appendLatency() {} };

export interface IngestorOptions {
  readonly observer?: IngestObserver;
  readonly now?: () => number;
  /** Worker threads for the stateless checks; without one they run on the calling thread. */
  readonly pool?: CheckPool;
}

function toError(refused: Exclude<BatchCheck, CheckedBatch>): CollectorError {
  return new CollectorError(refused.code as CollectorErrorCode, refused.message, {
    status: refused.status,
    retriable: refused.status === 503,
    details: refused.details,
  });
}

/**
 * The collector's ingest: the stateless checks of a batch (batch-check.ts, on a worker thread
 * when a pool is given), then, on this thread, replays and conflicts against the recently
 * accepted ids, and the durable append to the log. A batch is all or nothing, and the result is
 * returned only once the log says the events are durable.
 */
export class Ingestor {
  private readonly recent: RecentIds;
  private readonly observer: IngestObserver;
  private readonly now: () => number;
  private readonly limits: CheckLimits;
  private readonly pool: CheckPool | undefined;

  constructor(
    private readonly log: Log,
    config: IngestConfig,
    options: IngestorOptions = {},
  ) {
    this.recent = new RecentIds(config.dedupeWindow);
    this.observer = options.observer ?? noopObserver;
    this.now = options.now ?? Date.now;
    this.limits = config;
    this.pool = options.pool;
  }

  /** Ingests parsed events (the embedded transport, tests). */
  async ingest(source: IngestSource, events: readonly unknown[]): Promise<IngestResult> {
    const checked = checkBatch(events, { ...source, receivedAt: this.now(), limits: this.limits });
    return this.commit(source, checked, events.length);
  }

  /** Ingests a raw request body (JSON or NDJSON, already decompressed). */
  async ingestBody(
    source: IngestSource,
    body: Uint8Array,
    contentType: string,
  ): Promise<IngestResult> {
    const receivedAt = this.now();
    const checked = this.pool
      ? await this.pool.run({
          body,
          contentType,
          tenantId: source.tenantId,
          keyId: source.keyId,
          receivedAt,
        })
      : checkBody(body, contentType, { ...source, receivedAt, limits: this.limits });
    return this.commit(source, checked, checked.ok ? checked.ids.length : (checked.events ?? 0));
  }

  private async commit(
    source: IngestSource,
    checked: BatchCheck,
    events: number,
  ): Promise<IngestResult> {
    if (!checked.ok) {
      this.observer.rejected(checked.code, events);
      throw toError(checked);
    }
    // Replays: a known id with the same bytes is a duplicate, with other bytes a conflict.
    const { ids, fingerprints } = checked;
    const seenHere = new Map<string, string>();
    const duplicate: boolean[] = [];
    const conflicts: ErrorDetail[] = [];
    let duplicates = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as string;
      const fingerprint = fingerprints[i] as string;
      const known = this.recent.get(source.tenantId, id) ?? seenHere.get(id);
      if (known === undefined) {
        seenHere.set(id, fingerprint);
        duplicate.push(false);
      } else if (known === fingerprint) {
        duplicates++;
        duplicate.push(true);
      } else {
        duplicate.push(false);
        conflicts.push({
          index: i,
          path: fingerprint.startsWith('u:') ? '/id' : '/record/id',
          message: `event id ${id} was already accepted with different content`,
        });
      }
    }
    if (conflicts.length > 0) {
      this.observer.rejected(CollectorErrorCodes.EVENT_CONFLICT, ids.length);
      throw new CollectorError(
        CollectorErrorCodes.EVENT_CONFLICT,
        `${conflicts.length} events reuse an id already accepted with different content; nothing of this batch was stored`,
        { status: 409, details: conflicts },
      );
    }
    const accepted = ids.length - duplicates;
    if (accepted > 0) {
      const messages =
        duplicates > 0 ? withoutDuplicates(checked, duplicate) : checked.messages.map(toLogMessage);
      const started = performance.now();
      try {
        await this.log.append(messages);
      } catch (error) {
        const code =
          error instanceof CollectorError ? error.code : CollectorErrorCodes.LOG_UNAVAILABLE;
        this.observer.rejected(code, ids.length);
        if (error instanceof CollectorError) throw error;
        throw new LogUnavailableError(
          `the log did not take the batch: ${(error as Error).message}`,
          error,
        );
      }
      this.observer.appendLatency((performance.now() - started) / 1000);
      // Remembered only once durable: a failed append must not turn the retry into a "duplicate".
      for (let i = 0; i < ids.length; i++) {
        if (!duplicate[i])
          this.recent.set(source.tenantId, ids[i] as string, fingerprints[i] as string);
      }
    }
    this.observer.accepted(accepted, duplicates);
    return { accepted, duplicates };
  }
}

function toLogMessage(m: CheckedBatch['messages'][number]): LogMessage {
  const value = Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength);
  return { key: m.key, value, timestamp: m.timestamp };
}

/** Rebuilds the messages without the events found to be replays (rare: a retried request). */
function withoutDuplicates(checked: CheckedBatch, duplicate: readonly boolean[]): LogMessage[] {
  const drop = checked.messages.map(() => new Set<number>());
  duplicate.forEach((d, i) => {
    if (d) drop[checked.messageOf[i] as number]?.add(checked.slotOf[i] as number);
  });
  const out: LogMessage[] = [];
  checked.messages.forEach((m, index) => {
    const dropped = drop[index] as Set<number>;
    if (dropped.size === 0) {
      out.push(toLogMessage(m));
      return;
    }
    const kept = withoutEvents(
      Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength),
      dropped,
    );
    if (kept) out.push({ key: m.key, value: kept, timestamp: m.timestamp });
  });
  return out;
}
