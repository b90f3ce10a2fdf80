import { canonicalJson, isWellFormed } from './canonical.js';
import { canonicalBase64urlLength } from './base64url.js';
import { sha256Hex } from './hash.js';
import type { JsonValue } from './types.js';

/** Domain-separation prefix of every commitment: ASCII `vigil.commitment.v1` then one 0x00 byte. */
export const COMMITMENT_DOMAIN = Buffer.from('vigil.commitment.v1\u0000', 'latin1');

/**
 * The commitment to one personal field (PROTOCOL.md §5):
 *
 *     SHA-256( "vigil.commitment.v1" 0x00
 *              || u32be(len salt)  || salt
 *              || u32be(len path)  || UTF-8(JSON pointer)
 *              || u32be(len value) || UTF-8(RFC 8785 of the value) )
 *
 * Length prefixes make the encoding injective; the path binds the value to its field so a
 * commitment cannot be moved to another field; a fresh salt per field hides the value and
 * makes two commitments to the same value unlinkable once the salt is erased.
 */
export function commitmentOf(path: string, value: JsonValue, salt: Buffer): string {
  return commitmentOfCanonical(path, canonicalValue(value), salt);
}

/**
 * RFC 8785 form of a value. Personal values are nearly always strings, whose JCS form is
 * exactly JSON.stringify's for well-formed UTF-16 (RFC 8785 §3.2.2.2), so skip the generic walk.
 * The generic walk recurses: disclosed values reach it only after the depth check of
 * PROTOCOL.md §3.5 (checkSealedEvent, checkEventInput).
 */
export function canonicalValue(value: unknown): string {
  if (typeof value === 'string' && isWellFormed(value)) return JSON.stringify(value);
  return canonicalJson(value);
}

/**
 * One scratch buffer for building preimages: commitments are computed several times per event on
 * the collector's hot path, and building them in place avoids an allocation and copies per field.
 * Safe because the functions below are synchronous and finish with the buffer before returning.
 */
let scratch = Buffer.allocUnsafe(4096);

function scratchFor(size: number): Buffer {
  if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.max(size, scratch.length * 2));
  return scratch;
}

/** Same as {@link commitmentOf} for a value already in RFC 8785 form. */
export function commitmentOfCanonical(path: string, canonicalValue: string, salt: Buffer): string {
  const max =
    COMMITMENT_DOMAIN.length + 12 + salt.length + 3 * (path.length + canonicalValue.length);
  const buf = scratchFor(max);
  let at = COMMITMENT_DOMAIN.copy(buf, 0);
  at = buf.writeUInt32BE(salt.length, at);
  at += salt.copy(buf, at);
  return finishPreimage(buf, at, path, canonicalValue);
}

/**
 * Same as {@link commitmentOfCanonical} with the salt as its base64url text (as disclosures carry
 * it), decoded straight into the preimage. Returns `undefined` when the text is not the canonical
 * base64url form of 16–64 bytes.
 */
export function commitmentOfSaltText(
  path: string,
  canonicalValue: string,
  saltText: string,
): string | undefined {
  const saltBytes = canonicalBase64urlLength(saltText);
  if (saltBytes === undefined || saltBytes < 16 || saltBytes > 64) return undefined;
  const buf = scratchFor(
    COMMITMENT_DOMAIN.length + 12 + saltBytes + 3 * (path.length + canonicalValue.length),
  );
  let at = COMMITMENT_DOMAIN.copy(buf, 0);
  at = buf.writeUInt32BE(saltBytes, at);
  at += buf.write(saltText, at, saltBytes, 'base64url');
  return finishPreimage(buf, at, path, canonicalValue);
}

function finishPreimage(buf: Buffer, start: number, path: string, canonicalValue: string): string {
  let at = start;
  const pathAt = at + 4;
  const pathLength = buf.write(path, pathAt, 'utf8');
  buf.writeUInt32BE(pathLength, at);
  at = pathAt + pathLength;
  const valueAt = at + 4;
  const valueLength = buf.write(canonicalValue, valueAt, 'utf8');
  buf.writeUInt32BE(valueLength, at);
  return sha256Hex(buf.subarray(0, valueAt + valueLength));
}

export function encodeSalt(salt: Buffer): string {
  return salt.toString('base64url');
}

export function decodeSalt(text: string): Buffer {
  return Buffer.from(text, 'base64url');
}
