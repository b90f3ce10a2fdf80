import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The receiver's signature check as README.md documents it. */
export type VerifyVigilSignature = (
  secret: string,
  header: unknown,
  rawBody: Buffer,
  now?: number,
) => boolean;

/**
 * Extracts the Node verification snippet from README.md ("Alert webhooks", between the
 * webhook-verify markers) and imports it, so tests check receivers' signatures with exactly the
 * code the documentation gives them.
 */
export async function readmeVerifier(): Promise<VerifyVigilSignature> {
  const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
  const match =
    /<!-- webhook-verify:start -->\n```js\n([\s\S]*?)```\n<!-- webhook-verify:end -->/.exec(readme);
  if (!match?.[1]) throw new Error('README.md has no webhook verification snippet');
  const dir = mkdtempSync(join(tmpdir(), 'vigil-webhook-snippet-'));
  try {
    const file = join(dir, 'verify.mjs');
    writeFileSync(file, match[1]);
    const module = (await import(file)) as { verifyVigilSignature: VerifyVigilSignature };
    return module.verifyVigilSignature;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
