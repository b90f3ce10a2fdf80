import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey, toPositive } from './partitioner.js';

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');

describe('murmur2', () => {
  // org.apache.kafka.common.utils.UtilsTest#testMurmur2 (Java client).
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ])('gives the Java client value for %j', (key, expected) => {
    expect(murmur2(utf8(key))).toBe(expected);
  });

  // kafkajs src/producer/partitioners/defaultJava/murmur2.spec.js, generated with the Java code.
  it.each([
    ['0', 971027396],
    ['1', -1993445489],
    ['128', -326012175],
    ['2187', -1508407203],
    ['16384', -325739742],
    ['78125', -1654490814],
    ['279936', 1462227128],
    ['823543', -2014198330],
    ['2097152', 607668903],
    ['4782969', -1182699775],
    ['10000000', -1830336757],
    ['19487171', -1603849305],
    ['35831808', -857013643],
    ['62748517', -1167431028],
    ['105413504', -381294639],
    ['170859375', -1658323481],
    ['100:48069', 1009543857],
  ])('gives the kafkajs DefaultPartitioner value for %j', (key, expected) => {
    expect(murmur2(utf8(key))).toBe(expected);
  });

  it('hashes the UTF-8 bytes of keys outside ASCII, as kafkajs and StringSerializer do', () => {
    expect(murmur2(utf8('żółw 🐢'))).toBe(-1123119177);
    expect(murmur2(utf8(''))).toBe(275646681);
  });
});

describe('partitionForKey', () => {
  it('is toPositive(murmur2(key)) modulo the partition count', () => {
    expect(toPositive(-973932308)).toBe(1173551340);
    expect(partitionForKey('21', 12)).toBe(1173551340 % 12);
    expect(partitionForKey('foobar', 7)).toBe(1357151166 % 7);
    expect(partitionForKey('abc', 3)).toBe(479470107 % 3);
    expect(partitionForKey('żółw 🐢', 10)).toBe(1024364471 % 10);
  });

  it('keeps Integer.MIN_VALUE in range where Math.abs would not', () => {
    expect(toPositive(-2147483648)).toBe(0);
  });

  it('puts every key of a single-partition topic on partition 0', () => {
    expect(partitionForKey('anything', 1)).toBe(0);
  });

  it('rejects a partition count that is not a positive integer', () => {
    expect(() => partitionForKey('k', 0)).toThrow(RangeError);
    expect(() => partitionForKey('k', 1.5)).toThrow(RangeError);
  });
});
