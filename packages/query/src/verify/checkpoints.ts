import {
  parseCheckpoint,
  verifyCheckpoint,
  type CheckpointStatement,
  type PublicKeyInput,
  type SignedCheckpoint,
} from '@vigil/protocol';
import type { Store } from '../store/store.js';
import type { CheckpointSource, Findings } from './findings.js';

/**
 * The checkpoints a verification trusts (PROTOCOL.md §14.5, §19.2): those of the store, and
 * those the verifier brings (a trusted checkpoint file, a witness's copies), each verified
 * against the pinned public keys only. A key the store publishes is never trusted for being
 * there: whoever rewrites a log can publish a new key too.
 */

/** A checkpoint the verifier was given from outside the store. */
export interface TrustedCheckpoint {
  readonly checkpoint: SignedCheckpoint;
  readonly source: Exclude<CheckpointSource, 'store'>;
  /** Where it came from (a file name), for the report. */
  readonly origin?: string;
}

/** A checkpoint verified with a pinned key. */
export interface VerifiedCheckpoint {
  readonly id: string;
  readonly statement: CheckpointStatement;
  readonly sources: Set<CheckpointSource>;
  readonly origin?: string;
}

export interface CheckpointSummary {
  /** Checkpoints of the store, and how many of them verify with a pinned key. */
  readonly store: number;
  readonly verified: number;
  readonly trusted: number;
  readonly witness: number;
  /** Verified checkpoints held outside the store that the store does not have. */
  readonly notInStore: number;
}

export async function storeCheckpoints(store: Store, tenant: string): Promise<SignedCheckpoint[]> {
  // Aliases differ from column names: ClickHouse resolves aliases in WHERE too.
  return store.query<SignedCheckpoint>(
    `SELECT id, body AS checkpoint, signature FROM ${store.table('checkpoints')} FINAL
     WHERE tenant_id = {tenant:String} ORDER BY time, id`,
    { tenant },
  );
}

/**
 * Verifies every checkpoint, reports those that do not verify (bad signature, unknown key, not
 * the tenant's), and returns those that do, deduplicated by id.
 */
export function verifyCheckpoints(
  tenant: string,
  fromStore: readonly SignedCheckpoint[],
  trusted: readonly TrustedCheckpoint[],
  keys: readonly PublicKeyInput[],
  findings: Findings,
): { verified: VerifiedCheckpoint[]; summary: CheckpointSummary } {
  const byId = new Map<string, VerifiedCheckpoint>();
  const storeIds = new Set(fromStore.map((c) => c.id));
  let verifiedInStore = 0;
  const all: { c: SignedCheckpoint; source: CheckpointSource; origin?: string }[] = [
    ...fromStore.map((c) => ({ c, source: 'store' as const })),
    ...trusted.map((t) => ({
      c: t.checkpoint,
      source: t.source,
      ...(t.origin !== undefined ? { origin: t.origin } : {}),
    })),
  ];
  for (const { c, source, origin } of all) {
    const verdict = verifyCheckpoint(c, keys);
    const where = origin ? ` (${origin})` : '';
    if (!verdict.ok) {
      const parsed = typeof c.checkpoint === 'string' ? parseCheckpoint(c.checkpoint) : undefined;
      const keyId = parsed?.ok ? parsed.statement.keyId : undefined;
      const unknown = verdict.problem.includes('not among the trusted keys');
      findings.add({
        category: unknown ? 'unknown_key' : 'bad_signature',
        message: unknown
          ? `checkpoint${where} is signed with key ${keyId ?? '?'}, which is not pinned: its statement cannot be trusted`
          : `checkpoint${where} does not verify: ${verdict.problem}`,
        checkpoint: typeof c.id === 'string' ? c.id : '?',
        sources: [source],
        ...(keyId !== undefined ? { keyId } : {}),
      });
      continue;
    }
    if (verdict.statement.tenant !== tenant) {
      // A witness directory may hold other tenants' checkpoints: not this verification's.
      if (source !== 'store') continue;
      findings.add({
        category: 'inserted',
        message: `checkpoint of tenant ${verdict.statement.tenant} stored among tenant ${tenant}'s`,
        checkpoint: c.id,
        sources: [source],
      });
      continue;
    }
    if (source === 'store') verifiedInStore++;
    const known = byId.get(c.id);
    if (known) known.sources.add(source);
    else
      byId.set(c.id, {
        id: c.id,
        statement: verdict.statement,
        sources: new Set([source]),
        ...(origin !== undefined ? { origin } : {}),
      });
  }
  const verified = [...byId.values()];
  return {
    verified,
    summary: {
      store: fromStore.length,
      verified: verifiedInStore,
      trusted: trusted.filter((t) => t.source === 'trusted').length,
      witness: trusted.filter((t) => t.source === 'witness').length,
      notInStore: verified.filter((v) => !storeIds.has(v.id)).length,
    },
  };
}

/** Heads stated for one partition, by size, each with the checkpoints that state it. */
export interface StatedHead {
  readonly size: number;
  readonly root: string;
  readonly checkpoints: readonly VerifiedCheckpoint[];
}

/** The heads the verified checkpoints state for each partition, ascending by size. */
export function statedHeads(verified: readonly VerifiedCheckpoint[]): Map<number, StatedHead[]> {
  type Entry = { size: number; root: string; checkpoints: VerifiedCheckpoint[] };
  const out = new Map<number, Map<string, Entry>>();
  for (const v of verified) {
    for (const head of v.statement.partitions) {
      let heads = out.get(head.partition);
      if (!heads) out.set(head.partition, (heads = new Map<string, Entry>()));
      const key = `${head.size}/${head.root}`;
      const entry = heads.get(key);
      if (entry) entry.checkpoints.push(v);
      else heads.set(key, { size: head.size, root: head.root, checkpoints: [v] });
    }
  }
  const sorted = new Map<number, StatedHead[]>();
  for (const [partition, heads] of out)
    sorted.set(
      partition,
      [...heads.values()].sort((a, b) => a.size - b.size),
    );
  return sorted;
}
