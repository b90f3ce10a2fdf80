import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  verifyBundle,
  verifyCheckpoint,
  verifyConsistencyProof,
  verifyErasureReceipt,
  verifyInclusionProof,
  type ConsistencyProof,
  type InclusionProof,
  type SignedCheckpoint,
  type SignedErasureReceipt,
} from './index.js';

/**
 * vectors/refused-v2.json (PROTOCOL.md §11, "Refused documents"): every case is a valid vector
 * changed in one way that a verifier MUST refuse, and Vigil's verifiers refuse each one for the
 * reason the case names. Written by scripts/generate-refused-vectors.mjs.
 */

interface RefusedCase {
  name: string;
  section: string;
  kind: 'bundle' | 'checkpoint' | 'inclusionProof' | 'consistencyProof' | 'erasureReceipt';
  keys?: string[];
  document?: unknown;
  bundle?: string;
  problem: string;
}

const read = (name: string): string =>
  readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8');
const merkle = JSON.parse(read('merkle-v2.json')) as { key: { publicKey: string } };
const refused = JSON.parse(read('refused-v2.json')) as { protocol: number; cases: RefusedCase[] };

function verdict(c: RefusedCase): { ok: boolean; problem?: string } {
  const keys = c.keys ?? [merkle.key.publicKey];
  switch (c.kind) {
    case 'bundle':
      return verifyBundle(c.bundle ?? '', keys);
    case 'checkpoint':
      return verifyCheckpoint(c.document as SignedCheckpoint, keys);
    case 'inclusionProof':
      return verifyInclusionProof(c.document as InclusionProof, keys);
    case 'consistencyProof':
      return verifyConsistencyProof(c.document as ConsistencyProof, keys);
    case 'erasureReceipt':
      return verifyErasureReceipt(c.document as SignedErasureReceipt, keys);
  }
}

describe('refused-v2.json: documents a verifier must refuse', () => {
  it('covers every kind of signed or proof document', () => {
    expect(refused.protocol).toBe(2);
    expect(new Set(refused.cases.map((c) => c.kind))).toEqual(
      new Set(['bundle', 'checkpoint', 'inclusionProof', 'consistencyProof', 'erasureReceipt']),
    );
  });

  it.each(refused.cases.map((c) => [c.name, c] as const))('refuses %s', (_name, c) => {
    const result = verdict(c);
    expect(result.ok).toBe(false);
    expect(result.problem).toContain(c.problem);
  });

  it('refuses the vector bundle with an unused bit of its signature set (same bytes)', () => {
    const bundle = read('bundle-v2.ndjson');
    const signature = /"signature":"([A-Za-z0-9_-]+)"/.exec(
      bundle.trimEnd().split('\n').pop()!,
    )![1]!;
    // 64 bytes leave the last of 86 characters 4 unused bits: it is A, Q, g or w, and the next
    // letter sets the lowest unused bit.
    const last = signature.at(-1)!;
    expect('AQgw').toContain(last);
    const other = signature.slice(0, -1) + String.fromCharCode(last.charCodeAt(0) + 1);
    const altered = bundle.replace(signature, other);
    // Node decodes both texts to the same 64 bytes: only the text differs.
    expect(Buffer.from(other, 'base64url')).toEqual(Buffer.from(signature, 'base64url'));
    expect(verifyBundle(bundle, [merkle.key.publicKey]).ok).toBe(true);
    const result = verifyBundle(altered, [merkle.key.publicKey]);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).toMatch(/canonical unpadded base64url/);
  });
});
