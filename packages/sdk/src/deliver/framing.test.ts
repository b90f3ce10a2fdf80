import { describe, expect, it } from 'vitest';
import {
  encodeSealedLine,
  lineHash,
  lineRecord,
  SEALED_CONTENT_TYPE,
  sealedEventsOf,
} from './framing.js';

const HASH = 'ab'.repeat(32);

function parse(text: string): ReturnType<typeof sealedEventsOf> {
  return sealedEventsOf(Buffer.from(text, 'utf8'));
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

  it('reads lines back into the JSON form, skipping blank lines and a CR that ends a line', () => {
    const event = {
      record: '{"a":"\\t"}',
      hash: HASH,
      disclosures: { '/x': { salt: 's', value: 1 } },
    };
    const line = encodeSealedLine(event);
    expect(sealedEventsOf(line)).toEqual({ events: [event], details: [] });
    expect(parse(`{"v":2}\t${HASH}\t\r\n\n{"v":2}\t${HASH}\t`)).toEqual({
      events: [
        { record: '{"v":2}', hash: HASH },
        { record: '{"v":2}', hash: HASH },
      ],
      details: [],
    });
  });

  it('refuses malformed lines, naming the line and the field', () => {
    const bad = (text: string) => parse(text).details[0];
    expect(bad(`{"v":2}\t${HASH}`)).toMatchObject({ index: 0 });
    expect(bad(`{"v":2}\t${HASH.slice(2)}\t`)).toMatchObject({ index: 0 });
    expect(bad(`{"v":2}`)).toMatchObject({ index: 0 });
    expect(bad(`{"v":2}\t${HASH}\t\n{"v":2}\t${HASH}\t{"a":`)).toEqual({
      index: 1,
      path: '/disclosures',
      message: 'is not JSON',
    });
    expect(parse(`{"v":2}\t${HASH}\t{"a":`).events).toEqual([undefined]);
  });
});
