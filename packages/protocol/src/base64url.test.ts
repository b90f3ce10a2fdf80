import { describe, expect, it } from 'vitest';
import { canonicalBase64urlLength, decodeBase64url, isCanonicalBase64url } from './base64url.js';
import { verifyEd25519, rawPublicKey, privateKeyFromSeed } from './checkpoint.js';
import { createPublicKey, sign } from 'node:crypto';

describe('canonical base64url (RFC 4648 §5, §3.5)', () => {
  it('accepts exactly the text an encoder writes, for every length and last character', () => {
    for (let n = 0; n <= 6; n++) {
      const bytes = Buffer.from([0xff, 0x00, 0xa5, 0x5a, 0x01, 0x80].slice(0, n));
      const text = bytes.toString('base64url');
      expect(canonicalBase64urlLength(text)).toBe(n);
      expect(decodeBase64url(text)).toEqual(bytes);
      // Every other last character that Node decodes to the same bytes is refused.
      for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') {
        const other = text.slice(0, -1) + c;
        if (other === text || text.length === 0) continue;
        const decoded = Buffer.from(other, 'base64url');
        // Canonical only when it is what the encoder writes for the bytes Node reads from it.
        expect(isCanonicalBase64url(other), other).toBe(decoded.toString('base64url') === other);
        if (decoded.equals(bytes)) expect(isCanonicalBase64url(other), other).toBe(false);
      }
    }
  });

  it('refuses padding, whitespace, the standard alphabet, a stray character and a wrong length', () => {
    for (const text of ['AQ==', 'AQ ', ' AQ', 'A+8', 'A/8', 'AQ.', 'A', 'AQID\n'])
      expect(decodeBase64url(text), JSON.stringify(text)).toBeUndefined();
    expect(decodeBase64url('AQID', 3)).toEqual(Buffer.from([1, 2, 3]));
    expect(decodeBase64url('AQID', 4)).toBeUndefined();
    expect(decodeBase64url(42)).toBeUndefined();
  });

  it('gives a signature and a public key one text each', () => {
    const key = privateKeyFromSeed(Buffer.alloc(32, 7));
    const publicKey = rawPublicKey(createPublicKey(key)).toString('base64url');
    const message = Buffer.from('m');
    const signature = sign(null, message, key).toString('base64url');
    expect(verifyEd25519(message, signature, publicKey)).toBe(true);
    const last = signature.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = signature.slice(0, -1) + alphabet[alphabet.indexOf(last) + 1];
    expect(Buffer.from(twin, 'base64url')).toEqual(Buffer.from(signature, 'base64url'));
    expect(verifyEd25519(message, twin, publicKey)).toBe(false);
    const keyTwin = publicKey.slice(0, -1) + alphabet[alphabet.indexOf(publicKey.at(-1)!) + 1];
    expect(() => rawPublicKey(keyTwin)).toThrow(/canonical base64url/);
  });
});
