import { createHmac } from 'node:crypto';

/**
 * Keyed digests of a data subject (PROTOCOL.md §17.2). Vigil must sometimes say *which* person
 * something concerns without naming them: erasure markers that a replaying sink honours, erasure
 * receipts, restrictions. A plain SHA-256 of an id would not do: ids (`u-1042`) and e-mail
 * addresses are guessable, so anyone holding the digest could try candidates until one matches.
 * An HMAC with a key the controller keeps (RFC 2104) can only be recomputed by the key's holder,
 * who can then show that a receipt concerns a given person.
 *
 *     digest = hex(HMAC-SHA-256(key, "vigil.subject.v1" 0x00 kind 0x00 UTF-8(value)))
 *
 * `kind` is `id` or `email`; an e-mail address is lower-cased first, since addresses are matched
 * without regard to case.
 */

export const SUBJECT_DIGEST_DOMAIN = 'vigil.subject.v1';

export type SubjectValueKind = 'id' | 'email';

/** The subject of a data-subject request: a person's id and, optionally, their e-mail addresses. */
export interface SubjectRef {
  readonly id: string;
  readonly emails?: readonly string[];
}

/** An e-mail address as it is matched and digested: lower-cased, surrounding spaces removed. */
export function normalEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** The keyed digest of one value of a subject (hex, 64 digits). */
export function subjectDigest(key: Uint8Array, kind: SubjectValueKind, value: string): string {
  const text = kind === 'email' ? normalEmail(value) : value;
  return createHmac('sha256', key)
    .update(`${SUBJECT_DIGEST_DOMAIN}\u0000${kind}\u0000`, 'utf8')
    .update(text, 'utf8')
    .digest('hex');
}

/** The digests of a subject's id and e-mail addresses, sorted, without repeats. */
export function subjectDigests(key: Uint8Array, subject: SubjectRef): string[] {
  const out = new Set([subjectDigest(key, 'id', subject.id)]);
  for (const email of subject.emails ?? []) out.add(subjectDigest(key, 'email', email));
  return [...out].sort();
}
