import { isIPv4 } from 'node:net';

/**
 * Writes small MaxMind DB files for tests, following the MaxMind DB File Format Specification
 * 2.0 (search tree of 24-bit records, 16-byte separator, data section, metadata after
 * "\xAB\xCD\xEFMaxMind.com"), so GeoIP2- and ASN-layout databases that cannot be shipped can
 * still be read through the real `maxmind` reader.
 */

export type MmdbValue = string | number | boolean | MmdbValue[] | { [key: string]: MmdbValue };

export interface MmdbNetwork {
  /** CIDR: `81.2.69.0/24` or `2a02:ec0::/29`. IPv4 networks go under ::/96. */
  readonly network: string;
  readonly data: { [key: string]: MmdbValue };
}

const METADATA_MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex');

function control(type: number, size: number): Buffer {
  const head: number[] = [];
  const extended = type > 7;
  const typeBits = (extended ? 0 : type) << 5;
  let sizeBits: number;
  const sizeBytes: number[] = [];
  if (size < 29) sizeBits = size;
  else if (size < 285) {
    sizeBits = 29;
    sizeBytes.push(size - 29);
  } else if (size < 65_821) {
    sizeBits = 30;
    const s = size - 285;
    sizeBytes.push(s >> 8, s & 0xff);
  } else {
    sizeBits = 31;
    const s = size - 65_821;
    sizeBytes.push((s >> 16) & 0xff, (s >> 8) & 0xff, s & 0xff);
  }
  head.push(typeBits | sizeBits);
  if (extended) head.push(type - 7);
  return Buffer.from([...head, ...sizeBytes]);
}

function unsigned(type: number, value: number | bigint): Buffer {
  let v = BigInt(value);
  const bytes: number[] = [];
  while (v > 0n) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return Buffer.concat([control(type, bytes.length), Buffer.from(bytes)]);
}

/** Encodes a value; integers become uint32, other numbers doubles. */
export function encodeValue(value: MmdbValue): Buffer {
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([control(2, bytes.length), bytes]);
  }
  if (typeof value === 'boolean') return control(14, value ? 1 : 0);
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value < 2 ** 32) return unsigned(6, value);
    const b = Buffer.alloc(8);
    b.writeDoubleBE(value);
    return Buffer.concat([control(3, 8), b]);
  }
  if (Array.isArray(value)) {
    return Buffer.concat([control(11, value.length), ...value.map(encodeValue)]);
  }
  const entries = Object.entries(value);
  return Buffer.concat([
    control(7, entries.length),
    ...entries.flatMap(([k, v]) => [encodeValue(k), encodeValue(v)]),
  ]);
}

function bitsOf(network: string): { bits: number[]; length: number } {
  const [address = '', prefix = ''] = network.split('/');
  let bytes: number[];
  let offset = 0;
  if (isIPv4(address)) {
    bytes = [...new Array<number>(12).fill(0), ...address.split('.').map(Number)];
    offset = 96;
  } else {
    const [head = '', tail = ''] = address.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
    bytes = groups.flatMap((g) => {
      const n = parseInt(g, 16);
      return [n >> 8, n & 0xff];
    });
  }
  const bits = bytes.flatMap((b) => [7, 6, 5, 4, 3, 2, 1, 0].map((i) => (b >> i) & 1));
  return { bits, length: offset + Number(prefix) };
}

/** An IPv6 database (IPv4 under ::/96, as MaxMind's City and ASN files are). */
export function writeMmdb(options: {
  databaseType: string;
  networks: readonly MmdbNetwork[];
}): Buffer {
  // Tree: node i has two children; -1 = empty, -(2 + k) = data record k, >= 0 = node.
  const nodes: [number, number][] = [[-1, -1]];
  const data: Buffer[] = [];
  const offsets: number[] = [];
  let dataSize = 0;
  for (const { network, data: record } of options.networks) {
    const encoded = encodeValue(record);
    offsets.push(dataSize);
    data.push(encoded);
    dataSize += encoded.length;
    const { bits, length } = bitsOf(network);
    let node = 0;
    for (let i = 0; i < length - 1; i++) {
      const bit = bits[i] as 0 | 1;
      const current = nodes[node] as [number, number];
      if (current[bit] < 0) {
        nodes.push([-1, -1]);
        current[bit] = nodes.length - 1;
      }
      node = current[bit];
    }
    (nodes[node] as [number, number])[bits[length - 1] as 0 | 1] = -(2 + offsets.length - 1);
  }
  const nodeCount = nodes.length;
  const recordValue = (v: number): number => {
    if (v >= 0) return v;
    if (v === -1) return nodeCount;
    return nodeCount + 16 + (offsets[-v - 2] as number);
  };
  const tree = Buffer.alloc(nodeCount * 6);
  nodes.forEach(([left, right], i) => {
    tree.writeUIntBE(recordValue(left), i * 6, 3);
    tree.writeUIntBE(recordValue(right), i * 6 + 3, 3);
  });
  const metadata = Buffer.concat([
    control(7, 9),
    encodeValue('node_count'),
    unsigned(6, nodeCount),
    encodeValue('record_size'),
    unsigned(5, 24),
    encodeValue('ip_version'),
    unsigned(5, 6),
    encodeValue('database_type'),
    encodeValue(options.databaseType),
    encodeValue('languages'),
    encodeValue(['en']),
    encodeValue('binary_format_major_version'),
    unsigned(5, 2),
    encodeValue('binary_format_minor_version'),
    unsigned(5, 0),
    encodeValue('build_epoch'),
    unsigned(9, Math.floor(Date.now() / 1000)),
    encodeValue('description'),
    encodeValue({ en: 'Vigil test database' }),
  ]);
  return Buffer.concat([tree, Buffer.alloc(16), ...data, METADATA_MARKER, metadata]);
}
