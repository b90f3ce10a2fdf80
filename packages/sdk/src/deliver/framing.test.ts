import { describe, expect, it } from 'vitest';
import {
  encodeSealedLine,
  lineHash,
  lineRecord,
  parseSealedLine,
  SEALED_CONTENT_TYPE,
  splitSealedLines,
} from './framing.js';

const HASH = 'ab'.repeat(32);

function lines(text: string): string[] {
  const body = Buffer.from(text, 'utf8');
  return splitSealedLines(body).map(([start, end]) => body.toString('utf8', start, end));
}

function parse(text: string): ReturnType<typeof parseSealedLine> {
  const body = Buffer.from(text, 'utf8');
  return parseSealedLine(body, 0, body.length);
}

describe('sealed framing (PROTOCOL.md §9)', () => {
  it('names its media type', () => {
    expect(SEALED_CONTENT_TYPE).toBe('application/vnd.vigil.sealed.v2');
  });

  it('writes record TAB hash TAB disclosures LF, the record unescaped', () => {
    const record = '{"action":"a.b","actor":{"id":"é \\"x\\""},"v":2}';
    const line = encodeSealedLine({
      record,
      hash: HASH,
      disclosures: { '/actor/id': { salt: 'AAAAAAAAAAAAAAAAAAAAAA', value: 'u-1' } },
    });
    expect(line.toString('utf8')).toBe(
      `${record}\t${HASH}\t{"/actor/id":{"salt":"AAAAAAAAAAAAAAAAAAAAAA","value":"u-1"}}\n`,
    );
    expect(lineRecord(line)).toBe(record);
    expect(lineHash(line)).toBe(HASH);
    expect(encodeSealedLine({ record: '{"v":2}', hash: HASH }).toString()).toBe(
      `{"v":2}\t${HASH}\t\n`,
    );
  });

  it('splits on LF, ignores a CR before it and blank lines, and needs no last LF', () => {
    expect(lines('a\nb\r\n\n\r\nc')).toEqual(['a', 'b', 'c']);
    expect(lines('a\n')).toEqual(['a']);
    expect(lines('')).toEqual([]);
  });

  it('reads a line back into the JSON form', () => {
    const event = {
      record: '{"a":"\\t"}',
      hash: HASH,
      disclosures: { '/x': { salt: 's', value: 1 } },
    };
    const line = encodeSealedLine(event);
    expect(parseSealedLine(line, 0, line.length - 1)).toEqual({ ok: true, event });
    expect(parse(`{"v":2}\t${HASH}\t`)).toEqual({
      ok: true,
      event: { record: '{"v":2}', hash: HASH },
    });
  });

  it('refuses malformed lines, naming the field', () => {
    expect(parse(`{"v":2}\t${HASH}`)).toMatchObject({ ok: false, path: '' });
    expect(parse(`{"v":2}\t${HASH.slice(2)}\t`)).toMatchObject({ ok: false, path: '' });
    expect(parse(`{"v":2}`)).toMatchObject({ ok: false, path: '' });
    expect(parse(`{"v":2}\t${HASH}\t[1]`)).toMatchObject({ ok: false, path: '/disclosures' });
    expect(parse(`{"v":2}\t${HASH}\t{"a":`)).toMatchObject({ ok: false, path: '/disclosures' });
    expect(parse(`{"v":2}\t${HASH}\t{}\t`)).toMatchObject({ ok: false, path: '/disclosures' });
  });
});
