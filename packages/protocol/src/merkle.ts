import * as crypto from 'node:crypto';

/**
 * Merkle trees of RFC 9162 §2.1 (Certificate Transparency v2; the same hashing as RFC 6962 §2.1),
 * as PROTOCOL.md §13 uses them: one append-only tree per (tenant, log partition), whose leaves
 * are the stored events in the order the partition's consumer stored them.
 *
 * Pure functions, no I/O: the sink, the proof API and offline verifiers (export bundles) share
 * them. Hashes are 32-byte Buffers here; the JSON forms of §13–§15 carry them as lower-case hex.
 * Tree sizes and indexes are JS numbers, exact up to 2^53 − 1; bit operations are written as
 * arithmetic because JS bitwise operators truncate to 32 bits.
 */

/** Domain string of the leaf data (PROTOCOL.md §13.2). */
export const LEAF_DOMAIN = 'vigil.leaf.v2';

/** RFC 9162 §2.1.1: leaf hashes are SHA-256(0x00 || data), interior nodes SHA-256(0x01 || l || r). */
const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;
const HASH_BYTES = 32;

type OneShot = (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer;
// crypto.hash (Node >= 20.12) is a one-shot digest, about twice as fast as createHash for the
// 65-byte inputs of interior nodes.
const oneShot = (crypto as unknown as { hash?: OneShot }).hash;
const sha256: (data: Uint8Array) => Buffer = oneShot
  ? (data) => oneShot('sha256', data, 'buffer')
  : (data) => crypto.createHash('sha256').update(data).digest();

/** MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1). */
export const EMPTY_TREE_ROOT: Buffer = sha256(new Uint8Array(0));

/** The fields a leaf binds (PROTOCOL.md §13.2). */
export interface LeafFields {
  readonly tenant: string;
  readonly stream: string;
  readonly seq: number;
  /** The event hash, 64 lower-case hex digits. */
  readonly eventHash: string;
  /** The column digest (columns.ts, PROTOCOL.md §13.2), 64 lower-case hex digits. */
  readonly columns: string;
}

/** A perfect, aligned subtree: leaves [index·2^level, (index+1)·2^level). Level 0 is a leaf. */
export interface NodeRef {
  readonly level: number;
  readonly index: number;
}

/** A range of leaf positions [start, end). */
export interface LeafRange {
  readonly start: number;
  readonly end: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Decodes 64 lower-case hex digits into 32 bytes; throws on anything else. */
export function hashFromHex(hex: string): Buffer {
  if (!HEX64.test(hex)) throw new TypeError(`not a hash (64 lower-case hex digits): "${hex}"`);
  return Buffer.from(hex, 'hex');
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

const LEAF_HEAD = Buffer.concat([Buffer.from(LEAF_DOMAIN, 'ascii'), Buffer.from([0x00])]);

/**
 * The leaf data of an event (PROTOCOL.md §13.2), byte for byte:
 *
 * ```
 * "vigil.leaf.v2" 0x00 | u32be(len) tenant | u32be(len) stream | u64be(seq) | event hash (32 bytes)
 *   | column digest (32 bytes)
 * ```
 *
 * Lengths are UTF-8 byte counts. The length prefixes and the fixed-size tail make the encoding
 * injective; the domain string keeps it apart from every other SHA-256 input in Vigil.
 */
export function leafData(fields: LeafFields): Buffer {
  const tenant = Buffer.from(fields.tenant, 'utf8');
  const stream = Buffer.from(fields.stream, 'utf8');
  if (!Number.isSafeInteger(fields.seq) || fields.seq < 0)
    throw new RangeError(`seq must be an integer from 0 to 2^53-1, not ${fields.seq}`);
  const seq = Buffer.allocUnsafe(8);
  seq.writeBigUInt64BE(BigInt(fields.seq));
  return Buffer.concat([
    LEAF_HEAD,
    u32(tenant.length),
    tenant,
    u32(stream.length),
    stream,
    seq,
    hashFromHex(fields.eventHash),
    hashFromHex(fields.columns),
  ]);
}

/** RFC 9162 §2.1.1: SHA-256(0x00 || data). */
export function hashLeaf(data: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(1 + data.length);
  input[0] = LEAF_PREFIX;
  input.set(data, 1);
  return sha256(input);
}

/** Input of hashChildren for two 32-byte hashes, reused: the function is synchronous. */
const nodeInput = Buffer.allocUnsafe(1 + 2 * HASH_BYTES);
nodeInput[0] = NODE_PREFIX;

/** RFC 9162 §2.1.1: SHA-256(0x01 || left || right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  // Verifying a tree hashes about one node per leaf: a fresh input buffer each time was a
  // fifth of that cost.
  const input =
    left.length === HASH_BYTES && right.length === HASH_BYTES
      ? nodeInput
      : Buffer.allocUnsafe(1 + left.length + right.length);
  input[0] = NODE_PREFIX;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return sha256(input);
}

/**
 * One scratch buffer for building 0x00 || leaf data: the sink hashes a leaf for every row it
 * stores, and building the input in place avoids the allocations and copies of leafData +
 * hashLeaf. Safe because this function is synchronous and done with the buffer when it returns.
 */
let scratch = Buffer.allocUnsafe(1024);

/** The leaf hash of an event, from its fields: hashLeaf(leafData(fields)), computed in place. */
export function eventLeafHash(fields: LeafFields): Buffer {
  const { tenant, stream, seq, eventHash, columns } = fields;
  if (!Number.isSafeInteger(seq) || seq < 0)
    throw new RangeError(`seq must be an integer from 0 to 2^53-1, not ${seq}`);
  if (!HEX64.test(eventHash))
    throw new TypeError(`not a hash (64 lower-case hex digits): "${eventHash}"`);
  if (!HEX64.test(columns))
    throw new TypeError(`not a column digest (64 lower-case hex digits): "${columns}"`);
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  const most = 1 + LEAF_HEAD.length + 8 + 3 * (tenant.length + stream.length) + 8 + 64;
  if (scratch.length < most) scratch = Buffer.allocUnsafe(most * 2);
  const b = scratch;
  b[0] = LEAF_PREFIX;
  let at = 1 + LEAF_HEAD.copy(b, 1);
  // Each string is written after room for its length, which is known once it is written.
  const t = b.write(tenant, at + 4, 'utf8');
  b.writeUInt32BE(t, at);
  at += 4 + t;
  const s = b.write(stream, at + 4, 'utf8');
  b.writeUInt32BE(s, at);
  at += 4 + s;
  b.writeUInt32BE(Math.floor(seq / 2 ** 32), at);
  b.writeUInt32BE(seq % 2 ** 32, at + 4);
  at += 8;
  at += b.write(eventHash, at, 32, 'hex');
  at += b.write(columns, at, 32, 'hex');
  return sha256(b.subarray(0, at));
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && 2 ** Math.floor(Math.log2(n)) === n;
}

/** The largest power of two strictly smaller than n (n ≥ 2): the split point k of RFC 9162 §2.1.1. */
export function splitPoint(n: number): number {
  if (n < 2) throw new RangeError(`no split point for ${n} leaves`);
  let k = 2 ** Math.floor(Math.log2(n));
  if (k >= n) k /= 2;
  // Math.log2 can be off by one ulp near powers of two; settle it exactly.
  while (k * 2 < n) k *= 2;
  while (k >= n) k /= 2;
  return k;
}

/** The Merkle tree hash of a list of leaf hashes (RFC 9162 §2.1.1). */
export function rootOf(leafHashes: readonly Uint8Array[]): Buffer {
  if (leafHashes.length === 0) return EMPTY_TREE_ROOT;
  const frontier = new MerkleFrontier();
  for (const h of leafHashes) frontier.append(h);
  return frontier.root();
}

/**
 * The perfect aligned subtrees that make up [start, end), left to right, each the largest that
 * starts at its position and fits. For the ranges an RFC 9162 tree is made of — a perfect subtree,
 * or [a, n) at the right edge with a a multiple of a power of two ≥ n − a — the sizes decrease, and
 * the range's tree hash is the right fold H(c0, H(c1, … c_last)) of these subtrees' hashes.
 */
export function completeSubtrees(start: number, end: number): NodeRef[] {
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start <= end))
    throw new RangeError(`invalid leaf range [${start}, ${end})`);
  const out: NodeRef[] = [];
  let at = start;
  while (at < end) {
    let level = 0;
    // Grow while the next block stays aligned at `at` and inside the range.
    while (at % 2 ** (level + 1) === 0 && at + 2 ** (level + 1) <= end) level++;
    out.push({ level, index: at / 2 ** level });
    at += 2 ** level;
  }
  return out;
}

/** The leaf range a node covers. */
export function nodeRange(ref: NodeRef): LeafRange {
  const width = 2 ** ref.level;
  return { start: ref.index * width, end: (ref.index + 1) * width };
}

/** Right fold of subtree hashes: H(h0, H(h1, … h_last)); see completeSubtrees. */
export function foldSubtrees(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return EMPTY_TREE_ROOT;
  let acc: Buffer = Buffer.from(hashes[hashes.length - 1] as Uint8Array);
  for (let i = hashes.length - 2; i >= 0; i--) acc = hashChildren(hashes[i] as Uint8Array, acc);
  return acc;
}

/**
 * The subtree ranges whose tree hashes form the inclusion proof (audit path) of leaf `index` in
 * a tree of `size` leaves, in proof order: PATH(m, D[n]) of RFC 9162 §2.1.3.1, deepest first.
 */
export function inclusionProofRanges(index: number, size: number): LeafRange[] {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && 0 <= index && index < size))
    throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  const out: LeafRange[] = [];
  // PATH(m, D[start:end]); the recursion appends its own path before the sibling, so walk
  // down collecting siblings and reverse at the end.
  let start = 0;
  let end = size;
  let m = index;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m < k) {
      out.push({ start: start + k, end });
      end = start + k;
    } else {
      out.push({ start, end: start + k });
      start += k;
      m -= k;
    }
  }
  return out.reverse();
}

/**
 * The subtree ranges whose tree hashes form the consistency proof between the trees of the
 * first `first` and the first `second` leaves: PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of
 * RFC 9162 §2.1.4.1, in proof order. Empty when first is 0 or equals second.
 */
export function consistencyProofRanges(first: number, second: number): LeafRange[] {
  if (!(
    Number.isSafeInteger(first) &&
    Number.isSafeInteger(second) &&
    0 <= first &&
    first <= second
  ))
    throw new RangeError(`no consistency proof from ${first} to ${second} leaves`);
  if (first === 0 || first === second) return [];
  const out: LeafRange[] = [];
  let start = 0;
  let end = second;
  let m = first;
  let complete = true;
  for (;;) {
    const n = end - start;
    if (m === n) {
      // SUBPROOF(m, D[m], b): [] when b, else [MTH(D[m])].
      if (!complete) out.push({ start, end });
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      out.push({ start: start + k, end });
      end = start + k;
    } else {
      out.push({ start, end: start + k });
      start += k;
      m -= k;
      complete = false;
    }
  }
  return out.reverse();
}

/** RFC 9162 §2.1.3.1, from the leaf hashes of the whole tree. */
export function inclusionProof(index: number, leafHashes: readonly Uint8Array[]): Buffer[] {
  return inclusionProofRanges(index, leafHashes.length).map((r) =>
    rootOf(leafHashes.slice(r.start, r.end)),
  );
}

/** RFC 9162 §2.1.4.1, from the leaf hashes of the larger tree. */
export function consistencyProof(first: number, leafHashes: readonly Uint8Array[]): Buffer[] {
  return consistencyProofRanges(first, leafHashes.length).map((r) =>
    rootOf(leafHashes.slice(r.start, r.end)),
  );
}

const odd = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1–5), or undefined when the
 * proof has the wrong length for (index, size) or a hash of the wrong size.
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Buffer | undefined {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && 0 <= index && index < size))
    return undefined;
  if (leafHash.length !== HASH_BYTES) return undefined;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (p.length !== HASH_BYTES) return undefined;
    if (sn === 0) return undefined;
    if (odd(fn) || fn === sn) {
      r = hashChildren(p, r);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : undefined;
}

/** RFC 9162 §2.1.3.2: whether `proof` shows leaf `index` with `leafHash` in the tree of `size` with `root`. */
export function verifyInclusion(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  const computed = rootFromInclusionProof(index, size, leafHash, proof);
  return computed !== undefined && bytesEqual(computed, root);
}

/**
 * RFC 9162 §2.1.4.2: whether `proof` shows that the tree of `first` leaves with `firstRoot` is a
 * prefix of the tree of `second` leaves with `secondRoot`. Beyond the RFC's 0 < first < second:
 * first = second holds with an empty proof and equal roots; first = 0 holds with an empty proof
 * (every tree extends the empty one) when `firstRoot` is MTH({}), the empty tree's only root
 * (§2.1.1); first > second never holds.
 */
export function verifyConsistency(
  first: number,
  second: number,
  proof: readonly Uint8Array[],
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
): boolean {
  if (!(
    Number.isSafeInteger(first) &&
    Number.isSafeInteger(second) &&
    0 <= first &&
    first <= second
  ))
    return false;
  if (firstRoot.length !== HASH_BYTES || secondRoot.length !== HASH_BYTES) return false;
  if (proof.some((p) => p.length !== HASH_BYTES)) return false;
  if (first === 0 && !bytesEqual(firstRoot, EMPTY_TREE_ROOT)) return false;
  if (first === second) return proof.length === 0 && bytesEqual(firstRoot, secondRoot);
  if (first === 0) return proof.length === 0;
  // 1. An empty path cannot prove anything here.
  if (proof.length === 0) return false;
  // 2. When first is a power of two, the first tree is a node of the path: start from its root.
  const path = isPowerOfTwo(first) ? [firstRoot, ...proof] : [...proof];
  // 3.–4.
  let fn = first - 1;
  let sn = second - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr: Buffer = Buffer.from(path[0] as Uint8Array);
  let sr = fr;
  // 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (!odd(fn)) {
        while (!odd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  return sn === 0 && bytesEqual(fr, firstRoot) && bytesEqual(sr, secondRoot);
}

/**
 * The right edge of a growing tree: the roots of the perfect subtrees covering [0, size), at
 * most one per level (a "compact range", as in transparency-dev/merkle). Appending a leaf merges
 * equal-sized subtrees, producing each interior node exactly once and in O(1) amortised hashes;
 * the root of the whole tree is the right fold of the peaks. O(log n) memory, so a verifier can
 * recompute the roots of billions of leaves streaming.
 */
export class MerkleFrontier {
  private count: number;
  /** Peaks, largest (leftmost) first: peaks[i] has level levels[i]. */
  private readonly hashes: Buffer[];
  private readonly levels: number[];

  /**
   * @param size number of leaves already in the tree
   * @param peaks hashes of completeSubtrees(0, size), left to right
   */
  constructor(size = 0, peaks: readonly Uint8Array[] = []) {
    const refs = completeSubtrees(0, size);
    if (refs.length !== peaks.length)
      throw new RangeError(
        `a tree of ${size} leaves has ${refs.length} peaks, not ${peaks.length}`,
      );
    this.count = size;
    this.hashes = peaks.map((p) => {
      if (p.length !== HASH_BYTES) throw new RangeError('a peak hash must be 32 bytes');
      return Buffer.from(p);
    });
    this.levels = refs.map((r) => r.level);
  }

  get size(): number {
    return this.count;
  }

  /** Peak hashes, left to right, and the subtrees they are. */
  peaks(): { readonly ref: NodeRef; readonly hash: Buffer }[] {
    return completeSubtrees(0, this.count).map((ref, i) => ({
      ref,
      hash: this.hashes[i] as Buffer,
    }));
  }

  /**
   * Appends one leaf hash. `onNode` is called for every interior node (level ≥ 1) this leaf
   * completes, lowest first.
   */
  append(
    leafHash: Uint8Array,
    onNode?: (level: number, index: number, hash: Buffer) => void,
  ): void {
    if (leafHash.length !== HASH_BYTES) throw new RangeError('a leaf hash must be 32 bytes');
    let hash: Buffer = Buffer.from(leafHash);
    let level = 0;
    this.count++;
    while (this.levels.length > 0 && this.levels[this.levels.length - 1] === level) {
      const left = this.hashes.pop() as Buffer;
      this.levels.pop();
      hash = hashChildren(left, hash);
      level++;
      onNode?.(level, this.count / 2 ** level - 1, hash);
    }
    this.hashes.push(hash);
    this.levels.push(level);
  }

  /** MTH of the leaves appended so far. */
  root(): Buffer {
    return foldSubtrees(this.hashes);
  }

  clone(): MerkleFrontier {
    return new MerkleFrontier(this.count, this.hashes);
  }
}
