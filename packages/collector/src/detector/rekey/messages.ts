import type { DetectionEvent } from '@vigil/detect';
import type { ConsumedRecord, Log, LogMessage } from '../../log/log.js';

/**
 * Messages of the detector's re-key topic (`<log topic>.detect`). Two kinds, told apart by the
 * `vigil-detect` header:
 *
 * - `event:<set>`: one opened, enriched DetectionEvent as JSON, for the rules of group-by set
 *   `<set>` (route.ts), keyed by (tenant, entity). It holds the personal values the detector was
 *   disclosed (actor ids, addresses, geo): the topic needs a short retention (README).
 * - `watermark`: a punctuation of one stage-1 instance: `{instance, watermark, at}`, sent to
 *   every partition of the topic: the instance has sent every event it will send below
 *   `watermark` (event time, epoch ms), as of its clock `at`.
 */
export const KIND_HEADER = 'vigil-detect';

export interface Punctuation {
  readonly instance: string;
  readonly watermark: number;
  readonly at: number;
}

export type RekeyMessage =
  | { readonly kind: 'event'; readonly set: string; readonly event: DetectionEvent }
  | { readonly kind: 'watermark'; readonly punctuation: Punctuation };

export function eventMessage(set: string, key: string, event: DetectionEvent): LogMessage {
  return {
    key,
    value: Buffer.from(JSON.stringify(event)),
    headers: { [KIND_HEADER]: `event:${set}` },
  };
}

/** Throws on a message that is none of the two kinds (the caller skips and counts it). */
export function readRekeyMessage(record: ConsumedRecord): RekeyMessage {
  const kind = record.headers?.[KIND_HEADER];
  if (kind === undefined) throw new Error(`no ${KIND_HEADER} header`);
  const value = JSON.parse(record.value.toString('utf8')) as unknown;
  if (value === null || typeof value !== 'object') throw new Error('not a JSON object');
  if (kind === 'watermark') {
    const p = value as Punctuation;
    if (
      typeof p.instance !== 'string' ||
      typeof p.watermark !== 'number' ||
      typeof p.at !== 'number'
    )
      throw new Error('not a punctuation');
    return { kind, punctuation: p };
  }
  if (!kind.startsWith('event:')) throw new Error(`unknown ${KIND_HEADER} header "${kind}"`);
  const event = value as DetectionEvent;
  if (
    typeof event.tenant !== 'string' ||
    typeof event.id !== 'string' ||
    typeof event.time !== 'number'
  )
    throw new Error('not a detection event');
  return { kind: 'event', set: kind.slice('event:'.length), event };
}

/**
 * One key per partition of `log` that the log's partitioner sends there, so that a punctuation
 * reaches every partition through the ordinary `append` (the log abstraction has no explicit
 * partition, and needs none elsewhere). Found by trying `watermark/0`, `watermark/1`, …: with a
 * uniform hash a few times the partition count suffice.
 */
export function partitionKeys(log: Pick<Log, 'partitions' | 'partitionFor'>): string[] {
  const keys: (string | undefined)[] = Array.from({ length: log.partitions }, () => undefined);
  let missing = log.partitions;
  for (let i = 0; missing > 0; i++) {
    if (i > 1000 * log.partitions + 10_000)
      throw new Error(`no key found for every one of ${log.partitions} partitions`);
    const key = `watermark/${i}`;
    const p = log.partitionFor(key);
    if (keys[p] === undefined) {
      keys[p] = key;
      missing--;
    }
  }
  return keys as string[];
}

export function punctuationMessages(keys: readonly string[], p: Punctuation): LogMessage[] {
  const value = Buffer.from(JSON.stringify(p));
  return keys.map((key) => ({ key, value, headers: { [KIND_HEADER]: 'watermark' } }));
}

/**
 * The watermark of one re-key partition as the engine stage sees it: the minimum over the live
 * stage-1 instances of the last punctuation each sent to it. An instance is live while its last
 * punctuation is at most `livenessMs` older (by the senders' clocks, as written in the messages,
 * so a replay gives the same answer) than the newest punctuation of the partition: one that
 * stopped, or lost every log partition and so has nothing to say, stops holding the watermark
 * back after that time. An instance that has read nothing yet sends nothing and holds nothing.
 */
export class PartitionPunctuations {
  private readonly instances = new Map<string, { watermark: number; at: number }>();
  private newest = -Infinity;

  constructor(private readonly livenessMs: number) {}

  observe(p: Punctuation): void {
    const known = this.instances.get(p.instance);
    this.instances.set(p.instance, {
      watermark: Math.max(known?.watermark ?? -Infinity, p.watermark),
      at: Math.max(known?.at ?? -Infinity, p.at),
    });
    if (p.at > this.newest) this.newest = p.at;
    // Forget instances long gone, so the map stays as small as the set of live instances.
    for (const [id, i] of this.instances)
      if (i.at < this.newest - 10 * this.livenessMs) this.instances.delete(id);
  }

  value(): number {
    let min = Infinity;
    for (const i of this.instances.values())
      if (i.at >= this.newest - this.livenessMs && i.watermark < min) min = i.watermark;
    return min === Infinity ? -Infinity : min;
  }

  toJSON(): [string, { watermark: number; at: number }][] {
    return [...this.instances].map(([id, i]) => [id, { ...i }]);
  }

  load(entries: readonly [string, { watermark: number; at: number }][]): void {
    this.instances.clear();
    this.newest = -Infinity;
    for (const [id, i] of entries) {
      this.instances.set(id, { ...i });
      if (i.at > this.newest) this.newest = i.at;
    }
  }
}
