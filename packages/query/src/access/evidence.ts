import {
  canonicalJson,
  domainSigningInput,
  parseCanonical,
  sha256Hex,
  signatureProblem,
  type PublicKeyInput,
} from '@vigil/protocol';

/**
 * The evidence pack of a closed access review: a directory of files and `manifest.json`, the
 * SHA-256 and size of every file in an RFC 8785 statement signed with Ed25519 like checkpoints,
 * bundles and erasure receipts (PROTOCOL.md §14.3: a domain-separated input, here
 * `vigil.review-evidence.v1`, so the signature cannot be taken for another document's). It
 * verifies offline with the public key alone: `vigil verify --evidence DIR --key KEY`.
 */

export const EVIDENCE_DOMAIN = 'vigil.review-evidence.v1';
export const EVIDENCE_TYPE = 'vigil.review-evidence';
export const MANIFEST_FILE = 'manifest.json';

export interface EvidenceFile {
  readonly name: string;
  readonly sha256: string;
  readonly bytes: number;
}

export interface EvidenceStatement {
  readonly v: 1;
  readonly type: typeof EVIDENCE_TYPE;
  readonly tenant: string;
  readonly campaign: string;
  readonly asOf: string;
  readonly startedAt: string;
  readonly closedAt: string;
  readonly keyId: string;
  readonly files: readonly EvidenceFile[];
}

/** manifest.json: the statement text, its SHA-256 and the signature (base64url). */
export interface SignedEvidenceManifest {
  readonly id: string;
  readonly manifest: string;
  readonly signature: string;
}

export function evidenceFileOf(name: string, content: string | Buffer): EvidenceFile {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  return { name, sha256: sha256Hex(bytes), bytes: bytes.length };
}

/** The statement's text: RFC 8785, files sorted by name. */
export function encodeEvidence(statement: EvidenceStatement): string {
  return canonicalJson({
    ...statement,
    files: [...statement.files]
      .map((f) => ({ name: f.name, sha256: f.sha256, bytes: f.bytes }))
      .sort((a, b) => (a.name < b.name ? -1 : 1)),
  });
}

export function evidenceSigningInput(text: string): Buffer {
  return domainSigningInput(EVIDENCE_DOMAIN, text);
}

export function signedEvidence(text: string, signature: Uint8Array): SignedEvidenceManifest {
  return {
    id: sha256Hex(text),
    manifest: text,
    signature: Buffer.from(signature).toString('base64url'),
  };
}

const FILE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Verifies an evidence pack: the manifest is canonical and signed by a trusted key, and the files
 * are exactly those it lists (no file missing, none added), each with its SHA-256 and size.
 * Returns every problem found (empty: the pack is intact).
 */
export function verifyEvidence(
  manifestText: string,
  files: ReadonlyMap<string, Buffer>,
  keys: readonly PublicKeyInput[],
): { statement?: EvidenceStatement; problems: string[] } {
  let signed: SignedEvidenceManifest;
  try {
    signed = JSON.parse(manifestText) as SignedEvidenceManifest;
  } catch {
    return { problems: [`${MANIFEST_FILE} is not JSON`] };
  }
  if (typeof signed !== 'object' || signed === null || typeof signed.manifest !== 'string')
    return { problems: [`${MANIFEST_FILE} has no manifest text`] };
  if (signed.id !== sha256Hex(signed.manifest))
    return { problems: ['the manifest id is not the SHA-256 of its text: the text was altered'] };
  const parsed = parseCanonical(signed.manifest, 'manifest');
  if (!parsed.ok) return { problems: [parsed.problem] };
  const statement = parsed.value as EvidenceStatement;
  if (
    statement.type !== EVIDENCE_TYPE ||
    statement.v !== 1 ||
    !Array.isArray(statement.files) ||
    typeof statement.keyId !== 'string'
  )
    return { problems: [`the manifest is not a v1 ${EVIDENCE_TYPE}`] };
  const bad = signatureProblem(
    EVIDENCE_DOMAIN,
    signed.manifest,
    signed.signature,
    statement.keyId,
    keys,
  );
  if (bad) return { statement, problems: [bad] };
  const problems: string[] = [];
  const listed = new Set<string>();
  for (const entry of statement.files as readonly unknown[]) {
    const f = (typeof entry === 'object' && entry !== null ? entry : {}) as Partial<EvidenceFile>;
    if (typeof f.name !== 'string' || !FILE_NAME.test(f.name)) {
      problems.push('the manifest lists a file with an invalid name');
      continue;
    }
    listed.add(f.name);
    const content = files.get(f.name);
    if (!content) problems.push(`${f.name}: missing`);
    else if (content.length !== f.bytes || sha256Hex(content) !== f.sha256)
      problems.push(
        `${f.name}: its SHA-256 is not the one the signed manifest lists: it was altered`,
      );
  }
  for (const name of files.keys())
    if (name !== MANIFEST_FILE && !listed.has(name))
      problems.push(`${name}: not listed in the signed manifest`);
  return { statement, problems };
}
