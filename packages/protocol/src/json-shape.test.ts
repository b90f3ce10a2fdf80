import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  checkEventInput,
  checkLoggedSealedEvent,
  checkSealedEvent,
  isCanonicalRecord,
  jsonShapeProblem,
  LIMITS,
  randomSaltSource,
  sealEvent,
  sha256Hex,
  ZERO_HASH,
  type EventInput,
} from './index.js';

/** `{"a":{"a":…1…}}` with `levels` objects, as text (JSON.stringify cannot write it). */
function deepObjectText(levels: number, key = 'a'): string {
  return `{"${key}":`.repeat(levels - 1) + '{}' + '}'.repeat(levels - 1);
}

const deepArrayText = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);

describe('jsonShapeProblem (PROTOCOL.md §3.5)', () => {
  it('accepts primitives and values exactly at the limits', () => {
    for (const v of [null, 1, 'x', true]) expect(jsonShapeProblem(v)).toBeUndefined();
    expect(jsonShapeProblem(JSON.parse(deepObjectText(LIMITS.jsonDepth)))).toBeUndefined();
    expect(jsonShapeProblem(JSON.parse(deepArrayText(LIMITS.jsonDepth)))).toBeUndefined();
    const wide = Object.fromEntries(
      Array.from({ length: LIMITS.jsonMembers }, (_, i) => [`k${i}`, i]),
    );
    expect(jsonShapeProblem({ metadata: wide })).toBeUndefined();
    expect(jsonShapeProblem({ list: new Array(LIMITS.jsonElements).fill(0) })).toBeUndefined();
  });

  it('counts objects and arrays as levels, not scalars (PROTOCOL.md §3.5 example)', () => {
    // 32 objects, the innermost holding a number: at the limit; one object more is past it.
    const at = '{"a":'.repeat(LIMITS.jsonDepth - 1) + '{"a":1}' + '}'.repeat(LIMITS.jsonDepth - 1);
    expect(jsonShapeProblem(JSON.parse(at))).toBeUndefined();
    const past = '{"a":'.repeat(LIMITS.jsonDepth) + '{"a":1}' + '}'.repeat(LIMITS.jsonDepth);
    expect(jsonShapeProblem(JSON.parse(past))?.path).toBe('/a'.repeat(LIMITS.jsonDepth));
  });

  it('refuses one level too deep, naming the JSON pointer of the node', () => {
    const problem = jsonShapeProblem(JSON.parse(deepObjectText(LIMITS.jsonDepth + 1)));
    expect(problem?.path).toBe('/a'.repeat(LIMITS.jsonDepth));
    expect(problem?.message).toMatch(/deeper than 32 levels/);
    expect(jsonShapeProblem(JSON.parse(deepArrayText(LIMITS.jsonDepth + 1)))?.path).toBe(
      '/0'.repeat(LIMITS.jsonDepth),
    );
  });

  it('walks input of any depth without recursion (100 000 levels)', () => {
    const objects = JSON.parse(deepObjectText(100_000, 'a/b~c')) as unknown;
    const problem = jsonShapeProblem(objects);
    // Tokens are escaped as RFC 6901 §3 says.
    expect(problem?.path).toBe('/a~1b~0c'.repeat(LIMITS.jsonDepth));
    expect(() => JSON.stringify(objects)).toThrow(RangeError);
    expect(jsonShapeProblem(JSON.parse(deepArrayText(100_000)))?.path).toBe(
      '/0'.repeat(LIMITS.jsonDepth),
    );
  });

  it('refuses wide objects and arrays anywhere, not only at the top', () => {
    const wide = Object.fromEntries(
      Array.from({ length: LIMITS.jsonMembers + 1 }, (_, i) => [`k${i}`, i]),
    );
    expect(jsonShapeProblem({ metadata: { x: [1, { wide }] } })).toEqual({
      path: '/metadata/x/1/wide',
      message: `has ${LIMITS.jsonMembers + 1} members; at most ${LIMITS.jsonMembers} (PROTOCOL.md §3.5)`,
    });
    expect(
      jsonShapeProblem({ metadata: { y: new Array(LIMITS.jsonElements + 1).fill('z') } })?.path,
    ).toBe('/metadata/y');
  });

  it('does not limit long strings (the record size limit does)', () => {
    expect(jsonShapeProblem({ metadata: { s: 'x'.repeat(1 << 20) } })).toBeUndefined();
  });

  it('counts from the level of the value in its record', () => {
    const value = JSON.parse(deepObjectText(LIMITS.jsonDepth - 2)) as unknown;
    expect(jsonShapeProblem(value, 2)).toBeUndefined();
    expect(jsonShapeProblem(value, 3)?.path).toBe('/a'.repeat(LIMITS.jsonDepth - 3));
  });
});

const input: EventInput & { id: string; time: string } = {
  id: '0193a4b2-6c1f-7000-8000-000000000001',
  time: '2026-11-23T09:00:01.250Z',
  action: 'user.login',
  category: 'authentication',
  outcome: 'failure',
  actor: { type: 'user', id: 'u-1' },
};
const salts = randomSaltSource();

/** A sealed event whose record holds `metadata` nested `levels` deep (written as text). */
function deepSealed(levels: number): { record: string; hash: string } {
  const { record } = sealEvent(input, { stream: 's/1', seq: 0, prev: ZERO_HASH }, salts).event;
  const deep = record.replace('"outcome":', `"metadata":${deepObjectText(levels)},"outcome":`);
  return { record: deep, hash: sha256Hex(deep) };
}

describe('checks of one event refuse too deep values before anything recurses', () => {
  // The record is level 1, metadata level 2: level 33 is 31 tokens below metadata.
  const tooDeep = '/a'.repeat(LIMITS.jsonDepth - 1);

  it('sealed events, at the collector and in the sink (7 000 levels)', () => {
    const event = deepSealed(7000);
    for (const result of [checkSealedEvent(event, 3), checkLoggedSealedEvent(event)]) {
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.details[0]?.path).toBe(`/record/metadata${tooDeep}`);
    }
    expect(checkSealedEvent(event, 3)).toMatchObject({ details: [{ index: 3 }] });
    // A record read from an older log is judged, not thrown on.
    expect(isCanonicalRecord(event.record, JSON.parse(event.record))).toBe(false);
  });

  it('accepts a record at exactly the limit', () => {
    expect(checkSealedEvent(deepSealed(LIMITS.jsonDepth - 1)).ok).toBe(true);
    expect(checkSealedEvent(deepSealed(LIMITS.jsonDepth)).ok).toBe(false);
  });

  it('unchained events (5 000 levels)', () => {
    const event = JSON.parse(
      JSON.stringify({ ...input, metadata: { x: 'PLACEHOLDER' } }).replace(
        '"PLACEHOLDER"',
        deepObjectText(5000),
      ),
    ) as unknown;
    const result = checkEventInput(event, 0);
    expect(result).toEqual({
      ok: false,
      details: [
        {
          index: 0,
          path: `/metadata/x${'/a'.repeat(LIMITS.jsonDepth - 2)}`,
          message: expect.stringMatching(/deeper/),
        },
      ],
    });
  });

  it('the plain values of disclosures, at the level of their path', () => {
    const personal = { ...input, metadata: { note: 'n' }, personal: ['/metadata/note'] };
    const { event } = sealEvent(personal, { stream: 's/1', seq: 0, prev: ZERO_HASH }, salts);
    const disclosures = {
      '/metadata/note': {
        salt: event.disclosures?.['/metadata/note']?.salt as string,
        value: JSON.parse(deepObjectText(6000)) as never,
      },
    };
    const result = checkSealedEvent({ ...event, disclosures });
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.details[0]?.path).toBe(
        `/disclosures/~1metadata~1note/value${'/a'.repeat(LIMITS.jsonDepth - 2)}`,
      );
    expect(canonicalJson({ ok: 1 })).toBe('{"ok":1}');
  });
});
