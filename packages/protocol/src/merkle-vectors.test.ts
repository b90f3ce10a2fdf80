import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  checkpointId,
  checkpointKeyId,
  checkpointSigningInput,
  consistencyProof,
  createSignedCheckpoint,
  encodeCheckpoint,
  hashLeaf,
  inclusionProof,
  leafData,
  parseCheckpoint,
  privateKeyFromSeed,
  rawPublicKey,
  rootOf,
  verifyCheckpoint,
  verifyConsistency,
  verifyConsistencyProof,
  verifyInclusion,
  verifyInclusionProof,
  type ConsistencyProof,
  type InclusionProof,
  type SignedCheckpoint,
} from './index.js';

interface MerkleVectors {
  protocol: number;
  tenant: string;
  partition: number;
  leaves: {
    index: number;
    stream: string;
    seq: number;
    eventHash: string;
    leafData: string;
    leafHash: string;
  }[];
  roots: string[];
  emptyRoot: string;
  inclusion: { index: number; size: number; root: string; proof: string[] }[];
  consistency: {
    first: number;
    second: number;
    firstRoot: string;
    secondRoot: string;
    proof: string[];
  }[];
  key: { seedHex: string; publicKey: string; keyId: string };
  checkpoints: (SignedCheckpoint & { signingInputHex: string })[];
  inclusionProof: InclusionProof;
  consistencyProof: ConsistencyProof;
}

const vectors = JSON.parse(
  readFileSync(new URL('../vectors/merkle-v1.json', import.meta.url), 'utf8'),
) as MerkleVectors;
const v1 = JSON.parse(readFileSync(new URL('../vectors/v2.json', import.meta.url), 'utf8')) as {
  stream: { events: { hash: string; record: string; link: { stream: string; seq: number } }[] };
};

/** PROTOCOL.md §13 written out again from the text, independently of merkle.ts. */
const sha = (...parts: (Buffer | string)[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
function specLeafData(tenant: string, stream: string, seq: number, eventHash: string): Buffer {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const seqBytes = Buffer.alloc(8);
  seqBytes.writeBigUInt64BE(BigInt(seq));
  return Buffer.concat([
    Buffer.from('vigil.leaf.v1\u0000', 'latin1'),
    u32(Buffer.byteLength(tenant)),
    Buffer.from(tenant),
    u32(Buffer.byteLength(stream)),
    Buffer.from(stream),
    seqBytes,
    Buffer.from(eventHash, 'hex'),
  ]);
}
const specLeafHash = (data: Buffer): string => sha(Buffer.from([0]), data).toString('hex');
function specRoot(hashes: Buffer[]): Buffer {
  if (hashes.length === 1) return hashes[0]!;
  let k = 1;
  while (k * 2 < hashes.length) k *= 2;
  return sha(Buffer.from([1]), specRoot(hashes.slice(0, k)), specRoot(hashes.slice(k)));
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (h: string): Buffer => Buffer.from(h, 'hex');

describe('merkle-v1.json vectors (PROTOCOL.md §13-§15)', () => {
  it('binds the first leaves to the events of v1.json', () => {
    for (const [i, e] of v1.stream.events.entries()) {
      const leaf = vectors.leaves[i]!;
      expect(leaf).toMatchObject({ stream: e.link.stream, seq: e.link.seq, eventHash: e.hash });
      expect(sha(e.record).toString('hex')).toBe(leaf.eventHash);
    }
  });

  it('reproduces every leaf data, leaf hash and root byte for byte', () => {
    for (const l of vectors.leaves) {
      const data = specLeafData(vectors.tenant, l.stream, l.seq, l.eventHash);
      expect(hex(data)).toBe(l.leafData);
      expect(specLeafHash(data)).toBe(l.leafHash);
      expect(hex(leafData({ tenant: vectors.tenant, ...l }))).toBe(l.leafData);
      expect(hex(hashLeaf(data))).toBe(l.leafHash);
    }
    const hashes = vectors.leaves.map((l) => unhex(l.leafHash));
    for (let n = 1; n <= hashes.length; n++) {
      expect(hex(specRoot(hashes.slice(0, n)))).toBe(vectors.roots[n - 1]);
      expect(hex(rootOf(hashes.slice(0, n)))).toBe(vectors.roots[n - 1]);
    }
    expect(hex(rootOf([]))).toBe(vectors.emptyRoot);
    expect(vectors.emptyRoot).toBe(sha().toString('hex'));
  });

  it('reproduces and verifies every inclusion and consistency proof', () => {
    const hashes = vectors.leaves.map((l) => unhex(l.leafHash));
    for (const v of vectors.inclusion) {
      expect(inclusionProof(v.index, hashes.slice(0, v.size)).map(hex)).toEqual(v.proof);
      expect(
        verifyInclusion(v.index, v.size, hashes[v.index]!, v.proof.map(unhex), unhex(v.root)),
      ).toBe(true);
    }
    for (const v of vectors.consistency) {
      expect(consistencyProof(v.first, hashes.slice(0, v.second)).map(hex)).toEqual(v.proof);
      expect(
        verifyConsistency(
          v.first,
          v.second,
          v.proof.map(unhex),
          unhex(v.firstRoot),
          unhex(v.secondRoot),
        ),
      ).toBe(true);
    }
  });

  it('reproduces the key, the signing input and the signatures (Ed25519 is deterministic)', () => {
    const seed = sha('vigil-vector:checkpoint-key');
    expect(hex(seed)).toBe(vectors.key.seedHex);
    const privateKey = privateKeyFromSeed(seed);
    const publicKey = rawPublicKey(createPublicKey(privateKey));
    expect(publicKey.toString('base64url')).toBe(vectors.key.publicKey);
    expect(checkpointKeyId(publicKey)).toBe(vectors.key.keyId);
    expect(sha(publicKey).toString('hex').slice(0, 16)).toBe(vectors.key.keyId);
    for (const c of vectors.checkpoints) {
      const parsed = parseCheckpoint(c.checkpoint);
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) continue;
      expect(encodeCheckpoint(parsed.statement)).toBe(c.checkpoint);
      expect(canonicalJson(JSON.parse(c.checkpoint))).toBe(c.checkpoint);
      expect(checkpointId(c.checkpoint)).toBe(c.id);
      expect(sha(c.checkpoint).toString('hex')).toBe(c.id);
      const input = Buffer.concat([
        Buffer.from('vigil.checkpoint.v1\u0000', 'latin1'),
        Buffer.from(c.checkpoint),
      ]);
      expect(hex(input)).toBe(c.signingInputHex);
      expect(hex(checkpointSigningInput(c.checkpoint))).toBe(c.signingInputHex);
      // Verified with node:crypto directly, from the raw public key alone.
      const spki = createPublicKey({
        key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), publicKey]),
        format: 'der',
        type: 'spki',
      });
      expect(verify(null, input, spki, Buffer.from(c.signature, 'base64url'))).toBe(true);
      expect(createSignedCheckpoint(parsed.statement, privateKey)).toEqual({
        id: c.id,
        checkpoint: c.checkpoint,
        signature: c.signature,
      });
      const signed = { id: c.id, checkpoint: c.checkpoint, signature: c.signature };
      expect(verifyCheckpoint(signed, [vectors.key.publicKey]).ok).toBe(true);
    }
  });

  it('verifies the proof documents with the public key alone, and refuses altered copies', () => {
    const keys = [vectors.key.publicKey];
    const inc = vectors.inclusionProof;
    expect(verifyInclusionProof(inc, keys)).toMatchObject({
      ok: true,
      statement: { tenant: 'acme' },
    });
    const con = vectors.consistencyProof;
    expect(verifyConsistencyProof(con, keys)).toMatchObject({ ok: true });

    const otherKey = rawPublicKey(createPublicKey(privateKeyFromSeed(sha('another key')))).toString(
      'base64url',
    );
    const flip = (h: string): string => (h[0] === '0' ? '1' : '0') + h.slice(1);
    const bad: [string, InclusionProof, RegExp][] = [
      ['untrusted key', inc, /not among the trusted keys/],
      [
        'record edited',
        { ...inc, record: inc.record!.replace('"seq":1', '"seq": 1') },
        /record was altered/,
      ],
      ['leaf index', { ...inc, leafIndex: inc.leafIndex + 1 }, /audit path does not lead/],
      ['tree size', { ...inc, treeSize: 6 }, /treeSize 6 is not the checkpoint's size 7/],
      [
        'audit path',
        { ...inc, auditPath: [flip(inc.auditPath[0]!), ...inc.auditPath.slice(1)] },
        /audit path does not lead/,
      ],
      ['leaf seq', { ...inc, leaf: { ...inc.leaf, seq: 2 } }, /leafData is not the leaf data/],
      ['partition', { ...inc, partition: 1 }, /no head for partition 1/],
      [
        'checkpoint text',
        {
          ...inc,
          checkpoint: {
            ...inc.checkpoint,
            checkpoint: inc.checkpoint.checkpoint.replace('"size":7', '"size":8'),
          },
        },
        /text was altered/,
      ],
      [
        'checkpoint re-identified',
        {
          ...inc,
          checkpoint: {
            ...inc.checkpoint,
            checkpoint: inc.checkpoint.checkpoint.replace('"size":7', '"size":8'),
            id: checkpointId(inc.checkpoint.checkpoint.replace('"size":7', '"size":8')),
          },
        },
        /signature does not verify/,
      ],
      [
        'signature byte',
        {
          ...inc,
          checkpoint: { ...inc.checkpoint, signature: 'A' + inc.checkpoint.signature.slice(1) },
        },
        /signature does not verify/,
      ],
    ];
    for (const [name, proof, problem] of bad) {
      const result = verifyInclusionProof(proof, name === 'untrusted key' ? [otherKey] : keys);
      expect(result.ok, name).toBe(false);
      if (!result.ok) expect(result.problem, name).toMatch(problem);
    }
    const badConsistency: [string, ConsistencyProof][] = [
      ['from size', { ...con, fromSize: 3 }],
      ['path', { ...con, path: [flip(con.path[0]!), ...con.path.slice(1)] }],
      ['roots swapped', { ...con, fromRoot: con.toRoot, toRoot: con.fromRoot }],
    ];
    for (const [name, proof] of badConsistency)
      expect(verifyConsistencyProof(proof, keys).ok, name).toBe(false);
    // Without checkpoints, the bare RFC 9162 proof still checks.
    const { from: _f, to: _t, ...bare } = con;
    expect(verifyConsistencyProof(bare).ok).toBe(true);
  });

  it('refuses checkpoint texts that are not canonical v1 statements', () => {
    const good = vectors.checkpoints[1]!.checkpoint;
    const cases: [string, RegExp][] = [
      [good.replace('"v":1', '"v":2'), /v must be 1/],
      [good.replace('{"keyId"', '{ "keyId"'), /canonical form/],
      [good.replace('"tenant":"acme"', '"tenant":"acme","x":1'), /exactly the members/],
      [
        good.replace('"time":"2026-11-23T09:01:10.000Z"', '"time":"2026-02-30T09:01:10.000Z"'),
        /time must be a real instant/,
      ],
      [good.replace('"partition":3', '"partition":0'), /ascending/],
      [good.replace('"size":1', '"size":0'), /size must be an integer/],
      ['[]', /JSON object/],
      ['{', /not JSON/],
    ];
    for (const [text, problem] of cases) {
      const parsed = parseCheckpoint(text);
      expect(parsed.ok, text).toBe(false);
      if (!parsed.ok) expect(parsed.problem).toMatch(problem);
    }
    expect(() =>
      encodeCheckpoint({
        v: 1,
        tenant: 'a',
        time: 'yesterday',
        keyId: vectors.key.keyId,
        partitions: [],
      }),
    ).toThrow(/time must be/);
  });
});
