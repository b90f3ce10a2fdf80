import {
  formatTime,
  judgeLink,
  randomSaltSource,
  sealEvent,
  STREAM_CLOSED,
  ZERO_HASH,
  type Disclosures,
  type EventRecord,
  type SaltSource,
} from '@vigil/protocol';
import type { DetectionEvent } from '@vigil/detect';
import { detectionEvent, eventRow, openRecord, type EventFlag, type EventRow } from '@vigil/query';
import { keyStream } from '../log/event-message.js';
import type { ConsumedRecord } from '../log/log.js';
import { isCanonicalText } from '../sink/canonical-scan.js';
import type { EnrichmentPlugin } from '../sink/enrich.js';
import { readEventMessage } from '../sink/read-message.js';

/** A stream head as the detector last saw it in the log. */
export interface SeenHead {
  readonly seq: number;
  readonly hash: string;
  readonly closed: boolean;
}

/**
 * The heads of the streams the detector has read, for the chain integrity flags. Bounded: past
 * `capacity` streams the one least recently seen is forgotten (and its next event is not
 * judged, see below). Part of the detector's checkpoint.
 */
export class SeenHeads {
  private readonly heads = new Map<string, SeenHead>();

  constructor(private readonly capacity = 200_000) {}

  get(tenant: string, stream: string): SeenHead | undefined {
    return this.heads.get(tenant + '\u0000' + stream);
  }

  set(tenant: string, stream: string, head: SeenHead): void {
    const key = tenant + '\u0000' + stream;
    // Delete first: a Map iterates in insertion order, so the first key is the least recently set.
    this.heads.delete(key);
    this.heads.set(key, head);
    if (this.heads.size > this.capacity) {
      const oldest = this.heads.keys().next().value;
      if (oldest !== undefined) this.heads.delete(oldest);
    }
  }

  get size(): number {
    return this.heads.size;
  }

  toJSON(): [string, SeenHead][] {
    return [...this.heads];
  }

  load(entries: readonly [string, SeenHead][]): void {
    this.heads.clear();
    for (const [k, v] of entries) this.heads.set(k, v);
  }
}

/** One log record opened for the detector. */
export interface ReadRecord {
  readonly tenant: string;
  /** The collector's clock when it took the events (epoch ms). */
  readonly receivedAt: number;
  readonly events: DetectionEvent[];
  /** Each event's record and disclosures, in the order of `events` (for the restriction test). */
  readonly sources: EventSource[];
}

export interface EventSource {
  readonly record: EventRecord;
  readonly disclosures: Disclosures | undefined;
}

export interface DetectionReaderOptions {
  /** The sink's enrichment (sink/enrich.ts), with the same configuration as the sink's. */
  readonly enrichment?: EnrichmentPlugin | undefined;
  readonly heads?: SeenHeads;
  readonly salts?: SaltSource;
}

/**
 * Turns a log record into the events the detection engine reads, the way the sink turns it into
 * rows, so that a backtest over the stored rows sees the same events:
 *
 * - decoded and checked by the sink's own `readEventMessage` (a record it cannot read throws);
 * - each event's row built by the store's `eventRow` and enriched by the sink's enrichment plugin
 *   (GeoIP, user agent) from the same plain values, then opened with its disclosures
 *   (`openRecord`) and mapped by `detectionEvent`, the one mapping backtests use too;
 * - integrity flags as the sink sets them: `backfill` (time before the record's backfill bound),
 *   `noncanonical` (the sink's canonical scan), and `gap`, `fork`, `after_close` judged by
 *   `judgeLink` against the heads the detector has itself read from the log, in the same order
 *   as the one sink of the partition. A stream whose head the detector has not seen (first seen
 *   mid-stream, or forgotten past the bound) is not judged on that event, and an event at or
 *   behind the head (a replay, or a fork of an older position, which the sink tells apart by the
 *   stored hash) is not flagged by the detector: the stored rows keep the sink's verdicts, so
 *   backtests see those findings, and the sink's `integrity.*` events are in the store only.
 * - unchained events (posted without chain fields) are sealed with fresh salts on their key
 *   stream at position 0, only to read them through the same path: their `seq` and `hash` are
 *   not those the sink gives them (no rule reads either of an unchained event).
 */
export class DetectionReader {
  private readonly enrichment: EnrichmentPlugin | undefined;
  readonly heads: SeenHeads;
  private readonly salts: SaltSource;

  constructor(options: DetectionReaderOptions = {}) {
    this.enrichment = options.enrichment;
    this.heads = options.heads ?? new SeenHeads();
    this.salts = options.salts ?? randomSaltSource();
  }

  /** Throws when the record cannot be read (the caller skips and counts it). */
  read(record: ConsumedRecord): ReadRecord {
    const { message, records } = readEventMessage(record.value);
    const tenant = message.tenant;
    const backfillBefore = formatTime(message.backfillBefore);
    const events: DetectionEvent[] = [];
    const sources: EventSource[] = [];
    const meta = (index: number, flags: EventFlag[]) => ({
      tenantId: tenant,
      receivedAt: message.receivedAt,
      keyId: message.keyId,
      source: 'sealed' as const,
      submittedDigest: '',
      logPartition: record.partition,
      logOffset: record.offset,
      logIndex: index,
      expiresAt: 0,
      flags,
    });
    if (message.kind === 'sealed') {
      message.events.forEach((e, index) => {
        const parsed = records[index] as EventRecord;
        const flags: EventFlag[] = parsed.time < backfillBefore ? ['backfill'] : [];
        if (!isCanonicalText(e.record, parsed)) flags.push('noncanonical');
        const head = this.heads.get(tenant, parsed.stream);
        if (head !== undefined || parsed.seq === 0) {
          const verdict = judgeLink(head, parsed.seq, parsed.prev);
          if (head?.closed && verdict !== 'fork' && verdict !== 'behind') flags.push('after_close');
          if (verdict === 'gap' || verdict === 'fork') flags.push(verdict);
          if (verdict !== 'behind')
            this.heads.set(tenant, parsed.stream, {
              seq: parsed.seq,
              hash: e.hash,
              closed: (head?.closed ?? false) || parsed.action === STREAM_CLOSED,
            });
        } else {
          this.heads.set(tenant, parsed.stream, {
            seq: parsed.seq,
            hash: e.hash,
            closed: parsed.action === STREAM_CLOSED,
          });
        }
        const row = eventRow(e, parsed, e.disclosures, meta(index, flags));
        const event = this.open(tenant, row, e.record, e.disclosures);
        if (event) {
          events.push(event);
          sources.push({ record: parsed, disclosures: e.disclosures });
        }
      });
      return { tenant, receivedAt: message.receivedAt, events, sources };
    }
    const stream = keyStream(message.keyId);
    message.events.forEach((e, index) => {
      const flags: EventFlag[] = e.input.time < backfillBefore ? ['backfill'] : [];
      let sealed;
      try {
        sealed = sealEvent(e.input, { stream, seq: 0, prev: ZERO_HASH }, this.salts);
      } catch {
        // The sink refuses this event alone (it cannot seal it either): nothing to detect on.
        return;
      }
      const row = eventRow(sealed.event, sealed.record, sealed.event.disclosures, {
        ...meta(index, flags),
        source: 'unchained',
      });
      const event = this.open(tenant, row, sealed.event.record, sealed.event.disclosures);
      if (event) {
        events.push(event);
        sources.push({ record: sealed.record, disclosures: sealed.event.disclosures });
      }
    });
    return { tenant, receivedAt: message.receivedAt, events, sources };
  }

  private open(
    tenant: string,
    row: EventRow,
    record: string,
    disclosures: Disclosures | undefined,
  ): DetectionEvent | undefined {
    this.enrichment?.decorate(row);
    const view = openRecord(record, disclosures === undefined ? '' : row.disclosures);
    return detectionEvent({ tenant, view, derived: row, flags: row.flags });
  }
}
