import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  checkpointKeyId,
  checkpointSigningInput,
  checkpointId,
  encodeCheckpoint,
  rawPublicKey,
  verifyCheckpoint,
  verifyEd25519,
} from '@vigil/protocol';
import { SignerError } from '../errors.js';
import {
  CommandSigner,
  KeyFileSigner,
  listKeyFiles,
  MemorySigner,
  parseSignatureText,
  rotateCheckpointKey,
} from './signer.js';

const message = checkpointSigningInput(
  encodeCheckpoint({
    v: 1,
    tenant: 'acme',
    time: '2026-11-23T10:00:00.000Z',
    keyId: '0123456789abcdef',
    partitions: [{ partition: 0, size: 1, root: 'ab'.repeat(32) }],
  }),
);

describe('signers', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-signer-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('generates a key file on first start, readable by its owner only, and reuses it', async () => {
    const keys = join(dir, 'keys');
    const signer = KeyFileSigner.open(keys);
    expect(statSync(keys).mode & 0o777).toBe(0o700);
    const files = readdirSync(keys);
    expect(files.sort()).toEqual(['checkpoint-current', `checkpoint-${signer.keyId}.json`].sort());
    for (const f of files) expect(statSync(join(keys, f)).mode & 0o777).toBe(0o600);
    expect(signer.keyId).toBe(checkpointKeyId(signer.publicKey()));
    const signature = await signer.sign(message);
    expect(verifyEd25519(message, signature.toString('base64url'), signer.publicKey())).toBe(true);
    const again = KeyFileSigner.open(keys);
    expect(again.keyId).toBe(signer.keyId);
    expect(again.publishedKeys()).toEqual([
      expect.objectContaining({ keyId: signer.keyId, algorithm: 'Ed25519', retiredAt: null }),
    ]);
  });

  it('rotates: the new key signs, the old public key stays published, its private key is gone', async () => {
    const keys = join(dir, 'keys');
    const old = KeyFileSigner.open(keys, Date.parse('2026-01-01T00:00:00.000Z'));
    const text = encodeCheckpoint({
      v: 1,
      tenant: 'acme',
      time: '2026-01-02T00:00:00.000Z',
      keyId: old.keyId,
      partitions: [{ partition: 0, size: 3, root: 'cd'.repeat(32) }],
    });
    const signedByOld = {
      id: checkpointId(text),
      checkpoint: text,
      signature: (await old.sign(checkpointSigningInput(text))).toString('base64url'),
    };
    const rotated = rotateCheckpointKey(keys, Date.parse('2026-06-01T00:00:00.000Z'));
    expect(rotated.previous).toBe(old.keyId);
    const current = KeyFileSigner.open(keys);
    expect(current.keyId).toBe(rotated.current);
    expect(current.keyId).not.toBe(old.keyId);
    const published = current.publishedKeys();
    expect(published.map((k) => [k.keyId, k.retiredAt])).toEqual([
      [old.keyId, '2026-06-01T00:00:00.000Z'],
      [current.keyId, null],
    ]);
    expect(listKeyFiles(keys)).toEqual(published);
    const oldFile = JSON.parse(
      readFileSync(join(keys, `checkpoint-${old.keyId}.json`), 'utf8'),
    ) as Record<string, unknown>;
    expect(oldFile['privateKey']).toBeUndefined();
    // Checkpoints the old key signed still verify with its published public key.
    expect(
      verifyCheckpoint(
        signedByOld,
        published.map((k) => k.publicKey),
      ).ok,
    ).toBe(true);
  });

  it('signs through an external command and checks every signature against the public key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyPath = join(dir, 'signer.pem');
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const script = join(dir, 'sign.mjs');
    writeFileSync(
      script,
      `import { createPrivateKey, sign } from 'node:crypto';
       import { readFileSync } from 'node:fs';
       const chunks = [];
       for await (const c of process.stdin) chunks.push(c);
       const key = createPrivateKey(readFileSync(process.argv[2], 'utf8'));
       const mode = process.argv[3] ?? 'base64';
       if (mode === 'fail') { process.stderr.write('hsm offline'); process.exit(3); }
       if (mode === 'sleep') await new Promise((r) => setTimeout(r, 5000));
       const sig = sign(null, Buffer.concat(chunks), key);
       process.stdout.write(mode === 'hex' ? sig.toString('hex') + '\\n' : sig.toString(mode));`,
    );
    const command = (mode: string): string =>
      `"${process.execPath}" "${script}" "${keyPath}" ${mode}`;
    const pem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
    for (const mode of ['base64', 'base64url', 'hex']) {
      const signer = new CommandSigner({ command: command(mode), publicKey: pem });
      expect(signer.keyId).toBe(checkpointKeyId(publicKey));
      const signature = await signer.sign(message);
      expect(verifyEd25519(message, signature.toString('base64url'), publicKey)).toBe(true);
    }
    // Configured with another public key: the signature is refused.
    const wrong = new CommandSigner({
      command: command('base64'),
      publicKey: rawPublicKey(generateKeyPairSync('ed25519').publicKey).toString('base64url'),
    });
    await expect(wrong.sign(message)).rejects.toThrow(/does not verify/);
    await expect(
      new CommandSigner({ command: command('fail'), publicKey: pem }).sign(message),
    ).rejects.toThrow(/exited with 3: hsm offline/);
    const slow = new CommandSigner({ command: command('sleep'), publicKey: pem, timeoutMs: 300 });
    await expect(slow.sign(message)).rejects.toBeInstanceOf(SignerError);
  });

  it('reads signatures printed as hex, base64 or base64url, and nothing else', () => {
    const sig = Buffer.alloc(64, 0xfb);
    expect(parseSignatureText(sig.toString('hex'))).toEqual(sig);
    expect(parseSignatureText(sig.toString('base64') + '\n')).toEqual(sig);
    expect(parseSignatureText(sig.toString('base64url'))).toEqual(sig);
    expect(parseSignatureText(Buffer.alloc(32).toString('base64'))).toBeUndefined();
    expect(parseSignatureText('not a signature!')).toBeUndefined();
  });

  it('keeps a key in memory for tests', async () => {
    const signer = MemorySigner.generate();
    const signature = await signer.sign(message);
    expect(verifyEd25519(message, signature.toString('base64url'), signer.publicKey())).toBe(true);
    expect(signer.publishedKeys()[0]?.publicKey).toBe(signer.publicKey().toString('base64url'));
  });
});
