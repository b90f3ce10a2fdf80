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

  it('reads the file format of PROTOCOL.md §17.2: 43 base64url characters, surrounding white space ignored', () => {
    const file = join(dir, 'format.key');
    const bytes = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xf8 + (i % 8)));
    const text = bytes.toString('base64url');
    expect(text).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const ok of [text, `${text}\r\n`, `  ${text}\n\n`]) {
      writeFileSync(file, ok);
      expect(openMasterKey(file)).toEqual(bytes);
    }
    // Padding, the standard alphabet, another length: refused, never read as some other key.
    for (const bad of [`${text}=`, bytes.toString('base64'), text.slice(0, -1), `${text}AAAA`]) {
      writeFileSync(file, bad + '\n');
      expect(() => openMasterKey(file), bad).toThrow(/32 bytes in canonical base64url/);
    }
  });
});
