// Writes vectors/merkle-v1.json: leaf data, tree roots, inclusion and consistency proofs, two
// signed checkpoints and the proof documents of PROTOCOL.md §13–§15. Run after a build:
//   node packages/protocol/scripts/generate-merkle-vectors.mjs
// Everything is derived from vectors/v2.json and fixed seeds (Ed25519 signatures are
// deterministic, RFC 8032 §5.1.6), so the file is reproducible byte for byte. The test suite
// (src/merkle-vectors.test.ts) recomputes every value in it.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  checkpointKeyId,
  checkpointSigningInput,
  consistencyProof,
  createSignedCheckpoint,
  hashLeaf,
  inclusionProof,
  leafData,
  privateKeyFromSeed,
  rawPublicKey,
  rootOf,
  verifyConsistencyProof,
  verifyInclusionProof,
} from '../dist/index.js';
import { createPublicKey } from 'node:crypto';

const v1 = JSON.parse(readFileSync(new URL('../vectors/v2.json', import.meta.url), 'utf8'));
const sha = (text) => createHash('sha256').update(text).digest();
const hex = (b) => Buffer.from(b).toString('hex');

const tenant = 'acme';
const partition = 0;
// Seven leaves: the four events of the v1 stream, then three events of the key stream
// `key/k1` whose hashes stand in for records (SHA-256 of "vigil-vector:leaf:<i>").
const leaves = [
  ...v1.stream.events.map((e) => ({
    stream: e.link.stream,
    seq: e.link.seq,
    eventHash: e.hash,
    eventId: e.input.id,
    record: e.record,
  })),
  ...[4, 5, 6].map((i) => ({
    stream: 'key/k1',
    seq: i - 4,
    eventHash: hex(sha(`vigil-vector:leaf:${i}`)),
  })),
].map((l, index) => {
  const data = leafData({ tenant, stream: l.stream, seq: l.seq, eventHash: l.eventHash });
  return { index, ...l, leafData: hex(data), leafHash: hex(hashLeaf(data)) };
});
const hashes = leaves.map((l) => Buffer.from(l.leafHash, 'hex'));
const roots = hashes.map((_, i) => hex(rootOf(hashes.slice(0, i + 1))));

const inclusion = [
  [0, 1],
  [3, 4],
  [2, 7],
  [6, 7],
].map(([index, size]) => ({
  index,
  size,
  root: roots[size - 1],
  proof: inclusionProof(index, hashes.slice(0, size)).map(hex),
}));
const consistency = [
  [1, 7],
  [3, 7],
  [4, 7],
  [6, 7],
].map(([first, second]) => ({
  first,
  second,
  firstRoot: roots[first - 1],
  secondRoot: roots[second - 1],
  proof: consistencyProof(first, hashes.slice(0, second)).map(hex),
}));

// The signing key: its 32-byte seed is SHA-256 of "vigil-vector:checkpoint-key".
const seed = sha('vigil-vector:checkpoint-key');
const privateKey = privateKeyFromSeed(seed);
const publicKey = rawPublicKey(createPublicKey(privateKey));
const keyId = checkpointKeyId(publicKey);
// Partition 3 of the same tenant holds one leaf: the fifth leaf data, as if stored there.
const otherHead = { partition: 3, size: 1, root: leaves[4].leafHash };
const earlier = createSignedCheckpoint(
  {
    v: 1,
    tenant,
    time: '2026-11-23T09:00:10.000Z',
    keyId,
    partitions: [{ partition, size: 4, root: roots[3] }],
  },
  privateKey,
);
const later = createSignedCheckpoint(
  {
    v: 1,
    tenant,
    time: '2026-11-23T09:01:10.000Z',
    keyId,
    partitions: [otherHead, { partition, size: 7, root: roots[6] }],
  },
  privateKey,
);

const proved = leaves[1];
const inclusionDocument = {
  v: 1,
  eventId: proved.eventId,
  record: proved.record,
  partition,
  leafIndex: proved.index,
  treeSize: 7,
  leaf: { stream: proved.stream, seq: proved.seq, eventHash: proved.eventHash },
  leafData: proved.leafData,
  leafHash: proved.leafHash,
  auditPath: inclusionProof(proved.index, hashes).map(hex),
  root: roots[6],
  checkpoint: later,
};
const consistencyDocument = {
  v: 1,
  partition,
  fromSize: 4,
  toSize: 7,
  fromRoot: roots[3],
  toRoot: roots[6],
  path: consistencyProof(4, hashes).map(hex),
  from: earlier,
  to: later,
};
if (!verifyInclusionProof(inclusionDocument, [publicKey]).ok) throw new Error('inclusion document');
if (!verifyConsistencyProof(consistencyDocument, [publicKey]).ok)
  throw new Error('consistency document');

const vectors = {
  protocol: 1,
  description:
    'Vigil Merkle trees, checkpoints and proofs (PROTOCOL.md §13-§15). Leaves 0-3 are the events of vectors/v2.json; the signing key is derived from a fixed seed so the signatures can be reproduced. Never sign anything with this key.',
  tenant,
  partition,
  leaves: leaves.map((l) => ({
    index: l.index,
    stream: l.stream,
    seq: l.seq,
    eventHash: l.eventHash,
    leafData: l.leafData,
    leafHash: l.leafHash,
  })),
  roots,
  emptyRoot: hex(rootOf([])),
  inclusion,
  consistency,
  key: {
    seedHex: hex(seed),
    publicKey: publicKey.toString('base64url'),
    keyId,
  },
  checkpoints: [earlier, later].map((c) => ({
    ...c,
    signingInputHex: hex(checkpointSigningInput(c.checkpoint)),
  })),
  inclusionProof: inclusionDocument,
  consistencyProof: consistencyDocument,
};
writeFileSync(
  new URL('../vectors/merkle-v1.json', import.meta.url),
  JSON.stringify(vectors, null, 2) + '\n',
);
console.log('wrote vectors/merkle-v1.json: root of 7 leaves', roots[6], 'key', keyId);
