import type { MerkleFrontier, PartitionHead } from '@vigil/protocol';
import { MerkleStore, TreeIncompleteError, type NodeRow, type Store } from '@vigil/query';
import type { TreeObserver } from '../sink/merkle.js';
import type { HeadSource } from './checkpointer.js';

/**
 * Builds the trees' interior nodes and heads (PROTOCOL.md §13.5) from the leaf hashes the sink
 * reports, off the sink's path: the sink stores leaves with its events in one INSERT and moves
 * on; this keeps each tree's right edge (a MerkleFrontier) in memory, collects the nodes the new
 * leaves complete, and writes them, then the tree's head, when a checkpoint needs the heads
 * (`heads`), in one insert each. Roots thus cost the sink nothing per batch.
 *
 * Nothing here is needed for correctness: nodes and heads are functions of the stored leaves.
 * A tree this process has not seen, or whose reported leaves do not follow on from what it holds
 * (a crash lost them, another sink extended the tree meanwhile), is read back from the store:
 * its right edge from the stored nodes, rebuilt from the leaves where nodes are missing.
 * `lagging` finds trees whose stored leaves are ahead of their head, which is how leaves stored
 * just before a crash still get signed when no new event reaches their tree.
 */

interface TreeState {
  readonly tenant: string;
  readonly partition: number;
  /** The right edge of the first `base` leaves, once loaded. */
  frontier: MerkleFrontier | undefined;
  /** Number of leaves before `hashes`. */
  base: number;
  /** Reported leaf hashes not yet in the frontier. */
  hashes: Buffer[];
  /** Nodes computed and not yet written. */
  nodes: NodeRow[];
  /** The head in the store may be behind this tree. */
  dirty: boolean;
}

const treeKey = (tenant: string, partition: number): string => `${tenant}\u0000${partition}`;

/** Trees whose right edge is kept in memory at most (each is about log2(size) hashes). */
const MAX_TREES = 20_000;

export class TreeWriter implements TreeObserver, HeadSource {
  readonly trees: MerkleStore;
  private readonly states = new Map<string, TreeState>();
  private readonly byTenant = new Map<string, Set<string>>();

  constructor(store: Store) {
    this.trees = new MerkleStore(store);
  }

  private state(tenant: string, partition: number, base: number): TreeState {
    const k = treeKey(tenant, partition);
    const s: TreeState = {
      tenant,
      partition,
      frontier: undefined,
      base,
      hashes: [],
      nodes: [],
      dirty: true,
    };
    this.states.set(k, s);
    let keys = this.byTenant.get(tenant);
    if (!keys) this.byTenant.set(tenant, (keys = new Set()));
    keys.add(k);
    return s;
  }

  leavesStored(
    tenant: string,
    partition: number,
    start: number,
    leafHashes: readonly Buffer[],
  ): void {
    let s = this.states.get(treeKey(tenant, partition));
    if (!s || s.base + s.hashes.length !== start) s = this.state(tenant, partition, start);
    for (const h of leafHashes) s.hashes.push(h);
    s.dirty = true;
  }

  treeLoaded(tenant: string, partition: number, size: number): void {
    const s = this.states.get(treeKey(tenant, partition));
    if (!s || s.base + s.hashes.length !== size) this.state(tenant, partition, size);
  }

  /** Marks a tree for a head at (at least) `size` leaves: found by `lagging`. */
  need(tenant: string, partition: number, size: number): void {
    const s = this.states.get(treeKey(tenant, partition));
    if (s && s.base + s.hashes.length >= size) {
      s.dirty = true;
      return;
    }
    this.state(tenant, partition, size);
  }

  /**
   * Trees whose stored leaves are ahead of their head since at least `olderThanMs`; they are
   * marked, and their tenants returned so that the checkpointer signs them.
   */
  async lagging(olderThanMs = 0): Promise<string[]> {
    const found = await this.trees.lagging(olderThanMs);
    for (const t of found) this.need(t.tenant, t.partition, t.size);
    return [...new Set(found.map((t) => t.tenant))];
  }

  /** Writes the nodes and heads of the tenant's trees that changed, then returns all its heads. */
  async heads(tenant: string): Promise<PartitionHead[]> {
    await this.flush(tenant);
    return this.trees.heads(tenant);
  }

  /** Writes the nodes and heads of the tenant's changed trees (all tenants when absent). */
  async flush(tenant?: string): Promise<void> {
    const keys =
      tenant === undefined ? [...this.states.keys()] : [...(this.byTenant.get(tenant) ?? [])];
    const changed: TreeState[] = [];
    for (const k of keys) {
      const s = this.states.get(k);
      if (!s?.dirty) continue;
      if (!s.frontier) {
        // Read the right edge back; missing nodes are rebuilt and written by the store.
        try {
          s.frontier = await this.trees.frontier(s.tenant, s.partition, s.base);
        } catch (error) {
          // Leaves missing until the owning sink repairs them: the tenant's other trees are
          // still signed, this one keeps its last head and is tried again next time.
          if (error instanceof TreeIncompleteError) continue;
          throw error;
        }
      }
      const frontier = s.frontier;
      const hashes = s.hashes;
      s.hashes = [];
      for (const h of hashes)
        frontier.append(h, (level, index, hash) =>
          s.nodes.push({
            tenant_id: s.tenant,
            log_partition: s.partition,
            level,
            node_index: index,
            hash: hash.toString('hex'),
          }),
        );
      s.base = frontier.size;
      changed.push(s);
    }
    if (changed.length === 0) return;
    const nodes = changed.flatMap((s) => s.nodes);
    if (nodes.length > 0) await this.trees.writeNodes(nodes);
    for (const s of changed) s.nodes = [];
    const byTenant = new Map<string, PartitionHead[]>();
    for (const s of changed) {
      if (s.base === 0) continue;
      const heads = byTenant.get(s.tenant) ?? [];
      heads.push({
        partition: s.partition,
        size: s.base,
        root: s.frontier?.root().toString('hex') ?? '',
      });
      byTenant.set(s.tenant, heads);
    }
    for (const [t, heads] of byTenant) await this.trees.writeHeads(t, heads);
    for (const s of changed) s.dirty = s.hashes.length > 0;
    // Bounded memory: forget clean trees beyond the limit; they are read back when they grow.
    if (this.states.size > MAX_TREES) {
      for (const [k, s] of this.states) {
        if (s.dirty || s.nodes.length > 0 || s.hashes.length > 0) continue;
        this.states.delete(k);
        this.byTenant.get(s.tenant)?.delete(k);
        if (this.states.size <= MAX_TREES / 2) break;
      }
    }
  }
}
