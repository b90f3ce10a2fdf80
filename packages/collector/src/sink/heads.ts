import type { StreamHead } from '@vigil/protocol';
import type { Store } from '@vigil/query';

export interface Head extends StreamHead {
  readonly closed: boolean;
}

/**
 * Stream heads of the streams this sink owns (via their log partitions), with the store's
 * `stream_heads` table behind it: a miss loads from the store, which is updated in the same
 * insert as the events, so after a restart the sink resumes from exactly what was stored.
 * Bounded: when full, the cache is cleared and heads are reloaded as streams reappear.
 */
export class HeadCache {
  private heads = new Map<string, Head | null>();

  constructor(
    private readonly store: Store,
    private readonly capacity = 200_000,
  ) {}

  private static key(tenant: string, stream: string): string {
    return tenant + '\u0000' + stream;
  }

  /** `undefined`: not loaded; `null`: the store has no event of this stream. */
  peek(tenant: string, stream: string): Head | null | undefined {
    return this.heads.get(HeadCache.key(tenant, stream));
  }

  set(tenant: string, stream: string, head: Head): void {
    this.heads.set(HeadCache.key(tenant, stream), head);
  }

  clear(): void {
    this.heads.clear();
  }

  /** Loads, in one query per tenant, the heads of the given streams that are not cached. */
  async load(wanted: ReadonlyMap<string, ReadonlySet<string>>): Promise<void> {
    if (this.heads.size > this.capacity) this.heads.clear();
    for (const [tenant, streams] of wanted) {
      const missing = [...streams].filter((s) => !this.heads.has(HeadCache.key(tenant, s)));
      if (missing.length === 0) continue;
      const rows = await this.store.query<{
        stream: string;
        seq: number | string;
        hash: string;
        closed: number;
      }>(
        `SELECT stream, max(seq) AS seq, argMaxMerge(head) AS hash, max(closed) AS closed
         FROM ${this.store.table('stream_heads')}
         WHERE tenant_id = {tenant:String} AND stream IN {streams:Array(String)}
         GROUP BY stream`,
        { tenant, streams: missing },
      );
      const found = new Map(rows.map((r) => [r.stream, r]));
      for (const stream of missing) {
        const row = found.get(stream);
        this.heads.set(
          HeadCache.key(tenant, stream),
          row ? { seq: Number(row.seq), hash: row.hash, closed: Number(row.closed) === 1 } : null,
        );
      }
    }
  }
}
