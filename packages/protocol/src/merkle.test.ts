import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  completeSubtrees,
  consistencyProof,
  consistencyProofRanges,
  EMPTY_TREE_ROOT,
  eventLeafHash,
  foldSubtrees,
  hashChildren,
  hashLeaf,
  inclusionProof,
  inclusionProofRanges,
  leafData,
  MerkleFrontier,
  nodeRange,
  rootFromInclusionProof,
  rootOf,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

/**
 * A second, deliberately literal implementation of RFC 9162 §2.1 (MTH, PATH, PROOF/SUBPROOF),
 * written from the RFC's recursive definitions, against which the iterative code is checked.
 */
const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const refLeaf = (d: Uint8Array): Buffer => sha(Buffer.from([0]), d);
function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}
function mth(d: readonly Buffer[]): Buffer {
  if (d.length === 0) return sha();
  if (d.length === 1) return d[0]!;
  const s = k(d.length);
  return sha(Buffer.from([1]), mth(d.slice(0, s)), mth(d.slice(s)));
}
function path(m: number, d: readonly Buffer[]): Buffer[] {
  if (d.length === 1) return [];
  const s = k(d.length);
  return m < s
    ? [...path(m, d.slice(0, s)), mth(d.slice(s))]
    : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}
function subproof(m: number, d: readonly Buffer[], b: boolean): Buffer[] {
  const n = d.length;
  if (m === n) return b ? [] : [mth(d)];
  const s = k(n);
  return m <= s
    ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))]
    : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
}

const leavesOf = (n: number): Buffer[] =>
  Array.from({ length: n }, (_, i) => refLeaf(Buffer.from(`leaf-${i}`)));

function flip(h: Buffer, bit = 3): Buffer {
  const c = Buffer.from(h);
  c[0] = c[0]! ^ (1 << bit);
  return c;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const dh = (h: string): Buffer => Buffer.from(h, 'hex');

/**
 * The RFC 6962 reference data used across Certificate Transparency implementations
 * (transparency-dev/merkle, proof/verify_test.go): eight leaf inputs, the roots of the trees of
 * their first 1..8 leaves, and known inclusion and consistency proofs (leaf numbers 1-based there).
 */
const CT = {
  leaves: [
    '',
    '00',
    '10',
    '2021',
    '3031',
    '40414243',
    '5051525354555657',
    '606162636465666768696a6b6c6d6e6f',
  ],
  roots: [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ],
  inclusion: [
    { leaf: 1, size: 1, proof: [] as string[] },
    {
      leaf: 1,
      size: 8,
      proof: [
        '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
      ],
    },
    {
      leaf: 6,
      size: 8,
      proof: [
        'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
        'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
        'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      ],
    },
    {
      leaf: 3,
      size: 3,
      proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'],
    },
    {
      leaf: 2,
      size: 5,
      proof: [
        '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      ],
    },
  ],
  consistency: [
    { size1: 1, size2: 1, proof: [] as string[] },
    {
      size1: 1,
      size2: 8,
      proof: [
        '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
      ],
    },
    {
      size1: 6,
      size2: 8,
      proof: [
        '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
        'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
        'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      ],
    },
    {
      size1: 2,
      size2: 5,
      proof: [
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      ],
    },
    {
      size1: 6,
      size2: 7,
      proof: [
        '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
        'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
        'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      ],
    },
  ],
};

describe('RFC 6962 / RFC 9162 reference data', () => {
  const leafHashes = CT.leaves.map((l) => hashLeaf(dh(l)));

  it('computes the known roots of the trees of 1 to 8 leaves', () => {
    for (let n = 1; n <= 8; n++) expect(hex(rootOf(leafHashes.slice(0, n)))).toBe(CT.roots[n - 1]);
    expect(hex(EMPTY_TREE_ROOT)).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('generates and verifies the known inclusion proofs', () => {
    for (const v of CT.inclusion) {
      const index = v.leaf - 1;
      const tree = leafHashes.slice(0, v.size);
      expect(inclusionProof(index, tree).map(hex)).toEqual(v.proof);
      const root = dh(CT.roots[v.size - 1]!);
      expect(verifyInclusion(index, v.size, leafHashes[index]!, v.proof.map(dh), root)).toBe(true);
    }
  });

  it('generates and verifies the known consistency proofs', () => {
    for (const v of CT.consistency) {
      expect(consistencyProof(v.size1, leafHashes.slice(0, v.size2)).map(hex)).toEqual(v.proof);
      expect(
        verifyConsistency(
          v.size1,
          v.size2,
          v.proof.map(dh),
          dh(CT.roots[v.size1 - 1]!),
          dh(CT.roots[v.size2 - 1]!),
        ),
      ).toBe(true);
    }
  });
});

describe('trees of 1 to 64 leaves against the RFC definitions', () => {
  const all = leavesOf(64);

  it('computes MTH, every audit path and every consistency path as the RFC defines them', () => {
    for (let n = 1; n <= 64; n++) {
      const d = all.slice(0, n);
      const root = mth(d);
      expect(rootOf(d)).toEqual(root);
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof(m, d);
        expect(proof).toEqual(path(m, d));
        expect(verifyInclusion(m, n, d[m]!, proof, root)).toBe(true);
        expect(rootFromInclusionProof(m, n, d[m]!, proof)).toEqual(root);
      }
      for (let m = 0; m <= n; m++) {
        const proof = consistencyProof(m, d);
        if (m > 0 && m < n) expect(proof).toEqual(subproof(m, d, true));
        else expect(proof).toEqual([]);
        expect(verifyConsistency(m, n, proof, mth(d.slice(0, m)), root)).toBe(true);
      }
    }
  });

  it('refuses every altered inclusion proof', () => {
    for (let n = 1; n <= 33; n++) {
      const d = all.slice(0, n);
      const root = rootOf(d);
      for (let m = 0; m < n; m++) {
        const proof = inclusionProof(m, d);
        const leaf = d[m]!;
        // (Size n+1 is not among them: a path can be valid for two sizes of one shape, which is
        // why root and size always come together, from the signed checkpoint.)
        const bad: [number, number, Buffer, Buffer[], Buffer][] = [
          [m + 1, n, leaf, proof, root],
          [m - 1, n, leaf, proof, root],
          [m, n * 2, leaf, proof, root],
          [m, Math.floor(n / 2), leaf, proof, root],
          [m, n, flip(leaf), proof, root],
          [m, n, leaf, proof, flip(root)],
          [m, n, leaf, [...proof, root], root],
          [m, n, leaf, [root, ...proof], root],
        ];
        if (proof.length > 0) bad.push([m, n, leaf, proof.slice(0, -1), root]);
        for (let i = 0; i < proof.length; i++) {
          const p = [...proof];
          p[i] = flip(p[i]!);
          bad.push([m, n, leaf, p, root]);
        }
        for (const [bm, bn, bl, bp, br] of bad) {
          // None of these is a genuine proof: the leaves are distinct and the roots differ.
          expect(verifyInclusion(bm, bn, bl, bp, br), `n=${n} m=${m} → ${bm}/${bn}`).toBe(false);
        }
      }
    }
  });

  it('refuses every altered consistency proof', () => {
    for (let n = 2; n <= 33; n++) {
      const d = all.slice(0, n);
      const root = rootOf(d);
      for (let m = 1; m < n; m++) {
        const proof = consistencyProof(m, d);
        const first = rootOf(d.slice(0, m));
        const bad: [number, number, Buffer[], Buffer, Buffer][] = [
          [m - 1 === 0 ? m + 1 : m - 1, n, proof, first, root],
          [m + 1, n, proof, first, root],
          [m, n * 2, proof, first, root],
          [m, n, proof, flip(first), root],
          [m, n, proof, first, flip(root)],
          [m, n, proof, root, first],
          [m, n, [], first, root],
          [m, n, [...proof, root], first, root],
          [m, n, [first, ...proof], first, root],
          [m, n, proof.slice(0, -1), first, root],
          [n, m, proof, root, first],
        ];
        for (let i = 0; i < proof.length; i++) {
          const p = [...proof];
          p[i] = flip(p[i]!, 4);
          bad.push([m, n, p, first, root]);
        }
        for (const [bm, bn, bp, bf, bs] of bad) {
          expect(verifyConsistency(bm, bn, bp, bf, bs), `n=${n} m=${m} → ${bm}/${bn}`).toBe(false);
        }
      }
    }
  });

  it('treats equal sizes and the empty tree as the RFC 9162 edge cases', () => {
    const d = all.slice(0, 5);
    const root = rootOf(d);
    expect(verifyConsistency(5, 5, [], root, root)).toBe(true);
    expect(verifyConsistency(5, 5, [root], root, root)).toBe(false);
    expect(verifyConsistency(5, 5, [], root, flip(root))).toBe(false);
    expect(verifyConsistency(0, 5, [], EMPTY_TREE_ROOT, root)).toBe(true);
    expect(verifyConsistency(0, 5, [root], EMPTY_TREE_ROOT, root)).toBe(false);
    // The empty tree has one root, MTH({}) (RFC 9162 §2.1.1): any other is refused.
    expect(verifyConsistency(0, 5, [], root, root)).toBe(false);
    expect(verifyConsistency(0, 5, [], flip(EMPTY_TREE_ROOT), root)).toBe(false);
    expect(verifyConsistency(0, 0, [], root, root)).toBe(false);
    expect(verifyConsistency(0, 0, [], EMPTY_TREE_ROOT, EMPTY_TREE_ROOT)).toBe(true);
    expect(verifyConsistency(6, 5, [], root, root)).toBe(false);
    expect(verifyInclusion(0, 0, d[0]!, [], EMPTY_TREE_ROOT)).toBe(false);
    expect(verifyInclusion(0, 1, d[0]!, [], d[0]!)).toBe(true);
    expect(verifyInclusion(0, 1, d[0]!.subarray(0, 31), [], d[0]!)).toBe(false);
  });
});

describe('subtrees, ranges and the frontier', () => {
  const all = leavesOf(64);

  it('builds every complete node exactly once as leaves are appended', () => {
    const frontier = new MerkleFrontier();
    const nodes = new Map<string, Buffer>();
    for (const [i, leaf] of all.entries()) {
      frontier.append(leaf, (level, index, hash) => {
        const key = `${level}/${index}`;
        expect(nodes.has(key)).toBe(false);
        nodes.set(key, hash);
      });
      expect(frontier.size).toBe(i + 1);
      expect(frontier.root()).toEqual(mth(all.slice(0, i + 1)));
    }
    // 64 leaves complete 63 interior nodes, each the MTH of its range.
    expect(nodes.size).toBe(63);
    for (const [key, hash] of nodes) {
      const [level, index] = key.split('/').map(Number) as [number, number];
      const r = nodeRange({ level, index });
      expect(hash).toEqual(mth(all.slice(r.start, r.end)));
    }
  });

  it('resumes from its peaks', () => {
    for (let n = 0; n <= 40; n++) {
      const peaks = completeSubtrees(0, n).map((ref) => {
        const r = nodeRange(ref);
        return mth(all.slice(r.start, r.end));
      });
      const frontier = new MerkleFrontier(n, peaks);
      expect(frontier.root()).toEqual(mth(all.slice(0, n)));
      for (let i = n; i < 64; i++) frontier.append(all[i]!);
      expect(frontier.root()).toEqual(mth(all));
    }
    expect(() => new MerkleFrontier(3, [all[0]!])).toThrow(/2 peaks/);
  });

  it('decomposes the ranges of proofs into aligned subtrees whose fold is their tree hash', () => {
    for (let n = 1; n <= 64; n++) {
      const ranges = [
        ...Array.from({ length: n }, (_, m) => inclusionProofRanges(m, n)).flat(),
        ...Array.from({ length: n }, (_, m) => consistencyProofRanges(m, n)).flat(),
        { start: 0, end: n },
      ];
      for (const r of ranges) {
        const parts = completeSubtrees(r.start, r.end);
        const hashes = parts.map((p) => {
          const pr = nodeRange(p);
          return mth(all.slice(pr.start, pr.end));
        });
        expect(foldSubtrees(hashes)).toEqual(mth(all.slice(r.start, r.end)));
      }
    }
  });

  it('keeps exact arithmetic beyond 2^32 leaves', () => {
    expect(completeSubtrees(0, 2 ** 33 + 1)).toEqual([
      { level: 33, index: 0 },
      { level: 0, index: 2 ** 33 },
    ]);
    expect(splitPoint(2 ** 40 + 1)).toBe(2 ** 40);
    expect(splitPoint(2 ** 40)).toBe(2 ** 39);
    const ranges = inclusionProofRanges(2 ** 40 + 5, 2 ** 41 + 3);
    expect(ranges).toHaveLength(42);
    expect(ranges[ranges.length - 1]).toEqual({ start: 2 ** 41, end: 2 ** 41 + 3 });
    expect(ranges[ranges.length - 2]).toEqual({ start: 0, end: 2 ** 40 });
    // An inclusion path for the last leaf of a 2^40+1 tree: one sibling, the left 2^40 subtree.
    const left = Buffer.alloc(32, 7);
    const leaf = Buffer.alloc(32, 9);
    const root = hashChildren(left, leaf);
    expect(verifyInclusion(2 ** 40, 2 ** 40 + 1, leaf, [left], root)).toBe(true);
    expect(verifyInclusion(2 ** 40 - 1, 2 ** 40 + 1, leaf, [left], root)).toBe(false);
    expect(inclusionProofRanges(2 ** 40, 2 ** 40 + 1)).toEqual([{ start: 0, end: 2 ** 40 }]);
  });
});

describe('leaf data', () => {
  it('lays out domain, tenant, stream, seq, event hash and column digest as PROTOCOL.md §13.2 says', () => {
    const eventHash = 'e5142e0f6d7eb0dbfce89db4693ce6fb771625f58038f27338b261c4204caecf';
    const columns = '0f'.repeat(32);
    const data = leafData({ tenant: 'acme', stream: 'api/h/1', seq: 258, eventHash, columns });
    expect(data.toString('hex')).toBe(
      Buffer.from('vigil.leaf.v2').toString('hex') +
        '00' +
        '00000004' +
        Buffer.from('acme').toString('hex') +
        '00000007' +
        Buffer.from('api/h/1').toString('hex') +
        '0000000000000102' +
        eventHash +
        columns,
    );
    expect(hashLeaf(data)).toEqual(refLeaf(data));
    // The length prefixes keep (tenant "ab", stream "c") apart from ("a", "bc").
    const a = leafData({ tenant: 'ab', stream: 'c', seq: 0, eventHash, columns });
    const b = leafData({ tenant: 'a', stream: 'bc', seq: 0, eventHash, columns });
    expect(a.equals(b)).toBe(false);
    // Another column digest is another leaf.
    const c = leafData({ tenant: 'ab', stream: 'c', seq: 0, eventHash, columns: '1f'.repeat(32) });
    expect(hashLeaf(a).equals(hashLeaf(c))).toBe(false);
    // The in-place hasher the sink uses gives the same hash, for any text and any seq.
    for (const fields of [
      { tenant: 'acme', stream: 'api/h/1', seq: 258, eventHash, columns },
      {
        tenant: 'zoë',
        stream: 'service/€/𝄞/' + 'x'.repeat(190),
        seq: 2 ** 53 - 1,
        eventHash,
        columns,
      },
      { tenant: 't', stream: 's', seq: 2 ** 32 + 7, eventHash: 'f'.repeat(64), columns },
    ])
      expect(eventLeafHash(fields)).toEqual(hashLeaf(leafData(fields)));
    expect(() =>
      eventLeafHash({ tenant: 'a', stream: 'b', seq: 0, eventHash: 'F'.repeat(64), columns }),
    ).toThrow(TypeError);
    expect(() =>
      eventLeafHash({ tenant: 'a', stream: 'b', seq: 0, eventHash, columns: 'AB' }),
    ).toThrow(TypeError);
    expect(() => leafData({ tenant: 'a', stream: 'b', seq: -1, eventHash, columns })).toThrow(
      RangeError,
    );
    expect(() => leafData({ tenant: 'a', stream: 'b', seq: 0, eventHash: 'AB', columns })).toThrow(
      TypeError,
    );
  });
});
