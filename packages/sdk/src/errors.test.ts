import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SdkErrorCodes, SdkErrorDescriptions } from './errors.js';
import { SDK_NAME, SDK_VERSION } from './version.js';

describe('SDK error codes', () => {
  it('are unique, prefixed and each documented', () => {
    const codes = Object.values(SdkErrorCodes);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) {
      expect(code).toMatch(/^VIGIL_ERR_SDK_[A-Z_]+$/);
      expect(SdkErrorDescriptions[code].length).toBeGreaterThan(20);
    }
    expect(Object.keys(SdkErrorDescriptions).sort()).toEqual([...codes].sort());
  });
});

describe('version', () => {
  it('matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      name: string;
      version: string;
    };
    expect(SDK_NAME).toBe(pkg.name);
    expect(SDK_VERSION).toBe(pkg.version);
  });
});
