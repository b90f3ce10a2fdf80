import { describe, expect, it } from 'vitest';
import { builtinRules } from '@vigil/detect';
import { rulesUsingAsn } from './setup.js';

describe('rulesUsingAsn', () => {
  it('names the built-in rules whose conditions read asn.*, not those citing it as evidence', () => {
    expect(rulesUsingAsn(builtinRules()).sort()).toEqual(
      [
        'auth.concurrent_sessions',
        'auth.impossible_travel',
        'auth.new_asn',
        'api.key_new_source',
      ].sort(),
    );
  });
});
