import { describe, expect, it } from 'vitest';
import { parseCommandLine } from './args.js';

describe('parseCommandLine', () => {
  const local = { 'public-key': { type: 'string' }, json: { type: 'boolean' } } as const;

  it('takes a value that starts with a dash (a base64url key) for a string flag', () => {
    const key = '-Xb3' + 'A'.repeat(39);
    const parsed = parseCommandLine(['proof', 'id-1', '--public-key', key, '--json'], local);
    expect(parsed.local['public-key']).toBe(key);
    expect(parsed.local['json']).toBe(true);
    expect(parsed.positionals).toEqual(['proof', 'id-1']);
  });

  it('still reads a following flag as a flag, and a missing value as an error', () => {
    expect(() => parseCommandLine(['--public-key', '--json'], local)).toThrow(/public-key/);
    expect(() => parseCommandLine(['--public-key', '-h'], local)).toThrow(/public-key/);
    expect(parseCommandLine(['--public-key=-abc'], local).local['public-key']).toBe('-abc');
  });

  it('leaves everything after -- as positionals', () => {
    const parsed = parseCommandLine(['--', '--public-key', '-x'], local);
    expect(parsed.positionals).toEqual(['--public-key', '-x']);
  });
});
