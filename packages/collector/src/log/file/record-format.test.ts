import { describe, expect, it } from 'vitest';
import {
  MAX_RECORD_BYTES,
  RECORD_HEADER_BYTES,
  decodeRecord,
  encodeRecord,
  frameBytes,
  headerOffset,
  isIntact,
  recordBytes,
} from './record-format.js';

function encode(offset: number, timestamp: number, key: string, value: Buffer): Buffer {
  const keyBytes = Buffer.from(key, 'utf8');
  const target = Buffer.alloc(recordBytes(keyBytes.length, value.length));
  expect(encodeRecord(target, 0, offset, timestamp, keyBytes, value)).toBe(target.length);
  return target;
}

describe('record format', () => {
  it('lays a record out as documented', () => {
    const record = encode(5, 1_700_000_000_000, 'k', Buffer.from('v'));
    // length 28 | crc | magic 1 | attributes 0 | offset 5 | timestamp | key length 1 | 'k' | 'v'
    expect(record.toString('hex')).toBe(
      '0000001c' +
        '1ab0c9ec' +
        '01' +
        '00' +
        '0000000000000005' +
        '0000018bcfe56800' +
        '00000001' +
        '6b' +
        '76',
    );
    expect(RECORD_HEADER_BYTES).toBe(30);
  });

  it('decodes what it encodes, with a copied value', () => {
    const value = Buffer.from([0, 1, 2, 255]);
    const record = encode(2 ** 40 + 7, 2 ** 45, 'ключ/🙂', value);
    expect(frameBytes(record, 0)).toBe(record.length);
    expect(headerOffset(record, 0)).toBe(2 ** 40 + 7);
    expect(isIntact(record, 0, record.length)).toBe(true);
    const decoded = decodeRecord(record, 0, record.length);
    expect(decoded).toEqual({ offset: 2 ** 40 + 7, timestamp: 2 ** 45, key: 'ключ/🙂', value });
    record.fill(0);
    expect(decoded.value).toEqual(value);
  });

  it('encodes at a position inside a larger buffer', () => {
    const first = encode(0, 1, 'a', Buffer.from('first'));
    const target = Buffer.alloc(first.length + recordBytes(1, 6));
    const end = encodeRecord(target, first.length, 1, 2, Buffer.from('b'), Buffer.from('second'));
    expect(end).toBe(target.length);
    const decoded = decodeRecord(target, first.length, target.length - first.length);
    expect(decoded.key).toBe('b');
    expect(decoded.value.toString()).toBe('second');
  });

  it('notices a change to any byte the checksum covers', () => {
    const record = encode(9, 1_700_000_000_000, 'tenant/stream', Buffer.from('{"seq":1}'));
    for (let i = 4; i < record.length; i++) {
      const damaged = Buffer.from(record);
      damaged[i] = (damaged[i] ?? 0) ^ 0x01;
      expect(isIntact(damaged, 0, damaged.length), `byte ${i}`).toBe(false);
    }
  });

  it('refuses lengths no record can have', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(25, 0);
    expect(frameBytes(header, 0)).toBe(-1);
    header.writeUInt32BE(26, 0);
    expect(frameBytes(header, 0)).toBe(30);
    header.writeUInt32BE(MAX_RECORD_BYTES + 1, 0);
    expect(frameBytes(header, 0)).toBe(-1);
  });
});
