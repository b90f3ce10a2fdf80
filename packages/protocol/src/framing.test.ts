import { describe, expect, it } from 'vitest';
import { frameSealedEvent, frameSealedEvents, parseFramedBody } from './framing.js';
import { randomSaltSource } from './random.js';
import { sealEvent } from './seal.js';
import { checkFramedEvent } from './validate.js';
import { ZERO_HASH } from './constants.js';
import { sha256Hex } from './hash.js';

const HASH = 'ab'.repeat(32);

function sealed(seq = 0, prev = ZERO_HASH) {
  return sealEvent(
    {
      id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
      time: '2026-11-23T09:00:00.000Z',
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: 'u-1', name: 'Zoë\tTab' },
      metadata: { note: 'line\nbreak\r\u0000' },
    },
    { stream: 's-1', seq, prev },
    randomSaltSource(),
  ).event;
}

describe('parseFramedBody', () => {
  it('splits lines into record, hash and disclosures slices of the body', () => {
    const a = sealed(0);
    const b = sealed(1, a.hash);
    const body = Buffer.from(frameSealedEvents([a, b]));
    const { frames, details, lines } = parseFramedBody(body);
    expect(details).toEqual([]);
    expect(lines).toBe(2);
    expect(frames.map((f) => f.record.toString())).toEqual([a.record, b.record]);
    expect(frames.map((f) => f.hash)).toEqual([a.hash, b.hash]);
    expect(JSON.parse(frames[0]!.disclosures.toString())).toEqual(a.disclosures);
    // Slices, not copies: the record bytes lie in the body.
    expect(frames[0]!.record.buffer).toBe(body.buffer);
    expect(sha256Hex(frames[1]!.record)).toBe(b.hash);
    expect(frames.map((f) => f.index)).toEqual([0, 1]);
  });

  it('writes control characters of records escaped, so a line has exactly three fields', () => {
    const line = frameSealedEvent(sealed());
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toMatch(/[\n\r]/);
    expect(line.split('\t')).toHaveLength(3);
  });

  it('takes an empty disclosures field, CR LF line ends, blank lines and a last line without LF', () => {
    const r = '{"a":1}';
    const body = Buffer.from(`\r\n${r}\t${HASH}\t\r\n\n\n${r}\t${HASH}\t{}`);
    const { frames, details, lines } = parseFramedBody(body);
    expect(details).toEqual([]);
    expect(lines).toBe(2);
    expect(frames.map((f) => [f.index, f.record.toString(), f.disclosures.length])).toEqual([
      [0, r, 0],
      [1, r, 2],
    ]);
    expect(frames[0]!.line.toString()).toBe(`${r}\t${HASH}\t`);
  });

  it('names lines with one or two fields, and counts them among the lines', () => {
    const body = Buffer.from(`{"a":1}\n{"a":1}\t${HASH}\n{"a":1}\t${HASH}\t\n`);
    const { frames, details, lines } = parseFramedBody(body);
    expect(lines).toBe(3);
    expect(frames.map((f) => f.index)).toEqual([2]);
    expect(details).toEqual([
      { index: 0, path: '', message: expect.stringContaining('has one field') },
      { index: 1, path: '', message: expect.stringContaining('has two fields') },
    ]);
  });

  it('refuses extra fields and a raw TAB inside a record', () => {
    const body = Buffer.from(`{"a":"x\ty"}\t${HASH}\t\n{"a":1}\t${HASH}\t{}\textra\n`);
    const { frames, details } = parseFramedBody(body);
    expect(frames).toEqual([]);
    expect(details).toEqual([
      {
        index: 0,
        path: '',
        message: expect.stringMatching(/^has 4 TAB-separated fields.*raw TAB/),
      },
      { index: 1, path: '', message: expect.stringMatching(/^has 4 TAB-separated fields/) },
    ]);
  });

  it('drops the one CR that ends a line, the last one without LF too, and refuses any other CR', () => {
    const r = '{"a":1}';
    const last = parseFramedBody(Buffer.from(`${r}\t${HASH}\t{}\r`));
    expect(last.details).toEqual([]);
    expect(last.frames[0]!.disclosures.toString()).toBe('{}');
    // A second CR, a CR inside the disclosures or inside the record: no field may hold one (§9).
    const body = Buffer.from(
      `${r}\t${HASH}\t{}\r\r\n${r}\t${HASH}\t{\r}\n{"a":\r1}\t${HASH}\t\n${r}\t${HASH}\t { } \n`,
    );
    const { frames, details } = parseFramedBody(body);
    expect(details).toEqual([
      { index: 0, path: '/disclosures', message: expect.stringContaining('raw CR') },
      { index: 1, path: '/disclosures', message: expect.stringContaining('raw CR') },
      { index: 2, path: '/record', message: expect.stringContaining('raw CR') },
    ]);
    // Spaces are the one whitespace the disclosures field may hold.
    expect(frames.map((f) => f.index)).toEqual([3]);
  });

  it('refuses a hash that is not 64 lower-case hex digits', () => {
    const cases = [HASH.toUpperCase(), HASH.slice(1), HASH + 'a', 'g'.repeat(64), ''];
    const body = Buffer.from(cases.map((h) => `{"a":1}\t${h}\t\n`).join(''));
    const { frames, details } = parseFramedBody(body);
    expect(frames).toEqual([]);
    expect(details).toEqual(
      cases.map((_, index) => ({
        index,
        path: '/hash',
        message: 'must be 64 lower-case hex digits (SHA-256)',
      })),
    );
  });

  it('names the field and member that hold invalid UTF-8, with the byte of the body', () => {
    const good = Buffer.from(`{"a":1}\t${HASH}\t\n`);
    const badRecord = Buffer.concat([
      Buffer.from('{"actor":{"name":"Zo'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(`"}}\t${HASH}\t\n`),
    ]);
    const badDisclosure = Buffer.concat([
      Buffer.from(`{"a":1}\t${HASH}\t{"/actor/id":{"salt":"x","value":"`),
      Buffer.from([0xff]),
      Buffer.from('"}}\n'),
    ]);
    const badOutsideJson = Buffer.concat([Buffer.from([0xfe]), Buffer.from(`\t${HASH}\t\n`)]);
    const body = Buffer.concat([good, badRecord, badDisclosure, badOutsideJson]);
    const { frames, details } = parseFramedBody(body);
    expect(frames.map((f) => f.index)).toEqual([0]);
    const recordAt = good.length + 20;
    const disclosureAt = body.indexOf(0xff);
    expect(details).toEqual([
      {
        index: 1,
        path: '/record/actor/name',
        message: `is not valid UTF-8 (byte ${recordAt} of the body): send UTF-8 text`,
      },
      {
        index: 2,
        path: '/disclosures/~1actor~1id/value',
        message: `is not valid UTF-8 (byte ${disclosureAt} of the body): send UTF-8 text`,
      },
      { index: 3, path: '/record', message: expect.stringContaining('is not valid UTF-8') },
    ]);
    expect(body[recordAt]).toBe(0xc3);
    expect(disclosureAt).toBeGreaterThan(good.length + badRecord.length);
  });

  it('splits a huge line in linear time', () => {
    const big = '{"a":"' + 'x'.repeat(8 * 1024 * 1024) + '"}';
    const body = Buffer.from(`${big}\t${HASH}\t\n`.repeat(2));
    const started = performance.now();
    const { frames } = parseFramedBody(body);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(frames.map((f) => f.record.length)).toEqual([big.length, big.length]);
  });

  it('returns nothing for an empty or blank body', () => {
    expect(parseFramedBody(Buffer.alloc(0))).toEqual({ frames: [], details: [], lines: 0 });
    expect(parseFramedBody(Buffer.from('\n\r\n\n'))).toEqual({ frames: [], details: [], lines: 0 });
  });
});

describe('frameSealedEvent', () => {
  it('refuses a record that is not RFC 8785 text', () => {
    expect(() => frameSealedEvent({ record: '{"a":"\t"}', hash: HASH })).toThrow(/raw TAB/);
    expect(() => frameSealedEvent({ record: '{\n"a":1}', hash: HASH })).toThrow(/raw TAB/);
  });

  it('round-trips through the parser and the checks', () => {
    const e = sealed();
    const [frame] = parseFramedBody(Buffer.from(frameSealedEvent(e))).frames;
    const checked = checkFramedEvent(frame!);
    expect(checked.ok && checked.value.event).toEqual(e);
  });
});

describe('checkFramedEvent', () => {
  const frameOf = (text: string) => parseFramedBody(Buffer.from(text)).frames[0]!;

  it('hashes the record bytes as received', () => {
    const e = sealed();
    const altered = e.record.replace('"user.login"', '"user.logon"');
    const checked = checkFramedEvent(frameOf(frameSealedEvent({ ...e, record: altered })));
    expect(!checked.ok && checked.details.map((d) => d.path)).toContain('/hash');
  });

  it('names disclosures that are not a JSON object', () => {
    const e = sealed();
    for (const [field, message] of [
      ['{"a":', /^is not JSON/],
      ['[1]', /must be a JSON object/],
      ['null', /must be a JSON object/],
    ] as const) {
      const checked = checkFramedEvent(frameOf(`${e.record}\t${e.hash}\t${field}\n`));
      expect(checked).toEqual({
        ok: false,
        details: [{ index: 0, path: '/disclosures', message: expect.stringMatching(message) }],
      });
    }
  });

  it('refuses a v1 record', () => {
    const e = sealed();
    const v1 = e.record.replace('"v":2', '"v":1');
    const checked = checkFramedEvent(
      frameOf(`${v1}\t${sha256Hex(v1)}\t${JSON.stringify(e.disclosures)}\n`),
    );
    expect(checked).toEqual({
      ok: false,
      details: [{ index: 0, path: '/record/v', message: 'must be 2 (protocol v2)' }],
    });
  });
});
