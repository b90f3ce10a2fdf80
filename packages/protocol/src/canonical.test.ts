import { describe, expect, it } from 'vitest';
import { illFormedPath } from './canonical.js';

describe('illFormedPath', () => {
  it('names the first string holding a lone surrogate, as a JSON pointer', () => {
    expect(illFormedPath({ a: 'ok', b: ['x', { 'c/d': 'y\ud800' }] })).toBe('/b/1/c~1d');
    expect(illFormedPath({ ['k\udc00']: 1 })).toBe('/k\udc00');
    expect(illFormedPath('\ud800')).toBe('');
    expect(illFormedPath({ pair: '𝄞', escaped: '\ud834\udd1e', n: 1, z: null })).toBeUndefined();
  });

  it('walks any depth without recursion', () => {
    let deep: unknown = '\udfff';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(illFormedPath(deep)).toBe('/0'.repeat(100_000));
  });
});
