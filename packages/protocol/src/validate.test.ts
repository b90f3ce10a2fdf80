import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  checkEventInput,
  checkLoggedSealedEvent,
  checkSealedEvent,
  isCanonicalRecord,
  randomSaltSource,
  sealEvent,
  sha256Hex,
  ZERO_HASH,
  type EventInput,
  type SealedEvent,
} from './index.js';

const salts = randomSaltSource();
const base: EventInput & { id: string; time: string } = {
  id: '0193a4b2-6c1f-7000-8000-000000000001',
  time: '2026-11-23T09:00:01.250Z',
  action: 'user.login',
  category: 'authentication',
  outcome: 'failure',
  actor: { type: 'user', id: 'u-1', email: 'a@example.eu' },
  context: { ip: '2001:db8::1', userAgent: 'curl/8' },
};
const link = { stream: 'app/host/1', seq: 0, prev: ZERO_HASH };

function sealed(input = base): SealedEvent {
  return sealEvent(input, link, salts).event;
}

function reseal(mutate: (record: Record<string, unknown>) => void, from = sealed()): SealedEvent {
  const record = JSON.parse(from.record) as Record<string, unknown>;
  mutate(record);
  const json = canonicalJson(record);
  return { ...from, record: json, hash: sha256Hex(json) };
}

describe('checkSealedEvent', () => {
  it('accepts a sealed event and returns its record and time', () => {
    const result = checkSealedEvent(sealed());
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.value.record.action).toBe('user.login');
      expect(result.value.timeMs).toBe(Date.parse(base.time));
    }
  });

  it('names the hash when one byte of the record changed', () => {
    const e = sealed();
    const tampered = { ...e, record: e.record.replace('failure', 'success') };
    const result = checkSealedEvent(tampered, 4);
    expect(result).toEqual({
      ok: false,
      details: [expect.objectContaining({ index: 4, path: '/hash' })],
    });
  });

  it('names a disclosure whose value was altered', () => {
    const e = sealed();
    const d = { ...e.disclosures! };
    d['/actor/email'] = { ...d['/actor/email']!, value: 'b@example.eu' };
    const result = checkSealedEvent({ ...e, disclosures: d });
    expect(result).toMatchObject({ ok: false, details: [{ path: '/disclosures/~1actor~1email' }] });
  });

  it('refuses a personal field sent in the clear', () => {
    const e = reseal((r) => {
      (r['actor'] as Record<string, unknown>)['email'] = 'a@example.eu';
      r['personal'] = (r['personal'] as string[]).filter((p) => p !== '/actor/email');
    });
    const { disclosures, ...rest } = e;
    const { ['/actor/email']: _gone, ...others } = disclosures!;
    const result = checkSealedEvent({ ...rest, disclosures: others });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.details).toContainEqual(
        expect.objectContaining({
          path: '/record/actor/email',
          message: expect.stringContaining('identifies a person'),
        }),
      );
    }
  });

  it('lists every problem of a record, with field paths', () => {
    const e = reseal((r) => {
      r['action'] = 'Login';
      r['category'] = 'nope';
      r['time'] = '2026-02-30T00:00:00.000Z';
      delete r['outcome'];
    });
    const result = checkSealedEvent(e, 0);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      const paths = result.details.map((d) => d.path).sort();
      expect(paths).toEqual(['/record/action', '/record/category', '/record/outcome']);
    }
    const dated = checkSealedEvent(reseal((r) => (r['time'] = '2026-02-30T00:00:00.000Z')));
    expect(dated).toMatchObject({
      ok: false,
      details: [{ path: '/record/time', message: 'is not a real instant' }],
    });
  });

  it('refuses another protocol version, reserved streams and a broken disclosure salt', () => {
    // Protocol v1 is refused (PROTOCOL.md §12), and any other version.
    for (const v of [1, 3, '2'])
      expect(checkSealedEvent(reseal((r) => (r['v'] = v)))).toEqual({
        ok: false,
        details: [{ path: '/record/v', message: 'must be 2 (protocol v2)' }],
      });
    expect(checkLoggedSealedEvent(reseal((r) => (r['v'] = 1)))).toEqual({
      ok: false,
      details: [{ path: '/record/v', message: 'must be 2 (protocol v2)' }],
    });
    expect(checkSealedEvent(reseal((r) => (r['stream'] = 'vigil/integrity')))).toMatchObject({
      ok: false,
      details: [{ path: '/record/stream' }],
    });
    const e = sealed();
    const d = { ...e.disclosures! };
    d['/actor/id'] = { ...d['/actor/id']!, salt: 'AAAAAAAAAAAAAAAAAAAAAA' };
    expect(checkSealedEvent({ ...e, disclosures: d })).toMatchObject({
      ok: false,
      details: [{ path: '/disclosures/~1actor~1id' }],
    });
  });

  it('keeps unknown fields byte for byte', () => {
    const input = { ...base, x_new: { nested: [1, 'two'] } };
    const e = sealed(input);
    expect(e.record).toContain('"x_new":{"nested":[1,"two"]}');
    expect(checkSealedEvent(e).ok).toBe(true);
  });

  it('refuses a malformed wire object without throwing', () => {
    for (const bad of [
      null,
      42,
      'x',
      {},
      { record: 1, hash: 'x' },
      { record: '{', hash: ZERO_HASH },
    ]) {
      const result = checkSealedEvent(bad, 1);
      expect(result.ok).toBe(false);
    }
  });
});

describe('checkEventInput', () => {
  it('accepts a minimal unchained event', () => {
    expect(
      checkEventInput({
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'u' },
      }).ok,
    ).toBe(true);
  });

  it('names every bad field', () => {
    const result = checkEventInput(
      {
        action: 'x',
        category: 'authentication',
        outcome: 'ok',
        actor: { type: 'user' },
        context: { ip: 'not-an-ip' },
        personal: ['/time'],
      },
      3,
    );
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.details.every((d) => d.index === 3)).toBe(true);
      expect(result.details.map((d) => d.path).sort()).toEqual([
        '/action',
        '/actor/id',
        '/outcome',
      ]);
    }
    const second = checkEventInput({
      ...base,
      context: { ip: '1.2.3.999' },
      personal: ['/time', '/metadata/none'],
    });
    expect(second.ok).toBe(false);
    if (!second.ok)
      expect(second.details.map((d) => d.path).sort()).toEqual([
        '/context/ip',
        '/personal',
        '/personal',
      ]);
  });

  it('requires role or permission on an access change', () => {
    const result = checkEventInput({
      ...base,
      category: 'access_change',
      access: { change: 'grant', subject: { type: 'user', id: 'u-2' } },
    });
    expect(result).toMatchObject({
      ok: false,
      details: [{ path: '/access', message: 'must name a role or a permission' }],
    });
  });
});

describe('edge cases of personal fields, salts and canonical form', () => {
  it('refuses a personal path inside another one', () => {
    const input = {
      ...base,
      metadata: { a: { b: 'x' } },
      personal: ['/metadata/a', '/metadata/a/b'],
    };
    const checked = checkEventInput(input);
    expect(checked).toMatchObject({
      ok: false,
      details: [{ path: '/personal', message: expect.stringContaining('lies inside') }],
    });
    expect(() => sealEvent(input, link, salts)).toThrow(/invalid personal paths/);
  });

  it('finds a path inside another also when a sibling sorts between them', () => {
    const input = {
      ...base,
      metadata: { a: { b: 'x' }, 'a.x': 'y' },
      personal: ['/metadata/a', '/metadata/a.x', '/metadata/a/b'],
    };
    expect(checkEventInput(input)).toMatchObject({
      ok: false,
      details: [
        {
          path: '/personal',
          message: '/metadata/a/b lies inside /metadata/a; commit one or the other',
        },
      ],
    });
  });

  it('refuses an empty personal list in a record and an overlong disclosed address', () => {
    const e = reseal((r) => {
      r['actor'] = { type: 'service', id: 's' };
      delete r['context'];
      r['personal'] = [];
    });
    const { disclosures: _d, ...bare } = e;
    expect(checkSealedEvent(bare)).toMatchObject({
      ok: false,
      details: [{ path: '/record/personal' }],
    });
    const zoned = sealEvent(
      { ...base, context: { ip: `fe80::1%${'x'.repeat(80)}` } },
      link,
      salts,
    ).event;
    expect(checkSealedEvent(zoned)).toMatchObject({
      ok: false,
      details: [{ path: '/disclosures/~1context~1ip/value' }],
    });
  });

  it('refuses more personal fields than the wire allows, counting the required ones', () => {
    const metadata: Record<string, string> = {};
    const personal: string[] = [];
    for (let i = 0; i < 62; i++) {
      metadata[`k${i}`] = 'v';
      personal.push(`/metadata/k${i}`);
    }
    const checked = checkEventInput({ ...base, metadata, personal });
    expect(checked).toMatchObject({
      ok: false,
      details: [{ path: '/personal', message: expect.stringContaining('at most 64') }],
    });
  });

  it('refuses chain members in an unchained event and reserved streams in any case', () => {
    const checked = checkEventInput({ ...base, seq: 3, stream: 'x' });
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.details.map((d) => d.path).sort()).toEqual(['/seq', '/stream']);
    expect(checkSealedEvent(reseal((r) => (r['stream'] = 'Vigil/integrity/p0')))).toMatchObject({
      ok: false,
      details: [{ path: '/record/stream' }],
    });
  });

  it('checks disclosed values as the fields they stand for', () => {
    // Each value is committed correctly, so only the check of the plain value can object.
    for (const value of [{ not: 'text' }, 'x'.repeat(300), '']) {
      const event = sealEvent(
        { ...base, actor: { type: 'user', id: value as string } },
        link,
        salts,
      ).event;
      const result = checkSealedEvent(event);
      expect(result.ok, JSON.stringify(value).slice(0, 20)).toBe(false);
      if (!result.ok)
        expect(result.details.map((d) => d.path)).toContain('/disclosures/~1actor~1id/value');
    }
  });

  it('accepts only canonical base64url salts', () => {
    const e = sealed();
    const d = { ...e.disclosures! };
    const salt = d['/actor/id']!.salt;
    // 16 bytes → 22 characters whose last carries 4 unused bits; set one of them.
    const last = salt[21]!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sloppy = salt.slice(0, 21) + alphabet[(alphabet.indexOf(last) & ~15) | 1];
    d['/actor/id'] = { ...d['/actor/id']!, salt: sloppy };
    expect(checkSealedEvent({ ...e, disclosures: d })).toMatchObject({
      ok: false,
      details: [{ path: '/disclosures/~1actor~1id/salt', message: 'is not canonical base64url' }],
    });
  });

  it('tells canonical record bytes from ones with duplicate names or whitespace', () => {
    const e = sealed();
    const parsed = JSON.parse(e.record) as unknown;
    expect(isCanonicalRecord(e.record, parsed)).toBe(true);
    const duplicated = e.record.replace(
      '{"action":"user.login"',
      '{"action":"x.y","action":"user.login"',
    );
    expect(isCanonicalRecord(duplicated, JSON.parse(duplicated))).toBe(false);
    const spaced = e.record.replace('"v":2', '"v": 2');
    expect(isCanonicalRecord(spaced, JSON.parse(spaced))).toBe(false);
  });

  it('judges canonical form as RFC 8785 does where member enumeration and escaping differ', () => {
    const judge = (text: string): boolean => isCanonicalRecord(text, JSON.parse(text));
    // Integer-like names: V8 enumerates them first and in numeric order; RFC 8785 sorts them
    // as text ("10" before "2").
    expect(judge('{"10":1,"2":2,"a":3}')).toBe(true);
    expect(judge('{"2":2,"10":1,"a":3}')).toBe(false);
    // Names compared by UTF-16 code units: U+20AC (€) before U+1F600 (a surrogate pair, 0xD83D).
    expect(judge('{"€":1,"😀":2}')).toBe(true);
    expect(judge('{"😀":2,"€":1}')).toBe(false);
    // A lone surrogate has no RFC 8785 form, though JSON.stringify would write it escaped.
    expect(judge('{"a":"\\ud800"}')).toBe(false);
    expect(judge('{"\\udc00":1}')).toBe(false);
    // Escapes: only the ones RFC 8785 uses.
    expect(judge('{"a":"\\u0041"}')).toBe(false);
    expect(judge('{"a":"\\u001f\\n"}')).toBe(true);
    expect(judge('{"a":"\\/"}')).toBe(false);
    // Numbers in ECMAScript shortest form only.
    expect(judge('{"a":1e+21,"b":1.5}')).toBe(true);
    expect(judge('{"a":1e21}')).toBe(false);
    expect(judge('{"a":1.50}')).toBe(false);
    expect(judge('{"a":1E21}')).toBe(false);
    // Nested objects and arrays are checked all the way down.
    expect(judge('{"a":[{"b":1,"c":[{"d":1,"e":2}]}]}')).toBe(true);
    expect(judge('{"a":[{"b":1,"c":[{"e":2,"d":1}]}]}')).toBe(false);
  });

  it('agrees with the full RFC 8785 serialisation on every record and mutation tried', () => {
    const samples: string[] = [];
    for (let i = 0; i < 50; i++) {
      const e = sealed();
      samples.push(e.record);
      // Swap two neighbouring members, add a space, re-escape a character.
      samples.push(e.record.replace('"action":', ' "action":'));
      samples.push(e.record.replace(/"category":"([a-z_]+)","id"/, '"id"'));
      samples.push(e.record.replace('"v":2', '"v":2.0'));
      samples.push(e.record.replace('e', '\\u0065'));
    }
    for (const text of samples) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        continue;
      }
      let reference: boolean;
      try {
        reference = canonicalJson(parsed) === text;
      } catch {
        reference = false;
      }
      expect(isCanonicalRecord(text, parsed)).toBe(reference);
    }
  });
});
