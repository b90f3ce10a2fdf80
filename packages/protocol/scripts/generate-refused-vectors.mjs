// Writes vectors/refused-v1.json: documents a verifier MUST refuse (PROTOCOL.md §12, §14-§17), each
// a small change of a valid vector of merkle-v1.json, privacy-v1.json or bundle-v1.ndjson. Run
// after a build:   node packages/protocol/scripts/generate-refused-vectors.mjs
// Documents that are signed themselves (a bundle, a receipt, a checkpoint statement) are signed
// again with the vector key after the change, so only the rule the case names refuses them.
// The test suite (src/refused-vectors.test.ts) checks that each is refused for that reason.
import { createHash, createPublicKey, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  BundleWriter,
  canonicalJson,
  checkpointSigningInput,
  erasureReceiptSigningInput,
  privateKeyFromSeed,
  rawPublicKey,
  signedErasureReceipt,
  verifyBundle,
  verifyCheckpoint,
  verifyConsistencyProof,
  verifyErasureReceipt,
  verifyInclusionProof,
} from '../dist/index.js';

const file = (name) => readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8');
const merkle = JSON.parse(file('merkle-v1.json'));
const privacy = JSON.parse(file('privacy-v1.json'));
const bundle = file('bundle-v1.ndjson');

const privateKey = privateKeyFromSeed(Buffer.from(merkle.key.seedHex, 'hex'));
const publicKey = rawPublicKey(createPublicKey(privateKey)).toString('base64url');
if (publicKey !== merkle.key.publicKey) throw new Error('the vector key does not match');
const keyId = merkle.key.keyId;
const signer = (input) => Promise.resolve(sign(null, input, privateKey));

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/**
 * The same bytes in a non-canonical text: the last character with its lowest (unused) bit set.
 * Node's decoder reads both texts as the same bytes; RFC 4648 §3.5 allows only the first.
 */
function padBitSet(text) {
  const last = ALPHABET.indexOf(text[text.length - 1]);
  if (text.length % 4 < 2 || (last & 1) !== 0) throw new Error(`no pad bits to set in ${text}`);
  return text.slice(0, -1) + ALPHABET[last + 1];
}
/** A copy of `object` with member `from` renamed `to`, in place in the member order. */
function rename(object, from, to) {
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k === from ? to : k, v]));
}

const checkpoint = (() => {
  const c = merkle.checkpoints[1];
  return { id: c.id, checkpoint: c.checkpoint, signature: c.signature };
})();
const inclusion = merkle.inclusionProof;
const consistency = merkle.consistencyProof;
const receipt = (() => {
  const r = privacy.erasureReceipt;
  return { id: r.id, receipt: r.receipt, signature: r.signature };
})();

async function resignedBundle(change) {
  const lines = bundle
    .split('\n')
    .slice(0, -1)
    .map((l) => JSON.parse(l));
  const [header, ...rest] = lines;
  const entries = rest.slice(0, -1);
  const changed = change({ header, entries });
  const writer = new BundleWriter(changed.header);
  let text = writer.header();
  for (const e of changed.entries) text += writer.entry(e);
  return text + (await writer.finish(keyId, signer));
}

/** A checkpoint of `statement` as is (no check of its members), signed with the vector key. */
function resignedCheckpoint(statement) {
  const text = canonicalJson(statement);
  return {
    id: createHash('sha256').update(text).digest('hex'),
    checkpoint: text,
    signature: sign(null, checkpointSigningInput(text), privateKey).toString('base64url'),
  };
}

function resignedReceipt(change) {
  const text = canonicalJson(change(JSON.parse(receipt.receipt)));
  return signedErasureReceipt(text, sign(null, erasureReceiptSigningInput(text), privateKey));
}

const cases = [];
const add = (c) => cases.push(c);

// ---- one text per signature and per key (RFC 4648 §3.5) ------------------------------------
// A record of protocol v1 (§12): hashed correctly, in a bundle signed again, still refused.
add({
  name: 'bundle whose first event is a protocol v1 record (hash recomputed), signed',
  section: '§12',
  kind: 'bundle',
  bundle: await resignedBundle(({ header, entries }) => ({
    header,
    entries: entries.map((e, i) => {
      if (i !== 0) return e;
      const record = e.record.replace(/"v":2([,}])/, '"v":1$1');
      if (record === e.record) throw new Error('the vector record has no "v":2');
      return { ...e, record, hash: createHash('sha256').update(record).digest('hex') };
    }),
  })),
  problem: '/record/v must be 2 (protocol v2)',
});
add({
  name: "bundle signature with its last character's pad bit set",
  section: '§16.4',
  kind: 'bundle',
  bundle: bundle.replace(privacy.bundle.signature, padBitSet(privacy.bundle.signature)),
  problem: 'signature must be the canonical unpadded base64url text of 64 bytes',
});
add({
  name: "checkpoint signature with its last character's pad bit set",
  section: '§14.5',
  kind: 'checkpoint',
  document: { ...checkpoint, signature: padBitSet(checkpoint.signature) },
  problem: 'signature must be the canonical unpadded base64url text of 64 bytes',
});
add({
  name: "inclusion proof whose checkpoint signature has its last character's pad bit set",
  section: '§15.3',
  kind: 'inclusionProof',
  document: {
    ...inclusion,
    checkpoint: { ...inclusion.checkpoint, signature: padBitSet(inclusion.checkpoint.signature) },
  },
  problem: 'signature must be the canonical unpadded base64url text of 64 bytes',
});
add({
  name: "erasure receipt signature with its last character's pad bit set",
  section: '§17.4',
  kind: 'erasureReceipt',
  document: { ...receipt, signature: padBitSet(receipt.signature) },
  problem: 'signature must be the canonical unpadded base64url text of 64 bytes',
});
add({
  name: "public key with its last character's pad bit set (no key is trusted)",
  section: '§14.2',
  kind: 'checkpoint',
  keys: [padBitSet(publicKey)],
  document: checkpoint,
  problem: 'not among the trusted keys',
});

// ---- closed documents: an unknown member is refused, named -------------------------------
add({
  name: 'inclusion proof with record renamed recore',
  section: '§15.1',
  kind: 'inclusionProof',
  document: rename(inclusion, 'record', 'recore'),
  problem: 'unknown member "recore"',
});
add({
  name: 'inclusion proof whose leaf has an unknown member',
  section: '§15.1',
  kind: 'inclusionProof',
  document: { ...inclusion, leaf: { ...inclusion.leaf, tenant: 'acme' } },
  problem: 'unknown member "tenant"',
});
add({
  name: 'consistency proof with from renamed frmo',
  section: '§15.2',
  kind: 'consistencyProof',
  document: rename(consistency, 'from', 'frmo'),
  problem: 'unknown member "frmo"',
});
add({
  name: 'consistency proof with to renamed tp',
  section: '§15.2',
  kind: 'consistencyProof',
  document: rename(consistency, 'to', 'tp'),
  problem: 'unknown member "tp"',
});
add({
  name: 'signed checkpoint with an unknown member',
  section: '§14.4',
  kind: 'checkpoint',
  document: { ...checkpoint, witnessed: true },
  problem: 'unknown member "witnessed"',
});
add({
  name: 'signed checkpoint whose unverified time copy disagrees with the statement',
  section: '§14.4',
  kind: 'checkpoint',
  document: { ...checkpoint, time: '2026-11-23T09:01:11.000Z', keyId },
  problem: 'time is not the time of the signed statement',
});
const witnessed = {
  type: 'vigil.checkpoint',
  ...checkpoint,
  tenant: 'acme',
  time: JSON.parse(checkpoint.checkpoint).time,
  keyId,
  publicKey,
};
add({
  name: 'witness document whose tenant copy disagrees with the statement',
  section: '§14.7',
  kind: 'checkpoint',
  document: { ...witnessed, tenant: 'acme2' },
  problem: 'tenant is not the tenant of the signed statement',
});
add({
  name: "witness document whose publicKey has its last character's pad bit set",
  section: '§14.7',
  kind: 'checkpoint',
  document: { ...witnessed, publicKey: padBitSet(publicKey) },
  problem: 'publicKey must be the canonical unpadded base64url text of 32 bytes',
});
add({
  name: 'checkpoint statement with an unknown member, signed',
  section: '§14.1',
  kind: 'checkpoint',
  document: resignedCheckpoint({ ...JSON.parse(checkpoint.checkpoint), note: 'x' }),
  problem: 'unknown member "note"',
});
add({
  name: 'bundle header with an unknown member, signed',
  section: '§16.2',
  kind: 'bundle',
  bundle: await resignedBundle(({ header, entries }) => ({
    header: { ...header, note: 'x' },
    entries,
  })),
  problem: 'unknown member "note"',
});
add({
  name: 'bundle entry with enrichment renamed enrichmenu, signed',
  section: '§16.3',
  kind: 'bundle',
  bundle: await resignedBundle(({ header, entries }) => ({
    header,
    entries: entries.map((e, i) => (i === 0 ? { ...e, enrichmenu: { geo: {} } } : e)),
  })),
  problem: 'unknown member "enrichmenu"',
});
add({
  name: 'bundle entry proof with an unknown member, signed',
  section: '§16.3',
  kind: 'bundle',
  bundle: await resignedBundle(({ header, entries }) => ({
    header,
    entries: entries.map((e, i) => (i === 0 ? { ...e, proof: { ...e.proof, treeSize: 7 } } : e)),
  })),
  problem: 'unknown member "treeSize"',
});
add({
  name: 'erasure receipt with an unknown member, signed',
  section: '§17.3',
  kind: 'erasureReceipt',
  document: resignedReceipt((r) => ({ ...r, note: 'x' })),
  problem: 'unknown member "note"',
});
add({
  name: 'erasure receipt whose counts have an unknown member, signed',
  section: '§17.3',
  kind: 'erasureReceipt',
  document: resignedReceipt((r) => ({ ...r, counts: { ...r.counts, backups: 0 } })),
  problem: 'unknown member "backups"',
});

// ---- the empty tree has one root ------------------------------------------------------------
add({
  name: 'consistency proof from size 0 with a fromRoot other than MTH({})',
  section: '§15.2',
  kind: 'consistencyProof',
  document: {
    v: 1,
    partition: 0,
    fromSize: 0,
    toSize: 7,
    fromRoot: merkle.roots[0],
    toRoot: merkle.roots[6],
    path: [],
  },
  problem: 'fromRoot must be the root of the empty tree',
});

// Every case is refused by this implementation, for the reason it names.
const keys = [publicKey];
for (const c of cases) {
  const trusted = c.keys ?? keys;
  const result =
    c.kind === 'bundle'
      ? verifyBundle(c.bundle, trusted)
      : c.kind === 'checkpoint'
        ? verifyCheckpoint(c.document, trusted)
        : c.kind === 'inclusionProof'
          ? verifyInclusionProof(c.document, trusted)
          : c.kind === 'consistencyProof'
            ? verifyConsistencyProof(c.document, trusted)
            : verifyErasureReceipt(c.document, trusted);
  if (result.ok || !result.problem.includes(c.problem))
    throw new Error(`${c.name}: ${result.ok ? 'verifies' : result.problem}`);
}

const vectors = {
  protocol: 1,
  description:
    "Documents a verifier MUST refuse (PROTOCOL.md §12, §14-§17), each a small change of a vector of merkle-v1.json, privacy-v1.json or bundle-v1.ndjson; documents that carry their own signature are signed again with the vector key, so only the rule of `section` refuses them. `keys` (when present) replaces the trusted key of merkle-v1.json; `problem` is the text Vigil's message contains.",
  cases,
};
writeFileSync(
  new URL('../vectors/refused-v1.json', import.meta.url),
  JSON.stringify(vectors, null, 2) + '\n',
);
console.log('wrote vectors/refused-v1.json (%d cases)', cases.length);
