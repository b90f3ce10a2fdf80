import {
  verifyCheckpoint,
  type CheckpointStatement,
  type PublicKeyInput,
  type SignedCheckpoint,
} from './checkpoint.js';
import { isCanonicalRecord } from './canonical.js';
import { columnDigestHex } from './columns.js';
import { sha256Hex } from './hash.js';
import {
  EMPTY_TREE_ROOT,
  hashLeaf,
  leafData,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
import { jsonShapeProblem } from './json-shape.js';
import { membersProblem } from './members.js';

/**
 * Proof documents (PROTOCOL.md §15) and their verification with nothing but trusted public keys.
 * These are what the proof API returns and what export bundles carry.
 */

export const PROOF_VERSION = 1 as const;

/** What a leaf binds besides the tenant, which comes from the signed checkpoint. */
export interface ProvedLeaf {
  readonly stream: string;
  readonly seq: number;
  readonly eventHash: string;
  /** The column digest of the event (§13.2), 64 hex. */
  readonly columns: string;
}

/** An inclusion proof of one event against a signed checkpoint (PROTOCOL.md §15.1). */
export interface InclusionProof {
  readonly v: typeof PROOF_VERSION;
  /** The event's id; informative, the leaf binds the event hash. */
  readonly eventId: string;
  /** The exact record bytes when the store still holds them (absent after a retention delete). */
  readonly record?: string;
  readonly partition: number;
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly leaf: ProvedLeaf;
  /** Hex of the leaf data bytes of §13.2. */
  readonly leafData: string;
  /** Hex of SHA-256(0x00 || leaf data). */
  readonly leafHash: string;
  /** RFC 9162 inclusion path, hex, deepest sibling first. */
  readonly auditPath: readonly string[];
  /** The partition root the path leads to; equals the checkpoint's root for `partition`. */
  readonly root: string;
  readonly checkpoint: SignedCheckpoint;
}

/** A consistency proof between two sizes of one partition's tree (PROTOCOL.md §15.2). */
export interface ConsistencyProof {
  readonly v: typeof PROOF_VERSION;
  readonly partition: number;
  readonly fromSize: number;
  readonly toSize: number;
  readonly fromRoot: string;
  readonly toRoot: string;
  /** RFC 9162 consistency path, hex. */
  readonly path: readonly string[];
  /** The checkpoints the sizes were taken from, when they were named by checkpoint. */
  readonly from?: SignedCheckpoint;
  readonly to?: SignedCheckpoint;
}

export type ProofCheck =
  | { readonly ok: true; readonly statement: CheckpointStatement }
  | { readonly ok: false; readonly problem: string };

export type ConsistencyCheck =
  | {
      readonly ok: true;
      readonly from: CheckpointStatement | undefined;
      readonly to: CheckpointStatement | undefined;
    }
  | { readonly ok: false; readonly problem: string };

const HEX64 = /^[0-9a-f]{64}$/;
const HEX = /^(?:[0-9a-f]{2})*$/;
const EMPTY_ROOT_HEX = EMPTY_TREE_ROOT.toString('hex');

// Proof documents are closed (§15.1, §15.2): an unknown member is refused, naming it.
const INCLUSION_MEMBERS = [
  'auditPath',
  'checkpoint',
  'eventId',
  'leaf',
  'leafData',
  'leafHash',
  'leafIndex',
  'partition',
  'root',
  'treeSize',
  'v',
];
/** `record` while the store holds the event; `otherLeaves` as the API may add them. */
const INCLUSION_OPTIONAL = ['otherLeaves', 'record'];
const LEAF_MEMBERS = ['columns', 'eventHash', 'seq', 'stream'];
const OTHER_LEAF_MEMBERS = ['eventHash', 'leafIndex', 'partition'];
const CONSISTENCY_MEMBERS = ['fromRoot', 'fromSize', 'partition', 'path', 'toRoot', 'toSize', 'v'];
const CONSISTENCY_OPTIONAL = ['from', 'to'];

function otherLeavesProblem(others: unknown): string | undefined {
  if (others === undefined) return undefined;
  if (!Array.isArray(others)) return 'otherLeaves must be an array';
  for (const [i, other] of others.entries()) {
    const where = `otherLeaves[${i}]`;
    const members = membersProblem(other, where, OTHER_LEAF_MEMBERS);
    if (members) return members;
    const o = other as Record<string, unknown>;
    if (
      !Number.isSafeInteger(o['partition']) ||
      !Number.isSafeInteger(o['leafIndex']) ||
      typeof o['eventHash'] !== 'string' ||
      !HEX64.test(o['eventHash'])
    )
      return `${where} must be {partition, leafIndex, eventHash (64 hex)}`;
  }
  return undefined;
}

function hashes(values: unknown): Buffer[] | undefined {
  if (!Array.isArray(values)) return undefined;
  const out: Buffer[] = [];
  for (const v of values) {
    if (typeof v !== 'string' || !HEX64.test(v)) return undefined;
    out.push(Buffer.from(v, 'hex'));
  }
  return out;
}

function recordProblem(proof: InclusionProof): string | undefined {
  if (proof.record === undefined) return undefined;
  if (typeof proof.record !== 'string') return 'record must be the record text';
  if (sha256Hex(proof.record) !== proof.leaf.eventHash)
    return 'the SHA-256 of record is not the leaf event hash: the record was altered';
  let parsed: { id?: unknown; stream?: unknown; seq?: unknown };
  try {
    parsed = JSON.parse(proof.record) as typeof parsed;
  } catch {
    return 'record is not JSON';
  }
  if (parsed.stream !== proof.leaf.stream || parsed.seq !== proof.leaf.seq)
    return 'the record names another stream or seq than the leaf';
  if (parsed.id !== proof.eventId) return 'the record has another id than eventId';
  // §8.1, §15.3 step 4: a proof's record must be its own RFC 8785 form (two parsers could read
  // another text differently). The shape limits first: the serialiser recurses.
  if (jsonShapeProblem(parsed) !== undefined) return 'record nests or spreads beyond §3.5';
  if (!isCanonicalRecord(proof.record, parsed))
    return 'record is not in RFC 8785 form (§4), its own form: whitespace, member order or escapes differ';
  let digest: string;
  try {
    digest = columnDigestHex(parsed);
  } catch (error) {
    return `no column digest can be computed from record: ${(error as Error).message}`;
  }
  if (digest !== proof.leaf.columns)
    return 'the column digest of record is not the leaf columns (§13.2)';
  return undefined;
}

/**
 * Verifies an inclusion proof with trusted public keys (PROTOCOL.md §15.3): the checkpoint's
 * signature, that it states `root` and `treeSize` for the partition, that the leaf data encodes
 * the checkpoint's tenant and the leaf fields and hashes to `leafHash`, that the audit path leads
 * from the leaf to the root, and, when the record is included, that it hashes to the leaf's event
 * hash and names the same id, stream and seq.
 */
export function verifyInclusionProof(
  proof: InclusionProof,
  keys: readonly PublicKeyInput[],
): ProofCheck {
  const members = membersProblem(
    proof,
    'an inclusion proof',
    INCLUSION_MEMBERS,
    INCLUSION_OPTIONAL,
  );
  if (members) return { ok: false, problem: members };
  if (proof.v !== PROOF_VERSION) return { ok: false, problem: 'v must be 1' };
  if (typeof proof.eventId !== 'string') return { ok: false, problem: 'eventId must be a string' };
  const leafMembers = membersProblem(proof.leaf, 'leaf', LEAF_MEMBERS);
  if (leafMembers) return { ok: false, problem: leafMembers };
  const others = otherLeavesProblem((proof as { otherLeaves?: unknown }).otherLeaves);
  if (others) return { ok: false, problem: others };
  const checked = verifyCheckpoint(proof.checkpoint, keys);
  if (!checked.ok) return { ok: false, problem: `checkpoint: ${checked.problem}` };
  const { statement } = checked;
  const head = statement.partitions.find((p) => p.partition === proof.partition);
  if (!head)
    return { ok: false, problem: `the checkpoint has no head for partition ${proof.partition}` };
  if (head.size !== proof.treeSize)
    return {
      ok: false,
      problem: `treeSize ${proof.treeSize} is not the checkpoint's size ${head.size} for partition ${proof.partition}`,
    };
  if (head.root !== proof.root)
    return {
      ok: false,
      problem: `root is not the checkpoint's root for partition ${proof.partition}`,
    };
  const leaf = proof.leaf;
  if (
    typeof leaf !== 'object' ||
    leaf === null ||
    typeof leaf.stream !== 'string' ||
    !Number.isSafeInteger(leaf.seq) ||
    leaf.seq < 0 ||
    typeof leaf.eventHash !== 'string' ||
    !HEX64.test(leaf.eventHash) ||
    typeof leaf.columns !== 'string' ||
    !HEX64.test(leaf.columns)
  )
    return { ok: false, problem: 'leaf must have stream, seq, eventHash and columns (64 hex)' };
  const data = leafData({ tenant: statement.tenant, ...leaf });
  if (
    typeof proof.leafData !== 'string' ||
    !HEX.test(proof.leafData) ||
    proof.leafData !== data.toString('hex')
  )
    return {
      ok: false,
      problem: `leafData is not the leaf data of tenant ${statement.tenant}, this stream, seq, event hash and column digest`,
    };
  const leafHash = hashLeaf(data);
  if (proof.leafHash !== leafHash.toString('hex'))
    return { ok: false, problem: 'leafHash is not SHA-256(0x00 || leafData)' };
  const path = hashes(proof.auditPath);
  if (!path) return { ok: false, problem: 'auditPath must be an array of 64-hex hashes' };
  if (
    !verifyInclusion(proof.leafIndex, proof.treeSize, leafHash, path, Buffer.from(head.root, 'hex'))
  )
    return {
      ok: false,
      problem: `the audit path does not lead from leaf ${proof.leafIndex} to the root of ${proof.treeSize} leaves`,
    };
  const problem = recordProblem(proof);
  if (problem) return { ok: false, problem };
  return { ok: true, statement };
}

/**
 * Verifies a consistency proof (PROTOCOL.md §15.3): the RFC 9162 path between the two sizes
 * and roots; when checkpoints are included, their signatures with `keys`, one tenant, and that
 * each states the size and root used for the partition.
 */
export function verifyConsistencyProof(
  proof: ConsistencyProof,
  keys: readonly PublicKeyInput[] = [],
): ConsistencyCheck {
  const members = membersProblem(
    proof,
    'a consistency proof',
    CONSISTENCY_MEMBERS,
    CONSISTENCY_OPTIONAL,
  );
  if (members) return { ok: false, problem: members };
  if (proof.v !== PROOF_VERSION) return { ok: false, problem: 'v must be 1' };
  const statements: (CheckpointStatement | undefined)[] = [];
  for (const [name, signed, size, root] of [
    ['from', proof.from, proof.fromSize, proof.fromRoot],
    ['to', proof.to, proof.toSize, proof.toRoot],
  ] as const) {
    if (signed === undefined) {
      statements.push(undefined);
      continue;
    }
    const checked = verifyCheckpoint(signed, keys);
    if (!checked.ok) return { ok: false, problem: `${name}: ${checked.problem}` };
    const head = checked.statement.partitions.find((p) => p.partition === proof.partition);
    // A checkpoint without a head for the partition states size 0 for it.
    const headSize = head?.size ?? 0;
    if (headSize !== size)
      return {
        ok: false,
        problem: `${name}Size ${size} is not the size the ${name} checkpoint states (${headSize})`,
      };
    if (head && head.root !== root)
      return { ok: false, problem: `${name}Root is not the root the ${name} checkpoint states` };
    statements.push(checked.statement);
  }
  const [from, to] = statements;
  if (from && to && from.tenant !== to.tenant)
    return { ok: false, problem: 'the two checkpoints are of different tenants' };
  const path = hashes(proof.path);
  if (!path) return { ok: false, problem: 'path must be an array of 64-hex hashes' };
  if (
    typeof proof.fromRoot !== 'string' ||
    typeof proof.toRoot !== 'string' ||
    !HEX64.test(proof.fromRoot) ||
    !HEX64.test(proof.toRoot)
  )
    return { ok: false, problem: 'fromRoot and toRoot must be 64-hex hashes' };
  // The tree of 0 leaves has one root, MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1).
  if (proof.fromSize === 0 && proof.fromRoot !== EMPTY_ROOT_HEX)
    return {
      ok: false,
      problem: `fromRoot must be the root of the empty tree (${EMPTY_ROOT_HEX}) when fromSize is 0`,
    };
  if (
    !verifyConsistency(
      proof.fromSize,
      proof.toSize,
      path,
      Buffer.from(proof.fromRoot, 'hex'),
      Buffer.from(proof.toRoot, 'hex'),
    )
  )
    return {
      ok: false,
      problem: `the tree of ${proof.fromSize} leaves is not shown to be a prefix of the tree of ${proof.toSize} leaves`,
    };
  return { ok: true, from, to };
}
