import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isIPv4, isIPv6 } from 'node:net';
import { dirname, join } from 'node:path';

/**
 * AS number and organisation of an IP address from range tables in CSV: the bundled
 * RouteViews + DB-IP IP-to-ASN data (npm `@ip-location-db/asn`, CC BY 4.0), files
 * `asn-ipv4-num.csv` and `asn-ipv6-num.csv`, one range a line: `start,end,asn,org` with the
 * addresses as decimal integers and the organisation quoted CSV-style when it holds a comma or
 * a quote.
 *
 * Written here rather than read with `maxmind` because that package ships no mmdb file (only
 * CSV), and a sorted, non-overlapping range table needs no library: ranges in typed arrays
 * (IPv4 starts and ends as Uint32, IPv6 as four 32-bit words each, so neither loading nor a
 * lookup makes a BigInt), a binary search for the
 * last start at or below the address, and organisation names interned (about 80 000 names for
 * 500 000 ranges). Measured on the bundled data: see README (GeoIP).
 */

export interface AsnRecord {
  readonly asn: number;
  readonly org: string;
}

/** A CSV line that is not a range: names the file and line. */
export class AsnTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AsnTableError';
  }
}

/** Interned organisation names: index into `names`. */
class Names {
  readonly names: string[] = [];
  private readonly index = new Map<string, number>();

  intern(name: string): number {
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.names.length;
      this.names.push(name);
      this.index.set(name, i);
    }
    return i;
  }
}

export class AsnTable {
  private constructor(
    private readonly v4: Ranges,
    private readonly v6: Ranges,
    private readonly names: readonly string[],
  ) {}

  /** Ranges held (IPv4, IPv6). */
  get size(): { ipv4: number; ipv6: number } {
    return { ipv4: this.v4.length, ipv6: this.v6.length };
  }

  /** Reads the CSV files (either may be left out). */
  static async load(paths: { ipv4?: string; ipv6?: string }): Promise<AsnTable> {
    const names = new Names();
    const v4 =
      paths.ipv4 === undefined
        ? emptyRanges(1)
        : parse(await readFile(paths.ipv4), paths.ipv4, 1, names);
    const v6 =
      paths.ipv6 === undefined
        ? emptyRanges(4)
        : parse(await readFile(paths.ipv6), paths.ipv6, 4, names);
    return new AsnTable(v4, v6, names.names.map(fixEncoding));
  }

  /**
   * The AS of an address (IPv4, IPv6, or IPv4-mapped IPv6 `::ffff:a.b.c.d`), or undefined when
   * no range holds it or the text is not an address.
   */
  lookup(address: string): AsnRecord | undefined {
    const mapped = address.startsWith('::ffff:') ? address.slice(7) : undefined;
    if (mapped !== undefined && isIPv4(mapped)) return this.find(this.v4, [ipv4ToNumber(mapped)]);
    if (isIPv4(address)) return this.find(this.v4, [ipv4ToNumber(address)]);
    if (isIPv6(address)) return this.find(this.v6, ipv6Words(address));
    return undefined;
  }

  private find(r: Ranges, ip: readonly number[]): AsnRecord | undefined {
    let lo = 0;
    let hi = r.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compare(r.starts, mid * r.words, ip) <= 0) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0 || compare(r.ends, found * r.words, ip) < 0) return undefined;
    return { asn: r.asns[found]!, org: this.names[r.orgs[found]!]! };
  }
}

/** One family's ranges: `words` 32-bit words an address, most significant first. */
interface Ranges {
  readonly words: number;
  readonly length: number;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly asns: Uint32Array;
  readonly orgs: Uint32Array;
}

function emptyRanges(words: number): Ranges {
  const none = new Uint32Array(0);
  return { words, length: 0, starts: none, ends: none, asns: none, orgs: none };
}

/** The address at `at` in `array` compared with `ip` (same number of words). */
function compare(array: Uint32Array, at: number, ip: readonly number[]): number {
  for (let i = 0; i < ip.length; i++) {
    const d = array[at + i]! - ip[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

const require = createRequire(import.meta.url);

/** The CSV files of the bundled `@ip-location-db/asn` (throws when it is not installed). */
export function bundledAsnCsvs(): { ipv4: string; ipv6: string } {
  const dir = dirname(require.resolve('@ip-location-db/asn/package.json'));
  return { ipv4: join(dir, 'asn-ipv4-num.csv'), ipv6: join(dir, 'asn-ipv6-num.csv') };
}

let bundled: Promise<AsnTable> | undefined;

/**
 * The bundled table, read once per process on first use (the sink and the detector of a process
 * share it). A failed read is not kept, so a later call tries again.
 */
export function bundledAsnTable(): Promise<AsnTable> {
  if (bundled === undefined) {
    const loading = AsnTable.load(bundledAsnCsvs());
    loading.catch(() => {
      if (bundled === loading) bundled = undefined;
    });
    bundled = loading;
  }
  return bundled;
}

// ---- parsing ----

const COMMA = 44;
const NL = 10;
const CR = 13;
const QUOTE = 34;
const TWO32 = 2 ** 32;

/**
 * Parses the bytes of a CSV file: numbers straight from the bytes into 32-bit words (no string
 * or BigInt a line), the organisation read as latin1 and interned; see fixEncoding.
 */
function parse(buf: Buffer, file: string, words: number, names: Names): Ranges {
  let capacity = 1024;
  let starts: Uint32Array = new Uint32Array(capacity * words);
  let ends: Uint32Array = new Uint32Array(capacity * words);
  let asns: Uint32Array = new Uint32Array(capacity);
  let orgs: Uint32Array = new Uint32Array(capacity);
  let n = 0;
  const start = new Array<number>(words).fill(0);
  const end = new Array<number>(words).fill(0);
  const previousStart = new Array<number>(words).fill(0);
  const previousEnd = new Array<number>(words).fill(0);
  let havePrevious = false;
  const asn = [0];
  let pos = 0;
  let line = 0;
  const fail = (message: string): never => {
    throw new AsnTableError(`${file}:${line}: ${message}`);
  };
  /** Reads decimal digits up to a comma into `out`; returns the position after the comma. */
  const number = (from: number, out: number[], what: string): number => {
    out.fill(0);
    let i = from;
    for (; i < buf.length && buf[i] !== COMMA; i++) {
      const digit = buf[i]! - 48;
      if (digit < 0 || digit > 9) fail(`${what} is not a number`);
      if (out.length === 1) {
        out[0] = out[0]! * 10 + digit;
        if (out[0] >= TWO32) fail(`${what} is out of range`);
        continue;
      }
      let carry = digit;
      for (let w = out.length - 1; w >= 0; w--) {
        const v = out[w]! * 10 + carry;
        out[w] = v % TWO32;
        carry = Math.floor(v / TWO32);
      }
      if (carry !== 0) fail(`${what} is out of range`);
    }
    if (i === from || i === buf.length) fail('expected start,end,asn,org');
    return i + 1;
  };
  while (pos < buf.length) {
    let eol = buf.indexOf(NL, pos);
    if (eol < 0) eol = buf.length;
    line++;
    const stop = eol > pos && buf[eol - 1] === CR ? eol - 1 : eol;
    if (stop > pos) {
      let p = number(pos, start, 'start');
      p = number(p, end, 'end');
      p = number(p, asn, 'asn');
      let org = buf.toString('latin1', p, stop);
      if (org.charCodeAt(0) === QUOTE) {
        if (org.length < 2 || !org.endsWith('"')) fail('unterminated quoted organisation');
        org = org.slice(1, -1).replaceAll('""', '"');
      }
      if (lessThan(end, start)) fail('end is before start');
      // The binary search needs sorted ranges that do not overlap. The data is sorted by
      // start; a range reaching into the next (one line in the 2026 IPv4 file) keeps its
      // addresses and the next begins after it.
      if (havePrevious && lessThan(start, previousStart)) fail('ranges out of order');
      copy(start, previousStart);
      let keep = true;
      if (havePrevious && !lessThan(previousEnd, start)) {
        if (!lessThan(previousEnd, end)) keep = false;
        else {
          copy(previousEnd, start);
          increment(start);
        }
      }
      if (keep) {
        if (n === capacity) {
          capacity *= 2;
          starts = grow(starts, capacity * words);
          ends = grow(ends, capacity * words);
          asns = grow(asns, capacity);
          orgs = grow(orgs, capacity);
        }
        starts.set(start, n * words);
        ends.set(end, n * words);
        asns[n] = asn[0]!;
        orgs[n] = names.intern(org);
        n++;
        copy(end, previousEnd);
        havePrevious = true;
      }
    }
    pos = eol + 1;
  }
  return {
    words,
    length: n,
    starts: starts.slice(0, n * words),
    ends: ends.slice(0, n * words),
    asns: asns.slice(0, n),
    orgs: orgs.slice(0, n),
  };
}

function lessThan(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

function copy(from: readonly number[], to: number[]): void {
  for (let i = 0; i < from.length; i++) to[i] = from[i]!;
}

function increment(words: number[]): void {
  for (let i = words.length - 1; i >= 0; i--) {
    words[i] = (words[i]! + 1) % TWO32;
    if (words[i] !== 0) return;
  }
}

function grow(array: Uint32Array, size: number): Uint32Array<ArrayBuffer> {
  const next = new Uint32Array(size);
  next.set(array);
  return next;
}

/**
 * The files are UTF-8; names are sliced as latin1 (one byte a character, cheap) and each
 * distinct name is decoded once here.
 */
function fixEncoding(name: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(name) ? Buffer.from(name, 'latin1').toString('utf8') : name;
}

// ---- addresses ----

export function ipv4ToNumber(ip: string): number {
  const parts = ip.split('.');
  return (
    ((Number(parts[0]) << 24) >>> 0) +
    (Number(parts[1]) << 16) +
    (Number(parts[2]) << 8) +
    Number(parts[3])
  );
}

/** A valid IPv6 address (isIPv6) as four 32-bit words; a trailing dotted IPv4 is understood. */
export function ipv6Words(ip: string): number[] {
  const zone = ip.indexOf('%');
  let text = zone < 0 ? ip : ip.slice(0, zone);
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    // `::ffff:1.2.3.4` is `::ffff:102:304`.
    const v4 = ipv4ToNumber(tail);
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  const groups = (part: string | undefined): number[] =>
    part === undefined || part === '' ? [] : part.split(':').map((g) => parseInt(g, 16));
  const head = groups(halves[0]);
  const rest = groups(halves[1]);
  const zeros = halves.length > 1 ? 8 - head.length - rest.length : 0;
  const all = [...head, ...new Array<number>(zeros).fill(0), ...rest];
  const out: number[] = [];
  for (let i = 0; i < 8; i += 2) out.push(all[i]! * 0x10000 + all[i + 1]!);
  return out;
}
