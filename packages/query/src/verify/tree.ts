import { EMPTY_TREE_ROOT, MerkleFrontier } from '@vigil/protocol';
import type { Store } from '../store/store.js';
import type { StatedHead } from './checkpoints.js';
import type { Findings } from './findings.js';
import type { RetentionExplainer } from './retention.js';
import { leafHashSql } from './event-sql.js';
import { forEachRowBinary, type RowBinaryReader } from './row-binary.js';
import type { Scope } from './scope.js';

/**
 * The tree half of a verification (PROTOCOL.md §13, §19.3), one (tenant, partition) tree at a
 * time, every leaf in index order:
 *
 * - each leaf hash binds the stream, seq, event hash and column digest stored beside it (checked by the engine:
 *   SHA-256(0x00 || leaf data), RFC 9162 §2.1.1);
 * - leaf indexes are dense from 0, one leaf per index;
 * - every stored event row has the leaf at its position, and every leaf has its event row or
 *   retention explains why not (retention.ts);
 * - the root of every size a verified checkpoint states is recomputed with a MerkleFrontier
 *   (RFC 9162 §2.1.1) and compared with it; leaves a checkpoint states but the store no longer
 *   has are a truncation; leaves no verified checkpoint covers are not signed yet.
 *
 * Leaves and event rows are each scanned by the engine and streamed as fixed-size RowBinary
 * rows, set in place by leaf index here; the engine joins them only over the span of indexes
 * where the two sides differ. The frontier, the comparisons and the classification run here.
 */

/** Leaves per query: each query's join holds about this many rows of each side. */
const LEAF_CHUNK = 1_000_000;
/** Receipt times may disagree with log order by this much (collectors' clocks, request races). */
const RECEIPT_ORDER_SLACK_MS = 3_600_000;

/** Bits of a joined row's `xk`: which sides are present. */
const LEAF_SIDE = 1;
const EVENT_SIDE = 2;

export interface TreeResult {
  readonly partition: number;
  /** Leaves stored (highest index + 1). */
  readonly leaves: number;
  /** Leaves whose event row is stored. */
  readonly events: number;
  /** The largest size a verified checkpoint states, and whether its root matched. */
  readonly signedSize: number;
  readonly matchedCheckpoints: number;
  /** The recomputed root of all stored leaves (hex), when the leaves are dense. */
  readonly root?: string;
}

interface Row {
  idx: number;
  kind: number;
  hash: Buffer;
  leafOk: boolean;
  inScope: boolean;
  receivedAt: number;
  metaOk: boolean;
  eventId: string;
  stream: string;
  seq: number;
  eventHash: string;
}

export interface TreeContext {
  readonly store: Store;
  readonly tenant: string;
  readonly scope: Scope;
  readonly findings: Findings;
  readonly retention: RetentionExplainer;
  readonly now: number;
  /** Leaves received longer ago than this without a verified checkpoint are a failure. */
  readonly unsignedGraceMs: number;
  readonly onLeaves?: (count: number) => void;
}

/** An event row whose leaf position holds another leaf (or none): resolved after the stream. */
export interface MisplacedEvent {
  readonly partition: number;
  readonly leafIndex: number;
  readonly leafHash: string;
  readonly eventId: string;
  readonly eventHash: string;
  readonly stream: string;
  readonly seq: number;
}

/** A leaf without its event row that retention does not explain: resolved after the stream. */
export interface OrphanLeaf {
  readonly partition: number;
  readonly leafIndex: number;
  readonly leafHash: string;
  readonly eventId: string;
  readonly eventHash: string;
  readonly stream: string;
  readonly seq: number;
  readonly reason: string;
}

export interface TreeOutcome extends TreeResult {
  readonly misplaced: MisplacedEvent[];
  readonly orphans: OrphanLeaf[];
}

function joinSql(store: Store, scope: Scope): string {
  const leafScope = scope.sql('time', 'stream');
  // Explicit types: RowBinary has no per-column framing, readRow reads exactly these.
  return `SELECT
  assumeNotNull(toUInt64(ifNull(l.li, e.li))) AS xi,
  assumeNotNull(toUInt8(if(l.li IS NULL, 0, ${LEAF_SIDE}) + if(e.li IS NULL, 0, ${EVENT_SIDE}))) AS xk,
  assumeNotNull(toFixedString(unhex(ifNull(l.lh, e.lh)), 32)) AS xh,
  assumeNotNull(toUInt8(ifNull(l.lok, 0))) AS xok,
  assumeNotNull(toUInt8(ifNull(l.insc, e.insc))) AS xin,
  assumeNotNull(toUInt64(ifNull(l.rcv, e.rcv))) AS xr,
  assumeNotNull(toUInt8(if(l.li IS NULL OR e.li IS NULL, 1, l.eid = e.eid AND l.rcv = e.rcv AND l.tm = e.tm))) AS xm,
  assumeNotNull(toString(if(l.li IS NULL OR e.li IS NULL, ifNull(l.eid, e.eid), ''))) AS xe,
  assumeNotNull(toString(if(l.li IS NULL OR e.li IS NULL, ifNull(l.st, e.st), ''))) AS xs,
  assumeNotNull(toUInt64(if(l.li IS NULL OR e.li IS NULL, ifNull(l.sq, e.sq), 0))) AS xq,
  assumeNotNull(toString(if(l.li IS NULL OR e.li IS NULL, ifNull(l.eh, e.eh), ''))) AS xeh
FROM (
  SELECT leaf_index AS li, toString(leaf_hash) AS lh, toString(event_id) AS eid,
    toString(event_hash) AS eh, stream AS st, seq AS sq,
    toUnixTimestamp64Milli(received_at) AS rcv, toUnixTimestamp64Milli(time) AS tm,
    ${leafScope} AS insc,
    toUInt8(leaf_hash = ${leafHashSql('event_hash', 'unhex(column_digest)')}) AS lok
  FROM ${store.table('merkle_leaves')} FINAL
  WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32}
    AND leaf_index >= {from:UInt64} AND leaf_index < {to:UInt64}
) AS l
FULL OUTER JOIN (
  SELECT leaf_index AS li, leaf_hash AS lh, toString(id) AS eid, toString(hash) AS eh,
    stream AS st, seq AS sq, toUnixTimestamp64Milli(received_at) AS rcv,
    toUnixTimestamp64Milli(time) AS tm, ${leafScope} AS insc
  FROM ${store.table('events')} FINAL
  WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32} AND leaf_hash != ''
    AND leaf_index >= {from:UInt64} AND leaf_index < {to:UInt64}
) AS e
ON l.li = e.li AND l.lh = e.lh`;
}

function readRow(r: RowBinaryReader): Row | undefined {
  if (!r.has(8 + 1 + 32 + 1 + 1 + 8 + 1)) return undefined;
  const idx = r.u64();
  const kind = r.u8();
  // A view, not a copy: the reader never writes into a buffer it handed out.
  const hash = r.fixed(32);
  const leafOk = r.u8() === 1;
  const inScope = r.u8() === 1;
  const receivedAt = r.u64();
  const metaOk = r.u8() === 1;
  const eventId = r.string();
  if (eventId === undefined) return undefined;
  const stream = r.string();
  if (stream === undefined || !r.has(8)) return undefined;
  const seq = r.u64();
  const eventHash = r.string();
  if (eventHash === undefined) return undefined;
  return {
    idx,
    kind,
    hash,
    leafOk,
    inScope,
    receivedAt,
    metaOk,
    eventId,
    stream,
    seq,
    eventHash,
  };
}

/** A row of the common kind (leaf and event, both consistent) from its compact form. */
function commonRow(idx: number, hash: Buffer, receivedAt: number): Row {
  return {
    idx,
    kind: LEAF_SIDE + EVENT_SIDE,
    hash,
    leafOk: true,
    inScope: true,
    receivedAt,
    metaOk: true,
    eventId: '',
    stream: '',
    seq: 0,
    eventHash: '',
  };
}

/** One side (leaves or event rows) of a chunk, set in place by leaf index. */
interface Side {
  /** Rows at each index (2 stands for two or more). */
  readonly count: Uint8Array;
  /** Leaf hash, 32 bytes per index. */
  readonly hash: Buffer;
  /** Event id (16 bytes of the UUID), receipt time and event time. */
  readonly eventId: Buffer;
  readonly received: Float64Array;
  readonly time: Float64Array;
  /** Leaves: the leaf hash binds the fields beside it; events: the hash is 64 hex digits. */
  readonly ok: Uint8Array;
  /** A row outside the chunk's range was read. */
  outside: boolean;
}

/**
 * One side of a chunk as fixed-size RowBinary rows: leaf index, leaf hash, ok, event id, receipt
 * time, event time. Explicit types: RowBinary has no per-column framing.
 */
function sideSql(store: Store, side: 'leaves' | 'events'): string {
  const common = `toUInt64(leaf_index) AS li`;
  const times = `toUInt64(toUnixTimestamp64Milli(received_at)) AS rcv, toInt64(toUnixTimestamp64Milli(time)) AS tm`;
  if (side === 'leaves')
    return `SELECT ${common},
  toFixedString(substring(unhex(toString(leaf_hash)), 1, 32), 32) AS lh,
  toUInt8(leaf_hash = ${leafHashSql('event_hash', 'unhex(column_digest)')}) AS ok,
  reinterpretAsFixedString(event_id) AS eid, ${times}
FROM ${store.table('merkle_leaves')} FINAL
WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32}
  AND leaf_index >= {from:UInt64} AND leaf_index < {to:UInt64}`;
  // Rows outside the scope are members of the tree all the same: the scope only decides, in
  // the join, which leaves must have their events.
  return `SELECT ${common},
  toFixedString(substring(unhex(leaf_hash), 1, 32), 32) AS lh,
  toUInt8(length(leaf_hash) = 64 AND leaf_hash = lower(hex(unhex(leaf_hash)))) AS ok,
  reinterpretAsFixedString(id) AS eid, ${times}
FROM ${store.table('events')} FINAL
WHERE tenant_id = {tenant:String} AND log_partition = {partition:UInt32} AND leaf_hash != ''
  AND leaf_index >= {from:UInt64} AND leaf_index < {to:UInt64}`;
}

async function readSide(
  ctx: TreeContext,
  sql: string,
  params: Record<string, unknown>,
  from: number,
  size: number,
): Promise<Side> {
  const side: Side = {
    count: new Uint8Array(size),
    hash: Buffer.alloc(size * 32),
    eventId: Buffer.alloc(size * 16),
    received: new Float64Array(size),
    time: new Float64Array(size),
    ok: new Uint8Array(size),
    outside: false,
  };
  const ROW = 8 + 32 + 1 + 16 + 8 + 8;
  await forEachRowBinary(
    ctx.store,
    sql,
    params,
    (r) => {
      if (!r.has(ROW)) return false;
      const at = r.u64() - from;
      const hash = r.fixed(32);
      const ok = r.u8();
      const eventId = r.fixed(16);
      const received = r.u64();
      const time = r.i64();
      if (!(at >= 0 && at < size)) {
        side.outside = true;
        return true;
      }
      const n = side.count[at] as number;
      side.count[at] = n >= 2 ? 2 : n + 1;
      if (n > 0) return true;
      hash.copy(side.hash, at * 32);
      eventId.copy(side.eventId, at * 16);
      side.received[at] = received;
      side.time[at] = time;
      side.ok[at] = ok;
      return true;
    },
    { use_query_condition_cache: 0, do_not_merge_across_partitions_select_final: 1 },
  );
  return side;
}

/** Whether the leaf and the event row at `at` have the same leaf hash, event id and times. */
function sameRow(l: Side, e: Side, at: number): boolean {
  return (
    l.hash.compare(e.hash, at * 32, at * 32 + 32, at * 32, at * 32 + 32) === 0 &&
    l.eventId.compare(e.eventId, at * 16, at * 16 + 16, at * 16, at * 16 + 16) === 0 &&
    l.received[at] === e.received[at] &&
    l.time[at] === e.time[at]
  );
}

/** Verifies the tree of one partition against the heads verified checkpoints state for it. */
export async function verifyTree(
  ctx: TreeContext,
  partition: number,
  lastIndex: number,
  heads: readonly StatedHead[],
): Promise<TreeOutcome> {
  const { findings } = ctx;
  const frontier = new MerkleFrontier();
  let broken = false;
  let expected = 0;
  let events = 0;
  let maxReceived = -Infinity;
  let headAt = 0;
  let matched = 0;
  const misplaced: MisplacedEvent[] = [];
  const orphans: OrphanLeaf[] = [];
  /** Leaves no verified checkpoint covers that were received before the grace period. */
  let oldUnsigned = 0;
  const maxSigned = heads.length > 0 ? (heads[heads.length - 1] as StatedHead).size : 0;

  const compareHeads = (): void => {
    while (headAt < heads.length && (heads[headAt] as StatedHead).size <= frontier.size) {
      const head = heads[headAt++] as StatedHead;
      if (head.size < frontier.size || broken) continue;
      const root = frontier.root().toString('hex');
      if (root === head.root) {
        matched += head.checkpoints.length;
        continue;
      }
      for (const c of head.checkpoints)
        findings.add({
          category: 'rewritten',
          message: `the stored leaves 0–${head.size - 1} do not have the root this checkpoint signs: leaves were changed, inserted, removed or reordered after it was signed`,
          partition,
          leafFrom: 0,
          leafTo: head.size - 1,
          count: head.size,
          checkpoint: c.id,
          sources: [...c.sources],
        });
    }
  };

  /** The common case: one leaf at the next index, with its event, both consistent. */
  const plain = (row: Row): boolean => {
    if (row.kind !== LEAF_SIDE + EVENT_SIDE || !row.leafOk || !row.metaOk || row.idx !== expected)
      return false;
    expected++;
    events++;
    if (!broken) frontier.append(row.hash);
    if (row.receivedAt > maxReceived) maxReceived = row.receivedAt;
    if (row.idx >= maxSigned && row.receivedAt < ctx.now - ctx.unsignedGraceMs) oldUnsigned++;
    if (headAt < heads.length && (heads[headAt] as StatedHead).size <= frontier.size)
      compareHeads();
    return true;
  };

  /** The rows of one leaf index, gathered before they are judged. */
  let group: Row[] = [];
  const flush = (): void => {
    if (group.length === 1 && plain(group[0] as Row)) {
      group = [];
      return;
    }
    if (group.length > 0) judge(group);
    group = [];
  };
  const judge = (rows: Row[]): void => {
    const idx = (rows[0] as Row).idx;
    if (idx > expected) {
      findings.add({
        category: 'missing',
        message:
          'leaves are not stored (deleted from merkle_leaves): the tree cannot be recomputed past them',
        partition,
        leafFrom: expected,
        leafTo: idx - 1,
        count: idx - expected,
      });
      broken = true;
    }
    expected = idx + 1;
    const leaves = rows.filter((r) => (r.kind & LEAF_SIDE) !== 0);
    const eventOnly = rows.filter((r) => r.kind === EVENT_SIDE);
    const withEvent = leaves.find((r) => r.kind === LEAF_SIDE + EVENT_SIDE);
    const chosen = withEvent ?? leaves[0];
    for (const other of leaves) {
      if (other === chosen) continue;
      findings.add({
        category: 'inserted',
        message: 'a second, different leaf claims this position',
        partition,
        leafFrom: idx,
        leafTo: idx,
        ...(other.eventId !== '' ? { eventId: other.eventId } : {}),
      });
    }
    for (const e of eventOnly)
      misplaced.push({
        partition,
        leafIndex: idx,
        leafHash: e.hash.toString('hex'),
        eventId: e.eventId,
        eventHash: e.eventHash,
        stream: e.stream,
        seq: e.seq,
      });
    if (!chosen) {
      // A stored event at a position whose leaf is gone: continue the tree with the event's
      // own leaf hash (bound to its row), the root comparison will tell whether it fits.
      const e = eventOnly[0] as Row;
      findings.add({
        category: 'missing',
        message: 'the leaf is not stored (deleted from merkle_leaves) though its event row is',
        partition,
        leafFrom: idx,
        leafTo: idx,
      });
      if (!broken) frontier.append(e.hash);
      events += eventOnly.length;
      return;
    }
    if (!chosen.leafOk)
      findings.add({
        category: 'edited',
        message:
          'the leaf hash does not bind the stream, seq, event hash and column digest stored with it',
        partition,
        leafFrom: idx,
        leafTo: idx,
      });
    if (!broken) frontier.append(chosen.hash);
    if (chosen.kind === LEAF_SIDE + EVENT_SIDE) {
      events++;
      if (!chosen.metaOk)
        findings.add({
          category: 'edited',
          message:
            'merkle_leaves names another event id, time or receipt time than the stored event',
          partition,
          leafFrom: idx,
          leafTo: idx,
        });
    } else if (chosen.inScope) {
      const verdict = ctx.retention.explain(chosen.receivedAt);
      const backdated = chosen.receivedAt < maxReceived - RECEIPT_ORDER_SLACK_MS;
      if (verdict.explained && !backdated) {
        findings.add({
          category: 'removed_by_retention',
          message: verdict.reason,
          partition,
          leafFrom: idx,
          leafTo: idx,
        });
      } else {
        orphans.push({
          partition,
          leafIndex: idx,
          leafHash: chosen.hash.toString('hex'),
          eventId: chosen.eventId,
          eventHash: chosen.eventHash,
          stream: chosen.stream,
          seq: chosen.seq,
          reason: backdated
            ? 'its recorded receipt time is earlier than that of leaves before it (backdated?)'
            : verdict.reason,
        });
      }
    }
    if (chosen.receivedAt > maxReceived) maxReceived = chosen.receivedAt;
    if (idx >= maxSigned && chosen.receivedAt < ctx.now - ctx.unsignedGraceMs) oldUnsigned++;
    compareHeads();
  };

  for (let from = 0; from <= lastIndex; from += LEAF_CHUNK) {
    // Each side is read on its own, a plain scan streamed as fixed-size binary rows, and set in
    // place by leaf index; an index with exactly one leaf and one event row that agree (the
    // common case) is judged from that alone. Joining the two in the engine cost more than all
    // the rest of the tree check; it now runs only over the span of the indexes that differ.
    const size = Math.min(LEAF_CHUNK, lastIndex + 1 - from);
    const params = { ...ctx.scope.params, tenant: ctx.tenant, partition, from, to: from + size };
    const leaves = await readSide(ctx, sideSql(ctx.store, 'leaves'), params, from, size);
    const events = await readSide(ctx, sideSql(ctx.store, 'events'), params, from, size);
    const hashes = leaves.hash;
    const received = leaves.received;
    const common = new Uint8Array(size);
    let lo = Infinity;
    let hi = -Infinity;
    for (let at = 0; at < size; at++) {
      const l = leaves.count[at] as number;
      const e = events.count[at] as number;
      if (l === 0 && e === 0) continue;
      if (
        l === 1 &&
        e === 1 &&
        leaves.ok[at] === 1 &&
        events.ok[at] === 1 &&
        sameRow(leaves, events, at)
      ) {
        common[at] = 1;
        continue;
      }
      if (at < lo) lo = at;
      hi = at;
    }
    if (leaves.outside || events.outside) {
      lo = 0;
      hi = size - 1;
    }
    const others = new Map<number, Row[]>();
    const gather = (row: Row): void => {
      const list = others.get(row.idx);
      if (list) list.push(row);
      else others.set(row.idx, [row]);
    };
    if (hi >= lo)
      await forEachRowBinary(
        ctx.store,
        joinSql(ctx.store, ctx.scope),
        { ...params, from: from + lo, to: from + hi + 1 },
        (reader) => {
          const row = readRow(reader);
          if (!row) return false;
          const at = row.idx - from;
          if (at >= 0 && at < size && common[at] === 1) return true;
          gather(row);
          return true;
        },
        {
          join_use_nulls: 1,
          use_query_condition_cache: 0,
          do_not_merge_across_partitions_select_final: 1,
        },
      );
    let seen = 0;
    for (let at = 0; at < size; at++) {
      if (common[at] === 1) {
        seen++;
        group = [
          commonRow(from + at, hashes.subarray(at * 32, at * 32 + 32), received[at] as number),
        ];
      } else {
        const rows = others.get(from + at);
        if (!rows) continue;
        others.delete(from + at);
        seen += rows.length;
        group = rows;
      }
      flush();
    }
    // Rows outside the chunk's range: none from this query's filters, judged all the same.
    for (const idx of [...others.keys()].sort((a, b) => a - b)) {
      group = others.get(idx) as Row[];
      seen += group.length;
      flush();
    }
    ctx.onLeaves?.(seen);
  }
  const stored = expected;
  for (; headAt < heads.length; headAt++) {
    const head = heads[headAt] as StatedHead;
    if (head.size <= stored) continue;
    for (const c of head.checkpoints)
      findings.add({
        category: 'truncated',
        message: `a verified checkpoint states ${head.size} leaves; the store has ${stored}: leaves ${stored}–${head.size - 1} were removed after it was signed`,
        partition,
        leafFrom: stored,
        leafTo: head.size - 1,
        count: head.size - stored,
        checkpoint: c.id,
        sources: [...c.sources],
      });
  }
  if (stored > maxSigned) {
    if (oldUnsigned > 0)
      findings.add({
        category: 'unsigned',
        message:
          maxSigned === 0
            ? 'no checkpoint verified with a pinned key states this tree: nothing proves its leaves'
            : 'leaves received long ago are not covered by any checkpoint verified with a pinned key',
        partition,
        leafFrom: maxSigned,
        leafTo: stored - 1,
        count: stored - maxSigned,
      });
    else
      findings.add({
        category: 'unsigned_tail',
        message: 'stored after the newest verified checkpoint: not signed yet',
        partition,
        leafFrom: maxSigned,
        leafTo: stored - 1,
        count: stored - maxSigned,
      });
  }
  return {
    partition,
    leaves: stored,
    events,
    signedSize: Math.min(maxSigned, stored),
    matchedCheckpoints: matched,
    ...(!broken
      ? { root: (stored === 0 ? EMPTY_TREE_ROOT : frontier.root()).toString('hex') }
      : {}),
    misplaced,
    orphans,
  };
}
