/** What the watermark knows of one partition read. */
export interface PartitionTime {
  /** Latest event time read from the partition (epoch ms; -Infinity before any). */
  maxTime: number;
  /** Whether the last batch read ended at the partition's end offset (nothing more to read). */
  caughtUp: boolean;
}

/**
 * The event-time watermark over the partitions the detector reads: the minimum, over the
 * partitions that still have records to read, of the latest event time read from each.
 *
 * Idle rule: a partition whose last batch ended at its end offset (the log's high watermark
 * when the batch was read) holds nothing back: it has no unread record, so its next event can
 * only be new (arrivals late by more than the engine's lateness bound are dropped and counted,
 * as for any late event). When every partition read is caught up, the watermark is the latest
 * event time read anywhere. A partition that had unread records when the detector started
 * (`pending`) holds the watermark back until its first batch, so a backlog in one partition is
 * not declared late because another partition was read first.
 *
 * An event's time counts no later than the time its collector received it: a client clock in
 * the future (within the collector's allowed skew) cannot push the watermark ahead of real time
 * and make everyone else's events late.
 */
export class Watermark {
  private readonly partitions = new Map<number, PartitionTime>();

  /** Partitions known to have unread records before their first batch. */
  pending(partitions: Iterable<number>): void {
    for (const p of partitions)
      if (!this.partitions.has(p)) this.partitions.set(p, { maxTime: -Infinity, caughtUp: false });
  }

  /** Forget partitions no longer read here (a rebalance). */
  release(partitions: Iterable<number>): void {
    for (const p of partitions) this.partitions.delete(p);
  }

  /** One batch of `partition` was read: its latest event time and whether it reached the end. */
  observe(partition: number, maxTime: number, caughtUp: boolean): void {
    const known = this.partitions.get(partition);
    if (known) {
      if (maxTime > known.maxTime) known.maxTime = maxTime;
      known.caughtUp = caughtUp;
    } else {
      this.partitions.set(partition, { maxTime, caughtUp });
    }
  }

  /** The current watermark (epoch ms), or -Infinity when nothing can be said yet. */
  value(): number {
    let holding = Infinity;
    let latest = -Infinity;
    for (const p of this.partitions.values()) {
      if (p.maxTime > latest) latest = p.maxTime;
      if (!p.caughtUp && p.maxTime < holding) holding = p.maxTime;
    }
    return holding === Infinity ? latest : holding;
  }

  toJSON(): [number, PartitionTime][] {
    return [...this.partitions].map(([p, t]) => [p, { ...t }]);
  }

  load(entries: readonly [number, PartitionTime][]): void {
    this.partitions.clear();
    for (const [p, t] of entries)
      this.partitions.set(p, {
        // JSON has no -Infinity: null stands for "nothing read".
        maxTime: typeof t.maxTime === 'number' ? t.maxTime : -Infinity,
        caughtUp: t.caughtUp,
      });
  }
}
