/**
 * Event ids this collector accepted recently, with their hash, so that a replay (an SDK retry
 * after a lost response, a curl posted twice) is answered as a duplicate at once and a reused id
 * with other bytes is refused. Bounded: two generations of at most `capacity / 2` entries; when
 * the young one fills, the old one is dropped whole (no per-entry LRU bookkeeping on the hot
 * path). Ids older than the window are deduplicated by the sink, which owns the stream.
 */
export class RecentIds {
  private young = new Map<string, string>();
  private old = new Map<string, string>();
  private readonly half: number;

  constructor(capacity: number) {
    this.half = Math.max(1, Math.floor(capacity / 2));
  }

  get(tenant: string, id: string): string | undefined {
    const key = tenant + '\u0000' + id;
    return this.young.get(key) ?? this.old.get(key);
  }

  set(tenant: string, id: string, fingerprint: string): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(tenant + '\u0000' + id, fingerprint);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }
}
