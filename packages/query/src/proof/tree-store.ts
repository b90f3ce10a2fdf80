import {
  completeSubtrees,
  consistencyProofRanges,
  EMPTY_TREE_ROOT,
  foldSubtrees,
  hashChildren,
  inclusionProofRanges,
  MerkleFrontier,
  nodeRange,
  type LeafRange,
  type NodeRef,
  type PartitionHead,
} from '@vigil/protocol';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { fromChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';

/**
 * The Merkle trees as the store keeps them (PROTOCOL.md §13.5): leaves in `merkle_leaves`
 * (written with the events by a materialized view), perfect subtrees of level ≥ 1 in
 * `merkle_nodes`, and each tree's latest (size, root) in `merkle_heads`. Roots and proofs read
 * O(log n) nodes. A node that is missing (its batch failed after the events were stored) is
 * rebuilt from the leaves below it and, unless disabled, written back: nodes are a function of
 * the leaves, so any process may write them and copies are equal.
 */

export interface StoredLeaf {
  readonly partition: number;
  readonly leafIndex: number;
  readonly leafHash: string;
  readonly eventId: string;
  readonly eventHash: string;
  readonly stream: string;
  readonly seq: number;
  /** The column digest the leaf binds (§13.2), hex. */
  readonly columns: string;
  /** Protocol time form. */
  readonly receivedAt: string;
  readonly time: string;
}

export interface NodeRow {
  readonly tenant_id: string;
  readonly log_partition: number;
  readonly level: number;
  readonly node_index: number;
  readonly hash: string;
}

/** Leaves missing where a tree must have them; the owning sink repairs this (retriable). */
export class TreeIncompleteError extends QueryError {
  constructor(message: string) {
    super(QueryErrorCodes.TREE_INCOMPLETE, message, { status: 503, retriable: true });
    this.name = 'TreeIncompleteError';
  }
}

/** The stored tree contradicts itself or a signed checkpoint: an integrity alarm. */
export class TreeInconsistentError extends QueryError {
  constructor(message: string) {
    super(QueryErrorCodes.TREE_INCONSISTENT, message, { status: 500 });
    this.name = 'TreeInconsistentError';
  }
}

/** Missing nodes up to this level are rebuilt from their (at most 2^level) leaves at once. */
const REBUILD_LEVEL = 12;

const key = (level: number, index: number): string => `${level}/${index}`;

interface RawLeaf {
  part: number;
  idx: number | string;
  lh: string;
  eid: string;
  eh: string;
  st: string;
  sq: number | string;
  cd: string;
  rcv: string;
  tm: string;
}

function toLeaf(r: RawLeaf): StoredLeaf {
  return {
    partition: Number(r.part),
    leafIndex: Number(r.idx),
    leafHash: r.lh,
    eventId: r.eid,
    eventHash: r.eh,
    stream: r.st,
    seq: Number(r.sq),
    columns: r.cd,
    receivedAt: new Date(fromChTime(r.rcv)).toISOString(),
    time: new Date(fromChTime(r.tm)).toISOString(),
  };
}

// Aliases differ from every column name: ClickHouse resolves aliases in WHERE too.
const LEAF_COLUMNS = `log_partition AS part, leaf_index AS idx, leaf_hash AS lh,
  toString(event_id) AS eid, event_hash AS eh, stream AS st, seq AS sq, column_digest AS cd,
  toString(received_at) AS rcv, toString(time) AS tm`;

export class MerkleStore {
  private readonly writeBack: boolean;

  constructor(
    readonly store: Store,
    options: { readonly writeBack?: boolean } = {},
  ) {
    this.writeBack = options.writeBack ?? true;
  }

  /** Number of leaves stored for the tree: the highest leaf index + 1 (leaves are dense). */
  async leafCount(tenant: string, partition: number): Promise<number> {
    const rows = await this.store.query<{ idx: number | string }>(
      `SELECT leaf_index AS idx FROM ${this.store.table('merkle_leaves')}
       WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32}
       ORDER BY leaf_index DESC LIMIT 1`,
      { tenant, partition },
    );
    return rows.length === 0 ? 0 : Number(rows[0]?.idx) + 1;
  }

  /** The latest head of every tree of the tenant whose nodes are stored, ascending by partition. */
  async heads(tenant: string): Promise<PartitionHead[]> {
    const rows = await this.store.query<{
      part: number;
      tree_size: number | string;
      tree_root: string;
    }>(
      `SELECT log_partition AS part, max(size) AS tree_size, argMax(root, size) AS tree_root
       FROM ${this.store.table('merkle_heads')}
       WHERE tenant_id = {tenant:String}
       GROUP BY log_partition ORDER BY log_partition`,
      { tenant },
    );
    return rows.map((r) => ({
      partition: Number(r.part),
      size: Number(r.tree_size),
      root: r.tree_root,
    }));
  }

  async head(tenant: string, partition: number): Promise<PartitionHead | undefined> {
    return (await this.heads(tenant)).find((h) => h.partition === partition);
  }

  async writeHeads(tenant: string, heads: readonly PartitionHead[]): Promise<void> {
    const now = Date.now();
    await this.store.insert(
      this.store.table('merkle_heads'),
      heads.map((h) => ({
        tenant_id: tenant,
        log_partition: h.partition,
        size: h.size,
        root: h.root,
        updated_at: now,
      })),
    );
  }

  async writeNodes(rows: readonly NodeRow[]): Promise<void> {
    await this.store.insert(this.store.table('merkle_nodes'), rows);
  }

  /** Every leaf of the tenant that names this event id (normally one). */
  async findLeaves(tenant: string, eventId: string): Promise<StoredLeaf[]> {
    const rows = await this.store.query<RawLeaf>(
      `SELECT ${LEAF_COLUMNS} FROM ${this.store.table('merkle_leaves')}
       WHERE tenant_id = {tenant:String} AND event_id = {eventId:UUID}
       ORDER BY log_partition, leaf_index`,
      { tenant, eventId },
    );
    return dedupeLeaves(rows.map(toLeaf));
  }

  /** The leaves [start, end) of a tree, ordered; throws when two leaves claim one position. */
  async leaves(
    tenant: string,
    partition: number,
    start: number,
    end: number,
  ): Promise<StoredLeaf[]> {
    const rows = await this.store.query<RawLeaf>(
      `SELECT ${LEAF_COLUMNS} FROM ${this.store.table('merkle_leaves')}
       WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32}
         AND leaf_index >= {start:UInt64} AND leaf_index < {end:UInt64}
       ORDER BY leaf_index`,
      { tenant, partition, start, end },
    );
    const leaves = dedupeLeaves(rows.map(toLeaf));
    for (let i = 1; i < leaves.length; i++) {
      if (leaves[i]?.leafIndex === leaves[i - 1]?.leafIndex)
        throw new TreeInconsistentError(
          `tenant ${tenant} partition ${partition}: two different leaves at index ${leaves[i]?.leafIndex}`,
        );
    }
    return leaves;
  }

  /**
   * Hashes of perfect subtrees (level 0: leaves), in the order asked. Missing nodes are rebuilt
   * from the leaves below them; a missing leaf throws TreeIncompleteError.
   */
  async subtreeHashes(
    tenant: string,
    partition: number,
    refs: readonly NodeRef[],
  ): Promise<Buffer[]> {
    const known = new Map<string, Buffer>();
    const built: NodeRow[] = [];
    const toCompute: NodeRef[] = [];
    let want = uniqueRefs(refs);
    while (want.length > 0) {
      await this.fetch(tenant, partition, want, known);
      const next: NodeRef[] = [];
      const rebuild: NodeRef[] = [];
      for (const ref of want) {
        if (known.has(key(ref.level, ref.index))) continue;
        if (ref.level === 0)
          throw new TreeIncompleteError(
            `tenant ${tenant} partition ${partition}: leaf ${ref.index} is not stored`,
          );
        if (ref.level <= REBUILD_LEVEL) {
          rebuild.push(ref);
        } else {
          toCompute.push(ref);
          next.push({ level: ref.level - 1, index: ref.index * 2 });
          next.push({ level: ref.level - 1, index: ref.index * 2 + 1 });
        }
      }
      if (rebuild.length > 0) await this.rebuild(tenant, partition, rebuild, known, built);
      want = uniqueRefs(next).filter((r) => !known.has(key(r.level, r.index)));
    }
    toCompute.sort((a, b) => a.level - b.level);
    for (const ref of toCompute) {
      const left = known.get(key(ref.level - 1, ref.index * 2));
      const right = known.get(key(ref.level - 1, ref.index * 2 + 1));
      if (!left || !right) throw new Error(`node ${key(ref.level, ref.index)} has no children`);
      const hash = hashChildren(left, right);
      known.set(key(ref.level, ref.index), hash);
      built.push(nodeRow(tenant, partition, ref.level, ref.index, hash));
    }
    if (this.writeBack && built.length > 0) await this.writeNodes(built);
    return refs.map((r) => known.get(key(r.level, r.index)) as Buffer);
  }

  /** Tree hashes of ranges of the shape RFC 9162 proofs use (see completeSubtrees). */
  async rangeHashes(
    tenant: string,
    partition: number,
    ranges: readonly LeafRange[],
  ): Promise<Buffer[]> {
    const parts = ranges.map((r) => completeSubtrees(r.start, r.end));
    const hashes = await this.subtreeHashes(tenant, partition, parts.flat());
    let at = 0;
    return parts.map((p) => {
      const slice = hashes.slice(at, at + p.length);
      at += p.length;
      return foldSubtrees(slice);
    });
  }

  /** MTH of the first `size` leaves. */
  async root(tenant: string, partition: number, size: number): Promise<Buffer> {
    if (size === 0) return EMPTY_TREE_ROOT;
    const [root] = await this.rangeHashes(tenant, partition, [{ start: 0, end: size }]);
    return root as Buffer;
  }

  /** The compact range (peaks) of the first `size` leaves, ready to append to. */
  async frontier(tenant: string, partition: number, size: number): Promise<MerkleFrontier> {
    const peaks = await this.subtreeHashes(tenant, partition, completeSubtrees(0, size));
    return new MerkleFrontier(size, peaks);
  }

  /** RFC 9162 §2.1.3.1 audit path of leaf `index` in the tree of `size` leaves. */
  async inclusionPath(
    tenant: string,
    partition: number,
    index: number,
    size: number,
  ): Promise<Buffer[]> {
    return this.rangeHashes(tenant, partition, inclusionProofRanges(index, size));
  }

  /** RFC 9162 §2.1.4.1 consistency path between the trees of `first` and `second` leaves. */
  async consistencyPath(
    tenant: string,
    partition: number,
    first: number,
    second: number,
  ): Promise<Buffer[]> {
    return this.rangeHashes(tenant, partition, consistencyProofRanges(first, second));
  }

  /** Loads stored nodes (level ≥ 1) and leaf hashes (level 0) into `known`. */
  private async fetch(
    tenant: string,
    partition: number,
    refs: readonly NodeRef[],
    known: Map<string, Buffer>,
  ): Promise<void> {
    const byLevel = new Map<number, number[]>();
    for (const r of refs) {
      let list = byLevel.get(r.level);
      if (!list) byLevel.set(r.level, (list = []));
      list.push(r.index);
    }
    const leafIndexes = byLevel.get(0);
    if (leafIndexes) {
      byLevel.delete(0);
      const rows = await this.store.query<{ idx: number | string; lh: string }>(
        `SELECT DISTINCT leaf_index AS idx, leaf_hash AS lh FROM ${this.store.table('merkle_leaves')}
         WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32}
           AND leaf_index IN {indexes:Array(UInt64)}`,
        { tenant, partition, indexes: leafIndexes },
      );
      for (const r of rows) {
        const k = key(0, Number(r.idx));
        const hash = Buffer.from(r.lh, 'hex');
        const seen = known.get(k);
        if (seen && !seen.equals(hash))
          throw new TreeInconsistentError(
            `tenant ${tenant} partition ${partition}: two different leaves at index ${r.idx}`,
          );
        known.set(k, hash);
      }
    }
    if (byLevel.size === 0) return;
    const params: Record<string, unknown> = { tenant, partition };
    const clauses: string[] = [];
    let n = 0;
    for (const [level, indexes] of byLevel) {
      params[`l${n}`] = level;
      params[`i${n}`] = indexes;
      clauses.push(`(level = {l${n}:UInt8} AND node_index IN {i${n}:Array(UInt64)})`);
      n++;
    }
    const rows = await this.store.query<{ lvl: number; ni: number | string; nh: string }>(
      `SELECT DISTINCT level AS lvl, node_index AS ni, hash AS nh FROM ${this.store.table('merkle_nodes')}
       WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32}
         AND (${clauses.join(' OR ')})`,
      params,
    );
    const conflicting = new Set<string>();
    for (const r of rows) {
      const k = key(Number(r.lvl), Number(r.ni));
      const hash = Buffer.from(r.nh, 'hex');
      const seen = known.get(k);
      if (seen && !seen.equals(hash)) conflicting.add(k);
      known.set(k, hash);
    }
    // Two stored values for one node: trust neither, rebuild it from the leaves.
    for (const k of conflicting) known.delete(k);
  }

  /**
   * Rebuilds nodes and every node below them from their leaves, which must all be stored.
   * Adjacent nodes are read as one range: after a crash the missing nodes are the newest ones.
   */
  private async rebuild(
    tenant: string,
    partition: number,
    refs: readonly NodeRef[],
    known: Map<string, Buffer>,
    built: NodeRow[],
  ): Promise<void> {
    const ranges = refs
      .map((ref) => ({ ref, ...nodeRange(ref) }))
      .sort((a, b) => a.start - b.start);
    let i = 0;
    while (i < ranges.length) {
      // One run of touching ranges, read at once.
      let j = i + 1;
      while (j < ranges.length && (ranges[j]?.start as number) <= (ranges[j - 1]?.end as number))
        j++;
      const run = ranges.slice(i, j);
      const start = run[0]?.start as number;
      const end = Math.max(...run.map((r) => r.end));
      const leaves = await this.leaves(tenant, partition, start, end);
      if (leaves.length !== end - start)
        throw new TreeIncompleteError(
          `tenant ${tenant} partition ${partition}: ${end - start - leaves.length} of the leaves ${start}..${end - 1} are not stored`,
        );
      for (const leaf of leaves)
        known.set(key(0, leaf.leafIndex), Buffer.from(leaf.leafHash, 'hex'));
      for (const { ref, start: from, end: to } of run) {
        if (known.has(key(ref.level, ref.index))) continue;
        // A frontier started at the node's first leaf numbers nodes from 0: shift them back.
        const frontier = new MerkleFrontier();
        for (let at = from; at < to; at++) {
          frontier.append(known.get(key(0, at)) as Buffer, (level, index, hash) => {
            const absolute = index + from / 2 ** level;
            if (known.has(key(level, absolute))) return;
            known.set(key(level, absolute), hash);
            built.push(nodeRow(tenant, partition, level, absolute, hash));
          });
        }
      }
      i = j;
    }
  }

  /** Trees whose stored leaves are not all stated by their head, e.g. after a crash. */
  async lagging(
    olderThanMs = 0,
  ): Promise<{ tenant: string; partition: number; size: number; headSize: number }[]> {
    const sizes = await this.store.query<{
      tn: string;
      part: number;
      sl: number | string;
      last: string;
    }>(
      `SELECT tenant_id AS tn, log_partition AS part, max(leaves) AS sl, toString(max(stored_at)) AS last
       FROM ${this.store.table('merkle_sizes')} GROUP BY tenant_id, log_partition`,
    );
    const heads = await this.store.query<{ tn: string; part: number; hs: number | string }>(
      `SELECT tenant_id AS tn, log_partition AS part, max(size) AS hs
       FROM ${this.store.table('merkle_heads')} GROUP BY tenant_id, log_partition`,
    );
    const signed = new Map(heads.map((h) => [`${h.tn}\u0000${h.part}`, Number(h.hs)]));
    const before = Date.now() - olderThanMs;
    return sizes
      .map((r) => ({
        tenant: r.tn,
        partition: Number(r.part),
        size: Number(r.sl),
        headSize: signed.get(`${r.tn}\u0000${r.part}`) ?? 0,
        last: fromChTime(r.last),
      }))
      .filter((r) => r.size > r.headSize && r.last <= before)
      .map(({ last: _last, ...r }) => r);
  }
}

function nodeRow(
  tenant: string,
  partition: number,
  level: number,
  index: number,
  hash: Buffer,
): NodeRow {
  return {
    tenant_id: tenant,
    log_partition: partition,
    level,
    node_index: index,
    hash: hash.toString('hex'),
  };
}

function uniqueRefs(refs: readonly NodeRef[]): NodeRef[] {
  const seen = new Set<string>();
  const out: NodeRef[] = [];
  for (const r of refs) {
    const k = key(r.level, r.index);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(r);
  }
  return out;
}

/** Replays and a repaired leaf can leave identical copies of a row; keep one. */
function dedupeLeaves(leaves: readonly StoredLeaf[]): StoredLeaf[] {
  const seen = new Set<string>();
  const out: StoredLeaf[] = [];
  for (const l of leaves) {
    const k = `${l.partition}/${l.leafIndex}/${l.leafHash}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(l);
  }
  return out;
}
