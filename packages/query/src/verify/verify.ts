import { checkpointKeyId, type PublicKeyInput } from '@vigil/protocol';
import { fromChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { integrityRecords, reconcileIntegrity, verifyChains } from './chain.js';
import {
  statedHeads,
  storeCheckpoints,
  verifyCheckpoints,
  type CheckpointSummary,
  type TrustedCheckpoint,
} from './checkpoints.js';
import { EVENT_SQL_SETTINGS, eventCheckSql, ROW_BITS } from './event-sql.js';
import {
  checkStoredEvents,
  fetchEvents,
  type EventVerdict,
  type TenantKeyLookup,
} from './events.js';
import { Findings, type Category, type Finding } from './findings.js';
import { RetentionExplainer } from './retention.js';
import { Scope, type ScopeFilter } from './scope.js';
import { verifyTree, type MisplacedEvent, type OrphanLeaf, type TreeResult } from './tree.js';

/**
 * `vigil verify` (PROTOCOL.md §19): checks a tenant's stored log — every record, disclosure,
 * typed column, chain link, leaf, tree root and checkpoint — against public keys the verifier
 * pins, and optionally checkpoints it holds itself (a trusted file, a witness's copies). It
 * reports exactly which events or leaf ranges fail and why, and what is legitimately absent
 * (retention, erasure). Failures are what the exit code counts.
 *
 * Work is split between the store engine and this process: the engine runs the per-row checks
 * over the bytes it holds (event-sql.ts) and the joins and window functions of the trees and
 * chains, and returns only what does not pass, plus every leaf hash; here the trees are
 * recomputed, checkpoints verified, and each failing row re-checked with the reference code so
 * that its finding says precisely what is wrong.
 */

export interface VerifyOptions {
  readonly tenant: string;
  /** Pinned public keys (raw bytes, base64url or PEM). Required: nothing else is trusted. */
  readonly keys: readonly PublicKeyInput[];
  /** Checkpoints the verifier holds: trusted files and a witness's copies. */
  readonly trusted?: readonly TrustedCheckpoint[];
  readonly scope?: ScopeFilter;
  /** Tenant keys of pseudonymised rows, when this process holds the privacy master key. */
  readonly tenantKeys?: TenantKeyLookup;
  /** The verification's clock (retention, grace periods); default Date.now(). */
  readonly now?: number;
  /** Leaves older than this and not covered by a verified checkpoint fail (default 1 hour). */
  readonly unsignedGraceMs?: number;
  /**
   * Parse every record and compare each typed column and disclosure with it (`--deep`), besides
   * the column digest every leaf binds. Without it, one hash per row checks the columns.
   */
  readonly deep?: boolean;
  /** Events per engine query (progress granularity); default 250 000. */
  readonly chunkEvents?: number;
  readonly onProgress?: (progress: VerifyProgress) => void;
}

export interface VerifyProgress {
  readonly phase: 'events' | 'trees' | 'chains' | 'done';
  /** Events checked so far and in total (in scope). */
  readonly events: number;
  readonly totalEvents: number;
  /** Leaves recomputed so far and in total. */
  readonly leaves: number;
  readonly totalLeaves: number;
}

export interface VerifyReport {
  readonly v: 1;
  readonly tenant: string;
  /** True when there is no failure. */
  readonly ok: boolean;
  readonly scope: ScopeFilter;
  /** Key ids of the pinned keys. */
  readonly keys: readonly string[];
  readonly startedAt: string;
  readonly seconds: number;
  readonly totals: {
    readonly events: number;
    readonly leaves: number;
    readonly streams: number;
    readonly partitions: number;
    readonly checkpoints: CheckpointSummary;
    readonly failures: number;
    readonly byCategory: Readonly<Partial<Record<Category, number>>>;
  };
  readonly trees: readonly TreeResult[];
  readonly findings: readonly Finding[];
}

type RowVerdict = {
  eid: string;
  h: string;
  part: number | string;
  li: number | string;
  lh: string;
  st: string;
  sq: number | string;
  fl: string[];
  rcv: number | string;
  bits: number | string;
  und: string[];
  ers: string[];
};

const DEFAULT_CHUNK = 250_000;

/** Whether the events table has migration 5's privacy columns. */
async function hasPrivacyColumns(store: Store): Promise<boolean> {
  const rows = await store.query<{ n: string }>(
    `SELECT name AS n FROM system.columns WHERE database = {db:String} AND table = 'events'`,
    { db: store.database },
  );
  const names = new Set(rows.map((r) => r.n));
  return names.has('erased_paths') && names.has('pseudonyms');
}

/**
 * Times that cut the tenant's events into chunks of about `size` (sampled quantiles of `time`:
 * chunks only pace the progress report, so their sizes need not be exact), and the total.
 */
async function chunkBounds(
  store: Store,
  tenant: string,
  scope: Scope,
  size: number,
): Promise<{ total: number; bounds: string[] }> {
  const count = await store.query<{ n: number | string }>(
    `SELECT count() AS n FROM ${store.table('events')} FINAL
     WHERE tenant_id = {tenant:String} AND ${scope.sql('time', 'stream')}`,
    { ...scope.params, tenant },
  );
  const total = Number(count[0]?.n ?? 0);
  const chunks = Math.ceil(total / size);
  if (chunks <= 1) return { total, bounds: [] };
  const levels = Array.from({ length: chunks - 1 }, (_, i) => (i + 1) / chunks);
  const rows = await store.query<{ q: string[] }>(
    `SELECT arrayMap(t -> toString(t), quantiles(${levels.join(', ')})(time)) AS q
     FROM ${store.table('events')}
     WHERE tenant_id = {tenant:String} AND ${scope.sql('time', 'stream')}`,
    { ...scope.params, tenant },
  );
  return { total, bounds: [...new Set(rows[0]?.q ?? [])] };
}

export async function verifyLog(store: Store, options: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const now = options.now ?? started;
  const { tenant } = options;
  if (options.keys.length === 0) throw new TypeError('verifyLog needs at least one pinned key');
  const keyIds = options.keys.map((k) => checkpointKeyId(k));
  const scope = new Scope(options.scope ?? {});
  const findings = new Findings();
  const progress = { events: 0, totalEvents: 0, leaves: 0, totalLeaves: 0 };
  const report = (phase: VerifyProgress['phase']): void =>
    options.onProgress?.({ phase, ...progress });

  // 1. Checkpoints: only those that verify with a pinned key state anything.
  const fromStore = await storeCheckpoints(store, tenant);
  const checkpoints = verifyCheckpoints(
    tenant,
    fromStore,
    options.trusted ?? [],
    options.keys,
    findings,
  );
  const heads = statedHeads(checkpoints.verified);

  const privacyColumns = await hasPrivacyColumns(store);
  const retention = await RetentionExplainer.load(store, tenant, now);
  const recorded = await integrityRecords(store, tenant);
  const { total, bounds } = await chunkBounds(
    store,
    tenant,
    scope,
    options.chunkEvents ?? DEFAULT_CHUNK,
  );
  progress.totalEvents = total;

  // The trees to recompute: every partition with leaves or events, or stated by a checkpoint.
  const sizes = await store.query<{ part: number | string; top: number | string }>(
    `SELECT part, max(top) AS top FROM (
       SELECT log_partition AS part, max(leaf_index) AS top FROM ${store.table('merkle_leaves')}
       WHERE tenant_id = {tenant:String} GROUP BY log_partition
       UNION ALL
       SELECT log_partition AS part, max(leaf_index) AS top FROM ${store.table('events')}
       WHERE tenant_id = {tenant:String} AND leaf_hash != '' GROUP BY log_partition
     ) GROUP BY part ORDER BY part`,
    { tenant },
  );
  const partitions = new Map<number, number>(sizes.map((s) => [Number(s.part), Number(s.top)]));
  for (const p of heads.keys()) if (!partitions.has(p)) partitions.set(p, -1);
  progress.totalLeaves = [...partitions.values()].reduce((a, top) => a + top + 1, 0);
  report('events');

  const firstLeaf = await store.query<{ t: string | null }>(
    `SELECT if(count() = 0, NULL, toString(min(received_at))) AS t
     FROM ${store.table('merkle_leaves')} WHERE tenant_id = {tenant:String}`,
    { tenant },
  );
  const treesSince = firstLeaf[0]?.t ? fromChTime(firstLeaf[0].t) : Infinity;

  // 2. Events, chunk by chunk in the engine, while the trees are recomputed here.
  const toCheck: RowVerdict[] = [];
  const undisclosed = new Map<string, { erased: number; withheld: number }>();
  const eventsPhase = (async () => {
    const edges = [undefined, ...bounds, undefined];
    for (let i = 0; i + 1 < edges.length; i++) {
      const lower = edges[i];
      const upper = edges[i + 1];
      const params: Record<string, unknown> = { ...scope.params, tenant };
      let chunk = '';
      if (lower !== undefined) {
        chunk += ` AND time >= {lt:DateTime64(3)}`;
        params['lt'] = lower;
      }
      if (upper !== undefined) {
        chunk += ` AND time < {ut:DateTime64(3)}`;
        params['ut'] = upper;
      }
      const from = `FROM ${store.table('events')} FINAL
  WHERE tenant_id = {tenant:String} AND ${scope.sql('time', 'stream')}${chunk}`;
      const rows = await store.query<RowVerdict>(
        eventCheckSql(from, { privacyColumns, deep: options.deep ?? false }),
        params,
        EVENT_SQL_SETTINGS,
      );
      for (const r of rows) {
        for (const path of r.und) {
          const entry = undisclosed.get(path) ?? { erased: 0, withheld: 0 };
          if (r.ers.includes(path)) entry.erased++;
          else entry.withheld++;
          undisclosed.set(path, entry);
        }
        const bits = Number(r.bits);
        if (bits & ROW_BITS.noLeaf) {
          const before = Number(r.rcv) < treesSince;
          findings.add({
            category: before ? 'no_leaf' : 'inserted',
            message: before
              ? 'stored before the tenant had Merkle trees: checked, but no leaf proves it'
              : 'the event has no leaf: it is not part of any tree (inserted)',
            eventId: r.eid,
            eventHash: r.h,
            stream: r.st,
            seq: Number(r.sq),
            partition: Number(r.part),
          });
        }
        if (bits & ~ROW_BITS.noLeaf) toCheck.push(r);
      }
      progress.events =
        i + 2 === edges.length
          ? total
          : Math.min(total, (i + 1) * (options.chunkEvents ?? DEFAULT_CHUNK));
      report('events');
    }
  })();

  const misplaced: MisplacedEvent[] = [];
  const orphans: OrphanLeaf[] = [];
  const trees: TreeResult[] = [];
  const treesPhase = (async () => {
    for (const [partition, top] of [...partitions].sort((a, b) => a[0] - b[0])) {
      const outcome = await verifyTree(
        {
          store,
          tenant,
          scope,
          findings,
          retention,
          now,
          unsignedGraceMs: options.unsignedGraceMs ?? 3_600_000,
          onLeaves: (n) => {
            progress.leaves += n;
            report('trees');
          },
        },
        partition,
        top,
        heads.get(partition) ?? [],
      );
      const { misplaced: m, orphans: o, ...result } = outcome;
      misplaced.push(...m);
      orphans.push(...o);
      trees.push(result);
    }
  })();
  await Promise.all([eventsPhase, treesPhase]);

  // 3. The rows the engine did not pass, with the reference code.
  const ids = [...new Set(toCheck.map((r) => r.eid))];
  const stored = await fetchEvents(store, tenant, ids, privacyColumns);
  const verdicts = await checkStoredEvents(tenant, stored, options.tenantKeys);
  reportVerdicts(verdicts, recorded, findings);

  // 4. Chains, and the consumer's records of what it saw at ingest.
  report('chains');
  const chainCtx = { store, tenant, scope, findings, recorded };
  const streams = await verifyChains(chainCtx);
  await reconcileIntegrity(chainCtx);

  // 5. Events at positions whose leaf is another, and leaves whose event is gone.
  await resolveDisplaced(store, tenant, misplaced, orphans, findings);

  for (const [path, n] of [...undisclosed].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (n.erased > 0)
      findings.add({
        category: 'erased',
        message: 'personal value not disclosed (erased: yes); its commitment still verifies',
        paths: [path],
        count: n.erased,
      });
    if (n.withheld > 0)
      findings.add({
        category: 'not_disclosed',
        message:
          'personal value not disclosed (erased: no): withheld by the producer or never stored',
        paths: [path],
        count: n.withheld,
      });
  }
  report('done');
  const byCategory: Partial<Record<Category, number>> = {};
  for (const [c, n] of findings.counts) byCategory[c] = n;
  return {
    v: 1,
    tenant,
    ok: findings.failures === 0,
    scope: scope.filter,
    keys: keyIds,
    startedAt: new Date(started).toISOString(),
    seconds: (Date.now() - started) / 1000,
    totals: {
      events: total,
      leaves: trees.reduce((a, t) => a + t.leaves, 0),
      streams,
      partitions: trees.length,
      checkpoints: checkpoints.summary,
      failures: findings.failures,
      byCategory,
    },
    trees,
    findings: findings.all(),
  };
}

function reportVerdicts(
  verdicts: readonly EventVerdict[],
  recorded: ReadonlySet<string>,
  findings: Findings,
): void {
  const info = new Map<
    string,
    { category: Category; message: string; paths: string[]; count: number }
  >();
  for (const v of verdicts) {
    const where = {
      eventId: v.eventId,
      eventHash: v.eventHash,
      partition: v.partition,
      ...(v.stream !== undefined ? { stream: v.stream } : {}),
      ...(v.seq !== undefined ? { seq: v.seq } : {}),
      ...(v.leafIndex !== undefined ? { leafFrom: v.leafIndex, leafTo: v.leafIndex } : {}),
    };
    for (const p of v.problems) {
      if (p.category === 'pseudonymised') {
        for (const path of p.paths ?? []) {
          const key = `${p.category}\u0000${p.message}\u0000${path}`;
          const entry = info.get(key) ?? {
            category: p.category,
            message: p.message,
            paths: [path],
            count: 0,
          };
          entry.count++;
          info.set(key, entry);
        }
        continue;
      }
      findings.add({
        ...where,
        category: p.category,
        message: p.message,
        ...(p.paths ? { paths: p.paths } : {}),
      });
    }
    if (v.flaggedNoncanonical) {
      if (recorded.has(`${v.eventId}|${v.eventHash}|noncanonical`))
        findings.add({
          ...where,
          category: 'recorded_at_ingest',
          message: 'record not in RFC 8785 canonical form, recorded by the consumer at ingest',
        });
      else
        findings.add({
          ...where,
          category: 'edited',
          message:
            'the row is flagged noncanonical, but no integrity event of the consumer records it',
        });
    }
  }
  for (const entry of info.values()) findings.add(entry);
}

/**
 * An event row at a position whose leaf is another one: either the tree holds its leaf at
 * another position (the rows were reordered) or nowhere (the event was inserted). A leaf whose
 * event row is gone and that retention does not explain: missing, unless its event is one of
 * the reordered ones.
 */
async function resolveDisplaced(
  store: Store,
  tenant: string,
  misplaced: readonly MisplacedEvent[],
  orphans: readonly OrphanLeaf[],
  findings: Findings,
): Promise<void> {
  const elsewhere = new Map<string, number>();
  for (let i = 0; i < misplaced.length; i += 10_000) {
    const chunk = misplaced.slice(i, i + 10_000);
    const rows = await store.query<{ part: number | string; idx: number | string; lh: string }>(
      `SELECT log_partition AS part, leaf_index AS idx, toString(leaf_hash) AS lh
       FROM ${store.table('merkle_leaves')}
       WHERE tenant_id = {tenant:String} AND leaf_hash IN {hashes:Array(String)}`,
      { tenant, hashes: chunk.map((m) => m.leafHash) },
    );
    for (const r of rows) elsewhere.set(`${Number(r.part)}\u0000${r.lh}`, Number(r.idx));
  }
  const moved = new Set<string>();
  for (const m of misplaced) {
    const at = elsewhere.get(`${m.partition}\u0000${m.leafHash}`);
    const where = {
      eventId: m.eventId,
      eventHash: m.eventHash,
      stream: m.stream,
      seq: m.seq,
      partition: m.partition,
      leafFrom: m.leafIndex,
      leafTo: m.leafIndex,
    };
    if (at !== undefined && at !== m.leafIndex) {
      moved.add(`${m.partition}\u0000${m.leafHash}`);
      findings.add({
        ...where,
        category: 'reordered',
        message: `the event's row says leaf ${m.leafIndex}, but the tree holds its leaf at ${at}`,
      });
    } else {
      findings.add({
        ...where,
        category: 'inserted',
        message: `the tree holds another leaf at position ${m.leafIndex}: this event is not the one that was signed there`,
      });
    }
  }
  for (const o of orphans) {
    if (moved.has(`${o.partition}\u0000${o.leafHash}`)) continue;
    findings.add({
      category: 'missing',
      message: `the event of this leaf is gone and retention does not explain it: ${o.reason}`,
      partition: o.partition,
      leafFrom: o.leafIndex,
      leafTo: o.leafIndex,
      eventId: o.eventId,
      eventHash: o.eventHash,
      stream: o.stream,
      seq: o.seq,
    });
  }
}
