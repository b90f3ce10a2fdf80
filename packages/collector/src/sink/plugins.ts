import type { Disclosures, EventRecord } from '@vigil/protocol';
import type { EventRow } from '@vigil/query';

/** What a plugin learns about a batch before its rows are built. */
export interface BatchContext {
  /** The log partition the batch comes from. */
  readonly partition: number;
  /** Tenants with events in this batch. */
  readonly tenants: ReadonlySet<string>;
}

/** What a plugin sees of each row as it is built. */
export interface RowContext {
  readonly partition: number;
  readonly record: EventRecord;
  readonly disclosures: Disclosures | undefined;
}

/**
 * A step of the sink's row building that is not the chain: enrichment (geo, user agent),
 * retention (expiry, legal holds), tree positions. Plugins run in the order given.
 *
 * Batches of different log partitions are processed concurrently (one batch in flight per
 * partition), so a plugin's per-batch state must be kept per partition: `prepare` of one
 * partition can run between `prepare` and `decorate` of another.
 *
 * - `prepare` runs once per batch before any row is built (load policies, tree sizes …); it may
 *   query the store.
 * - `decorate` runs for every row, synchronously, in log order, and may set columns.
 * - `stored` runs after the batch's rows are safely in the store: advance in-memory state here
 *   (never in `decorate`, since the insert may still fail and the batch be delivered again).
 * - `reset` forgets cached state (after a failure or a change of partition ownership).
 */
export interface SinkPlugin {
  readonly name: string;
  prepare?(batch: BatchContext): Promise<void>;
  decorate?(row: EventRow, context: RowContext): void;
  stored?(rows: readonly EventRow[], batch: BatchContext): Promise<void> | void;
  reset?(): void;
}
