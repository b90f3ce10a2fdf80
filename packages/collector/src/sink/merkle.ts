import { columnDigestHex, eventLeafHash } from '@vigil/protocol';
import { MerkleStore, type EventRow, type Store } from '@vigil/query';
import type { BatchContext, RowContext, SinkPlugin } from './plugins.js';

/**
 * Tree positions (PROTOCOL.md §13): the sink owns its log partitions, so it alone appends to the
 * tree of each (tenant, partition) and numbers the leaves densely, in log order, for every row
 * it inserts, including the events it writes itself (key-stream openings, integrity events).
 *
 * - `prepare` loads the size of each tree the batch touches from the store, once per ownership.
 * - `decorate` gives each row its `leaf_index` and `leaf_hash`; materialized views copy the leaf
 *   into `merkle_leaves` and the tree's size into `merkle_sizes` in the same INSERT as the
 *   events, so a stored event always has its leaf.
 * - `stored` advances the sizes and hands the new leaf hashes to the observer, which builds the
 *   tree's nodes and signs checkpoints off the sink's path (checkpoint/tree-writer.ts).
 *
 * Idempotence. A batch delivered again after a crash is recognised by the sink (stored ids are
 * skipped), so it yields no row and no leaf: positions stay dense. Loading a tree also repairs
 * leaves of stored events that did not reach `merkle_leaves` (a table and its views are not
 * written atomically).
 */

export const MERKLE_PLUGIN = 'merkle';

/** Told about the leaves the sink stores (the tree writer and the checkpointer). */
export interface TreeObserver {
  /** Leaves [start, start + leafHashes.length) of the tree of (tenant, partition) are stored. */
  leavesStored(
    tenant: string,
    partition: number,
    start: number,
    leafHashes: readonly Buffer[],
  ): void;
  /** The sink took the tree over with `size` stored leaves (at start, after a failure). */
  treeLoaded?(tenant: string, partition: number, size: number): void;
}

export interface MerklePluginOptions {
  readonly store: Store;
  readonly observer?: TreeObserver;
  readonly logger?: { warn(obj: object, msg: string): void };
}

interface Tree {
  readonly tenant: string;
  readonly partition: number;
  /** Leaves stored. */
  size: number;
  /** Leaf hashes given to rows of the current batch, not yet stored. */
  pending: Buffer[];
}

const treeKey = (tenant: string, partition: number): string => `${tenant}\u0000${partition}`;

export class MerklePlugin implements SinkPlugin {
  readonly name = MERKLE_PLUGIN;
  private readonly trees: MerkleStore;
  private readonly loaded = new Map<string, Tree>();
  /**
   * Trees of the batch in progress of each partition, by tenant. Batches of different
   * partitions are processed concurrently (the log hands them over in parallel), those of one
   * partition one after the other, so all per-batch state is kept per partition.
   */
  private readonly batches = new Map<number, Map<string, Tree>>();

  constructor(private readonly options: MerklePluginOptions) {
    this.trees = new MerkleStore(options.store);
  }

  async prepare(batch: BatchContext): Promise<void> {
    const current = new Map<string, Tree>();
    this.batches.set(batch.partition, current);
    for (const tenant of batch.tenants) {
      const k = treeKey(tenant, batch.partition);
      let tree = this.loaded.get(k);
      if (!tree) {
        tree = await this.load(tenant, batch.partition);
        this.loaded.set(k, tree);
      }
      tree.pending = [];
      current.set(tenant, tree);
    }
  }

  decorate(row: EventRow, context: RowContext): void {
    const tree = this.batches.get(context.partition)?.get(row.tenant_id);
    if (!tree || tree.partition !== context.partition)
      throw new Error(
        `no tree prepared for tenant ${row.tenant_id} partition ${context.partition}`,
      );
    // The column digest comes from the record as hashed (PROTOCOL.md §13.2), never from the
    // row's columns: it is what a verifier later checks the columns against.
    const columns = columnDigestHex(context.record);
    const hash = eventLeafHash({
      tenant: row.tenant_id,
      stream: row.stream,
      seq: row.seq,
      eventHash: row.hash,
      columns,
    });
    row.leaf_index = tree.size + tree.pending.length;
    row.leaf_hash = hash.toString('hex');
    row.column_digest = columns;
    tree.pending.push(hash);
  }

  stored(_rows: readonly EventRow[], batch: BatchContext): void {
    for (const tree of this.batches.get(batch.partition)?.values() ?? []) {
      if (tree.pending.length === 0) continue;
      const start = tree.size;
      const hashes = tree.pending;
      tree.size += hashes.length;
      tree.pending = [];
      this.options.observer?.leavesStored(tree.tenant, tree.partition, start, hashes);
    }
  }

  reset(): void {
    this.loaded.clear();
    this.batches.clear();
  }

  /** The stored size of a tree, after copying back leaves that did not reach merkle_leaves. */
  private async load(tenant: string, partition: number): Promise<Tree> {
    let size = await this.trees.leafCount(tenant, partition);
    size += await this.repairLeaves(tenant, partition, size);
    this.options.observer?.treeLoaded?.(tenant, partition, size);
    return { tenant, partition, size, pending: [] };
  }

  /** Copies leaves of stored events at or after `size` into merkle_leaves; returns how many. */
  private async repairLeaves(tenant: string, partition: number, size: number): Promise<number> {
    const { store } = this.options;
    const rows = await store.query<{ idx: number | string }>(
      `SELECT DISTINCT leaf_index AS idx FROM ${store.table('events')}
       WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32}
         AND leaf_index >= {size:UInt64} AND leaf_hash != ''
       ORDER BY idx`,
      { tenant, partition, size },
    );
    if (rows.length === 0) return 0;
    // Only a dense run continues the tree; anything past a hole would be a second writer.
    let dense = 0;
    while (dense < rows.length && Number(rows[dense]?.idx) === size + dense) dense++;
    if (dense < rows.length)
      this.options.logger?.warn(
        { tenant, partition, size, found: rows.length, dense },
        'stored events claim leaf positions past a hole; only the dense run is repaired',
      );
    if (dense === 0) return 0;
    await store.command(
      `INSERT INTO ${store.table('merkle_leaves')}
         (tenant_id, log_partition, leaf_index, leaf_hash, event_id, event_hash, stream, seq, received_at, time, column_digest)
       SELECT tenant_id, log_partition, leaf_index, leaf_hash, id, hash, stream, seq, received_at, time, column_digest
       FROM ${store.table('events')}
       WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32}
         AND leaf_index >= {from:UInt64} AND leaf_index < {to:UInt64} AND leaf_hash != ''`,
      { tenant, partition, from: size, to: size + dense },
    );
    // The size view may have missed the same INSERT.
    await store.insert(store.table('merkle_sizes'), [
      { tenant_id: tenant, log_partition: partition, leaves: size + dense, stored_at: Date.now() },
    ]);
    this.options.logger?.warn(
      { tenant, partition, from: size, count: dense },
      'leaves of stored events were missing from merkle_leaves; copied from events',
    );
    return dense;
  }
}
