import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AsnTable, AsnTableError, ipv6Words } from './asn-table.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-asn-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

// 1.0.0.0-1.0.0.255, 1.0.4.0-1.0.7.255 (gap between), 255.255.255.0-255.255.255.255 (last).
const V4 = [
  '16777216,16777471,13335,"Cloudflare, Inc."',
  '16778240,16779263,38803,Gtelecom Pty Ltd',
  '16779000,16779500,1,overlaps the previous range',
  '4294967040,4294967295,64512,"LLC ""QUOTED"""',
  '',
].join('\r\n');
// 2001::/32 (first), then 2001:db8::/64 written as 128-bit integers, then ffff::/16 to the end.
const big = (hex: string): string => BigInt(`0x${hex}`).toString();
const V6 = [
  `${big('20010000000000000000000000000000')},${big('20010000ffffffffffffffffffffffff')},6939,Hurricane Electric LLC`,
  `${big('20010db8000000000000000000000000')},${big('20010db80000ffffffffffffffffffff')},64496,Documentation Net`,
  `${big('ffff0000000000000000000000000000')},${big('ffffffffffffffffffffffffffffffff')},64511,Zürich Last`,
].join('\n');

describe('AsnTable', () => {
  it('answers IPv4 ranges at their edges and nothing in gaps', async () => {
    const table = await AsnTable.load({ ipv4: file('v4.csv', V4) });
    expect(table.size).toEqual({ ipv4: 4, ipv6: 0 });
    expect(table.lookup('0.255.255.255')).toBeUndefined();
    expect(table.lookup('1.0.0.0')).toEqual({ asn: 13335, org: 'Cloudflare, Inc.' });
    expect(table.lookup('1.0.0.255')?.asn).toBe(13335);
    expect(table.lookup('1.0.1.0')).toBeUndefined();
    expect(table.lookup('1.0.3.255')).toBeUndefined();
    expect(table.lookup('::ffff:1.0.4.0')?.asn).toBe(38803);
    expect(table.lookup('1.0.7.255')?.asn).toBe(38803);
    // The overlapping range keeps only the addresses after the previous one.
    expect(table.lookup('1.0.8.0')?.asn).toBe(1);
    expect(table.lookup('255.255.255.254')).toEqual({ asn: 64512, org: 'LLC "QUOTED"' });
    expect(table.lookup('255.255.255.255')?.asn).toBe(64512);
    expect(table.lookup('2001::1')).toBeUndefined();
    expect(table.lookup('not an address')).toBeUndefined();
  });

  it('answers IPv6 ranges at their edges, decodes UTF-8 names', async () => {
    const table = await AsnTable.load({ ipv6: file('v6.csv', V6) });
    expect(table.lookup('2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBeUndefined();
    expect(table.lookup('2001::')?.asn).toBe(6939);
    expect(table.lookup('2001:0:ffff:ffff:ffff:ffff:ffff:ffff')?.asn).toBe(6939);
    expect(table.lookup('2001:1::')).toBeUndefined();
    expect(table.lookup('2001:db8::1')?.asn).toBe(64496);
    expect(table.lookup('2001:db8:1::')).toBeUndefined();
    expect(table.lookup('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toEqual({
      asn: 64511,
      org: 'Zürich Last',
    });
    expect(table.lookup('1.2.3.4')).toBeUndefined();
  });

  it('reads IPv6 addresses with :: and a dotted tail', () => {
    expect(ipv6Words('::')).toEqual([0, 0, 0, 0]);
    expect(ipv6Words('2001:db8::1')).toEqual([0x20010db8, 0, 0, 1]);
    expect(ipv6Words('64:ff9b::1.2.3.4')).toEqual([0x0064ff9b, 0, 0, 0x01020304]);
    expect(ipv6Words('fe80::1%eth0')).toEqual([0xfe800000, 0, 0, 1]);
  });

  it('rejects malformed or unsorted files naming the line', async () => {
    await expect(AsnTable.load({ ipv4: file('bad.csv', '1,2,3,a\nx,2,3,b\n') })).rejects.toThrow(
      /bad\.csv:2: start is not a number/,
    );
    await expect(AsnTable.load({ ipv4: file('big.csv', '1,4294967296,3,a\n') })).rejects.toThrow(
      /end is out of range/,
    );
    await expect(
      AsnTable.load({ ipv4: file('order.csv', '10,20,1,a\n5,6,2,b\n') }),
    ).rejects.toThrow(AsnTableError);
  });
});
