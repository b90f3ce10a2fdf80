/**
 * Rows in ClickHouse's `RowBinaryWithDefaults` input format, encoded from JavaScript rows by a
 * codec compiled once from the table's column types.
 *
 * Why binary: the sink inserts tens of thousands of rows per second, and JSONEachRow costs a
 * JSON.stringify of every row on the sink's thread and a JSON parse of every value in the engine;
 * the record column alone is a JSON text that JSONEachRow escapes and the engine unescapes. In
 * RowBinary a string is its length and its bytes, so the record bytes go into the row as they
 * are (a Buffer is copied, never re-encoded). Why our own encoder: `@clickhouse/client` inserts
 * JSON, CSV/TSV and Parquet only (its `SupportedRawFormats`), and no maintained JavaScript library
 * writes RowBinary.
 *
 * The format (ClickHouse docs, "Formats: RowBinary", "RowBinaryWithDefaults"): rows one after
 * another, each column in the order the INSERT names them; before each value one byte, 1 = use
 * the column's DEFAULT (the JavaScript value is `undefined`: a column the row leaves out, as in
 * JSONEachRow), 0 = the value follows:
 * - String, LowCardinality(String): length as unsigned LEB128, then the bytes;
 * - FixedString(N): exactly N bytes;
 * - (U)Int8/16/32/64, Float32/64, Bool: little-endian;
 * - DateTime: UInt32 seconds; DateTime64(P): Int64 ticks of 10^-P s;
 * - UUID: the two 64-bit halves, each little-endian (high half first);
 * - IPv4: UInt32 little-endian; IPv6: the 16 address bytes in network order;
 * - Nullable(T): one byte, 1 = NULL, else 0 and T;
 * - Array(T): length as LEB128, then the elements; Map(K, V): count, then key, value pairs.
 *
 * Values the type cannot hold (a bad UUID, a number out of range, text that is no address) throw
 * a RowBinaryError, a RangeError: what the sink treats as a value the store refuses.
 */

export class RowBinaryError extends RangeError {
  constructor(
    readonly column: string,
    message: string,
  ) {
    super(`column ${column}: ${message}`);
    this.name = 'RowBinaryError';
  }
}

/** A value that writes itself at the writer's position; throws with a message on a bad value. */
type Encode = (w: Writer, value: unknown) => void;

/** Column name and its ClickHouse type, as in the table (`LowCardinality(String)`, `UUID` …). */
export type ColumnTypes = Readonly<Record<string, string>>;

/** A growable byte buffer; `chunks` are handed to the store without being joined. */
export class Writer {
  buf: Buffer;
  pos = 0;
  private readonly done: Buffer[] = [];
  private doneBytes = 0;

  constructor(private readonly chunkBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** Room for `n` more bytes at `pos`. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    if (this.pos > 0) {
      this.done.push(this.buf.subarray(0, this.pos));
      this.doneBytes += this.pos;
    }
    this.buf = Buffer.allocUnsafe(Math.max(this.chunkBytes, n));
    this.pos = 0;
  }

  /** Everything written, as chunks to write in order. */
  chunks(): Buffer[] {
    return this.pos > 0 ? [...this.done, this.buf.subarray(0, this.pos)] : [...this.done];
  }

  get length(): number {
    return this.doneBytes + this.pos;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  varint(n: number): void {
    this.ensure(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A String value: LEB128 byte length, then the UTF-8 bytes. */
  string(s: string): void {
    const len = s.length;
    if (len < 128) {
      // Short ASCII text byte by byte: cheaper than a call into the native UTF-8 writer, and
      // most values (ids, names, addresses, empty columns) are short and ASCII.
      this.ensure(1 + len * 3);
      const buf = this.buf;
      const start = this.pos;
      let p = start + 1;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
      if (i === len) {
        buf[start] = len;
        this.pos = p;
        return;
      }
      // Up to 42 UTF-16 units take at most 126 bytes in UTF-8, so the length is one byte:
      // write the text after it and fill it in after, without measuring the text first.
      if (len <= 42) {
        const n = buf.write(s, start + 1, 'utf8');
        buf[start] = n;
        this.pos = start + 1 + n;
        return;
      }
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
}

function fail(message: string): never {
  throw new Error(message);
}

const HEX: Int8Array = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i;
    t[97 + i] = 10 + i;
  }
  return t;
})();

function hexAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  const v = c < 128 ? (HEX[c] as number) : -1;
  if (v < 0) fail('is not a UUID');
  return v;
}

const UUID_TEXT = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Byte i of the UUID's 16 big-endian bytes sits at offset UUID_ORDER[i] in RowBinary. */
const UUID_ORDER = [7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8];
const UUID_HEX_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

function encodeUuid(w: Writer, value: unknown): void {
  if (typeof value !== 'string' || value.length !== 36 || !UUID_TEXT.test(value))
    fail('is not a UUID');
  w.ensure(16);
  for (let i = 0; i < 16; i++) {
    const at = UUID_HEX_AT[i] as number;
    w.buf[w.pos + (UUID_ORDER[i] as number)] = (hexAt(value, at) << 4) | hexAt(value, at + 1);
  }
  w.pos += 16;
}

/** `a.b.c.d` → its 4 bytes into out at `at`; false when not dotted-quad IPv4 (RFC 6943 §3.1.1). */
function ipv4Bytes(text: string, out: Uint8Array, at: number): boolean {
  let part = 0;
  let n = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c === 46) {
      // No empty part, no leading zero (`01` is octal to some parsers), at most 255.
      if (digits === 0 || n > 255 || part > 3) return false;
      out[at + part++] = n;
      n = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && n === 0) return false;
      n = n * 10 + (c - 48);
      if (++digits > 3) return false;
    } else return false;
  }
  return part === 4;
}

/**
 * The 16 bytes of an IPv6 address in text (RFC 4291 §2.2: groups, `::`, an IPv4 tail), or of
 * an IPv4 address mapped into IPv6 (RFC 4291 §2.5.5.2), as ClickHouse's IPv6 holds them.
 * Written here because Node has no inet_pton (net.isIP only says whether text is an address);
 * a zone index (`%eth0`) is refused: the store's ipColumn() removes it before.
 */
export function ipv6Bytes(text: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  // The common case first, without splitting: IPv4 mapped into IPv6, as ipColumn() writes it.
  if (text.startsWith('::ffff:') && ipv4Bytes(text.slice(7), out, 12)) {
    out[10] = 0xff;
    out[11] = 0xff;
    return out;
  }
  if (!text.includes(':')) {
    if (!ipv4Bytes(text, out, 12)) return undefined;
    out[10] = 0xff;
    out[11] = 0xff;
    return out;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string): string[] => (half === '' ? [] : half.split(':'));
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  const words: number[] = [];
  const all = [...head, ...tail];
  let v4: string | undefined;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    v4 = last;
    if (tail.length > 0) tail.pop();
    else head.pop();
  }
  const wordsOf = (list: string[]): number[] | undefined => {
    const result: number[] = [];
    for (const g of list) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      result.push(parseInt(g, 16));
    }
    return result;
  };
  const h = wordsOf(head);
  const t = wordsOf(tail);
  if (!h || !t) return undefined;
  const total = 8 - (v4 !== undefined ? 2 : 0);
  if (halves.length === 2) {
    if (h.length + t.length > total - 1) return undefined;
    words.push(...h, ...new Array<number>(total - h.length - t.length).fill(0), ...t);
  } else {
    if (h.length !== total) return undefined;
    words.push(...h);
  }
  for (let i = 0; i < words.length; i++) {
    out[2 * i] = (words[i] as number) >> 8;
    out[2 * i + 1] = (words[i] as number) & 0xff;
  }
  if (v4 !== undefined && !ipv4Bytes(v4, out, 12)) return undefined;
  return out;
}

function integer(bits: 8 | 16 | 32 | 64, signed: boolean): Encode {
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const bytes = bits / 8;
  return (w, value) => {
    let n: number;
    if (typeof value === 'number') n = value;
    else if (typeof value === 'boolean') n = value ? 1 : 0;
    else if (typeof value === 'bigint' && bits === 64) {
      w.ensure(8);
      if (signed) w.buf.writeBigInt64LE(value, w.pos);
      else w.buf.writeBigUInt64LE(value, w.pos);
      w.pos += 8;
      return;
    } else if (typeof value === 'string' && /^-?[0-9]{1,20}$/.test(value) && bits === 64) {
      w.ensure(8);
      const big = BigInt(value);
      if (signed) w.buf.writeBigInt64LE(big, w.pos);
      else w.buf.writeBigUInt64LE(big, w.pos);
      w.pos += 8;
      return;
    } else return fail(`must be an integer, not ${typeof value}`);
    // 64-bit values above 2^53 arrive as bigint or text: a number there has lost precision.
    if (!Number.isSafeInteger(n) || n < min || n > max)
      fail(`${String(n)} is not an integer in ${min}..${max}`);
    w.ensure(bytes);
    if (bytes === 8) {
      const lo = n >= 0 ? n % 0x100000000 : (n % 0x100000000) + 0x100000000;
      w.buf.writeUInt32LE(lo % 0x100000000, w.pos);
      w.buf.writeInt32LE(Math.floor(n / 0x100000000) | 0, w.pos + 4);
    } else if (bytes === 4) {
      if (signed) w.buf.writeInt32LE(n, w.pos);
      else w.buf.writeUInt32LE(n, w.pos);
    } else if (bytes === 2) {
      if (signed) w.buf.writeInt16LE(n, w.pos);
      else w.buf.writeUInt16LE(n, w.pos);
    } else w.buf[w.pos] = n & 0xff;
    w.pos += bytes;
  };
}

function float(bits: 32 | 64): Encode {
  return (w, value) => {
    if (typeof value !== 'number') fail(`must be a number, not ${typeof value}`);
    w.ensure(bits / 8);
    if (bits === 32) w.buf.writeFloatLE(value, w.pos);
    else w.buf.writeDoubleLE(value, w.pos);
    w.pos += bits / 8;
  };
}

function digits(s: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Epoch milliseconds of a time: a number is taken as milliseconds; text is
 * `YYYY-MM-DD[ T]hh:mm:ss[.fff…][Z]`, UTC (the store's own text form, toChTime()).
 */
export function timeMs(value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) fail(`${value} is not a time in epoch milliseconds`);
    return value;
  }
  if (typeof value !== 'string') return fail(`must be a time, not ${typeof value}`);
  const s = value;
  const sep = s.charCodeAt(10);
  if (
    s.length >= 19 &&
    s.charCodeAt(4) === 45 &&
    s.charCodeAt(7) === 45 &&
    (sep === 32 || sep === 84) &&
    s.charCodeAt(13) === 58 &&
    s.charCodeAt(16) === 58
  ) {
    let ms = 0;
    let end = 19;
    if (s.charCodeAt(19) === 46) {
      let scale = 100;
      end = 20;
      while (end < s.length && s.charCodeAt(end) >= 48 && s.charCodeAt(end) <= 57) {
        ms += (s.charCodeAt(end) - 48) * scale;
        scale /= 10;
        end++;
      }
      ms = Math.floor(ms);
    }
    if (end === s.length || (end === s.length - 1 && s.charCodeAt(end) === 90)) {
      const year = digits(s, 0, 4);
      const month = digits(s, 5, 2);
      const day = digits(s, 8, 2);
      const hour = digits(s, 11, 2);
      const minute = digits(s, 14, 2);
      const second = digits(s, 17, 2);
      const t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
      // Date.UTC rolls over (month 13, day 32): such text is no time.
      const d = new Date(t);
      if (
        Number.isFinite(t) &&
        d.getUTCFullYear() === year &&
        d.getUTCMonth() === month - 1 &&
        d.getUTCDate() === day &&
        hour < 24 &&
        minute < 60 &&
        second < 60
      )
        return t;
    }
  }
  return fail(`"${s.slice(0, 40)}" is not a time`);
}

const STRING: Encode = (w, value) => {
  if (typeof value === 'string') w.string(value);
  else if (value instanceof Uint8Array) {
    // Bytes as they are: the record column takes the bytes the producer hashed.
    w.varint(value.length);
    w.bytes(value);
  } else fail(`must be text, not ${value === null ? 'null' : typeof value}`);
};

/** Splits `A, B(C, D), E` at its top-level commas. */
function typeArgs(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out;
}

/** The encoder of one ClickHouse type; throws on a type it does not know. */
export function encoderOf(type: string): Encode {
  const t = type.trim();
  const m = /^(\w+)\((.*)\)$/s.exec(t);
  if (m) {
    const name = m[1] as string;
    const args = typeArgs(m[2] as string);
    const inner = (): Encode => encoderOf(args[0] as string);
    switch (name) {
      case 'LowCardinality':
        // LowCardinality is a storage form: RowBinary carries the plain value.
        return inner();
      case 'Nullable': {
        const enc = inner();
        return (w, value) => {
          if (value === null) w.u8(1);
          else {
            w.u8(0);
            enc(w, value);
          }
        };
      }
      case 'Array': {
        const enc = inner();
        return (w, value) => {
          if (!Array.isArray(value)) fail(`must be an array, not ${typeof value}`);
          w.varint(value.length);
          for (const item of value) enc(w, item);
        };
      }
      case 'Map': {
        const key = encoderOf(args[0] as string);
        const val = encoderOf(args[1] as string);
        return (w, value) => {
          if (typeof value !== 'object' || value === null || Array.isArray(value))
            fail('must be an object');
          const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
          w.varint(entries.length);
          for (const [k, v] of entries) {
            key(w, k);
            val(w, v);
          }
        };
      }
      case 'FixedString': {
        const size = Number(args[0]);
        return (w, value) => {
          if (typeof value !== 'string') fail(`must be text, not ${typeof value}`);
          w.ensure(size * 3);
          const n = w.buf.write(value, w.pos, 'utf8');
          // Text input pads a shorter value with NUL bytes and refuses a longer one; so here.
          if (n > size) fail(`is ${n} bytes, more than FixedString(${size})`);
          w.buf.fill(0, w.pos + n, w.pos + size);
          w.pos += size;
        };
      }
      case 'DateTime64': {
        const precision = Number(args[0]);
        const scale = 10 ** (precision - 3);
        const int64 = integer(64, true);
        return precision >= 3
          ? (w, value) => int64(w, timeMs(value) * scale)
          : (w, value) => int64(w, Math.floor(timeMs(value) / 10 ** (3 - precision)));
      }
      case 'DateTime': {
        const uint32 = integer(32, false);
        // A number is epoch seconds, as JSONEachRow reads it; text is a time.
        return (w, value) =>
          uint32(w, typeof value === 'number' ? value : Math.floor(timeMs(value) / 1000));
      }
      case 'SimpleAggregateFunction':
        return encoderOf(args[1] as string);
    }
    throw new Error(`RowBinary: unsupported type ${t}`);
  }
  switch (t) {
    case 'String':
      return STRING;
    case 'UInt8':
      return integer(8, false);
    case 'Bool':
      return integer(8, false);
    case 'UInt16':
      return integer(16, false);
    case 'UInt32':
      return integer(32, false);
    case 'UInt64':
      return integer(64, false);
    case 'Int8':
      return integer(8, true);
    case 'Int16':
      return integer(16, true);
    case 'Int32':
      return integer(32, true);
    case 'Int64':
      return integer(64, true);
    case 'Float32':
      return float(32);
    case 'Float64':
      return float(64);
    case 'UUID':
      return encodeUuid;
    case 'DateTime':
      return encoderOf('DateTime(UTC)');
    case 'IPv4':
      return (w, value) => {
        const b = new Uint8Array(4);
        if (typeof value !== 'string' || !ipv4Bytes(value, b, 0)) fail('is not an IPv4 address');
        w.ensure(4);
        // The address as a number (a.b.c.d = a·2^24 + …), little-endian.
        w.buf.writeUInt32LE(
          (b[0] as number) * 0x1000000 +
            ((b[1] as number) << 16) +
            ((b[2] as number) << 8) +
            (b[3] as number),
          w.pos,
        );
        w.pos += 4;
      };
    case 'IPv6':
      return (w, value) => {
        const bytes = typeof value === 'string' ? ipv6Bytes(value) : undefined;
        if (bytes === undefined) fail('is not an IP address');
        w.bytes(bytes);
      };
  }
  throw new Error(`RowBinary: unsupported type ${t}`);
}

/**
 * A table's rows in RowBinaryWithDefaults: `columns` in the order of the INSERT's column list.
 * Compiled once per table; `encode` is the hot path.
 */
export class RowBinaryCodec {
  readonly names: readonly string[];
  private readonly encodeRow: (w: Writer, row: object) => void;

  constructor(columns: ColumnTypes) {
    this.names = Object.keys(columns);
    const encoders = this.names.map((name) => encoderOf(columns[name] as string));
    // One function per table that reads each column by its literal name: a property read by a
    // computed name (`row[name]` over ~60 names at one site) is a dictionary lookup in V8, and
    // cost most of the encoding. The same technique as fast-json-stringify's compiled
    // serialisers; the names are checked to be plain identifiers first, so nothing but a
    // property name reaches the source.
    const body: string[] = ['let column = 0;', 'let v;', 'try {'];
    this.names.forEach((name, i) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`RowBinary: column "${name}"`);
      body.push(
        `  column = ${i}; v = row.${name};`,
        `  if (v === undefined) w.u8(1); else { w.u8(0); e[${i}](w, v); }`,
      );
    });
    body.push('} catch (error) {', '  throw refused(column, error);', '}');
    const names = this.names;
    const refused = (column: number, error: unknown): RowBinaryError =>
      new RowBinaryError(
        names[column] as string,
        error instanceof Error ? error.message : String(error),
      );
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const make = new Function(
      'e',
      'refused',
      `return function encodeRow(w, row) {\n${body.join('\n')}\n}`,
    ) as (
      e: readonly Encode[],
      refused: (column: number, error: unknown) => RowBinaryError,
    ) => (w: Writer, row: object) => void;
    this.encodeRow = make(encoders, refused);
  }

  /** The rows into `w` (a new writer when none). Throws a RowBinaryError naming the column. */
  encode(rows: Iterable<object>, w: Writer = new Writer()): Writer {
    const encodeRow = this.encodeRow;
    for (const row of rows) encodeRow(w, row);
    return w;
  }
}
