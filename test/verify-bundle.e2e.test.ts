import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { tempDataDir } from './helpers/vigil.js';

/**
 * `vigil verify --bundle` on the published vector bundle (PROTOCOL.md §16.6), through the built
 * command: it verifies as published, and is refused once its signature's text changes, even
 * where the change leaves the decoded signature bytes as they were (§16.4: no byte can change).
 */

const vectors = resolve(import.meta.dirname, '../packages/protocol/vectors');
const bundle = readFileSync(join(vectors, 'bundle-v1.ndjson'), 'utf8');
const { publicKey } = (
  JSON.parse(readFileSync(join(vectors, 'merkle-v2.json'), 'utf8')) as {
    key: { publicKey: string };
  }
).key;

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
});
