import { canonicalJson, isCanonicalRecord } from '@vigil/protocol';
import { describe, expect, it } from 'vitest';
import { isCanonicalText } from './canonical-scan.js';

/** The scan must say exactly what parse + RFC 8785 serialise + compare says. */
function agrees(text: string): void {
  const parsed: unknown = JSON.parse(text);
  expect(isCanonicalText(text, parsed), text).toBe(isCanonicalRecord(text, parsed));
}

describe('the one-pass canonical-form check', () => {
  it('accepts RFC 8785 text and refuses each way JSON can differ from it', () => {
    const canonical = [
      '{}',
      '{"a":1,"b":[true,false,null],"c":{"d":"e"}}',
      '{"":0,"a":-1.5,"b":1e+21,"c":1e-7,"d":0.000001,"e":123456789012345680000}',
      '{"s":"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\\u000b/\u007f\u2028é𝄞"}',
      '{"a":{"b":{"c":[{"x":1,"y":2},{"x":3}]}},"b":[]}',
      '{"A":1,"a":2,"aa":3,"ab":4,"b":5}',
      '{"10":1,"9":2,"a":[0,1,10,-0.5]}',
      '{"€":1,"\u0080":2}',
      '{"\u0080":1,"€":2}',
      '{"\ud83d\ude00":1,"\uffff":2}',
      '{"\uffff":1,"\ud83d\ude00":2}',
    ];
    for (const text of canonical) agrees(text);
    expect(isCanonicalText('{"a":1,"b":[true,false,null],"c":{"d":"e"}}', {})).toBe(true);
    const not = [
      '{"a":1, "b":2}',
      ' {"a":1}',
      '{"a":1}\n',
      '{"b":1,"a":2}',
      '{"a":1,"a":1}',
      '{"a":{"y":1,"x":2}}',
      '{"a":[{"b":1,"a":2}]}',
      '{"a":1.0}',
      '{"a":1E+21}',
      '{"a":1e21}',
      '{"a":-0}',
      '{"a":0.10}',
      '{"a":1234567890123456789}',
      '{"a":"\\/"}',
      '{"a":"\\u0041"}',
      '{"a":"\\u00e9"}',
      '{"a":"\\u000A"}',
      '{"a":"\\u000a"}',
      '{"a":"\\u0008"}',
      '{"a":"\\ud800"}',
      '{"a":"\\ud83d\\ude00"}',
      '{"\\u0062":1,"a":2}',
      '{"a\\n":1,"a":2}',
      '{"a":1,"a\\n":2}',
      '{"€":1,"\\u0080":2}',
      '{"a":"x\ud800y"}',
      '{"a":"\udc00"}',
    ];
    for (const text of not) agrees(text);
  });

  it('agrees with the serialising check on random records and their variants', () => {
    // A seeded generator: the same cases on every run.
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const names = ['a', 'b', 'A', 'é', '10', '9', '', 'ab', '\u0080', '€', 'a\nb', '\ud83d\ude00'];
    const strings = [
      '',
      'x',
      'é€',
      '\u0000\u001f\t',
      '"\\/',
      '\u2028',
      '\ud83d\ude00',
      'a'.repeat(50),
    ];
    const numbers = [0, -1, 1.5, 1e21, 1e-7, 123456789, 2 ** 53, -0.25, 0.1 + 0.2];
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.4) return pick<unknown>([...strings, ...numbers, true, false, null]);
      if (r < 0.6) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 5); i > 0; i--) o[pick(names)] = value(depth + 1);
      return o;
    };
    const variants = (text: string): string[] => {
      const out = [text];
      // Whitespace, a reordering of two members, an escaped character, a number rewritten.
      const at = Math.floor(random() * text.length);
      out.push(text.slice(0, at) + ' ' + text.slice(at));
      out.push(text.replace(/"([^"\\]*)":([^,{}[\]]*),"([^"\\]*)":/, '"$3":$2,"$1":'));
      out.push(text.replace(/[a-z]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`));
      out.push(text.replace(/(\d)(?=[,}\]])/, '$1.0'));
      out.push(text.replace(/"\\n"/, '"\\u000a"'));
      return out;
    };
    let cases = 0;
    for (let i = 0; i < 2000; i++) {
      const root = value(0);
      const record =
        typeof root === 'object' && root !== null && !Array.isArray(root)
          ? { ...root, v: 1 }
          : { x: root, v: 1 };
      for (const text of variants(canonicalJson(record))) {
        let parses = true;
        try {
          JSON.parse(text);
        } catch {
          parses = false;
        }
        if (!parses) continue;
        agrees(text);
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(8000);
  });
});
