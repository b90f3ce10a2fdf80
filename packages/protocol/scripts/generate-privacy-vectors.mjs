// Writes vectors/bundle-v2.ndjson and vectors/privacy-v2.json: a subject bundle, a subject
// digest, an erasure receipt and a correction (PROTOCOL.md §16-§18). Run after a build:
//   node packages/protocol/scripts/generate-privacy-vectors.mjs
// Everything derives from vectors/v2.json, vectors/merkle-v2.json and fixed seeds (Ed25519
// signatures are deterministic, RFC 8032 §5.1.6), so both files are reproducible byte for byte.
// The test suite (src/privacy-vectors.test.ts) recomputes every value and verifies the bundle.
import { createHash, createPublicKey, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  BundleWriter,
  CORRECTION_ACTION,
  applyCorrections,
  bundleSigningInput,
  correctedFields,
  correctedValuePath,
  encodeErasureReceipt,
  erasureReceiptSigningInput,
  inclusionProof,
  privateKeyFromSeed,
  rawPublicKey,
  sealEvent,
  signedErasureReceipt,
  normalEmail,
  subjectDigest,
  subjectDigests,
  verifyBundle,
  verifyErasureReceipt,
} from '../dist/index.js';

const read = (name) => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url)));
const v1 = read('v2.json');
const merkle = read('merkle-v2.json');
const sha = (text) => createHash('sha256').update(text).digest();
const hex = (b) => Buffer.from(b).toString('hex');

const privateKey = privateKeyFromSeed(Buffer.from(merkle.key.seedHex, 'hex'));
const publicKey = rawPublicKey(createPublicKey(privateKey));
const keyId = merkle.key.keyId;
const signer = (input) => Promise.resolve(sign(null, input, privateKey));
const checkpoint = merkle.checkpoints[1];
const signedCheckpoint = {
  id: checkpoint.id,
  checkpoint: checkpoint.checkpoint,
  signature: checkpoint.signature,
};
const leafHashes = merkle.leaves.map((l) => Buffer.from(l.leafHash, 'hex'));
const events = v1.stream.events;

// ---- subject digest ----------------------------------------------------------------------
// The digest key: SHA-256 of "vigil-vector:subject-key". Never use it.
const subjectKey = sha('vigil-vector:subject-key');
const subject = { id: 'u-1042', emails: ['zoe@example.eu'] };
// Cases 2 on show the normal form of an address (§17.2): white space trimmed, full Unicode
// lower-casing without locale (İ becomes i + U+0307, a final Σ becomes ς), no normalisation
// form (a decomposed ë stays decomposed and digests differently from the composed one).
const digestCases = [
  { kind: 'id', value: 'u-1042' },
  { kind: 'email', value: 'Zoe@Example.EU' },
  { kind: 'email', value: '\u00a0\tZOË.MÜLLER@EXAMPLE.EU\r\n\u3000' },
  { kind: 'email', value: 'ΟΔΟΣ@İSTANBUL.EXAMPLE' },
  { kind: 'email', value: 'zoe\u0308@example.eu' },
  { kind: 'id', value: ' U-1042' },
].map((c) => ({
  ...c,
  normal: c.kind === 'email' ? normalEmail(c.value) : c.value,
  digest: subjectDigest(subjectKey, c.kind, c.value),
}));

// ---- bundle of u-1042: event 1 (actor) and event 2 (access subject) -------------------------
const createdAt = '2026-11-23T09:02:00.000Z';
const writer = new BundleWriter({
  v: 1,
  format: 'vigil.bundle',
  tenant: merkle.tenant,
  createdAt,
  subject,
  checkpoint: signedCheckpoint,
});
const entries = [
  { index: 1, roles: ['actor'], paths: Object.keys(events[1].disclosures) },
  { index: 2, roles: ['accessSubject'], paths: ['/access/subject/id'] },
];
let bundle = writer.header();
for (const e of entries) {
  const event = events[e.index];
  const disclosures = Object.fromEntries(e.paths.map((p) => [p, event.disclosures[p]]));
  bundle += writer.entry({
    type: 'event',
    record: event.record,
    hash: event.hash,
    disclosures,
    roles: e.roles,
    proof: {
      partition: merkle.partition,
      leafIndex: e.index,
      auditPath: inclusionProof(e.index, leafHashes).map(hex),
    },
  });
}
const statement = writer.statement(keyId);
bundle += await writer.finish(keyId, signer);
const bundleCheck = verifyBundle(bundle, [publicKey]);
if (!bundleCheck.ok) throw new Error(`bundle: ${bundleCheck.problem}`);
const lastLine = JSON.parse(bundle.trimEnd().split('\n').at(-1));

// ---- erasure receipt of u-1042 from the same two events ----------------------------------
const receiptText = encodeErasureReceipt({
  v: 1,
  type: 'vigil.erasure-receipt',
  erasure: 'era_0193a4b26c3f7000',
  tenant: merkle.tenant,
  subject: subjectDigests(subjectKey, subject),
  time: '2026-11-23T09:03:00.000Z',
  keyId,
  reason: 'Art. 17 request 2026-0042',
  events: [
    { id: events[1].input.id, hash: events[1].hash, paths: Object.keys(events[1].disclosures) },
    {
      id: events[2].input.id,
      hash: events[2].hash,
      paths: ['/access/subject/id', '/metadata/phone'],
    },
  ],
  counts: { events: 2, disclosures: 7, derivedColumns: 12, logRecords: 2, rejectedRecords: 0 },
});
const receipt = signedErasureReceipt(
  receiptText,
  sign(null, erasureReceiptSigningInput(receiptText), privateKey),
);
const receiptCheck = verifyErasureReceipt(receipt, [publicKey]);
if (!receiptCheck.ok) throw new Error(`receipt: ${receiptCheck.problem}`);

// ---- a correction of event 1's e-mail address, recorded on an admin stream ---------------
let n = 0;
const salts = { salt: () => sha(`vigil-vector:correction:${n++}`).subarray(0, 16) };
const corrected = { '/actor/email': 'zoe.mueller@example.eu', '/outcome': 'failure' };
const correctionInput = {
  id: '0193a4b2-6c40-7000-8000-000000000010',
  time: '2026-11-23T09:04:00.000Z',
  action: CORRECTION_ACTION,
  category: 'data_change',
  outcome: 'success',
  actor: { type: 'api_key', id: 'k-admin' },
  target: { type: 'event', id: events[1].input.id },
  corrects: { event: events[1].input.id, hash: events[1].hash },
  metadata: { corrected, reason: 'the address was mistyped' },
  personal: [correctedValuePath('/actor/email')],
};
const correctionLink = {
  stream: 'vigil/admin/host-7/0193a4b2-6c3f-7000-8000-000000000001',
  seq: 1,
  prev: hex(sha('vigil-vector:correction-prev')),
};
const correction = sealEvent(correctionInput, correctionLink, salts).event;
// The corrected view of event 1: its opened record with the correction applied.
const opened = JSON.parse(events[1].record);
for (const [path, d] of Object.entries(events[1].disclosures)) {
  const tokens = path.slice(1).split('/');
  let node = opened;
  for (const t of tokens.slice(0, -1)) node = node[t];
  node[tokens.at(-1)] = d.value;
}
delete opened.personal;
const correctionView = { ...correctionInput };
const correctedView = applyCorrections(opened, [correctedFields(correctionView)]);

writeFileSync(new URL('../vectors/bundle-v2.ndjson', import.meta.url), bundle);
const vectors = {
  protocol: 2,
  description:
    'Vigil subject bundles, subject digests, erasure receipts and corrections (PROTOCOL.md §16-§18). Built from vectors/v2.json and vectors/merkle-v2.json; the signing key is the one of merkle-v2.json (never sign anything with it) and the digest key is SHA-256 of "vigil-vector:subject-key".',
  key: merkle.key,
  subjectDigest: { keyHex: hex(subjectKey), cases: digestCases },
  bundle: {
    file: 'bundle-v2.ndjson',
    subject,
    createdAt,
    checkpoint: checkpoint.id,
    entries: entries.map((e) => ({
      eventId: events[e.index].input.id,
      leafIndex: e.index,
      roles: e.roles,
      disclosed: e.paths,
    })),
    statement: lastLine.statement,
    bodyDigest: statement.bodyDigest,
    signingInputHex: hex(bundleSigningInput(lastLine.statement)),
    signature: lastLine.signature,
  },
  erasureReceipt: {
    ...receipt,
    signingInputHex: hex(erasureReceiptSigningInput(receipt.receipt)),
  },
  correction: {
    input: correctionInput,
    link: correctionLink,
    saltSeed: 'vigil-vector:correction:<n>',
    record: correction.record,
    hash: correction.hash,
    disclosures: correction.disclosures,
    correctedView,
  },
};
writeFileSync(
  new URL('../vectors/privacy-v2.json', import.meta.url),
  JSON.stringify(vectors, null, 2) + '\n',
);
console.log(
  'wrote vectors/bundle-v2.ndjson (%d bytes) and vectors/privacy-v2.json; bundle body %s',
  Buffer.byteLength(bundle),
  statement.bodyDigest,
);
