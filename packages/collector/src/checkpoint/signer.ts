import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import {
  generateKeyPairSync,
  createPrivateKey,
  createPublicKey,
  sign as edSign,
  type KeyObject,
} from 'node:crypto';
import { join } from 'node:path';
import {
  checkpointKeyId,
  formatTime,
  rawPublicKey,
  SIGNATURE_ALGORITHM,
  verifyEd25519,
  type PublicKeyInput,
  type PublishedKey,
} from '@vigil/protocol';
import { SignerError } from '../errors.js';
import { writePrivateFile } from '../private-file.js';

/**
 * Who signs checkpoints (PROTOCOL.md §14). One small interface with three implementations:
 *
 * - KeyFileSigner: an Ed25519 key generated on first start under <dataDir>/keys (mode 0600),
 *   rotatable; the default, and the weakest: whoever owns the host can read the key and re-sign
 *   a rewritten log. Witnesses (checkpoint/witness.ts) are what catches that.
 * - CommandSigner: a command that gets the bytes to sign on stdin and prints the signature on
 *   stdout: a separate process, a signing service or a KMS/HSM bridge, so the key never sits on
 *   the data host. The public key is configured, and every signature is verified against it.
 * - MemorySigner: a key in memory, for tests.
 */
export interface CheckpointSigner {
  /** Id of the signing key (PROTOCOL.md §14.2); fixed for the signer's life. */
  readonly keyId: string;
  /** The raw 32-byte Ed25519 public key. */
  publicKey(): Buffer;
  /** Signs `message` (the signing input of §14.3); returns the 64-byte Ed25519 signature. */
  sign(message: Uint8Array): Promise<Buffer>;
  /** Keys to publish: this one and the retired ones it replaced. */
  publishedKeys(): PublishedKey[];
}

function published(
  key: PublicKeyInput,
  createdAt: string,
  retiredAt: string | null = null,
): PublishedKey {
  return {
    keyId: checkpointKeyId(key),
    algorithm: SIGNATURE_ALGORITHM,
    publicKey: rawPublicKey(key).toString('base64url'),
    createdAt,
    retiredAt,
  };
}

/** A key held in memory; for tests and for embedding Vigil with a key it manages itself. */
export class MemorySigner implements CheckpointSigner {
  readonly keyId: string;
  private readonly raw: Buffer;
  private readonly createdAt: string;

  constructor(
    private readonly privateKey: KeyObject,
    now: number = Date.now(),
  ) {
    this.raw = rawPublicKey(createPublicKey(privateKey));
    this.keyId = checkpointKeyId(this.raw);
    this.createdAt = formatTime(now);
  }

  static generate(): MemorySigner {
    return new MemorySigner(generateKeyPairSync('ed25519').privateKey);
  }

  publicKey(): Buffer {
    return this.raw;
  }

  sign(message: Uint8Array): Promise<Buffer> {
    return Promise.resolve(edSign(null, message, this.privateKey));
  }

  publishedKeys(): PublishedKey[] {
    return [published(this.raw, this.createdAt)];
  }
}

// ---- key files ------------------------------------------------------------------------------

/** One key file, `checkpoint-<keyId>.json`; a retired key keeps no private key. */
interface KeyFile {
  readonly keyId: string;
  readonly algorithm: typeof SIGNATURE_ALGORITHM;
  readonly publicKey: string;
  /** PKCS #8 PEM; absent once retired. */
  readonly privateKey?: string;
  readonly createdAt: string;
  readonly retiredAt: string | null;
}

const CURRENT = 'checkpoint-current';
const fileOf = (dir: string, keyId: string): string => join(dir, `checkpoint-${keyId}.json`);

function readKeyFile(path: string): KeyFile {
  const file = JSON.parse(readFileSync(path, 'utf8')) as KeyFile;
  if (file.algorithm !== SIGNATURE_ALGORITHM || checkpointKeyId(file.publicKey) !== file.keyId)
    throw new SignerError(`${path} is not a checkpoint key file of this format`);
  return file;
}

function newKeyFile(dir: string, now: number): KeyFile {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  const file: KeyFile = {
    keyId: checkpointKeyId(raw),
    algorithm: SIGNATURE_ALGORITHM,
    publicKey: raw.toString('base64url'),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    createdAt: formatTime(now),
    retiredAt: null,
  };
  writePrivateFile(fileOf(dir, file.keyId), JSON.stringify(file, null, 2) + '\n');
  return file;
}

function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Every checkpoint key file of a directory, oldest first. */
export function listKeyFiles(dir: string): PublishedKey[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => /^checkpoint-[0-9a-f]{16}\.json$/.test(name))
    .map((name) => readKeyFile(join(dir, name)))
    .map((f) => ({
      keyId: f.keyId,
      algorithm: f.algorithm,
      publicKey: f.publicKey,
      createdAt: f.createdAt,
      retiredAt: f.retiredAt,
    }))
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
}

/**
 * Replaces the current key of a key directory by a new one. The old public key stays (and stays
 * published); its private key is deleted, so a stolen copy of the directory cannot sign with it
 * any more. The new key signs from the sink's next start.
 */
export function rotateCheckpointKey(
  dir: string,
  now: number = Date.now(),
): { readonly previous: string | undefined; readonly current: string } {
  ensureDir(dir);
  const currentPath = join(dir, CURRENT);
  const previous = existsSync(currentPath) ? readFileSync(currentPath, 'utf8').trim() : undefined;
  const next = newKeyFile(dir, now);
  // Switch first, then retire: a crash in between leaves two usable keys, never none.
  writePrivateFile(currentPath, next.keyId + '\n');
  if (previous && existsSync(fileOf(dir, previous))) {
    const old = readKeyFile(fileOf(dir, previous));
    const retired: KeyFile = {
      keyId: old.keyId,
      algorithm: old.algorithm,
      publicKey: old.publicKey,
      createdAt: old.createdAt,
      retiredAt: formatTime(now),
    };
    writePrivateFile(fileOf(dir, previous), JSON.stringify(retired, null, 2) + '\n');
  }
  return { previous, current: next.keyId };
}

/**
 * The default signer: the current key of a key directory (<dataDir>/keys), generated on first
 * start. Key files are JSON, mode 0600, in a directory of mode 0700.
 */
export class KeyFileSigner implements CheckpointSigner {
  readonly keyId: string;
  private readonly privateKey: KeyObject;
  private readonly raw: Buffer;

  private constructor(
    private readonly dir: string,
    file: KeyFile,
  ) {
    if (!file.privateKey)
      throw new SignerError(`checkpoint key ${file.keyId} is retired: it has no private key`);
    this.privateKey = createPrivateKey(file.privateKey);
    this.raw = rawPublicKey(createPublicKey(this.privateKey));
    if (checkpointKeyId(this.raw) !== file.keyId)
      throw new SignerError(
        `the private key in ${fileOf(dir, file.keyId)} does not match its public key`,
      );
    this.keyId = file.keyId;
  }

  /** Opens the current key of `dir`, generating one (and the directory) on first use. */
  static open(dir: string, now: number = Date.now()): KeyFileSigner {
    try {
      ensureDir(dir);
      const currentPath = join(dir, CURRENT);
      if (!existsSync(currentPath)) rotateCheckpointKey(dir, now);
      const keyId = readFileSync(currentPath, 'utf8').trim();
      const path = fileOf(dir, keyId);
      chmodSync(path, 0o600);
      return new KeyFileSigner(dir, readKeyFile(path));
    } catch (error) {
      if (error instanceof SignerError) throw error;
      throw new SignerError(
        `cannot open the checkpoint key in ${dir}: ${(error as Error).message}`,
        error,
      );
    }
  }

  publicKey(): Buffer {
    return this.raw;
  }

  sign(message: Uint8Array): Promise<Buffer> {
    return Promise.resolve(edSign(null, message, this.privateKey));
  }

  publishedKeys(): PublishedKey[] {
    return listKeyFiles(this.dir);
  }
}

// ---- external command ------------------------------------------------------------------------

export interface CommandSignerOptions {
  /** Run by /bin/sh: gets the bytes to sign on stdin, prints the signature on stdout. */
  readonly command: string;
  /** The public key of the signer: raw base64url, PEM text or a KeyObject. */
  readonly publicKey: PublicKeyInput;
  readonly timeoutMs?: number;
  /** When the key was created, for its publication (default: now). */
  readonly createdAt?: string;
}

const MAX_OUTPUT = 64 * 1024;

/** Reads a signature printed as hex, base64 or base64url (whitespace ignored). */
export function parseSignatureText(text: string): Buffer | undefined {
  const t = text.replace(/\s+/g, '');
  if (/^[0-9a-fA-F]{128}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    const bytes = Buffer.from(
      t.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
      'base64url',
    );
    return bytes.length === 64 ? bytes : undefined;
  }
  return undefined;
}

/**
 * An external signer (PROTOCOL.md §14.3, README "Proofs and checkpoints"): for each checkpoint
 * it runs `command` with the signing input on stdin and reads the Ed25519 signature from
 * stdout (hex, base64 or base64url). The signature is verified with the configured public key
 * before it is used, so a misconfigured signer fails loudly instead of publishing bad
 * checkpoints. Example, with the key on another host:
 * `ssh signer@vault 'openssl pkeyutl -sign -inkey /keys/vigil.pem -rawin -in /dev/stdin | base64 -w0'`.
 */
export class CommandSigner implements CheckpointSigner {
  readonly keyId: string;
  private readonly raw: Buffer;
  private readonly createdAt: string;

  constructor(private readonly options: CommandSignerOptions) {
    this.raw = rawPublicKey(options.publicKey);
    this.keyId = checkpointKeyId(this.raw);
    this.createdAt = options.createdAt ?? formatTime(Date.now());
  }

  publicKey(): Buffer {
    return this.raw;
  }

  publishedKeys(): PublishedKey[] {
    return [published(this.raw, this.createdAt)];
  }

  sign(message: Uint8Array): Promise<Buffer> {
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    return new Promise<Buffer>((resolve, reject) => {
      const child = spawn(this.options.command, { shell: true, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let settled = false;
      const finish = (error: Error | undefined, value?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(value as Buffer);
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(new SignerError(`the signer command did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        if (out.length < MAX_OUTPUT) out += chunk;
      });
      child.stderr.on('data', (chunk: string) => {
        if (err.length < MAX_OUTPUT) err += chunk;
      });
      child.on('error', (error) =>
        finish(new SignerError(`cannot run the signer command: ${error.message}`, error)),
      );
      child.stdin.on('error', () => undefined); // an early exit is reported by 'close'
      child.on('close', (code) => {
        if (code !== 0) {
          finish(
            new SignerError(
              `the signer command exited with ${String(code)}${err ? `: ${err.trim().slice(0, 500)}` : ''}`,
            ),
          );
          return;
        }
        const signature = parseSignatureText(out);
        if (!signature) {
          finish(
            new SignerError(
              'the signer command did not print a 64-byte signature (hex, base64 or base64url)',
            ),
          );
          return;
        }
        if (!verifyEd25519(message, signature.toString('base64url'), this.raw)) {
          finish(
            new SignerError(
              `the signer command's signature does not verify with the configured public key ${this.keyId}`,
            ),
          );
          return;
        }
        finish(undefined, signature);
      });
      child.stdin.end(Buffer.from(message));
    });
  }
}
