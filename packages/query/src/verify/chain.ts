import { ZERO_HASH } from '@vigil/protocol';
import type { Store } from '../store/store.js';
import type { Findings } from './findings.js';
import type { Scope } from './scope.js';

/**
 * The chain half of a verification (PROTOCOL.md §6, §8.2, §19.3). The engine orders each
 * stream's stored events by seq (a window function, `lagInFrame` over `PARTITION BY stream
 * ORDER BY seq`) and returns only the rows where a link does not hold at once: the first stored
 * event of a stream that does not start at 0, a seq stored twice, a gap, a `prev` that is not
 * the hash before it, a leaf order that contradicts the seq order. Each is then resolved against
 * every leaf of the stream — the leaves keep (stream, seq, event hash) of events that retention
 * has deleted — and against the consumer's own record of what it saw at ingest: its flags on the
 * row (`gap`, `fork`, `after_close`, `conflict`) and the signed `integrity.*` event it wrote for
 * each. A break the consumer recorded is information; one it did not is a failure.
 */

/** Actions of the consumer's integrity events (collector sink/sink.ts), by flag. */
const INTEGRITY_ACTIONS: Readonly<Record<string, string>> = {
  'integrity.chain_gap': 'gap',
  'integrity.chain_fork': 'fork',
  'integrity.event_after_close': 'after_close',
  'integrity.noncanonical_record': 'noncanonical',
};

/** Flags the consumer sets that are recorded by an integrity event of its own. */
const RECORDED_FLAGS = ['gap', 'fork', 'after_close', 'noncanonical'] as const;

interface Anomaly {
  st: string;
  sq: number | string;
  h: string;
  pv: string;
  fl: string[];
  eid: string;
  part: number | string;
  li: number | string;
  hl: number | string;
  psq: number | string;
  ph: string;
  pli: number | string;
  ppart: number | string;
  rn: number | string;
}

/** What the consumer recorded at ingest: `${eventId}|${eventHash}|${flag}`. */
export async function integrityRecords(store: Store, tenant: string): Promise<Set<string>> {
  const rows = await store.query<{ rec: string }>(
    `SELECT record AS rec FROM ${store.table('events')} FINAL
     WHERE tenant_id = {tenant:String} AND startsWith(stream, 'vigil/integrity/')
       AND action IN {actions:Array(String)}`,
    { tenant, actions: Object.keys(INTEGRITY_ACTIONS) },
  );
  const out = new Set<string>();
  for (const r of rows) {
    try {
      const record = JSON.parse(r.rec) as {
        action?: string;
        metadata?: { eventId?: string; eventHash?: string };
      };
      const flag = INTEGRITY_ACTIONS[record.action ?? ''];
      const m = record.metadata;
      if (flag && m?.eventId && m.eventHash) out.add(`${m.eventId}|${m.eventHash}|${flag}`);
    } catch {
      // An unreadable integrity record is reported by the event checks; it records nothing.
    }
  }
  return out;
}

export interface ChainContext {
  readonly store: Store;
  readonly tenant: string;
  readonly scope: Scope;
  readonly findings: Findings;
  /** integrityRecords() of the tenant. */
  readonly recorded: ReadonlySet<string>;
}

/** Verifies every link of the streams in scope; returns how many streams it saw. */
export async function verifyChains(ctx: ChainContext): Promise<number> {
  const { store, findings } = ctx;
  const zero = ZERO_HASH;
  // The window carries the stored FixedString hashes as they are; only the rows returned are
  // turned into text. Versions of one row (an erasure's rewrite) share its partition, so FINAL
  // need not merge across partitions.
  const anomalies = await store.query<Anomaly>(
    `SELECT st, sq, toString(hx) AS h, toString(pvx) AS pv, fl, toString(idx) AS eid, part, li, hl,
       psq, toString(phx) AS ph, pli, ppart, rn FROM (
       SELECT stream AS st, seq AS sq, hash AS hx, prev AS pvx, flags AS fl,
         id AS idx, log_partition AS part, leaf_index AS li, leaf_hash != '' AS hl,
         lagInFrame(seq) OVER w AS psq, lagInFrame(hash) OVER w AS phx,
         lagInFrame(leaf_index) OVER w AS pli, lagInFrame(log_partition) OVER w AS ppart,
         row_number() OVER w AS rn
       FROM ${store.table('events')} FINAL
       WHERE tenant_id = {tenant:String} AND ${ctx.scope.sql('time', 'stream')}
       WINDOW w AS (PARTITION BY stream ORDER BY seq, leaf_index
                    ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
     )
     WHERE NOT (rn = 1 AND sq = 0 AND pvx = {zero:String})
       AND NOT (rn > 1 AND sq = psq + 1 AND pvx = phx AND NOT (hl AND part = ppart AND li < pli))
       OR hasAny(fl, ['gap', 'fork', 'after_close', 'conflict'])`,
    { ...ctx.scope.params, tenant: ctx.tenant, zero },
    { do_not_merge_across_partitions_select_final: 1, use_query_condition_cache: 0 },
  );
  const streams = await store.query<{ n: number | string }>(
    `SELECT uniqExact(stream) AS n FROM ${store.table('events')}
     WHERE tenant_id = {tenant:String} AND ${ctx.scope.sql('time', 'stream')}`,
    { ...ctx.scope.params, tenant: ctx.tenant },
  );
  // Hashes stored at (stream, seq − 1) of the rows to resolve: leaves (every event ever
  // stored, including those retention deleted) and rows without a leaf.
  const wanted = new Map<string, [string, number]>();
  for (const a of anomalies) {
    const seq = Number(a.sq);
    if (seq > 0) wanted.set(`${a.st}\u0000${seq - 1}`, [a.st, seq - 1]);
  }
  const known = await storedHashes(ctx, [...wanted.values()]);
  for (const a of anomalies) judgeLink(ctx, a, known, findings, zero);
  return Number(streams[0]?.n ?? 0);
}

async function storedHashes(
  ctx: ChainContext,
  pairs: readonly (readonly [string, number])[],
): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  const { store } = ctx;
  for (let i = 0; i < pairs.length; i += 20_000) {
    const chunk = pairs.slice(i, i + 20_000);
    // Parameters bind arrays, not arrays of tuples: the pairs are zipped back in SQL.
    const pairsSql = `(stream, seq) IN (SELECT t.1, t.2 FROM (SELECT arrayJoin(arrayZip({ss:Array(String)}, {qs:Array(UInt64)})) AS t))`;
    const rows = await store.query<{ st: string; sq: number | string; eh: string }>(
      `SELECT stream AS st, seq AS sq, toString(event_hash) AS eh
       FROM ${store.table('merkle_leaves')}
       WHERE tenant_id = {tenant:String} AND ${pairsSql}
       UNION ALL
       SELECT stream AS st, seq AS sq, toString(hash) AS eh
       FROM ${store.table('events')}
       WHERE tenant_id = {tenant:String} AND leaf_hash = '' AND ${pairsSql}`,
      { tenant: ctx.tenant, ss: chunk.map(([s]) => s), qs: chunk.map(([, q]) => q) },
    );
    for (const r of rows) {
      const key = `${r.st}\u0000${Number(r.sq)}`;
      let set = out.get(key);
      if (!set) out.set(key, (set = new Set()));
      set.add(r.eh);
    }
  }
  return out;
}

function judgeLink(
  ctx: ChainContext,
  a: Anomaly,
  known: ReadonlyMap<string, ReadonlySet<string>>,
  findings: Findings,
  zero: string,
): void {
  const seq = Number(a.sq);
  const first = Number(a.rn) === 1;
  const where = {
    eventId: a.eid,
    eventHash: a.h,
    stream: a.st,
    seq,
    partition: Number(a.part),
    ...(Number(a.hl) === 1 ? { leafFrom: Number(a.li), leafTo: Number(a.li) } : {}),
  };
  const flags = new Set(a.fl);
  const recorded = (flag: string): boolean => ctx.recorded.has(`${a.eid}|${a.h}|${flag}`);
  // Flags the consumer sets at ingest, each confirmed by its signed integrity event.
  for (const flag of RECORDED_FLAGS) {
    if (!flags.has(flag) || flag === 'noncanonical') continue;
    if (recorded(flag))
      findings.add({
        ...where,
        category: 'recorded_at_ingest',
        message: `${flag === 'after_close' ? 'event after stream.closed' : `chain ${flag}`} seen and recorded by the consumer at ingest`,
      });
    else
      findings.add({
        ...where,
        category: 'edited',
        message: `the row is flagged ${flag}, but no integrity event of the consumer records it`,
      });
  }
  if (flags.has('conflict'))
    findings.add({
      ...where,
      category: 'recorded_at_ingest',
      message: 'event id reused with other content; stored and flagged by the consumer at ingest',
    });
  // The consumer's signed record decides, whatever the row's flags say now (a flag removed
  // later is reported by reconcileIntegrity).
  const forkRecorded = recorded('fork');
  const gapRecorded = recorded('gap');
  if (seq === 0) {
    if (a.pv !== zero && !forkRecorded)
      findings.add({
        ...where,
        category: 'chain_break',
        message: 'seq 0 does not start from the zero hash',
      });
    if (!first && !forkRecorded)
      findings.add({ ...where, category: 'chain_break', message: 'seq 0 is stored twice' });
    return;
  }
  if (!first && Number(a.psq) === seq) {
    if (!forkRecorded)
      findings.add({
        ...where,
        category: 'inserted',
        message: `a second event at seq ${seq} of its stream, not recorded as a fork at ingest`,
      });
    return;
  }
  const linked = !first && Number(a.psq) === seq - 1 && a.pv === a.ph;
  if (linked) {
    // The link holds but the leaves are in the opposite order of the seqs.
    if (!forkRecorded)
      findings.add({
        ...where,
        category: 'reordered',
        message: `seq ${seq} is at leaf ${Number(a.li)}, before seq ${seq - 1} at leaf ${Number(a.pli)}: the log order was changed`,
      });
    return;
  }
  const before = known.get(`${a.st}\u0000${seq - 1}`);
  if (before?.has(a.pv)) return;
  if (before && before.size > 0) {
    if (!forkRecorded)
      findings.add({
        ...where,
        category: 'chain_break',
        message: `prev is not the hash of the event stored at seq ${seq - 1}`,
      });
    return;
  }
  if (!gapRecorded)
    findings.add({
      ...where,
      category: 'chain_break',
      message: `seq ${seq - 1} of its stream was never stored (no event, no leaf) and no gap was recorded at ingest`,
    });
}

/**
 * Every flag the consumer's signed integrity events record must still be on its row: a flag
 * removed from `flags` would hide from search what the consumer saw at ingest.
 */
export async function reconcileIntegrity(ctx: ChainContext): Promise<void> {
  const byId = new Map<string, { hash: string; flag: string }[]>();
  for (const key of ctx.recorded) {
    const [eventId, hash, flag] = key.split('|') as [string, string, string];
    const list = byId.get(eventId) ?? [];
    list.push({ hash, flag });
    byId.set(eventId, list);
  }
  const ids = [...byId.keys()];
  for (let i = 0; i < ids.length; i += 1000) {
    const rows = await ctx.store.query<{
      eid: string;
      h: string;
      fl: string[];
      st: string;
      sq: number | string;
      part: number | string;
    }>(
      `SELECT toString(id) AS eid, toString(hash) AS h, flags AS fl, stream AS st, seq AS sq, log_partition AS part
       FROM ${ctx.store.table('events')} FINAL
       WHERE tenant_id = {tenant:String} AND id IN {ids:Array(UUID)} AND ${ctx.scope.sql('time', 'stream')}`,
      { ...ctx.scope.params, tenant: ctx.tenant, ids: ids.slice(i, i + 1000) },
    );
    for (const r of rows) {
      for (const { hash, flag } of byId.get(r.eid) ?? []) {
        if (hash !== r.h || r.fl.includes(flag)) continue;
        ctx.findings.add({
          category: 'edited',
          message: `the consumer recorded this event as ${flag} at ingest, but the row's flag was removed`,
          eventId: r.eid,
          eventHash: r.h,
          stream: r.st,
          seq: Number(r.sq),
          partition: Number(r.part),
        });
      }
    }
  }
}
