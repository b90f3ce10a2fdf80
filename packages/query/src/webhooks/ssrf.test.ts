import { describe, expect, it } from 'vitest';
import { AddressGuard, UrlRefused, addressClass, embeddedIpv4, type Resolver } from './ssrf.js';

const resolveTo =
  (...addresses: string[]): Resolver =>
  () =>
    Promise.resolve(
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );

describe('address classes', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fc00::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['100.64.0.1', 'shared'],
    ['100.127.255.254', 'shared'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:10.0.0.1', 'private'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::c0a8:101', 'private'],
  ])('%s is %s', (address, kind) => {
    expect(addressClass(address)).toBe(kind);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
  ])('%s is public', (address) => {
    expect(addressClass(address)).toBeUndefined();
  });

  it('finds the IPv4 address inside IPv4-mapped, -compatible and NAT64 forms only', () => {
    expect(embeddedIpv4('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(embeddedIpv4('64:ff9b::102:304')).toBe('1.2.3.4');
    expect(embeddedIpv4('2001:db8::1')).toBeUndefined();
    expect(embeddedIpv4('::1')).toBeUndefined();
  });
});

describe('AddressGuard.checkUrl', () => {
  const guard = new AddressGuard({ resolver: resolveTo('93.184.216.34') });

  it.each([
    'http://127.0.0.1:8123/',
    'http://2130706433/', // 127.0.0.1 in decimal: the URL parser normalises it
    'http://0x7f.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]:8123/',
    'http://10.0.0.5/',
    'http://192.168.0.10/',
    'http://172.20.1.1/',
    'http://[fd00::1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]/',
    'http://100.64.1.1/',
    'http://0.0.0.0/',
    'http://224.0.0.1/',
  ])('refuses %s', async (url) => {
    await expect(guard.checkUrl(url)).rejects.toMatchObject({ reason: 'address' });
  });

  it('refuses other schemes, credentials in the URL and things that are not URLs', async () => {
    await expect(guard.checkUrl('ftp://example.com/')).rejects.toMatchObject({ reason: 'scheme' });
    await expect(guard.checkUrl('file:///etc/passwd')).rejects.toMatchObject({ reason: 'scheme' });
    await expect(guard.checkUrl('https://u:p@example.com/')).rejects.toMatchObject({
      reason: 'credentials',
    });
    await expect(guard.checkUrl('not a url')).rejects.toMatchObject({ reason: 'syntax' });
  });

  it('checks every address a name resolves to', async () => {
    const mixed = new AddressGuard({ resolver: resolveTo('93.184.216.34', '10.0.0.1') });
    await expect(mixed.checkUrl('https://hooks.example.com/x')).rejects.toThrow(
      /resolves to 10\.0\.0\.1 is a private address/,
    );
    await expect(guard.checkUrl('https://hooks.example.com/x')).resolves.toBeInstanceOf(URL);
  });

  it('refuses a name that does not resolve', async () => {
    const failing = new AddressGuard({
      resolver: () => Promise.reject(new Error('getaddrinfo ENOTFOUND')),
    });
    await expect(failing.checkUrl('https://nowhere.invalid/')).rejects.toBeInstanceOf(UrlRefused);
  });

  it('allows what the operator allow-lists: CIDRs (also IPv4-mapped) and host names', async () => {
    const allowing = new AddressGuard({
      allow: ['127.0.0.0/8', 'fd00::/8', 'hooks.internal'],
      resolver: resolveTo('10.9.9.9'),
    });
    await expect(allowing.checkUrl('http://127.0.0.1:9000/')).resolves.toBeInstanceOf(URL);
    await expect(allowing.checkUrl('http://[::ffff:127.0.0.1]/')).resolves.toBeInstanceOf(URL);
    await expect(allowing.checkUrl('http://[fd00::5]/')).resolves.toBeInstanceOf(URL);
    await expect(allowing.checkUrl('http://hooks.internal/')).resolves.toBeInstanceOf(URL);
    // Still refused: 10.0.0.0/8 is not allowed, and a name other than the allowed one.
    await expect(allowing.checkUrl('http://10.0.0.1/')).rejects.toBeInstanceOf(UrlRefused);
    await expect(allowing.checkUrl('http://other.internal/')).rejects.toBeInstanceOf(UrlRefused);
  });

  it('refuses malformed allow-list entries at start', () => {
    expect(() => new AddressGuard({ allow: ['127.0.0.1/33'] })).toThrow(/prefix/);
    expect(() => new AddressGuard({ allow: ['http://x/'] })).toThrow(/neither/);
  });
});
