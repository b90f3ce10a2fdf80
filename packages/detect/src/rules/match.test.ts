import { describe, expect, it } from 'vitest';
import { ev } from '../detect.testkit.js';
import { compileSelection, lowerCase, type CompileProblem } from './match.js';

describe('case-insensitive matching', () => {
  it('lowerCase equals toLowerCase, returning an ASCII string without capitals as it is', () => {
    for (const s of [
      'user.login',
      'User.Login',
      'ÉCHEC',
      'échec',
      'İstanbul',
      'ß',
      '',
      'A',
      'z9-_.',
    ]) {
      expect(lowerCase(s)).toBe(s.toLowerCase());
    }
    const plain = 'already.lower';
    expect(lowerCase(plain)).toBe(plain);
  });

  it('matches values with capitals and non-ASCII letters against lists and single values', () => {
    const problems: CompileProblem[] = [];
    const list = compileSelection({ action: ['user.login', 'mfa.challenge'] }, [], problems);
    const one = compileSelection({ outcome: 'échec' }, [], problems);
    expect(problems).toEqual([]);
    expect(list(ev({ action: 'USER.Login' }), 'UTC')).toBe(true);
    expect(list(ev({ action: 'user.logout' }), 'UTC')).toBe(false);
    expect(one(ev({ outcome: 'ÉCHEC' }), 'UTC')).toBe(true);
    expect(one(ev({ outcome: 'echec' }), 'UTC')).toBe(false);
  });
});
