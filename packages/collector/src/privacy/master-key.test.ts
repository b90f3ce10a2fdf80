import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openMasterKey } from './master-key.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-master-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('openMasterKey', () => {
  it('creates an owner-only key on first use and reads it back', () => {
    const file = join(dir, 'keys', 'privacy.key');
    const key = openMasterKey(file);
    expect(key).toHaveLength(32);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);
    expect(openMasterKey(file)).toEqual(key);
  });

  it('refuses a key whose text is not canonical base64url (one key, one text)', () => {
    const file = join(dir, 'other.key');
    const text = Buffer.alloc(32, 1).toString('base64url'); // 43 characters, 2 pad bits
    writeFileSync(file, text + '\n');
    expect(openMasterKey(file)).toEqual(Buffer.alloc(32, 1));
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1)!) + 1];
    writeFileSync(file, twin + '\n');
    expect(() => openMasterKey(file)).toThrow(/canonical base64url/);
  });
});
