import * as crypto from 'node:crypto';
import { canonicalJson } from './canonical.js';
import { sha256, sha256Hex } from './hash.js';
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
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const STATEMENT_MEMBERS = ['keyId', 'partitions', 'tenant', 'time', 'v'];
const HEAD_MEMBERS = ['partition', 'root', 'size'];
const MAX_PARTITION = 2 ** 32 - 1;

function headProblem(head: unknown, i: number, previous: number): string | undefined {
  const where = `partitions[${i}]`;
  if (typeof head !== 'object' || head === null || Array.isArray(head))
    return `${where} must be an object`;
  const keys = Object.keys(head).sort();
  if (keys.join() !== HEAD_MEMBERS.join())
    return `${where} must have exactly the members partition, root, size`;
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
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return 'a checkpoint must be a JSON object';
  const keys = Object.keys(value).sort();
  if (keys.join() !== STATEMENT_MEMBERS.join())
    return 'a checkpoint must have exactly the members keyId, partitions, tenant, time, v';
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
    if (!BASE64URL.test(text)) throw new TypeError('a public key text must be base64url or PEM');
    return rawPublicKey(Buffer.from(text, 'base64url'));
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
  if (!BASE64URL.test(signature)) return false;
  const bytes = Buffer.from(signature, 'base64url');
  if (bytes.length !== 64) return false;
  try {
    return crypto.verify(null, message, publicKeyObject(key), bytes);
  } catch {
    return false;
  }
}

/**
 * Verifies a signed checkpoint against trusted public keys (PROTOCOL.md §14.5): the id is the
 * hash of the text, the text is a canonical v1 statement, its key id names one of `keys`, and
 * the signature verifies with that key. Returns the statement, or the first problem found.
 */
export function verifyCheckpoint(
  signed: SignedCheckpoint,
  keys: readonly PublicKeyInput[],
): CheckpointCheck {
  if (typeof signed !== 'object' || signed === null)
    return { ok: false, problem: 'a signed checkpoint must be an object' };
  if (typeof signed.checkpoint !== 'string')
    return { ok: false, problem: 'checkpoint must be the statement text (a string)' };
  if (typeof signed.id !== 'string' || signed.id !== checkpointId(signed.checkpoint))
    return {
      ok: false,
      problem: 'id is not the SHA-256 of the checkpoint text: the text was altered',
    };
  const parsed = parseCheckpoint(signed.checkpoint);
  if (!parsed.ok) return parsed;
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
  if (
    typeof signed.signature !== 'string' ||
    !verifyEd25519(checkpointSigningInput(signed.checkpoint), signed.signature, key)
  )
    return { ok: false, problem: `the signature does not verify with key ${keyId}` };
  return parsed;
}
