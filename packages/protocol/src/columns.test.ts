import { describe, expect, it } from 'vitest';
import { columnDigestHex, columnDigestInput, ipv6Bytes } from './columns.js';

const record = {
  id: '0193a4b2-6c1e-7000-8000-000000000001',
  time: '2026-10-01T00:00:01.000Z',
  stream: 'app/1',
  seq: 3,
  prev: '0'.repeat(64),
  action: 'user.login',
  category: 'authentication',
  outcome: 'success',
  actor: { type: 'user', id: 'c'.repeat(64), email: 'd'.repeat(64) },
  target: { type: 'document', id: 'doc-1' },
  context: { ip: '203.0.113.9', requestId: 'r-1' },
  personal: ['/actor/email', '/actor/id'],
  v: 2,
};

describe('ipv6Bytes (the ip column of the column digest, PROTOCOL.md §13.2.1)', () => {
  it.each([
    ['198.51.100.7', '00000000000000000000ffffc6336407'],
    ['::ffff:198.51.100.7', '00000000000000000000ffffc6336407'],
    ['fe80::1%eth0', 'fe800000000000000000000000000001'],
    ['FE80::1:2', 'fe800000000000000000000000010002'],
    ['::', '00000000000000000000000000000000'],
    ['2001:db8::', '20010db8000000000000000000000000'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['::1', '00000000000000000000000000000001'],
  ])('%s', (text, hex) => {
    expect(ipv6Bytes(text).toString('hex')).toBe(hex);
  });

  it('refuses what is not an address', () => {
    expect(() => ipv6Bytes('not-an-ip')).toThrow(TypeError);
  });
});

describe('the column digest', () => {
  it('marks personal fields and binds their commitments, not their values', () => {
    const input = columnDigestInput(record).toString('latin1');
    expect(input.startsWith('vigil.columns.v2\u0000')).toBe(true);
    // The actor id is personal: not in the digest as a value, but its commitment is.
    expect(input).toContain('c'.repeat(64));
    expect(input).toContain('/actor/id');
    // Every change of a bound field changes the digest.
    const base = columnDigestHex(record);
    const variants = [
      { ...record, action: 'user.logout' },
      { ...record, seq: 4 },
      { ...record, context: { ...record.context, ip: '203.0.113.10' } },
      { ...record, context: { requestId: 'r-1' } },
      { ...record, actor: { ...record.actor, id: 'e'.repeat(64) } },
      { ...record, personal: ['/actor/email'] },
      { ...record, target: { type: 'document', id: 'doc-2' } },
      { ...record, corrects: { event: record.id, hash: 'f'.repeat(64) } },
    ];
    for (const v of variants) expect(columnDigestHex(v)).not.toBe(base);
    // Members outside the columns (metadata, unknown members) are not bound here; the event
    // hash binds them.
    expect(columnDigestHex({ ...record, metadata: { x: 1 }, x_new: true })).toBe(base);
  });

  it('keeps the empty string apart from a personal field and an absent address', () => {
    const cleared = { ...record, personal: ['/actor/email'], actor: { ...record.actor, id: '' } };
    const withIp = columnDigestInput(record).length;
    expect(columnDigestInput({ ...record, context: { requestId: 'r-1' } }).length).toBe(
      withIp - 16,
    );
    expect(columnDigestHex(cleared)).not.toBe(columnDigestHex(record));
  });

  it('refuses a record that is not valid where it is digested', () => {
    expect(() => columnDigestInput({ ...record, seq: -1 })).toThrow(TypeError);
    expect(() => columnDigestInput({ ...record, action: 5 })).toThrow(TypeError);
    expect(() => columnDigestInput({ ...record, personal: ['/metadata/x'] })).toThrow(
      /does not hold a commitment/,
    );
  });
});
