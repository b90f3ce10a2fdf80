import { describe, expect, it } from 'vitest';
import {
  encoderOf,
  ipv6Bytes,
  RowBinaryCodec,
  RowBinaryError,
  timeMs,
  Writer,
} from './row-binary.js';

function bytesOf(type: string, value: unknown): Buffer {
  const w = new Writer(16);
  encoderOf(type)(w, value);
  return Buffer.concat(w.chunks());
}

describe('RowBinary encoding', () => {
  it('writes a string as its LEB128 byte length and its UTF-8 bytes, at every length', () => {
    expect(bytesOf('String', '')).toEqual(Buffer.from([0]));
    expect(bytesOf('String', 'é')).toEqual(Buffer.from([2, 0xc3, 0xa9]));
    // 42 three-byte characters: 126 bytes, the most the one-byte length fast path takes.
    const wide = '€'.repeat(42);
    expect(bytesOf('String', wide).subarray(0, 1)).toEqual(Buffer.from([126]));
    // 43 of them: 129 bytes, a two-byte length.
    expect(bytesOf('String', wide + '€').subarray(0, 2)).toEqual(Buffer.from([0x81, 0x01]));
    const long = 'a'.repeat(20_000);
    const out = bytesOf('String', long);
    expect(out.subarray(0, 3)).toEqual(Buffer.from([0xa0, 0x9c, 0x01]));
    expect(out.length).toBe(3 + 20_000);
    // Bytes go in as they are.
    expect(bytesOf('String', Buffer.from([0xff, 0, 0x0a]))).toEqual(
      Buffer.from([3, 0xff, 0, 0x0a]),
    );
  });

  it('writes a UUID as its two 64-bit halves, each little-endian', () => {
    expect(bytesOf('UUID', '00112233-4455-6677-8899-aabbccddeeff').toString('hex')).toBe(
      '7766554433221100ffeeddccbbaa9988',
    );
  });

  it('writes 64-bit integers, times and addresses as the engine reads them', () => {
    expect(bytesOf('UInt64', 2 ** 53 - 1).toString('hex')).toBe('ffffffffffff1f00');
    expect(bytesOf('Int64', -2).toString('hex')).toBe('feffffffffffffff');
    expect(bytesOf("DateTime64(3, 'UTC')", '1970-01-01 00:00:01.5').toString('hex')).toBe(
      'dc05000000000000',
    );
    expect(bytesOf("DateTime('UTC')", 258).toString('hex')).toBe('02010000');
    expect(bytesOf('IPv4', '1.2.3.4').toString('hex')).toBe('04030201');
    expect(bytesOf('Nullable(IPv6)', null)).toEqual(Buffer.from([1]));
    expect(bytesOf('Nullable(IPv6)', '::ffff:1.2.3.4').toString('hex')).toBe(
      '0000000000000000000000ffff01020304',
    );
  });

  it('parses the store time forms and refuses what is no time', () => {
    expect(timeMs('2026-11-23 10:50:48.123')).toBe(Date.UTC(2026, 10, 23, 10, 50, 48, 123));
    expect(timeMs('2026-11-23T10:50:48.123456Z')).toBe(Date.UTC(2026, 10, 23, 10, 50, 48, 123));
    expect(timeMs('2026-11-23 10:50:48')).toBe(Date.UTC(2026, 10, 23, 10, 50, 48));
    for (const bad of [
      '2026-02-30 00:00:00',
      '2026-11-23 24:00:00',
      '2026-11-23',
      'x',
      '2026-11-23 10:50:48.1x',
    ])
      expect(() => timeMs(bad), bad).toThrow(/is not a time/);
  });

  it('reads IPv6 text as RFC 4291 has it and refuses what is no address', () => {
    const hex = (t: string): string | undefined => {
      const b = ipv6Bytes(t);
      return b && Buffer.from(b).toString('hex');
    };
    expect(hex('::')).toBe('0'.repeat(32));
    expect(hex('::1')).toBe('0'.repeat(31) + '1');
    expect(hex('2001:db8::8a2e:370:7334')).toBe('20010db80000000000008a2e03707334');
    expect(hex('1:2:3:4:5:6:7:8')).toBe('00010002000300040005000600070008');
    expect(hex('1::')).toBe('0001' + '0'.repeat(28));
    expect(hex('::ffff:10.0.0.1')).toBe('00000000000000000000ffff0a000001');
    expect(hex('10.0.0.1')).toBe('00000000000000000000ffff0a000001');
    expect(hex('::ffff:0.0.0.0')).toBe('00000000000000000000ffff00000000');
    for (const bad of [
      '',
      ':::',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '12345::',
      '::g',
      '1.2.3',
      '1.2.3.256',
      '01.2.3.4',
      'fe80::1%eth0',
      '1:2:3:4:5:6:7::8',
    ])
      expect(hex(bad), bad).toBeUndefined();
  });

  it('marks a value left out as the column default and names the column of a value it refuses', () => {
    const codec = new RowBinaryCodec({ a: 'UInt8', b: 'String' });
    expect(Buffer.concat(codec.encode([{ a: 5 }]).chunks())).toEqual(Buffer.from([0, 5, 1]));
    const refused = (row: object): unknown => {
      try {
        new RowBinaryCodec({
          id: 'UUID',
          n: 'UInt32',
          ip: 'Nullable(IPv6)',
          h: 'FixedString(4)',
        }).encode([
          { id: '00112233-4455-6677-8899-aabbccddeeff', n: 1, ip: null, h: 'abcd', ...row },
        ]);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    for (const [row, column, message] of [
      [{ id: 'not-a-uuid' }, 'id', /not a UUID/],
      [{ n: -1 }, 'n', /not an integer in 0\.\.4294967295/],
      [{ n: 2 ** 32 }, 'n', /not an integer/],
      [{ n: '7' }, 'n', /must be an integer/],
      [{ ip: 'fe80::1%eth0' }, 'ip', /not an IP address/],
      [{ h: 'abcde' }, 'h', /more than FixedString\(4\)/],
    ] as const) {
      const error = refused(row);
      expect(error).toBeInstanceOf(RowBinaryError);
      // A RangeError: what the sink treats as a value the store refuses.
      expect(error).toBeInstanceOf(RangeError);
      expect((error as RowBinaryError).column).toBe(column);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('refuses a type it does not know when compiled, not when it meets a row', () => {
    expect(() => new RowBinaryCodec({ a: 'Decimal(10, 2)' })).toThrow(/unsupported type Decimal/);
  });

  it('keeps the bytes of rows that span several chunks in order', () => {
    const codec = new RowBinaryCodec({ s: 'String' });
    const rows = Array.from({ length: 300 }, (_, i) => ({ s: String(i).repeat(10) }));
    const w = codec.encode(rows, new Writer(64));
    expect(w.chunks().length).toBeGreaterThan(10);
    const all = Buffer.concat(w.chunks());
    expect(all.length).toBe(w.length);
    let at = 0;
    for (const row of rows) {
      expect(all[at]).toBe(0);
      const n = all[at + 1] as number;
      expect(all.subarray(at + 2, at + 2 + n).toString()).toBe(row.s);
      at += 2 + n;
    }
    expect(at).toBe(all.length);
  });
});
