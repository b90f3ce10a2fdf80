import { signatureTextProblem } from './base64url.js';
import { canonicalJson } from './canonical.js';
import { checkpointKeyId, verifyEd25519, type PublicKeyInput } from './checkpoint.js';

/**
 * What checkpoints, bundles and erasure receipts share: an RFC 8785 statement signed with
 * Ed25519 over a domain-separated input (PROTOCOL.md §14.3). Each kind of document has its own
 * domain string, so a signature over one can never be passed off as a signature over another.
 */

/** `domain` 0x00 UTF-8(text): the bytes a signer signs. */
export function domainSigningInput(domain: string, text: string): Buffer {
  return Buffer.concat([Buffer.from(`${domain}\u0000`, 'latin1'), Buffer.from(text, 'utf8')]);
}

/** The JSON value of a statement text, or a problem: not JSON, or not its own RFC 8785 form. */
export function parseCanonical(
  text: string,
  what: string,
): { ok: true; value: unknown } | { ok: false; problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: `the ${what} is not JSON` };
  }
  // Duplicate members or other spellings would let two parsers read different content under
  // one signature, so only the canonical text counts.
  let canonical: string | undefined;
  try {
    canonical = canonicalJson(value);
  } catch {
    canonical = undefined;
  }
  if (canonical !== text)
    return { ok: false, problem: `the ${what} is not in RFC 8785 canonical form` };
  return { ok: true, value };
}

/** The trusted key whose key id is `keyId`, if any. */
export function trustedKey(
  keys: readonly PublicKeyInput[],
  keyId: string,
): PublicKeyInput | undefined {
  return keys.find((k) => {
    try {
      return checkpointKeyId(k) === keyId;
    } catch {
      return false;
    }
  });
}

/** Checks a domain-separated signature of `text` by the trusted key `keyId`; a problem or undefined. */
export function signatureProblem(
  domain: string,
  text: string,
  signature: unknown,
  keyId: string,
  keys: readonly PublicKeyInput[],
): string | undefined {
  const key = trustedKey(keys, keyId);
  if (!key) return `signed with key ${keyId}, which is not among the trusted keys`;
  const malformed = signatureTextProblem(signature);
  if (malformed) return malformed;
  if (!verifyEd25519(domainSigningInput(domain, text), signature as string, key))
    return `the signature does not verify with key ${keyId}`;
  return undefined;
}
