import { createHash, createPublicKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BundleWriter,
  applyCorrections,
  bundleSigningInput,
  correctedFields,
  encodeErasureReceipt,
  erasureReceiptSigningInput,
  hashLeaf,
  inclusionProof,
  leafData,
  privateKeyFromSeed,
  rawPublicKey,
  sealEvent,
  subjectDigest,
  verifyBundle,
  verifyErasureReceipt,
  type BundleEntry,
  type CompleteInput,
  type Disclosures,
  type ErasureReceiptStatement,
  type SignedErasureReceipt,
} from './index.js';

/**
 * Recomputes vectors/privacy-v2.json and vectors/bundle-v2.ndjson (PROTOCOL.md §16-§18) from
 * v2.json, merkle-v2.json and the fixed seeds, and checks that the published bundle, receipt and
 * correction verify with the public key alone and fail when any byte of them changes.
 */

const read = (name: string): string =>
  readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8');

interface V1Event {
  input: { id: string };
  record: string;
  hash: string;
  disclosures?: Disclosures;
}
const v1 = JSON.parse(read('v2.json')) as { stream: { events: V1Event[] } };
const merkle = JSON.parse(read('merkle-v2.json')) as {
  tenant: string;
  partition: number;
  key: { seedHex: string; publicKey: string; keyId: string };
  leaves: { leafHash: string; stream: string; seq: number; eventHash: string }[];
  checkpoints: { id: string; checkpoint: string; signature: string }[];
};
const vectors = JSON.parse(read('privacy-v2.json')) as {
  key: { publicKey: string; keyId: string };
  subjectDigest: {
    keyHex: string;
    cases: { kind: 'id' | 'email'; value: string; digest: string }[];
  };
  bundle: {
    file: string;
    subject: { id: string; emails: string[] };
    createdAt: string;
    checkpoint: string;
    entries: { eventId: string; leafIndex: number; roles: string[]; disclosed: string[] }[];
    statement: string;
    bodyDigest: string;
    signingInputHex: string;
    signature: string;
  };
  erasureReceipt: SignedErasureReceipt & { signingInputHex: string };
  correction: {
    input: CompleteInput;
    link: { stream: string; seq: number; prev: string };
    record: string;
    hash: string;
    disclosures: Disclosures;
    correctedView: Record<string, unknown>;
  };
};
const bundle = read(vectors.bundle.file);
const publicKey = vectors.key.publicKey;
const privateKey = privateKeyFromSeed(Buffer.from(merkle.key.seedHex, 'hex'));
const sha = (text: string): Buffer => createHash('sha256').update(text).digest();

describe('privacy vectors (PROTOCOL.md §16-§18)', () => {
  it('use the key of merkle-v2.json', () => {
    expect(vectors.key).toEqual(merkle.key);
    expect(rawPublicKey(createPublicKey(privateKey)).toString('base64url')).toBe(publicKey);
  });

  it('subject digests are HMAC-SHA-256 over the domain, the kind and the value', () => {
    const key = Buffer.from(vectors.subjectDigest.keyHex, 'hex');
    expect(key).toEqual(sha('vigil-vector:subject-key'));
    for (const c of vectors.subjectDigest.cases) {
      expect(subjectDigest(key, c.kind, c.value)).toBe(c.digest);
    }
    // Addresses are matched without case: the upper-case vector digests like the lower-case one.
    expect(subjectDigest(key, 'email', 'zoe@example.eu')).toBe(
      vectors.subjectDigest.cases[1]?.digest,
    );
  });

  it('the bundle is rebuilt byte for byte from its parts', async () => {
    const events = v1.stream.events;
    const published = merkle.checkpoints[1] as {
      id: string;
      checkpoint: string;
      signature: string;
    };
    const checkpoint = {
      id: published.id,
      checkpoint: published.checkpoint,
      signature: published.signature,
    };
    const writer = new BundleWriter({
      v: 1,
      format: 'vigil.bundle',
      tenant: merkle.tenant,
      createdAt: vectors.bundle.createdAt,
      subject: vectors.bundle.subject,
      checkpoint,
    });
    const hashes = merkle.leaves.map((l) => Buffer.from(l.leafHash, 'hex'));
    let text = writer.header();
    for (const e of vectors.bundle.entries) {
      const event = events[e.leafIndex] as V1Event;
      expect(event.input.id).toBe(e.eventId);
      const entry: BundleEntry = {
        type: 'event',
        record: event.record,
        hash: event.hash,
        disclosures: Object.fromEntries(
          e.disclosed.map((p) => [p, (event.disclosures ?? {})[p] as Disclosures[string]]),
        ),
        roles: e.roles as BundleEntry['roles'],
        proof: {
          partition: merkle.partition,
          leafIndex: e.leafIndex,
          auditPath: inclusionProof(e.leafIndex, hashes.slice(0, 7)).map((h) => h.toString('hex')),
        },
      };
      text += writer.entry(entry);
    }
    text += await writer.finish(merkle.key.keyId, (input) =>
      Promise.resolve(sign(null, input, privateKey)),
    );
    expect(text).toBe(bundle);
    const lines = bundle.split('\n');
    expect(lines.at(-1)).toBe('');
    const body = lines
      .slice(0, -2)
      .map((l) => l + '\n')
      .join('');
    expect(createHash('sha256').update(body).digest('hex')).toBe(vectors.bundle.bodyDigest);
    const last = JSON.parse(lines.at(-2) as string) as { statement: string; signature: string };
    expect(last.statement).toBe(vectors.bundle.statement);
    expect(bundleSigningInput(last.statement).toString('hex')).toBe(vectors.bundle.signingInputHex);
    expect(last.signature).toBe(vectors.bundle.signature);
    // Each proof leads from the leaf built from the checkpoint's tenant and the record.
    const leaf = merkle.leaves[1] as {
      stream: string;
      seq: number;
      eventHash: string;
      columns: string;
      leafHash: string;
    };
    expect(hashLeaf(leafData({ tenant: merkle.tenant, ...leaf })).toString('hex')).toBe(
      leaf.leafHash,
    );
  });

  it('the bundle verifies with the public key alone', () => {
    const check = verifyBundle(bundle, [publicKey]);
    expect(check).toMatchObject({ ok: true, entries: 2, unproven: 0 });
    if (check.ok) {
      expect(check.header.subject).toEqual(vectors.bundle.subject);
      expect(check.checkpoint.tenant).toBe('acme');
    }
    // Bytes work as well as text.
    expect(verifyBundle(Buffer.from(bundle), [publicKey]).ok).toBe(true);
  });

  it('another key does not verify it', () => {
    const other = rawPublicKey(
      createPublicKey(privateKeyFromSeed(sha('vigil-vector:another-key'))),
    ).toString('base64url');
    const check = verifyBundle(bundle, [other]);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.problem).toMatch(/not among the trusted keys/);
  });

  it('fails, with a message, when any single byte of it is flipped', () => {
    const bytes = Buffer.from(bundle);
    const messages = new Set<string>();
    for (let i = 0; i < bytes.length; i++) {
      const altered = Buffer.from(bytes);
      altered[i] = (altered[i] as number) ^ 0x01;
      const check = verifyBundle(altered, [publicKey]);
      expect(check.ok, `flipping byte ${i} went unnoticed`).toBe(false);
      if (!check.ok) {
        expect(check.problem.length).toBeGreaterThan(10);
        messages.add(check.problem.replace(/\d+/g, 'N'));
      }
    }
    // The messages say what failed, not just that something did.
    const all = [...messages].join('\n');
    expect(all).toMatch(/the record does not hash to its hash/);
    expect(all).toMatch(/does not open the commitment/);
    expect(all).toMatch(/inclusion proof does not lead/);
    expect(all).toMatch(/header \(line N\): checkpoint/);
    expect(all).toMatch(/bundle signature/);
  });

  it('names the entry and event of an altered disclosure', () => {
    const altered = bundle.replace('"value":"u-1042"', '"value":"u-1043"');
    const check = verifyBundle(altered, [publicKey]);
    expect(check.ok).toBe(false);
    if (!check.ok)
      expect(check.problem).toBe(
        `entry 1 (line 2, event ${vectors.bundle.entries[0]?.eventId}): /disclosures/~1actor~1id does not open the commitment in the record: value or salt was altered (the disclosure was altered)`,
      );
  });

  it('refuses a bundle with an entry removed or added', () => {
    const lines = bundle.split('\n');
    const removed = [lines[0], lines[2], lines[3], ''].join('\n');
    const check = verifyBundle(removed, [publicKey]);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.problem).toMatch(/1 entries, its signed statement says 2/);
  });

  it('the erasure receipt is rebuilt from its statement and verifies', () => {
    const r = vectors.erasureReceipt;
    const statement = JSON.parse(r.receipt) as ErasureReceiptStatement;
    expect(encodeErasureReceipt(statement)).toBe(r.receipt);
    expect(createHash('sha256').update(r.receipt).digest('hex')).toBe(r.id);
    expect(erasureReceiptSigningInput(r.receipt).toString('hex')).toBe(r.signingInputHex);
    expect(
      sign(null, erasureReceiptSigningInput(r.receipt), privateKey).toString('base64url'),
    ).toBe(r.signature);
    const signed = { id: r.id, receipt: r.receipt, signature: r.signature };
    expect(verifyErasureReceipt(signed, [publicKey]).ok).toBe(true);
    // A statement that breaks §17.3 cannot be encoded, let alone signed.
    expect(() => encodeErasureReceipt({ ...statement, subject: [] })).toThrow(/subject/);
    expect(() =>
      encodeErasureReceipt({ ...statement, counts: { ...statement.counts, events: 3 } }),
    ).toThrow(/counts.events/);
    // counts.alerts is optional (receipts made before alerts existed lack it), and a count.
    expect(() =>
      encodeErasureReceipt({ ...statement, counts: { ...statement.counts, alerts: 2 } }),
    ).not.toThrow();
    expect(() =>
      encodeErasureReceipt({ ...statement, counts: { ...statement.counts, alerts: -1 } }),
    ).toThrow(/counts/);
    // counts.baselines too (rows of detection baselines deleted).
    expect(() =>
      encodeErasureReceipt({ ...statement, counts: { ...statement.counts, baselines: 4 } }),
    ).not.toThrow();
    expect(() =>
      encodeErasureReceipt({ ...statement, counts: { ...statement.counts, baselines: 1.5 } }),
    ).toThrow(/counts/);
    expect(() =>
      encodeErasureReceipt({
        ...statement,
        counts: { ...statement.counts, sessions: 1 } as typeof statement.counts,
      }),
    ).toThrow(/unknown member "sessions"/);
    expect(() =>
      encodeErasureReceipt({
        ...statement,
        events: [{ id: 'x', hash: 'y', paths: ['/a'] }],
        counts: { ...statement.counts, events: 1 },
      }),
    ).toThrow(/events\[0\]\.id/);
    // The receipt names the person only by keyed digests.
    expect(r.receipt).not.toContain('u-1042');
    expect(r.receipt).not.toContain('zoe');
    const key = Buffer.from(vectors.subjectDigest.keyHex, 'hex');
    expect(statement.subject).toContain(subjectDigest(key, 'id', 'u-1042'));
    for (let i = 0; i < r.receipt.length; i += 7) {
      const altered =
        r.receipt.slice(0, i) +
        String.fromCharCode(r.receipt.charCodeAt(i) ^ 1) +
        r.receipt.slice(i + 1);
      expect(verifyErasureReceipt({ ...signed, receipt: altered }, [publicKey]).ok).toBe(false);
    }
  });

  it('PROTOCOL.md §16-§18 quote only values these vectors hold', () => {
    const doc = readFileSync(new URL('../../../PROTOCOL.md', import.meta.url), 'utf8');
    const start = doc.indexOf('\n## §16 ');
    const end = doc.indexOf('\n## §19 ');
    expect(start).toBeGreaterThan(0);
    const text = doc.slice(start, end > start ? end : undefined);
    const published = read('privacy-v2.json') + read('merkle-v2.json') + bundle;
    for (const run of text.match(/(?<![0-9A-Za-z])[0-9a-f]{32,}(?![0-9A-Za-z])/g) ?? [])
      expect(published, `PROTOCOL.md quotes ${run}`).toContain(run);
    // Signatures: 86 base64url characters (table rules are dashes only).
    for (const sig of text.match(/(?<![\w-])[\w-]{86}(?![\w-])/g) ?? [])
      if (/[A-Za-z0-9]/.test(sig)) expect(published).toContain(sig);
    expect(text).toContain(`${Buffer.byteLength(bundle)} bytes`);
  });

  it('the correction seals as published and its corrected view applies it', () => {
    const c = vectors.correction;
    let n = 0;
    const salts = { salt: () => sha(`vigil-vector:correction:${n++}`).subarray(0, 16) };
    const sealed = sealEvent(c.input, c.link, salts).event;
    expect(sealed.record).toBe(c.record);
    expect(sealed.hash).toBe(c.hash);
    expect(sealed.disclosures).toEqual(c.disclosures);
    const original = v1.stream.events[1] as V1Event;
    expect(JSON.parse(c.record)).toMatchObject({
      action: 'event.corrected',
      corrects: { event: original.input.id, hash: original.hash },
    });
    const view = JSON.parse(original.record) as Record<string, Record<string, unknown>>;
    for (const [path, d] of Object.entries(original.disclosures ?? {})) {
      const [, a, b] = path.split('/') as [string, string, string];
      (view[a] as Record<string, unknown>)[b] = d.value;
    }
    delete view['personal'];
    expect(applyCorrections(view, [correctedFields(c.input)])).toEqual(c.correctedView);
  });
});
