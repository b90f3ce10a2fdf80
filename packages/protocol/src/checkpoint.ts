import * as crypto from 'node:crypto';
import { decodeBase64url, signatureTextProblem } from './base64url.js';
import { canonicalJson } from './canonical.js';
import { sha256, sha256Hex } from './hash.js';
import { membersProblem } from './members.js';
import { parseTime } from './time.js';

/**
 * Signed checkpoints (PROTOCOL.md §14): a statement of the heads (size, root) of every
 * partition tree of one tenant, in RFC 8785 form, signed with Ed25519 over a domain-separated
 * input. Verification takes the exact statement bytes as shipped and never re-serialises them.
 */

export const CHECKPOINT_VERSION = 1 as const;
/** Domain string of the signing input (PROTOCOL.md §14.3). */
export const CHECKPOINT_DOMAIN = 'vigil.checkpoint.v1';
export const SIGNATURE_ALGORITHM = 'Ed25519' as const;

/** The head of one partition's tree: its number of leaves and its RFC 9162 root. */
export interface PartitionHead {
  readonly partition: number;
  readonly size: number;
  /** 64 lower-case hex digits. */
  readonly root: string;
}

/** What a checkpoint states (PROTOCOL.md §14.1). */
export interface CheckpointStatement {
  readonly v: typeof CHECKPOINT_VERSION;
  readonly tenant: string;
  /** When it was signed, by the signer's clock, in the time form of §2. */
  readonly time: string;
  /** The signing key, see checkpointKeyId. */
  readonly keyId: string;
  /** Heads of every partition holding leaves of the tenant, ascending by partition. */
  readonly partitions: readonly PartitionHead[];
}

/** A checkpoint as stored, shipped and witnessed (PROTOCOL.md §14.4). */
export interface SignedCheckpoint {
  /** hex SHA-256 of the UTF-8 bytes of `checkpoint`. */
  readonly id: string;
  /** The exact statement text: RFC 8785 form of a CheckpointStatement. */
  readonly checkpoint: string;
  /** Ed25519 signature of checkpointSigningInput(checkpoint), base64url without padding. */
  readonly signature: string;
}

export type CheckpointCheck =
  | { readonly ok: true; readonly statement: CheckpointStatement }
  | { readonly ok: false; readonly problem: string };

const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const STATEMENT_MEMBERS = ['keyId', 'partitions', 'tenant', 'time', 'v'];
const HEAD_MEMBERS = ['partition', 'root', 'size'];
const MAX_PARTITION = 2 ** 32 - 1;

function headProblem(head: unknown, i: number, previous: number): string | undefined {
  const where = `partitions[${i}]`;
  const members = membersProblem(head, where, HEAD_MEMBERS);
  if (members) return members;
  const h = head as Record<string, unknown>;
  const partition = h['partition'];
  if (
    !Number.isInteger(partition) ||
    (partition as number) < 0 ||
    (partition as number) > MAX_PARTITION
  )
    return `${where}.partition must be an integer from 0 to 2^32-1`;
  if ((partition as number) <= previous)
    return `${where}.partition must be greater than the one before (ascending, no repeats)`;
  const size = h['size'];
  if (!Number.isSafeInteger(size) || (size as number) < 1)
    return `${where}.size must be an integer from 1 to 2^53-1`;
  if (typeof h['root'] !== 'string' || !HEX64.test(h['root']))
    return `${where}.root must be 64 lower-case hex digits`;
  return undefined;
}

/** Problems of a statement's content, or undefined when it is a valid v1 statement. */
export function checkpointStatementProblem(value: unknown): string | undefined {
  const members = membersProblem(value, 'a checkpoint', STATEMENT_MEMBERS);
  if (members) return members;
  const s = value as Record<string, unknown>;
  if (s['v'] !== CHECKPOINT_VERSION) return 'v must be 1';
  if (typeof s['tenant'] !== 'string' || s['tenant'].length === 0 || s['tenant'].length > 256)
    return 'tenant must be a string of 1 to 256 characters';
  if (typeof s['time'] !== 'string' || parseTime(s['time']) === undefined)
    return 'time must be a real instant in the form YYYY-MM-DDTHH:MM:SS.mmmZ';
  if (typeof s['keyId'] !== 'string' || !KEY_ID.test(s['keyId']))
    return 'keyId must be 16 lower-case hex digits';
  const partitions = s['partitions'];
  if (!Array.isArray(partitions)) return 'partitions must be an array';
  let previous = -1;
  for (const [i, head] of partitions.entries()) {
    const problem = headProblem(head, i, previous);
    if (problem) return problem;
    previous = (head as PartitionHead).partition;
  }
  return undefined;
}

/**
 * The statement text to sign: RFC 8785 form of the statement with its partitions sorted.
 * Throws a TypeError when the statement is not a valid v1 statement.
 */
export function encodeCheckpoint(statement: CheckpointStatement): string {
  const normal: CheckpointStatement = {
    v: statement.v,
    tenant: statement.tenant,
    time: statement.time,
    keyId: statement.keyId,
    partitions: [...statement.partitions]
      .sort((a, b) => a.partition - b.partition)
      .map((h) => ({ partition: h.partition, size: h.size, root: h.root })),
  };
  const problem = checkpointStatementProblem(normal);
  if (problem) throw new TypeError(`invalid checkpoint: ${problem}`);
  return canonicalJson(normal);
}

/** The checkpoint id: hex SHA-256 of the statement's UTF-8 bytes. */
export function checkpointId(checkpoint: string): string {
  return sha256Hex(checkpoint);
}

const SIGNING_HEAD = Buffer.from(`${CHECKPOINT_DOMAIN}\u0000`, 'latin1');

/** The bytes a signer signs: "vigil.checkpoint.v1" 0x00 || UTF-8(statement text) (§14.3). */
export function checkpointSigningInput(checkpoint: string): Buffer {
  return Buffer.concat([SIGNING_HEAD, Buffer.from(checkpoint, 'utf8')]);
}

/** Parses and checks a statement text: valid v1 content in exact RFC 8785 form. */
export function parseCheckpoint(checkpoint: string): CheckpointCheck {
  let value: unknown;
  try {
    value = JSON.parse(checkpoint);
  } catch {
    return { ok: false, problem: 'the checkpoint is not JSON' };
  }
  const problem = checkpointStatementProblem(value);
  if (problem) return { ok: false, problem };
  // Duplicate members or other spellings would let two parsers read different heads under
  // one signature, so only the canonical text is a checkpoint.
  if (canonicalJson(value) !== checkpoint)
    return { ok: false, problem: 'the checkpoint is not in RFC 8785 canonical form' };
  return { ok: true, statement: value as CheckpointStatement };
}

// ---- keys -------------------------------------------------------------------------------

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4); the raw key follows. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** DER prefix of an Ed25519 PKCS #8 private key (RFC 8410 §7); the 32-byte seed follows. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A public key as published (GET /v1/keys/checkpoint) and pinned by verifiers (§14.2). */
export interface PublishedKey {
  readonly keyId: string;
  readonly algorithm: typeof SIGNATURE_ALGORITHM;
  /** The raw 32-byte Ed25519 public key, base64url without padding. */
  readonly publicKey: string;
  readonly createdAt: string;
  /** Set once the key no longer signs; its checkpoints stay valid. */
  readonly retiredAt: string | null;
}

/** A public key given as raw bytes, base64url text, a PEM SPKI text or a KeyObject. */
export type PublicKeyInput = Uint8Array | string | crypto.KeyObject;

/** The raw 32 bytes of an Ed25519 public key. */
export function rawPublicKey(key: PublicKeyInput): Buffer {
  if (key instanceof crypto.KeyObject) {
    if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('not an Ed25519 key');
    const der = key.export({ type: 'spki', format: 'der' });
    return Buffer.from(der.subarray(SPKI_PREFIX.length));
  }
  if (typeof key === 'string') {
    const text = key.trim();
    if (text.startsWith('-----BEGIN')) return rawPublicKey(crypto.createPublicKey(text));
    const raw = decodeBase64url(text);
    if (raw === undefined)
      throw new TypeError('a public key text must be canonical base64url (RFC 4648 §5) or PEM');
    return rawPublicKey(raw);
  }
  if (key.length !== 32)
    throw new TypeError(`an Ed25519 public key has 32 bytes, not ${key.length}`);
  return Buffer.from(key);
}

export function publicKeyObject(key: PublicKeyInput): crypto.KeyObject {
  return crypto.createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, rawPublicKey(key)]),
    format: 'der',
    type: 'spki',
  });
}

/** An Ed25519 private key from its 32-byte seed (test vectors, key files). */
export function privateKeyFromSeed(seed: Uint8Array): crypto.KeyObject {
  if (seed.length !== 32) throw new TypeError('an Ed25519 seed has 32 bytes');
  return crypto.createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
}

/** The key id: the first 16 hex digits of SHA-256 over the raw 32-byte public key (§14.2). */
export function checkpointKeyId(key: PublicKeyInput): string {
  return sha256(rawPublicKey(key)).toString('hex').slice(0, 16);
}

/** Signs a statement text with an Ed25519 private key; returns the base64url signature. */
export function signCheckpoint(checkpoint: string, privateKey: crypto.KeyObject): string {
  return crypto.sign(null, checkpointSigningInput(checkpoint), privateKey).toString('base64url');
}

/** Builds, signs and identifies a checkpoint with a private key held in this process. */
export function createSignedCheckpoint(
  statement: CheckpointStatement,
  privateKey: crypto.KeyObject,
): SignedCheckpoint {
  const checkpoint = encodeCheckpoint(statement);
  return {
    id: checkpointId(checkpoint),
    checkpoint,
    signature: signCheckpoint(checkpoint, privateKey),
  };
}

/** Whether a base64url Ed25519 signature of `message` verifies with `key`. */
export function verifyEd25519(
  message: Uint8Array,
  signature: string,
  key: PublicKeyInput,
): boolean {
  // Only the canonical text of the 64 bytes: a signature with one text per signed document.
  const bytes = decodeBase64url(signature, 64);
  if (bytes === undefined) return false;
  try {
    return crypto.verify(null, message, publicKeyObject(key), bytes);
  } catch {
    return false;
  }
}

/** The members of a signed checkpoint (§14.4). */
const SIGNED_MEMBERS = ['checkpoint', 'id', 'signature'];
/** Unverified copies of statement members that API answers add (§14.4). */
const COPY_MEMBERS = ['keyId', 'time'];
/** What a witness document adds (§14.7): its type, copies, and the signing key. */
const WITNESS_MEMBERS = ['keyId', 'publicKey', 'tenant', 'time', 'type'];
export const WITNESS_DOCUMENT_TYPE = 'vigil.checkpoint' as const;

/**
 * Why the members besides id, checkpoint and signature are not what §14.4 and §14.7 allow:
 * none (a signed checkpoint), `time` and `keyId` (an API answer), or a witness document's. The
 * document is closed, and a copy that disagrees with the signed statement is refused, so no
 * byte of it can change unnoticed.
 */
function envelopeProblem(signed: object): string | undefined {
  const isWitness = 'type' in signed;
  const what = isWitness ? 'a witness document' : 'a signed checkpoint';
  return isWitness
    ? membersProblem(signed, what, [...SIGNED_MEMBERS, ...WITNESS_MEMBERS])
    : membersProblem(signed, what, SIGNED_MEMBERS, COPY_MEMBERS);
}

function copiesProblem(
  signed: Record<string, unknown>,
  statement: CheckpointStatement,
): string | undefined {
  if ('type' in signed && signed['type'] !== WITNESS_DOCUMENT_TYPE)
    return `type must be ${WITNESS_DOCUMENT_TYPE}`;
  for (const member of ['keyId', 'tenant', 'time'] as const)
    if (member in signed && signed[member] !== statement[member])
      return `${member} is not the ${member} of the signed statement: it was altered`;
  if ('publicKey' in signed) {
    const raw = decodeBase64url(signed['publicKey'], 32);
    if (raw === undefined)
      return 'publicKey must be the canonical unpadded base64url text of 32 bytes';
    if (checkpointKeyId(raw) !== statement.keyId)
      return `publicKey is not the key ${statement.keyId} the statement names`;
  }
  return undefined;
}

/**
 * Verifies a signed checkpoint against trusted public keys (PROTOCOL.md §14.5): the document
 * has only the members §14.4 (or, for a witness document, §14.7) allows, the id is the hash of
 * the text, the text is a canonical v1 statement, its copies agree with it, its key id names one
 * of `keys`, and the signature is the canonical text of 64 bytes and verifies with that key.
 * Returns the statement, or the first problem found.
 */
export function verifyCheckpoint(
  signed: SignedCheckpoint,
  keys: readonly PublicKeyInput[],
): CheckpointCheck {
  if (typeof signed !== 'object' || signed === null || Array.isArray(signed))
    return { ok: false, problem: 'a signed checkpoint must be an object' };
  const envelope = envelopeProblem(signed);
  if (envelope) return { ok: false, problem: envelope };
  if (typeof signed.checkpoint !== 'string')
    return { ok: false, problem: 'checkpoint must be the statement text (a string)' };
  if (typeof signed.id !== 'string' || signed.id !== checkpointId(signed.checkpoint))
    return {
      ok: false,
      problem: 'id is not the SHA-256 of the checkpoint text: the text was altered',
    };
  const parsed = parseCheckpoint(signed.checkpoint);
  if (!parsed.ok) return parsed;
  const copies = copiesProblem(signed as unknown as Record<string, unknown>, parsed.statement);
  if (copies) return { ok: false, problem: copies };
  const { keyId } = parsed.statement;
  const key = keys.find((k) => {
    try {
      return checkpointKeyId(k) === keyId;
    } catch {
      return false;
    }
  });
  if (!key)
    return { ok: false, problem: `signed with key ${keyId}, which is not among the trusted keys` };
  const malformed = signatureTextProblem(signed.signature);
  if (malformed) return { ok: false, problem: malformed };
  if (!verifyEd25519(checkpointSigningInput(signed.checkpoint), signed.signature, key))
    return { ok: false, problem: `the signature does not verify with key ${keyId}` };
  return parsed;
}
