import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import type { LookupAddress, LookupAllOptions, LookupOptions } from 'node:dns';

/**
 * The guard that keeps a tenant's webhook from reaching the operator's own network (issue 11:
 * "a tenant admin must not reach the store on 127.0.0.1:8123"). A webhook URL is checked when it
 * is configured and again when each delivery connects: the host is resolved, EVERY address it
 * resolves to is checked, and the connection goes to the address that was checked (a custom
 * `lookup` given to node's http client), so a name that resolves to a public address at
 * configuration time and to 127.0.0.1 later (DNS rebinding) is refused at connect time.
 *
 * Address classes come from the IANA special-purpose registries (RFC 6890, RFC 8190); node's
 * `net.BlockList` does the CIDR matching (no hand-written prefix arithmetic).
 */

export type AddressClass =
  'loopback' | 'private' | 'link-local' | 'shared' | 'unspecified' | 'multicast' | 'reserved';

/** [class, network, prefix, family] per special-purpose block refused by default. */
const BLOCKS: readonly (readonly [AddressClass, string, number, 'ipv4' | 'ipv6'])[] = [
  ['unspecified', '0.0.0.0', 8, 'ipv4'], // RFC 1122 "this network"
  ['private', '10.0.0.0', 8, 'ipv4'], // RFC 1918
  ['shared', '100.64.0.0', 10, 'ipv4'], // RFC 6598 carrier-grade NAT
  ['loopback', '127.0.0.0', 8, 'ipv4'], // RFC 1122
  ['link-local', '169.254.0.0', 16, 'ipv4'], // RFC 3927, incl. cloud metadata 169.254.169.254
  ['private', '172.16.0.0', 12, 'ipv4'], // RFC 1918
  ['reserved', '192.0.0.0', 24, 'ipv4'], // RFC 6890 IETF protocol assignments
  ['private', '192.168.0.0', 16, 'ipv4'], // RFC 1918
  ['reserved', '198.18.0.0', 15, 'ipv4'], // RFC 2544 benchmarking
  ['multicast', '224.0.0.0', 4, 'ipv4'], // RFC 5771
  ['reserved', '240.0.0.0', 4, 'ipv4'], // RFC 1112, incl. broadcast 255.255.255.255
  ['unspecified', '::', 128, 'ipv6'], // RFC 4291
  ['loopback', '::1', 128, 'ipv6'], // RFC 4291
  ['private', 'fc00::', 7, 'ipv6'], // RFC 4193 unique local addresses
  ['link-local', 'fe80::', 10, 'ipv6'], // RFC 4291
  ['multicast', 'ff00::', 8, 'ipv6'], // RFC 4291
];

const LISTS = new Map<AddressClass, BlockList>();
for (const [kind, net, prefix, family] of BLOCKS) {
  const list = LISTS.get(kind) ?? new BlockList();
  list.addSubnet(net, prefix, family);
  LISTS.set(kind, list);
}

/**
 * IPv6 forms that carry an IPv4 address a socket may end up reaching: IPv4-mapped
 * (::ffff:a.b.c.d, RFC 4291 §2.5.5.2), IPv4-compatible (::a.b.c.d, deprecated), NAT64
 * (64:ff9b::/96, RFC 6052). Returns the embedded IPv4 address, or undefined.
 */
export function embeddedIpv4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const groups = expandIpv6(address);
  if (!groups) return undefined;
  const zero = (from: number, to: number): boolean => groups.slice(from, to).every((g) => g === 0);
  const mapped = zero(0, 5) && groups[5] === 0xffff;
  const compatible = zero(0, 6) && (groups[6] !== 0 || (groups[7] ?? 0) > 1);
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && zero(2, 6);
  if (!mapped && !compatible && !nat64) return undefined;
  const hi = groups[6] ?? 0;
  const lo = groups[7] ?? 0;
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/** The eight 16-bit groups of an IPv6 address (with a trailing dotted IPv4 part, if any). */
function expandIpv6(address: string): number[] | undefined {
  let text = address.split('%')[0] ?? '';
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const [a, b, c, d] = dotted[1].split('.').map(Number) as [number, number, number, number];
    text =
      text.slice(0, -dotted[1].length) +
      `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] =>
    part === '' ? [] : part.split(':').map((g) => parseInt(g, 16));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const fill = 8 - left.length - right.length;
  if (fill < 0 || (tail === undefined && fill !== 0)) return undefined;
  return [...left, ...new Array<number>(fill).fill(0), ...right];
}

/** The special-purpose class of an address, or undefined for a public unicast address. */
export function addressClass(address: string): AddressClass | undefined {
  const family = isIP(address);
  if (family === 0) return 'reserved'; // not an address at all: never connect to it
  const v4 = family === 6 ? embeddedIpv4(address) : undefined;
  if (v4 !== undefined) return addressClass(v4);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const bare = address.split('%')[0] ?? address;
  for (const [kind, list] of LISTS) if (list.check(bare, type)) return kind;
  return undefined;
}

/** What the operator allows despite the classes above (config webhooks.allowAddresses). */
export interface AllowList {
  /** CIDRs (`127.0.0.0/8`, `fd00::/8`), single addresses, or host names (`hooks.internal`). */
  readonly entries: readonly string[];
}

export type Resolver = (host: string) => Promise<readonly LookupAddress[]>;

/** Resolves every address of a host name through the system resolver (as node's http would). */
export const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    );
  });

/** Why a URL is refused: which part, and why, in words a tenant admin can act on. */
export class UrlRefused extends Error {
  constructor(
    message: string,
    readonly reason: 'scheme' | 'syntax' | 'credentials' | 'address' | 'unresolved',
  ) {
    super(message);
    this.name = 'UrlRefused';
  }
}

export interface GuardOptions {
  readonly allow?: readonly string[];
  readonly resolver?: Resolver;
}

/**
 * Decides whether Vigil may connect to a webhook URL. Holds the operator's allow-list; knows
 * nothing of tenants.
 */
export class AddressGuard {
  private readonly allowNets = new BlockList();
  private readonly allowHosts = new Set<string>();
  private readonly resolver: Resolver;

  constructor(options: GuardOptions = {}) {
    this.resolver = options.resolver ?? systemResolver;
    for (const raw of options.allow ?? []) {
      const entry = raw.trim();
      const [net = '', prefixText] = entry.split('/');
      const family = isIP(net);
      if (family !== 0) {
        const type = family === 4 ? 'ipv4' : 'ipv6';
        const prefix = prefixText === undefined ? (family === 4 ? 32 : 128) : Number(prefixText);
        if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128))
          throw new Error(`webhooks.allowAddresses: "${entry}" has an invalid prefix length`);
        this.allowNets.addSubnet(net, prefix, type);
        // An allowed IPv4 network is allowed in its IPv4-mapped IPv6 form too.
        if (family === 4) this.allowNets.addSubnet(`::ffff:${net}`, 96 + prefix, 'ipv6');
      } else if (/^[a-z0-9.-]+$/i.test(entry) && prefixText === undefined) {
        this.allowHosts.add(entry.toLowerCase().replace(/\.$/, ''));
      } else {
        throw new Error(
          `webhooks.allowAddresses: "${entry}" is neither a CIDR, an address nor a host name`,
        );
      }
    }
  }

  /** Undefined when Vigil may connect to `address`, else the reason it may not. */
  refusal(address: string, host?: string): string | undefined {
    if (host !== undefined && this.allowHosts.has(host.toLowerCase().replace(/\.$/, '')))
      return undefined;
    const family = isIP(address);
    if (family !== 0) {
      const bare = address.split('%')[0] ?? address;
      if (this.allowNets.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return undefined;
      const v4 = embeddedIpv4(bare);
      if (v4 !== undefined && this.allowNets.check(v4, 'ipv4')) return undefined;
    }
    const kind = addressClass(address);
    return kind === undefined
      ? undefined
      : `${address} is a ${kind} address; webhooks may reach only public addresses unless the operator allows it (webhooks.allowAddresses)`;
  }

  /**
   * Parses and checks a URL: http or https only, no user:password, and every address its host
   * resolves to now is allowed. Throws UrlRefused.
   */
  async checkUrl(text: string): Promise<URL> {
    const url = parseUrl(text);
    const host = hostOf(url);
    if (isIP(host) !== 0) {
      const refused = this.refusal(host, host);
      if (refused) throw new UrlRefused(refused, 'address');
      return url;
    }
    await this.resolve(host);
    return url;
  }

  /** Every address of `host`, each checked; throws UrlRefused when any one is refused. */
  async resolve(host: string): Promise<readonly LookupAddress[]> {
    if (this.allowHosts.has(host.toLowerCase().replace(/\.$/, ''))) {
      return this.resolver(host).catch((error: unknown) => {
        throw new UrlRefused(`${host} does not resolve: ${(error as Error).message}`, 'unresolved');
      });
    }
    let addresses: readonly LookupAddress[];
    try {
      addresses = await this.resolver(host);
    } catch (error) {
      throw new UrlRefused(`${host} does not resolve: ${(error as Error).message}`, 'unresolved');
    }
    if (addresses.length === 0) throw new UrlRefused(`${host} has no address`, 'unresolved');
    // Every address: a name with one public and one private address must not be used, since
    // the client may pick either (and a later lookup may order them differently).
    for (const a of addresses) {
      const refused = this.refusal(a.address, host);
      if (refused) throw new UrlRefused(`${host} resolves to ${refused}`, 'address');
    }
    return addresses;
  }

  /**
   * A `lookup` for node's http/https `request`: resolves through this guard, so the socket
   * connects to an address that was checked in the same lookup (no second resolution between
   * the check and the connect).
   */
  lookup(): LookupFunction {
    return (hostname, options, callback) => {
      this.resolve(hostname).then(
        (addresses) => {
          const wanted = options.family === 4 || options.family === 6 ? options.family : 0;
          const usable = addresses.filter((a) => wanted === 0 || a.family === wanted);
          if (usable.length === 0) {
            callback(
              Object.assign(new Error(`${hostname} has no IPv${wanted} address`), {
                code: 'ENOTFOUND',
              }),
              '',
              0,
            );
            return;
          }
          if ((options as LookupAllOptions).all === true) {
            (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, [...usable]);
          } else {
            const first = usable[0] as LookupAddress;
            callback(null, first.address, first.family);
          }
        },
        (error: unknown) => callback(error as NodeJS.ErrnoException, '', 0),
      );
    };
  }
}

export type LookupFunction = (
  hostname: string,
  options: LookupOptions,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void,
) => void;

export function parseUrl(text: string): URL {
  if (!URL.canParse(text)) throw new UrlRefused(`"${text}" is not a URL`, 'syntax');
  // The WHATWG parser normalises host spellings (2130706433, 0x7f.1, [::ffff:7f00:1]) to one
  // canonical form, so the checks below see the address a socket would reach.
  const url = new URL(text);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UrlRefused(`only http and https URLs are allowed, not ${url.protocol}`, 'scheme');
  if (url.username !== '' || url.password !== '')
    throw new UrlRefused(
      'a URL must not carry a user name or password; authenticate with the signature',
      'credentials',
    );
  return url;
}

/** The host of a URL without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}
