import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createPublicKey, sign } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BundleWriter,
  inclusionProof,
  privateKeyFromSeed,
  rawPublicKey,
  type BundleEntry,
  type BundleHeader,
  type Disclosures,
} from '@vigil/protocol';
import { runCli } from './helpers/cli.js';
import { tempDataDir } from './helpers/vigil.js';

/**
 * `vigil verify --bundle` on the published vector bundle (PROTOCOL.md §16.6), through the built
 * command: it verifies as published, and is refused once its signature's text changes, even
 * where the change leaves the decoded signature bytes as they were (§16.4: no byte can change).
 */

const vectors = resolve(import.meta.dirname, '../packages/protocol/vectors');
const bundle = readFileSync(join(vectors, 'bundle-v2.ndjson'), 'utf8');
const merkle = JSON.parse(readFileSync(join(vectors, 'merkle-v2.json'), 'utf8')) as {
  key: { publicKey: string; seedHex: string; keyId: string };
  partition: number;
  leaves: { leafHash: string }[];
};
const { publicKey } = merkle.key;
const refused = (
  JSON.parse(readFileSync(join(vectors, 'refused-v2.json'), 'utf8')) as {
    cases: { name: string; kind: string; bundle?: string; problem: string }[];
  }
).cases.filter((c) => c.kind === 'bundle');
const events = (
  JSON.parse(readFileSync(join(vectors, 'v2.json'), 'utf8')) as {
    stream: { events: { record: string; hash: string; disclosures?: Disclosures }[] };
  }
).stream.events;

describe('vigil verify --bundle on the vector bundle', () => {
  const dir = tempDataDir('verify-bundle');
  afterAll(() => dir.remove());

  it('verifies it as published, and refuses it with an unused bit of its signature set', async () => {
    const file = join(dir.dir, 'subject.vigil-bundle');
    writeFileSync(file, bundle);
    const verified = await runCli(['verify', '--bundle', file, '--key', publicKey]);
    expect(verified.code, verified.all).toBe(0);
    expect(verified.out).toContain('RESULT: OK');

    const lastLine = bundle.trimEnd().split('\n').pop() ?? '';
    const { signature } = JSON.parse(lastLine) as { signature: string };
    // The last of 86 characters has 4 unused bits (A, Q, g or w); the next letter sets one.
    const last = signature.at(-1) as string;
    expect('AQgw').toContain(last);
    const altered = join(dir.dir, 'altered.vigil-bundle');
    writeFileSync(
      altered,
      bundle.replace(
        signature,
        signature.slice(0, -1) + String.fromCharCode(last.charCodeAt(0) + 1),
      ),
    );
    const refused = await runCli(['verify', '--bundle', altered, '--key', publicKey]);
    expect(refused.code, refused.all).toBe(1);
    expect(refused.err).toContain('RESULT: FAILED');
    expect(refused.err).toMatch(
      /bundle signature: signature must be the canonical unpadded base64url/,
    );
  });

  it.each(refused.map((c) => [c.name, c] as const))(
    'refuses the refused vector "%s", naming its problem',
    async (_name, c) => {
      const file = join(dir.dir, 'refused.vigil-bundle');
      writeFileSync(file, c.bundle ?? '');
      const run = await runCli(['verify', '--bundle', file, '--key', publicKey]);
      expect(run.code, run.all).toBe(1);
      expect(run.err).toContain('RESULT: FAILED');
      expect(run.err).toContain(c.problem);
    },
  );

  it('lists every entry that does not belong to the subject, each with its line and event', async () => {
    // The vector bundle's two entries, then: entry 1 repeated, an event the subject has no part
    // in labelled as theirs, and event 2 again labelled with the grantor's role and disclosing
    // the grantor's id. Signed with the vector key, so only the subject rules refuse it.
    const [header, e1] = bundle
      .split('\n')
      .slice(0, 2)
      .map((l) => JSON.parse(l) as unknown) as [BundleHeader, BundleEntry];
    const leafHashes = merkle.leaves.map((l) => Buffer.from(l.leafHash, 'hex'));
    const entryOf = (index: number, roles: BundleEntry['roles'], paths: string[]): BundleEntry => {
      const e = events[index]!;
      return {
        type: 'event',
        record: e.record,
        hash: e.hash,
        disclosures: Object.fromEntries(paths.map((p) => [p, e.disclosures![p]!])),
        roles,
        proof: {
          partition: merkle.partition,
          leafIndex: index,
          auditPath: inclusionProof(index, leafHashes).map((h) => Buffer.from(h).toString('hex')),
        },
      };
    };
    const key = privateKeyFromSeed(Buffer.from(merkle.key.seedHex, 'hex'));
    expect(rawPublicKey(createPublicKey(key)).toString('base64url')).toBe(publicKey);
    const writer = new BundleWriter(header);
    let text = writer.header();
    for (const entry of [
      e1,
      entryOf(3, ['actor'], []),
      entryOf(2, ['grantedBy'], ['/access/grantedBy/id']),
    ])
      text += writer.entry(entry);
    text += await writer.finish(merkle.key.keyId, (input) =>
      Promise.resolve(sign(null, input, key)),
    );
    const file = join(dir.dir, 'mixed.vigil-bundle');
    writeFileSync(file, text);
    const run = await runCli(['verify', '--bundle', file, '--key', publicKey]);
    expect(run.code, run.all).toBe(1);
    const problems = run.err.split('\n').filter((l) => l.startsWith('  - '));
    expect(problems).toEqual([
      expect.stringMatching(
        /^ {2}- entry 2 \(line 3, event [0-9a-f-]{36}\): roles says the subject is the actor/,
      ),
      expect.stringMatching(
        /^ {2}- entry 3 \(line 4, event [0-9a-f-]{36}\): roles says the subject is the grantedBy/,
      ),
      expect.stringMatching(
        /^ {2}- entry 3 \(line 4, event [0-9a-f-]{36}\): discloses \/access\/grantedBy\/id, which is not the subject's/,
      ),
    ]);
  });
});
