import {
  canonicalJson,
  checkSealedEvent,
  NotCanonicalError,
  PROTOCOL_VERSION,
  sealEvent,
  ZERO_HASH,
  type EventInput,
  type SaltSource,
  type SealedEvent,
} from '@vigil/protocol';
import { describe, expect, it } from 'vitest';
import { encodeSealedLine, sealedEventsOf } from '../deliver/framing.js';
import { canonicalFast } from './canonical.js';
import { EventClock, RandomBytes } from './ids.js';
import { RECORD_VERSION, Sealer } from './sealer.js';

/** Seals and returns the wire line. */
function sealLine(sealer: Sealer, ...args: Parameters<Sealer['seal']>): Buffer {
  sealer.seal(...args);
  return Buffer.from(sealer.lineBuffer.subarray(sealer.lineStart, sealer.lineEnd));
}

/** The object form of a sealed line. */
function eventOf(line: Buffer): SealedEvent {
  expect(line[line.length - 1]).toBe(0x0a);
  const { events, details } = sealedEventsOf(line);
  if (details.length > 0 || events.length !== 1 || events[0] === undefined)
    throw new Error(`${details[0]?.path} ${details[0]?.message}`);
  return events[0];
}

/** A deterministic PRNG so a failure names a reproducible seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Counter-based salts, identical for both sealers being compared. */
function countingSalts(): SaltSource {
  let n = 0;
  return {
    salt: () => {
      const b = Buffer.alloc(16);
      b.writeUInt32BE(++n, 12);
      return b;
    },
  };
}

const ALPHABET = [
  'a',
  'b',
  'Z',
  '_',
  'é',
  '€',
  '𝄞',
  '"',
  '\\',
  '\n',
  '\u0001',
  '/',
  '~',
  ' ',
  '0',
  '9',
  '\u2028',
];

function randomText(r: () => number, max = 12): string {
  let s = '';
  const n = 1 + Math.floor(r() * max);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)] as string;
  return s;
}

function randomJson(r: () => number, depth: number): unknown {
  const pick = r();
  if (depth > 3 || pick < 0.45) {
    const kind = Math.floor(r() * 7);
    if (kind === 0) return randomText(r);
    if (kind === 1) return Math.floor(r() * 1e6) - 5e5;
    if (kind === 2) return (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20);
    if (kind === 3) return r() < 0.5;
    if (kind === 4) return null;
    if (kind === 5) return -0;
    return 1e21 * r();
  }
  if (pick < 0.7)
    return Array.from({ length: Math.floor(r() * 4) }, () => randomJson(r, depth + 1));
  const out: Record<string, unknown> = {};
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) out[randomText(r, 6)] = randomJson(r, depth + 1);
  return out;
}

function randomEvent(r: () => number): EventInput {
  const types = ['user', 'service', 'api_key', 'customer', 'document'];
  const party = () => {
    const p: Record<string, unknown> = {
      type: types[Math.floor(r() * types.length)],
      id: randomText(r, 20),
    };
    if (r() < 0.5) p['email'] = `${randomText(r, 8)}@example.eu`;
    if (r() < 0.3) p['name'] = randomText(r, 10);
    if (r() < 0.1) p['x_extra'] = randomJson(r, 2);
    return p;
  };
  const input: Record<string, unknown> = {
    category: 'data_access',
    action: 'document.viewed',
    outcome: 'success',
    actor: party(),
  };
  if (r() < 0.6) input['target'] = party();
  if (r() < 0.6) {
    const ctx: Record<string, unknown> = { ip: r() < 0.5 ? '203.0.113.7' : '2001:db8::1' };
    if (r() < 0.7) ctx['userAgent'] = randomText(r, 40);
    if (r() < 0.5) ctx['requestId'] = randomText(r, 10);
    if (r() < 0.5) ctx['sessionId'] = randomText(r, 10);
    input['context'] = ctx;
  }
  if (r() < 0.3) {
    input['access'] = {
      change: r() < 0.5 ? 'grant' : 'revoke',
      subject: party(),
      role: 'viewer',
      grantedBy: party(),
      resource: { type: 'org', id: 'acme' },
    };
  }
  if (r() < 0.8) {
    const metadata = randomJson(r, 1);
    input['metadata'] =
      typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata)
        ? { ...metadata, phone: '+33 6 12' }
        : { phone: '+33 6 12', value: metadata };
    if (r() < 0.5) input['personal'] = ['/metadata/phone'];
  }
  if (r() < 0.1) input['x_future_field'] = randomJson(r, 1);
  if (r() < 0.05) input['1digit'] = 'index-like keys need the general serialiser';
  return input as unknown as EventInput;
}

describe('canonicalFast', () => {
  it('seals the protocol version the protocol package speaks', () => {
    expect(RECORD_VERSION).toBe(PROTOCOL_VERSION);
  });

  it('equals RFC 8785 (canonicalJson) on 20 000 generated values', () => {
    const r = prng(42);
    for (let i = 0; i < 20_000; i++) {
      const value = randomJson(r, 0);
      expect(canonicalFast(value), `value #${i}`).toBe(canonicalJson(value));
    }
  });

  it('refuses what RFC 8785 refuses', () => {
    expect(() => canonicalFast({ a: '\ud800' })).toThrow(NotCanonicalError);
    expect(() => canonicalFast({ a: Number.NaN })).toThrow(NotCanonicalError);
    expect(() => canonicalFast({ a: 1n })).toThrow(NotCanonicalError);
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    expect(() => canonicalFast(cycle)).toThrow(NotCanonicalError);
  });

  it('handles index-like keys, toJSON and the escaped backslash before "ud"', () => {
    for (const value of [
      { b: 1, 10: 2, 9: 3, a: 4 },
      { when: new Date(0), n: 1 },
      { s: '\\ud800 is text, not a surrogate' },
    ]) {
      expect(canonicalFast(value)).toBe(canonicalJson(value));
    }
  });
});

describe('Sealer', () => {
  const link = { stream: 'svc/host/0193a4b2-6c1e-7f00-8a00-000000000001', seq: 7, prev: ZERO_HASH };

  it('produces exactly what sealEvent produces on 5 000 generated events', () => {
    const r = prng(7);
    const mine = new Sealer(new RandomBytes(), ['/metadata/phone'], countingSalts());
    const reference = countingSalts();
    for (let i = 0; i < 5000; i++) {
      const input = randomEvent(r);
      const id = '0193a4b2-6c1e-7000-8000-000000000000';
      const time = '2026-11-23T09:00:00.000Z';
      const line = sealLine(mine, input, id, time, link);
      const out = eventOf(line);
      const personal = mine.personalPaths(input);
      const complete = { ...input, id, time, personal };
      if (personal.length === 0) delete (complete as { personal?: unknown }).personal;
      const expected = sealEvent(complete, link, reference).event;
      expect(out.record, `event #${i}`).toBe(expected.record);
      expect(JSON.parse(out.record)).toMatchObject({ v: 2 });
      expect(out.hash).toBe(expected.hash);
      expect(mine.hash).toBe(expected.hash);
      expect(JSON.stringify(out.disclosures ?? null)).toBe(
        JSON.stringify(expected.disclosures ?? null),
      );
      // The line is exactly the framing of PROTOCOL.md §9 for that event.
      expect(line.equals(encodeSealedLine(expected)), `event #${i}`).toBe(true);
    }
  });

  it('makes events the collector accepts, with fresh random salts', () => {
    const sealer = new Sealer(new RandomBytes(), [], undefined);
    const clock = new EventClock(new RandomBytes());
    const r = prng(3);
    for (let i = 0; i < 500; i++) {
      const input = randomEvent(r);
      delete (input as { x_future_field?: unknown }).x_future_field;
      const now = Date.now();
      const out = eventOf(sealLine(sealer, input, clock.id(now), clock.time(now), link));
      const checked = checkSealedEvent(out);
      expect(checked.ok, JSON.stringify(checked)).toBe(true);
    }
  });

  it('draws distinct salts for the same value', () => {
    const sealer = new Sealer(new RandomBytes(), [], undefined);
    const input: EventInput = {
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: 'u-1' },
    };
    const a = eventOf(
      sealLine(
        sealer,
        input,
        '0193a4b2-6c1e-7000-8000-000000000000',
        '2026-11-23T09:00:00.000Z',
        link,
      ),
    );
    const b = eventOf(
      sealLine(
        sealer,
        input,
        '0193a4b2-6c1e-7000-8000-000000000000',
        '2026-11-23T09:00:00.000Z',
        link,
      ),
    );
    expect(a.disclosures?.['/actor/id']?.salt).not.toBe(b.disclosures?.['/actor/id']?.salt);
    expect(a.hash).not.toBe(b.hash);
  });
});

describe('EventClock', () => {
  it('makes valid, distinct UUIDv7s carrying the millisecond', () => {
    const clock = new EventClock(new RandomBytes());
    const seen = new Set<string>();
    const ms = Date.UTC(2026, 10, 23, 9, 0, 0, 123);
    for (let i = 0; i < 10_000; i++) {
      const id = clock.id(ms + (i % 3));
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms + (i % 3));
      seen.add(id);
    }
    expect(seen.size).toBe(10_000);
    expect(clock.time(ms)).toBe('2026-11-23T09:00:00.123Z');
  });
});
