// Writes vectors/refused-v2.json: documents a verifier MUST refuse (PROTOCOL.md §12, §14-§17), each
// a small change of a valid vector of merkle-v2.json, privacy-v2.json or bundle-v2.ndjson. Run
// after a build:   node packages/protocol/scripts/generate-refused-vectors.mjs
// Documents that are signed themselves (a bundle, a receipt, a checkpoint statement) are signed
// again with the vector key after the change, so only the rule the case names refuses them.
// The test suite (src/refused-vectors.test.ts) checks that each is refused for that reason.
import { createHash, createPublicKey, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  BUNDLE_VERSION,
  BundleWriter,
  bundleSigningInput,
  canonicalJson,
  checkpointSigningInput,
  columnDigestHex,
  correctedValuePath,
  erasureReceiptSigningInput,
  hashLeaf,
  inclusionProof as auditPathOf,
  leafData,
  privateKeyFromSeed,
  rawPublicKey,
  sealEvent,
  signedErasureReceipt,
  verifyBundle,
  verifyCheckpoint,
  verifyConsistencyProof,
  verifyErasureReceipt,
  verifyInclusionProof,
} from '../dist/index.js';

const file = (name) => readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8');
const merkle = JSON.parse(file('merkle-v2.json'));
const privacy = JSON.parse(file('privacy-v2.json'));
const bundle = file('bundle-v2.ndjson');
const events = JSON.parse(file('v2.json')).stream.events;

const privateKey = privateKeyFromSeed(Buffer.from(merkle.key.seedHex, 'hex'));
const publicKey = rawPublicKey(createPublicKey(privateKey)).toString('base64url');
if (publicKey !== merkle.key.publicKey) throw new Error('the vector key does not match');
const keyId = merkle.key.keyId;
const sha256 = (data) => createHash('sha256').update(data).digest();
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

/**
 * A bundle of exactly these header and entry lines, as given (no normalisation by a writer),
 * with its statement signed with the vector key: only the rule a case names refuses it.
 */
function rawBundle(header, entries) {
  const body = [header, ...entries].map((l) => canonicalJson(l) + '\n').join('');
  const statement = canonicalJson({
    bodyDigest: createHash('sha256').update(body).digest('hex'),
    checkpoint: header.checkpoint.id,
    createdAt: header.createdAt,
    entries: entries.length,
    keyId,
    tenant: header.tenant,
    v: BUNDLE_VERSION,
  });
  const signature = sign(null, bundleSigningInput(statement), privateKey).toString('base64url');
  return body + canonicalJson({ signature, statement }) + '\n';
}

/** The bundle entry of event `index` of v2.json, proved in the vector checkpoint's tree. */
function entryOf(index, roles, paths) {
  const e = events[index];
  const leafHashes = merkle.leaves.map((l) => Buffer.from(l.leafHash, 'hex'));
  return {
    type: 'event',
    record: e.record,
    hash: e.hash,
    disclosures: Object.fromEntries(paths.map((p) => [p, e.disclosures[p]])),
    roles,
    proof: {
      partition: merkle.partition,
      leafIndex: index,
      auditPath: auditPathOf(index, leafHashes).map((h) => Buffer.from(h).toString('hex')),
    },
  };
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

// ---- a bundle holds the subject's events and values only (§16.3, §16.5 step 5) -------------
const withEntries = (change) =>
  resignedBundle(({ header, entries }) => ({ header, entries: change(entries) }));
add({
  name: 'bundle entry whose roles say target where the subject is the actor, signed',
  section: '§16.5',
  kind: 'bundle',
  bundle: await withEntries(([e1, e2]) => [{ ...e1, roles: ['target'] }, e2]),
  problem: 'roles says the subject is the target',
});
add({
  name: 'bundle entry whose roles add grantedBy where another person granted, signed',
  section: '§16.5',
  kind: 'bundle',
  bundle: await withEntries(([e1, e2]) => [e1, { ...e2, roles: ['accessSubject', 'grantedBy'] }]),
  problem: 'roles says the subject is the grantedBy',
});
add({
  name: 'bundle entry whose roles repeat a role, signed',
  section: '§16.3',
  kind: 'bundle',
  bundle: await withEntries(([e1, e2]) => [{ ...e1, roles: ['actor', 'actor'] }, e2]),
  problem: 'in that order, without repeats',
});
add({
  name: 'bundle with an entry repeated, signed',
  section: '§16.5',
  kind: 'bundle',
  bundle: await withEntries(([e1, e2]) => [e1, e2, e1]),
  problem: 'repeats entry 1 (line 2)',
});
add({
  name: 'bundle with an event in which the subject plays no part (claimed as actor), signed',
  section: '§16.5',
  kind: 'bundle',
  bundle: await withEntries((entries) => [...entries, entryOf(3, ['actor'], [])]),
  problem: 'roles says the subject is the actor, but neither /actor/id nor /actor/email',
});
add({
  name: "bundle entry disclosing the grantor's id (another person), signed",
  section: '§16.5',
  kind: 'bundle',
  bundle: await withEntries(([e1]) => [
    e1,
    entryOf(2, ['accessSubject'], ['/access/grantedBy/id', '/access/subject/id']),
  ]),
  problem: 'discloses /access/grantedBy/id, which is not the subject',
});
add({
  name: 'bundle entry disclosing metadata of an event another person is a party of, signed',
  section: '§16.5',
  kind: 'bundle',
  bundle: await withEntries(([e1]) => [
    e1,
    entryOf(2, ['accessSubject'], ['/access/subject/id', '/metadata/phone']),
  ]),
  problem: 'discloses /metadata/phone, which is not the subject',
});
add({
  name: "bundle entry of another person's event, labelled with that person's role, signed",
  section: '§16.5',
  kind: 'bundle',
  bundle: await withEntries(([e1]) => [e1, entryOf(2, ['actor'], ['/actor/email', '/actor/id'])]),
  problem: 'roles says the subject is the actor, but neither /actor/id nor /actor/email',
});
add({
  name: 'bundle entry claiming the correction role for an event that corrects nothing, signed',
  section: '§16.5',
  kind: 'bundle',
  bundle: await withEntries(([e1, e2]) => [{ ...e1, roles: ['actor', 'correction'] }, e2]),
  problem: 'roles says correction, but the record is not a correction',
});
add({
  name: 'bundle with a correction of an event that is not in the bundle, signed',
  section: '§16.5',
  kind: 'bundle',
  bundle: await withEntries(([, e2]) => [
    e2,
    {
      type: 'event',
      record: privacy.correction.record,
      hash: privacy.correction.hash,
      disclosures: {},
      roles: ['correction'],
      proof: null,
    },
  ]),
  problem: 'the event it corrects (by id and hash) is no earlier entry of this bundle',
});
{
  // A correction of event 2, where the subject is the access subject, that corrects the
  // grantor's id. The correction's own parties are in the clear (Vigil's admin key, the event),
  // so no party outside the roles commits an id: read alone, the metadata rule of §16.3 would
  // let the entry disclose the corrected value. It is the grantor's, not the subject's.
  let n = 0;
  const salts = { salt: () => sha256(`vigil-vector:refused-correction:${n++}`).subarray(0, 16) };
  const e2 = events[2];
  const e2Id = JSON.parse(e2.record).id;
  const grantor = correctedValuePath('/access/grantedBy/id');
  const sealed = sealEvent(
    {
      id: '0193a4b2-6c40-7000-8000-000000000011',
      time: '2026-11-23T09:05:00.000Z',
      action: 'event.corrected',
      category: 'data_change',
      outcome: 'success',
      actor: { type: 'api_key', id: 'k-admin' },
      target: { type: 'event', id: e2Id },
      corrects: { event: e2Id, hash: e2.hash },
      metadata: { corrected: { '/access/grantedBy/id': 'u-2001' }, reason: 'wrong grantor' },
      personal: [grantor],
    },
    {
      stream: 'vigil/admin/host-7/0193a4b2-6c3f-7000-8000-000000000001',
      seq: 2,
      prev: privacy.correction.hash,
    },
    salts,
  ).event;
  add({
    name: "bundle with a correction entry disclosing the grantor's corrected id, signed",
    section: '§16.5',
    kind: 'bundle',
    bundle: await withEntries(([e1, e2entry]) => [
      e1,
      e2entry,
      {
        type: 'event',
        record: sealed.record,
        hash: sealed.hash,
        disclosures: { [grantor]: sealed.disclosures[grantor] },
        roles: ['correction'],
        proof: null,
      },
    ]),
    problem: `discloses ${grantor}, which is not the subject`,
  });
}
{
  // Event 0's record with one space after its first colon: still JSON, same content, hashed
  // as it is, but not its own RFC 8785 form (§4, §8.1).
  const [, e1] = bundle
    .split('\n')
    .slice(0, 2)
    .map((l) => JSON.parse(l));
  const spaced = e1.record.replace('"action":', '"action": ');
  add({
    name: 'bundle entry whose record is not its own RFC 8785 form (hash recomputed), unproved, signed',
    section: '§16.5',
    kind: 'bundle',
    bundle: await withEntries(([, e2entry]) => [
      { ...e1, record: spaced, hash: sha256(spaced).toString('hex'), proof: null },
      e2entry,
    ]),
    problem: 'is not in RFC 8785 form',
  });
  // The same kind of record as the one leaf of a tree the vector key signed.
  const record = events[0].record.replace('"action":', '"action": ');
  const parsed = JSON.parse(record);
  const leaf = {
    stream: parsed.stream,
    seq: parsed.seq,
    eventHash: sha256(record).toString('hex'),
    columns: columnDigestHex(parsed),
  };
  const data = leafData({ tenant: merkle.tenant, ...leaf });
  const root = hashLeaf(data).toString('hex');
  add({
    name: 'inclusion proof whose record is not its own RFC 8785 form, in a tree signed for it',
    section: '§15.3',
    kind: 'inclusionProof',
    document: {
      v: 1,
      eventId: parsed.id,
      record,
      partition: 0,
      leafIndex: 0,
      treeSize: 1,
      leaf,
      leafData: data.toString('hex'),
      leafHash: root,
      auditPath: [],
      root,
      checkpoint: resignedCheckpoint({
        keyId,
        partitions: [{ partition: 0, root, size: 1 }],
        tenant: merkle.tenant,
        time: '2026-11-23T09:01:20.000Z',
        v: 1,
      }),
    },
    problem: 'is not in RFC 8785 form',
  });
}
add({
  name: 'bundle entry with enrichment derived from an address it does not disclose, signed',
  section: '§16.3',
  kind: 'bundle',
  bundle: await withEntries(([e1, e2]) => [e1, { ...e2, enrichment: { geo: { country: 'FR' } } }]),
  problem: 'enrichment.geo is derived from /context/ip',
});
add({
  name: 'bundle entry whose disclosures are null, signed',
  section: '§16.3',
  kind: 'bundle',
  bundle: await withEntries(([e1, e2]) => [e1, { ...e2, disclosures: null }]),
  problem: 'disclosures must be a JSON object',
});
{
  const [e1] = bundle
    .split('\n')
    .slice(1, 2)
    .map((l) => JSON.parse(l));
  // A record on a stream longer than §3.5 allows, with its own hash and no proof: only the
  // stream rule (which a bundle relaxes for Vigil's reserved streams alone) refuses it.
  const record = JSON.parse(e1.record);
  record.stream = 'x'.repeat(201);
  const text = canonicalJson(record);
  add({
    name: 'bundle entry whose record has a stream beyond 200 characters, unproved, signed',
    section: '§16.5',
    kind: 'bundle',
    bundle: await withEntries(([, e2]) => [
      { ...e1, record: text, hash: createHash('sha256').update(text).digest('hex'), proof: null },
      e2,
    ]),
    problem: '/record/stream',
  });
}
{
  const [header, ...rest] = bundle
    .split('\n')
    .slice(0, -2)
    .map((l) => JSON.parse(l));
  add({
    name: 'bundle whose checkpoint carries the API copy of its time, signed',
    section: '§16.2',
    kind: 'bundle',
    bundle: rawBundle(
      {
        ...header,
        checkpoint: {
          ...header.checkpoint,
          time: JSON.parse(header.checkpoint.checkpoint).time,
        },
      },
      rest,
    ),
    problem: 'checkpoint has an unknown member "time"',
  });
  add({
    name: 'bundle whose subject address is not lower-cased, signed',
    section: '§16.2',
    kind: 'bundle',
    bundle: rawBundle(
      { ...header, subject: { ...header.subject, emails: ['Zoe@example.eu'] } },
      rest,
    ),
    problem: 'subject.emails[0] is not in its normal form',
  });
}

// ---- receipt rules (§17.3) -----------------------------------------------------------------
const override = { holds: ['hold_0193a4b26c3f7001'], reason: 'court order 12/2026 requires it' };
add({
  name: 'erasure receipt with a hold id that is not hold_ and 16 hex digits, signed',
  section: '§17.3',
  kind: 'erasureReceipt',
  document: resignedReceipt((r) => ({ ...r, holdOverride: { ...override, holds: ['hold_1'] } })),
  problem: 'holdOverride.holds must be',
});
add({
  name: 'erasure receipt with an empty holdOverride.reason, signed',
  section: '§17.3',
  kind: 'erasureReceipt',
  document: resignedReceipt((r) => ({ ...r, holdOverride: { ...override, reason: '' } })),
  problem: 'holdOverride.reason must be a string of 1 to 1000 characters',
});
add({
  name: 'erasure receipt listing an event id that is a UUIDv4, signed',
  section: '§17.3',
  kind: 'erasureReceipt',
  document: resignedReceipt((r) => ({
    ...r,
    events: r.events.map((e, i) =>
      i === 0 ? { ...e, id: '0193a4b2-6c3f-4000-8000-000000000001' } : e,
    ),
  })),
  problem: 'events[0].id must be an event id (lower-case UUIDv7)',
});
add({
  name: 'erasure receipt listing one path twice for an event, signed',
  section: '§17.3',
  kind: 'erasureReceipt',
  document: resignedReceipt((r) => ({
    ...r,
    events: r.events.map((e, i) => (i === 1 ? { ...e, paths: [e.paths[0], ...e.paths] } : e)),
  })),
  problem: 'events[1].paths must be a non-empty sorted list of JSON pointers without repeats',
});
add({
  name: 'erasure receipt whose tenant has 257 characters, signed',
  section: '§17.3',
  kind: 'erasureReceipt',
  document: resignedReceipt((r) => ({ ...r, tenant: 'a'.repeat(257) })),
  problem: 'tenant must be a string of 1 to 256 characters',
});
add({
  name: 'erasure receipt with an empty reason, signed',
  section: '§17.3',
  kind: 'erasureReceipt',
  document: resignedReceipt((r) => ({ ...r, reason: '' })),
  problem: 'reason must be a string of 1 to 1000 characters',
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
  protocol: 2,
  description:
    "Documents a verifier MUST refuse (PROTOCOL.md §12, §14-§17), each a small change of a vector of merkle-v2.json, privacy-v2.json or bundle-v2.ndjson; documents that carry their own signature are signed again with the vector key, so only the rule of `section` refuses them. `keys` (when present) replaces the trusted key of merkle-v2.json; `problem` is the text Vigil's message contains.",
  cases,
};
writeFileSync(
  new URL('../vectors/refused-v2.json', import.meta.url),
  JSON.stringify(vectors, null, 2) + '\n',
);
console.log('wrote vectors/refused-v2.json (%d cases)', cases.length);
