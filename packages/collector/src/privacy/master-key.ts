import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeBase64url } from '@vigil/protocol';
import { ConfigError } from '../errors.js';
import { writePrivateFile } from '../private-file.js';

/**
 * The privacy master key (`privacy.keyFile`): 32 random bytes, base64url, in a file readable by
 * its owner only, generated on first start like the checkpoint key. It wraps the tenants'
 * pseudonym keys in the store and derives the keys of subject digests (query/privacy/keys.ts),
 * so it must stay off the store: GDPR Art. 4(5) asks that what re-identifies be kept apart.
 * Every process of one deployment (API, sinks) must use the same file.
 */
export function openMasterKey(file: string, onCreate?: (file: string) => void): Buffer {
  try {
    if (!existsSync(file)) {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      // A second process starting at the same moment keeps the first key written.
      const text = randomBytes(32).toString('base64url') + '\n';
      if (writePrivateFile(file, text, { keepExisting: true })) onCreate?.(file);
    }
    chmodSync(file, 0o600);
    const key = decodeBase64url(readFileSync(file, 'utf8').trim(), 32);
    if (key === undefined) throw new Error('it does not hold 32 bytes in canonical base64url');
    return key;
  } catch (error) {
    throw new ConfigError(
      `privacy.keyFile ${file}: ${(error as Error).message}; it must hold a 32-byte key in base64url (a new one is made when the file does not exist)`,
    );
  }
}
