/**
 * Canonical unpadded base64url (RFC 4648 §5), the one text form of every binary value of the
 * protocol: salts, signatures, public keys (PROTOCOL.md §2). Node's decoder is lenient: it skips
 * characters outside the alphabet and ignores the unused low bits of the last character, so
 * `…Cg` and `…Ch` decode to the same bytes. A signed document must have one text only, or a
 * byte of it could change without any check failing (§16.4), so every decoder of the protocol
 * goes through here and accepts only the form an encoder writes (RFC 4648 §3.5: the pad bits
 * are zero). Written by hand because no maintained library offers a strict decoder this small.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) INDEX[ALPHABET.charCodeAt(i)] = i;

/**
 * The number of bytes `text` encodes if it is canonical unpadded base64url (RFC 4648 §5, §3.5:
 * the unused bits of the last character are zero), else `undefined`.
 */
export function canonicalBase64urlLength(text: string): number | undefined {
  const rest = text.length % 4;
  if (rest === 1) return undefined;
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    last = c < 128 ? (INDEX[c] as number) : -1;
    if (last < 0) return undefined;
  }
  // 2 trailing characters carry 1 byte (4 unused bits), 3 carry 2 bytes (2 unused bits).
  if (rest === 2 && (last & 0x0f) !== 0) return undefined;
  if (rest === 3 && (last & 0x03) !== 0) return undefined;
  return Math.floor((text.length * 3) / 4);
}

/** Whether `text` is canonical unpadded base64url (of `bytes` bytes, when given). */
export function isCanonicalBase64url(text: unknown, bytes?: number): text is string {
  if (typeof text !== 'string') return false;
  const length = canonicalBase64urlLength(text);
  return length !== undefined && (bytes === undefined || length === bytes);
}

/**
 * The bytes of canonical unpadded base64url `text` (of `bytes` bytes, when given), or
 * `undefined` for any other text: another alphabet, padding, whitespace, non-zero pad bits.
 */
export function decodeBase64url(text: unknown, bytes?: number): Buffer | undefined {
  if (!isCanonicalBase64url(text, bytes)) return undefined;
  return Buffer.from(text, 'base64url');
}

/**
 * Why `signature` is not the text of an Ed25519 signature: canonical unpadded base64url of 64
 * bytes (PROTOCOL.md §14.3). Node would also decode a text whose last character has non-zero
 * pad bits, so without this one signature would have four texts and a byte of a signed bundle
 * could change unnoticed (§16.4).
 */
export function signatureTextProblem(signature: unknown): string | undefined {
  if (!isCanonicalBase64url(signature, 64))
    return 'signature must be the canonical unpadded base64url text of 64 bytes (RFC 4648 §5, pad bits zero)';
  return undefined;
}
