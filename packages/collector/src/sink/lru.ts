/**
 * A bounded cache that keeps recently used entries: two generations of at most capacity/2
 * entries each. Reads look in the young generation, then in the old one (promoting a hit);
 * when the young one is full it becomes the old one and the old one is dropped whole. Every
 * operation is O(1), with no per-entry bookkeeping, and an entry used at least once per
 * capacity/2 insertions is never dropped. Enrichment caches its results in one: an
 * application's traffic repeats a small set of addresses and user agents.
 */
export class Lru<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly half: number;

  constructor(capacity: number) {
    this.half = Math.max(1, Math.ceil(capacity / 2));
  }

  get(key: K): V | undefined {
    const value = this.young.get(key);
    if (value !== undefined) return value;
    const aged = this.old.get(key);
    if (aged !== undefined) this.set(key, aged);
    return aged;
  }

  set(key: K, value: V): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }

  /** Entries held (at most the capacity). */
  get size(): number {
    return this.young.size + this.old.size;
  }
}
