import { describe, expect, it } from 'vitest';
import { Lru } from './lru.js';

describe('Lru', () => {
  it('keeps at most its capacity, dropping entries not used since the last generation', () => {
    const lru = new Lru<string, number>(4);
    for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) lru.set(k, i);
    expect(lru.size).toBe(4);
    expect(lru.get('a')).toBe(0); // promoted
    lru.set('e', 4);
    expect(lru.size).toBeLessThanOrEqual(4);
    expect(lru.get('a')).toBe(0);
    expect(lru.get('e')).toBe(4);
    expect(lru.get('b')).toBeUndefined();
  });

  it('never drops an entry used at least once per capacity/2 insertions', () => {
    const lru = new Lru<number, string>(10);
    lru.set(-1, 'hot');
    for (let i = 0; i < 1000; i++) {
      lru.set(i, 'cold');
      if (i % 5 === 0) expect(lru.get(-1)).toBe('hot');
      expect(lru.size).toBeLessThanOrEqual(10);
    }
  });
});
