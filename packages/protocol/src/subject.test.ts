import { describe, expect, it } from 'vitest';
import { normalEmail, subjectDigest } from './index.js';

/** The normal form of an address (PROTOCOL.md §17.2), character by character. */
describe('normalEmail', () => {
  it('trims exactly the white space of ECMAScript String.prototype.trim', () => {
    // Trimmed: TAB, LF, VT, FF, CR, SPACE, NBSP, U+1680, U+2000-U+200A, U+2028, U+2029,
    // U+202F, U+205F, U+3000, U+FEFF.
    const trimmed = '\t\n\v\f\r \u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff';
    expect(normalEmail(`${trimmed}a@b${trimmed}`)).toBe('a@b');
    // Kept: the other controls, NEL, ZERO WIDTH SPACE, WORD JOINER (not white space there).
    for (const kept of ['\u001c', '\u001f', '\u0085', '\u200b', '\u2060'])
      expect(normalEmail(`${kept}a@b${kept}`)).toBe(`${kept}a@b${kept}`);
  });

  it('lower-cases with the full Unicode mapping, without locale, and applies no normalisation form', () => {
    expect(normalEmail('İ@X')).toBe('i\u0307@x'); // SpecialCasing, not the Turkish dotless rule
    expect(normalEmail('\u039f\u0394\u039f\u03a3@X')).toBe('\u03bf\u03b4\u03bf\u03c2@x'); // Final_Sigma: ς
    expect(normalEmail('ẞ@X')).toBe('ß@x');
    expect(normalEmail('\u212Aelvin@X')).toBe('kelvin@x'); // KELVIN SIGN
    expect(normalEmail('Ａ@X')).toBe('ａ@x'); // full width stays full width (no NFKC)
    expect(normalEmail('ZOE\u0308@X')).toBe('zoe\u0308@x'); // decomposed stays decomposed (no NFC)
    const key = Buffer.alloc(32, 7);
    expect(subjectDigest(key, 'email', 'zoe\u0308@x')).not.toBe(
      subjectDigest(key, 'email', 'zo\u00eb@x'),
    );
    // Ids are digested exactly as given.
    expect(subjectDigest(key, 'id', ' U-1')).not.toBe(subjectDigest(key, 'id', 'u-1'));
  });
});
