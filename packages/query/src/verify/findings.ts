/**
 * What `vigil verify` reports (PROTOCOL.md §19): every finding names a category, says whether it
 * is a failure (the log is not what was signed and stored) or information (a documented,
 * legitimate state such as retention or erasure), and names the events or leaf ranges it
 * concerns. Adjacent findings of one kind about consecutive leaves are merged into ranges, so a
 * rewritten log of millions of events reads as a few lines, not millions.
 */

/** Failures: the exit code is 1 when any is present. */
export const FAILURE_CATEGORIES = [
  /** A record, a typed column, a disclosure or a leaf no longer matches what was stored. */
  'edited',
  /** A leaf's event is gone and retention does not explain it; or leaves themselves are gone. */
  'missing',
  /** An event (or leaf) that is not part of the signed tree. */
  'inserted',
  /** Events or leaves moved to other positions. */
  'reordered',
  /** Leaves a verified checkpoint states are no longer stored (removed after it was signed). */
  'truncated',
  /** The stored tree does not have the root a verified checkpoint states for its size. */
  'rewritten',
  /** A checkpoint whose signature does not verify, or that is not a valid statement. */
  'bad_signature',
  /** A checkpoint signed by a key that is not pinned. */
  'unknown_key',
  /** A link of a stream that does not hold and that the consumer did not record at ingest. */
  'chain_break',
  /** Leaves of the tree that no checkpoint verified with a pinned key covers, or none at all. */
  'unsigned',
] as const;

/** Information: a legitimate state, reported so that an auditor sees it, never a failure. */
export const INFO_CATEGORIES = [
  /** A leaf whose event expired under the retention policy in force and was deleted. */
  'removed_by_retention',
  /** A personal value whose disclosure an erasure removed (the commitment stays). */
  'erased',
  /** A personal value that was never disclosed to the store, or withheld. */
  'not_disclosed',
  /** Typed columns or disclosures this verifier cannot recompute without the tenant's key. */
  'pseudonymised',
  /** A gap, fork or late event the consumer stored, flagged and signed an integrity event for. */
  'recorded_at_ingest',
  /** Leaves stored after the newest verified checkpoint: not signed yet. */
  'unsigned_tail',
  /** Events stored before Merkle trees existed (no leaf): checked, but not provable. */
  'no_leaf',
] as const;

export type FailureCategory = (typeof FAILURE_CATEGORIES)[number];
export type InfoCategory = (typeof INFO_CATEGORIES)[number];
export type Category = FailureCategory | InfoCategory;
export type Severity = 'failure' | 'info';

export function severityOf(category: Category): Severity {
  return (FAILURE_CATEGORIES as readonly string[]).includes(category) ? 'failure' : 'info';
}

/** One finding; the optional members say where it is. */
export interface Finding {
  readonly category: Category;
  readonly severity: Severity;
  /** What is wrong or what happened, in words. */
  readonly message: string;
  /** How many events or leaves it concerns (1 for a single event). */
  readonly count: number;
  readonly partition?: number;
  /** First and last leaf index concerned (inclusive). */
  readonly leafFrom?: number;
  readonly leafTo?: number;
  readonly eventId?: string;
  readonly eventHash?: string;
  readonly stream?: string;
  readonly seq?: number;
  /** The checkpoint concerned (its id). */
  readonly checkpoint?: string;
  readonly keyId?: string;
  /** Where a checkpoint came from: the store, a trusted file, a witness (several when equal). */
  readonly sources?: readonly CheckpointSource[];
  /** JSON pointers or column names concerned. */
  readonly paths?: readonly string[];
}

export type CheckpointSource = 'store' | 'trusted' | 'witness';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Collects findings. Findings about single leaves of one partition, with the same category and
 * message, extend the previous one into a range when they are adjacent; so does a run of
 * events in one partition. Counts per category are kept exactly.
 */
export class Findings {
  private readonly list: Mutable<Finding>[] = [];
  private readonly open = new Map<string, Mutable<Finding>>();
  readonly counts = new Map<Category, number>();

  add(finding: Omit<Finding, 'severity' | 'count'> & { readonly count?: number }): void {
    const count = finding.count ?? 1;
    this.counts.set(finding.category, (this.counts.get(finding.category) ?? 0) + count);
    const full: Mutable<Finding> = { ...finding, severity: severityOf(finding.category), count };
    // Only leaf-positioned findings without a single event's identity can merge into ranges.
    if (full.partition !== undefined && full.leafFrom !== undefined && full.eventId === undefined) {
      const key = `${full.category}\u0000${full.partition}\u0000${full.message}`;
      const previous = this.open.get(key);
      if (
        previous &&
        previous.leafTo !== undefined &&
        previous.leafTo + 1 === full.leafFrom &&
        previous.seq === undefined &&
        full.seq === undefined
      ) {
        previous.leafTo = full.leafTo ?? full.leafFrom;
        previous.count += count;
        return;
      }
      this.open.set(key, full);
    }
    this.list.push(full);
  }

  get failures(): number {
    let n = 0;
    for (const [category, count] of this.counts) if (severityOf(category) === 'failure') n += count;
    return n;
  }

  all(): Finding[] {
    return [...this.list].sort(order);
  }
}

const rank = (f: Finding): number => (f.severity === 'failure' ? 0 : 1);

/** Failures first; then by partition and leaf; findings about checkpoints before events. */
function order(a: Finding, b: Finding): number {
  return (
    rank(a) - rank(b) ||
    (a.partition ?? -1) - (b.partition ?? -1) ||
    (a.leafFrom ?? -1) - (b.leafFrom ?? -1)
  );
}
