import { createPublicKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BundleWriter,
  correctedValuePath,
  privateKeyFromSeed,
  randomSaltSource,
  rawPublicKey,
  sealEvent,
  subjectPathsOf,
  verifyBundle,
  type BundleEntry,
  type BundleHeader,
  type CompleteInput,
  type SubjectRole,
} from './index.js';

/**
 * Bundles tie roles and disclosures to the subject (PROTOCOL.md §16.3, §16.5 step 5): what a
 * verifier accepts besides the vector bundle (refused-v2.json holds what it refuses).
 */

const read = (name: string): string =>
  readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8');
const merkle = JSON.parse(read('merkle-v2.json')) as {
  key: { seedHex: string; keyId: string; publicKey: string };
};
const vectorBundle = read('bundle-v2.ndjson');
const key = privateKeyFromSeed(Buffer.from(merkle.key.seedHex, 'hex'));
const publicKey = rawPublicKey(createPublicKey(key)).toString('base64url');
const [header, e1, e2] = vectorBundle
  .split('\n')
  .slice(0, 3)
  .map((l) => JSON.parse(l) as unknown) as [BundleHeader, BundleEntry, BundleEntry];
const e1Id = (JSON.parse(e1.record) as { id: string }).id;

async function bundleOf(entries: readonly BundleEntry[], head = header): Promise<string> {
  const writer = new BundleWriter(head);
  let text = writer.header();
  for (const e of entries) text += writer.entry(e);
  return text + (await writer.finish(merkle.key.keyId, (i) => Promise.resolve(sign(null, i, key))));
}

let seq = 0;
/** A sealed event on a stream of Vigil's admin writer, as an unproved entry. */
function adminEntry(
  input: Omit<CompleteInput, 'id' | 'time'>,
  roles: SubjectRole[],
  paths: readonly string[],
): BundleEntry {
  const sealed = sealEvent(
    {
      id: `0193a4b2-6c40-7000-8000-0000000000${String(20 + seq).padStart(2, '0')}`,
      time: '2026-11-23T09:04:00.000Z',
      ...input,
    } as CompleteInput,
    { stream: 'vigil/admin/host-7/test', seq: seq++, prev: '0'.repeat(64) },
    randomSaltSource(),
  ).event;
  const disclosures = Object.fromEntries(
    paths.map((p) => [p, sealed.disclosures?.[p] ?? { salt: '', value: null }]),
  );
  return {
    type: 'event',
    record: sealed.record,
    hash: sealed.hash,
    disclosures,
    roles,
    proof: null,
  };
}

const correctionOf = (extra: Partial<CompleteInput>): Omit<CompleteInput, 'id' | 'time'> => ({
  action: 'event.corrected',
  category: 'data_change',
  outcome: 'success',
  actor: { type: 'api_key', id: 'k-admin' },
  target: { type: 'event', id: e1Id },
  corrects: { event: e1Id, hash: e1.hash },
  metadata: {
    corrected: { '/actor/email': 'zoe.mueller@example.eu', '/outcome': 'failure' },
    reason: 'the address was mistyped',
  },
  personal: [correctedValuePath('/actor/email')],
  ...extra,
});

describe('subjectPathsOf: the subject values of an event, given their roles', () => {
  const personal = [
    '/access/grantedBy/id',
    '/access/subject/id',
    '/actor/email',
    '/actor/id',
    '/context/ip',
    '/metadata/phone',
  ];
  it('gives the parties the subject is, the context with the actor, and metadata only alone', () => {
    expect(subjectPathsOf(personal, ['accessSubject'], 'export')).toEqual(['/access/subject/id']);
    expect(subjectPathsOf(personal, ['accessSubject'], 'erase')).toEqual([
      '/access/subject/id',
      '/metadata/phone',
    ]);
    expect(subjectPathsOf(personal, ['actor', 'accessSubject', 'grantedBy'], 'export')).toEqual(
      personal,
    );
    expect(subjectPathsOf(personal, ['correction'], 'erase')).toEqual([]);
  });
});

describe('verifyBundle: the subject rules accept what an export writes', () => {
  it('accepts a correction after the event it corrects, disclosing the corrected address', async () => {
    const correction = adminEntry(
      correctionOf({}),
      ['correction'],
      [correctedValuePath('/actor/email')],
    );
    const check = verifyBundle(await bundleOf([e1, e2, correction]), [publicKey]);
    expect(check.ok ? 'ok' : check.problems).toBe('ok');
  });

  it('refuses the same correction before the event it corrects', async () => {
    const correction = adminEntry(correctionOf({}), ['correction'], []);
    const check = verifyBundle(await bundleOf([correction, e1]), [publicKey]);
    expect(check.ok ? '' : check.problem).toContain('is no earlier entry of this bundle');
  });

  it('refuses a correction that names the event by id with another hash (another copy)', async () => {
    const correction = adminEntry(
      correctionOf({ corrects: { event: e1Id, hash: 'f'.repeat(64) } }),
      ['correction'],
      [],
    );
    const check = verifyBundle(await bundleOf([e1, correction]), [publicKey]);
    expect(check.ok ? '' : check.problem).toContain('is no earlier entry of this bundle');
  });

  it("accepts an admin's correction of their own event as one entry with both roles", async () => {
    const both = adminEntry(
      correctionOf({
        actor: { type: 'user', id: 'u-1042' },
        personal: ['/actor/id', correctedValuePath('/actor/email')],
      }),
      ['actor', 'correction'],
      ['/actor/id', correctedValuePath('/actor/email')],
    );
    const check = verifyBundle(await bundleOf([e1, both]), [publicKey]);
    expect(check.ok ? 'ok' : check.problems).toBe('ok');
    // Listed twice, as the exporter once did, it is refused.
    const twice = verifyBundle(await bundleOf([e1, both, { ...both, roles: ['correction'] }]), [
      publicKey,
    ]);
    expect(twice.ok ? '' : twice.problem).toContain('repeats entry 2 (line 3)');
  });

  it("refuses a correction disclosing another person's corrected value, even with the subject as its actor", async () => {
    // The subject corrects the grantor's id in event 2: their own fields are theirs, the
    // corrected id is the grantor's. Under the metadata rule alone (no other committed party)
    // it would pass: corrected values are allowed only as the correction rule says (§16.5).
    const e2Id = (JSON.parse(e2.record) as { id: string }).id;
    const grantor = correctedValuePath('/access/grantedBy/id');
    const both = adminEntry(
      correctionOf({
        actor: { type: 'user', id: 'u-1042' },
        target: { type: 'event', id: e2Id },
        corrects: { event: e2Id, hash: e2.hash },
        metadata: { corrected: { '/access/grantedBy/id': 'u-2001' }, reason: 'wrong grantor' },
        personal: ['/actor/id', grantor],
      }),
      ['actor', 'correction'],
      ['/actor/id', grantor],
    );
    const check = verifyBundle(await bundleOf([e1, e2, both]), [publicKey]);
    expect(check.ok ? '' : check.problem).toContain(
      `discloses ${grantor}, which is not the subject`,
    );
    // Without that disclosure the entry is the subject's.
    const own = verifyBundle(
      await bundleOf([
        e1,
        e2,
        { ...both, disclosures: { '/actor/id': both.disclosures['/actor/id']! } },
      ]),
      [publicKey],
    );
    expect(own.ok ? 'ok' : own.problems).toBe('ok');
  });

  it('accepts a correction whose corrected value names the subject, though the event is not theirs', async () => {
    const named = adminEntry(
      correctionOf({
        metadata: { corrected: { '/target/id': 'u-1042' }, reason: 'wrong account' },
        personal: [correctedValuePath('/target/id')],
      }),
      ['correction'],
      [correctedValuePath('/target/id')],
    );
    const check = verifyBundle(await bundleOf([named]), [publicKey]);
    expect(check.ok ? 'ok' : check.problems).toBe('ok');
  });

  it('proves a role by an address in any case, the subject listing its normal form', async () => {
    const byEmail = adminEntry(
      {
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'u-7', email: '  ZOE@Example.EU' },
        personal: ['/actor/email', '/actor/id'],
      },
      ['actor'],
      ['/actor/email', '/actor/id'],
    );
    expect(verifyBundle(await bundleOf([byEmail]), [publicKey]).ok).toBe(true);
    const other = verifyBundle(
      await bundleOf([byEmail], { ...header, subject: { id: 'u-1042', emails: [] } }),
      [publicKey],
    );
    expect(other.ok ? '' : other.problem).toContain('roles says the subject is the actor');
  });
});
