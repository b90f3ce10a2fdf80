import {
  COMMITMENT_DOMAIN,
  commitmentOfCanonical,
  encodeSalt,
  getAt,
  parsePointer,
  requiredPersonalPaths,
  sealEvent,
  type ChainLink,
  type EventInput,
  type SaltSource,
} from '@vigil/protocol';
import { hash as nodeHash } from 'node:crypto';
import { HASH_HEX_LENGTH, LF, TAB } from '../deliver/framing.js';
import { NEEDS_GENERAL, orderedCopy, stringifyOrdered } from './canonical.js';
import type { RandomBytes } from './ids.js';

/**
 * The record version this SDK seals (`"v": 2`, PROTOCOL.md §3). The SDK's own constant rather
 * than the protocol package's PROTOCOL_VERSION so that the version it writes is a decision of
 * this file, checked against `sealEvent` by sealer.test.ts.
 */
export const RECORD_VERSION = 2;

const SALT_BYTES = 16;
const SCRATCH_BYTES = 16 * 1024;
/** The commitment preimage (PROTOCOL.md §5) starts with the domain, then u32be(len salt). */
const PREFIX_BYTES = COMMITMENT_DOMAIN.length;
const SALTED_AT = PREFIX_BYTES + 4;
/** Wire lines are written into slabs of this size and kept as views (see LineArena). */
const SLAB_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * Where sealed lines are written: consecutive views of one slab, a new slab when the current one
 * is full. Lines leave the queue in the order they were written, so a slab is released soon
 * after its last line is acknowledged; one allocation per ~60 events instead of one per event.
 */
class LineArena {
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  private at = 0;

  /** A buffer and offset with at least `max` free bytes from the offset on. */
  reserve(max: number): number {
    if (this.at + max > this.slab.length) {
      this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, max));
      this.at = 0;
    }
    return this.at;
  }

  get buffer(): Buffer {
    return this.slab;
  }

  /** Takes [start, end) of the current slab. */
  take(end: number): void {
    this.at = end;
  }
}
/** Fields of a record the protocol defines, in RFC 8785 key order. */
const KNOWN_KEYS = new Set([
  'access',
  'action',
  'actor',
  'category',
  'context',
  'id',
  'metadata',
  'outcome',
  'personal',
  'prev',
  'seq',
  'stream',
  'target',
  'time',
  'v',
]);

function isWellFormed(text: string): boolean {
  return (text as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/** Sets the value at `tokens` inside objects that are private copies (see orderedCopy). */
function setAt(root: Record<string, unknown>, tokens: readonly string[], value: string): void {
  let node = root;
  for (let i = 0; i < tokens.length - 1; i++)
    node = node[tokens[i] as string] as Record<string, unknown>;
  node[tokens[tokens.length - 1] as string] = value;
}

/**
 * Seals events exactly as the protocol's `sealEvent` does (PROTOCOL.md §4-5: personal fields
 * replaced by salted commitments, RFC 8785 bytes, SHA-256), several times faster, because
 * `record()` pays for it on the application's request path:
 * - the record is built with its keys already in canonical order and serialised by V8's
 *   JSON.stringify (see orderedCopy for why that is RFC 8785 for the values it accepts);
 * - commitment preimages are written into one scratch buffer and salts come from a pool;
 * - the output is the wire line of PROTOCOL.md §9 (`record TAB hash TAB disclosures LF`),
 *   written once into a slab; the record is hashed from those bytes, not encoded twice;
 * - anything unusual (values needing the general serialiser) goes through `sealEvent` itself.
 * sealer.test.ts checks byte equality with `sealEvent` over thousands of generated events.
 */
export class Sealer {
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private readonly arena = new LineArena();
  private saltText = '';
  private readonly quotedPaths = new Map<string, string>();
  private readonly pathBytes = new Map<string, Buffer>();
  /** Hash of the event sealed last (the next event's `prev`). */
  hash = '';
  /**
   * Where the wire line of the event sealed last is: [lineStart, lineEnd) of lineBuffer. Offsets
   * rather than a Buffer view: a queued event then holds no object of its own besides its Entry.
   */
  lineBuffer: Buffer = EMPTY;
  lineStart = 0;
  lineEnd = 0;

  constructor(
    private readonly random: RandomBytes,
    /** Paths committed wherever they exist (options.personal.paths). */
    private readonly extraPaths: readonly string[],
    /** A caller-supplied salt source (tests); the pool otherwise. */
    private readonly salts: SaltSource | undefined,
  ) {
    COMMITMENT_DOMAIN.copy(this.scratch, 0);
    this.scratch.writeUInt32BE(SALT_BYTES, PREFIX_BYTES);
  }

  /** The sorted personal paths of an input: the protocol's, the input's, and the configured ones. */
  personalPaths(input: EventInput): string[] {
    const paths = requiredPersonalPaths(input);
    const marked = input.personal;
    if (marked !== undefined) for (const p of marked) if (!paths.includes(p)) paths.push(p);
    for (const p of this.extraPaths) {
      if (!paths.includes(p) && getAt(input, parsePointer(p) ?? []) !== undefined) paths.push(p);
    }
    // Default sort compares UTF-16 code units, as sealEvent does.
    if (paths.length > 1) paths.sort();
    return paths;
  }

  /**
   * Seals an input already checked with checkEventInput: its wire line is then at
   * [lineStart, lineEnd) of lineBuffer and its hash in `hash`. Throws the protocol's
   * NotCanonicalError for values without an RFC 8785 form (NaN, lone surrogates, BigInt).
   */
  seal(input: EventInput, id: string, time: string, link: ChainLink): void {
    const paths = this.personalPaths(input);
    let record: Record<string, unknown>;
    try {
      record = this.orderedRecord(input, id, time, link, paths);
    } catch (error) {
      if (error === NEEDS_GENERAL) {
        this.sealGeneral(input, id, time, link, paths);
        return;
      }
      throw error;
    }
    // The disclosures' JSON is assembled from parts already at hand (each value's canonical
    // text, each salt) rather than serialised again.
    let disclosed = '';
    if (paths.length > 0) {
      for (const path of paths) {
        const tokens = parsePointer(path) as readonly string[];
        const value = getAt(record, tokens);
        const canonical =
          typeof value === 'string' && isWellFormed(value)
            ? JSON.stringify(value)
            : stringifyOrdered(value);
        setAt(record, tokens, this.commit(path, canonical));
        disclosed += `${disclosed === '' ? '{' : ','}${this.quoted(path)}:{"salt":"${this.saltText}","value":${canonical}}`;
      }
      disclosed += '}';
    }
    this.line(stringifyOrdered(record), disclosed);
  }

  /**
   * Writes `record TAB hash TAB disclosures LF` into the arena and returns it; the hash is taken
   * over the record bytes just written (PROTOCOL.md §4: SHA-256 of the RFC 8785 UTF-8 bytes).
   */
  private line(json: string, disclosed: string): void {
    const arena = this.arena;
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    const start = arena.reserve(3 * (json.length + disclosed.length) + HASH_HEX_LENGTH + 3);
    const buf = arena.buffer;
    let at = start + buf.write(json, start, 'utf8');
    const hash = nodeHash('sha256', buf.subarray(start, at), 'hex');
    buf[at++] = TAB;
    at += buf.write(hash, at, 'latin1');
    buf[at++] = TAB;
    if (disclosed !== '') at += buf.write(disclosed, at, 'utf8');
    buf[at++] = LF;
    arena.take(at);
    this.hash = hash;
    this.lineBuffer = buf;
    this.lineStart = start;
    this.lineEnd = at;
  }

  /** JSON string form of a personal path; the same few paths recur, so they are cached. */
  private quoted(path: string): string {
    let text = this.quotedPaths.get(path);
    if (text === undefined) {
      text = JSON.stringify(path);
      if (this.quotedPaths.size > 1024) this.quotedPaths.clear();
      this.quotedPaths.set(path, text);
    }
    return text;
  }

  /** The hashed record with keys in canonical order (personal values not yet committed). */
  private orderedRecord(
    input: EventInput,
    id: string,
    time: string,
    link: ChainLink,
    paths: readonly string[],
  ): Record<string, unknown> {
    const source = input as Record<string, unknown>;
    const keys = Object.keys(source);
    let extras = false;
    for (const key of keys) {
      if (!KNOWN_KEYS.has(key)) {
        extras = true;
        break;
      }
    }
    const chain: Record<string, unknown> = {
      id,
      prev: link.prev,
      seq: link.seq,
      stream: link.stream,
      time,
      v: RECORD_VERSION,
    };
    if (paths.length > 0) chain['personal'] = paths;
    const record: Record<string, unknown> = {};
    if (!extras) {
      // The usual case: the protocol's fields only, placed in their known order without a sort.
      for (const key of KNOWN_KEYS) {
        const own = chain[key];
        if (own !== undefined) record[key] = own;
        else if (key !== 'personal') {
          const value = source[key];
          if (value !== undefined) record[key] = orderedCopy(value, 1);
        }
      }
      return record;
    }
    // Fields from a later protocol version or the producer (PROTOCOL.md §3.4) are kept: merge and sort.
    const all = new Set(keys);
    for (const key of Object.keys(chain)) all.add(key);
    for (const key of [...all].sort()) {
      const own = chain[key];
      if (own !== undefined) record[key] = own;
      else if (key !== 'personal' && key !== 'id' && key !== 'time') {
        const value = orderedCopy(source[key], 1);
        if (value !== undefined && typeof value !== 'function' && typeof value !== 'symbol') {
          if (key.charCodeAt(0) >= 48 && key.charCodeAt(0) <= 57) throw NEEDS_GENERAL;
          record[key] = value;
        }
      }
    }
    return record;
  }

  /** The rare input the fast path does not handle: the protocol's own sealEvent, same salts. */
  private sealGeneral(
    input: EventInput,
    id: string,
    time: string,
    link: ChainLink,
    paths: string[],
  ): void {
    const complete = { ...input, id, time, personal: paths };
    if (paths.length === 0) delete (complete as { personal?: unknown }).personal;
    const sealed = sealEvent(complete, link, { salt: () => this.drawSalt() });
    const json = sealed.event.record;
    const disclosures = sealed.event.disclosures;
    this.line(json, disclosures === undefined ? '' : JSON.stringify(disclosures));
  }

  private drawSalt(): Buffer {
    if (this.salts !== undefined) return this.salts.salt();
    const at = this.random.take(SALT_BYTES);
    return Buffer.from(this.random.buffer.subarray(at, at + SALT_BYTES));
  }

  /**
   * The commitment of PROTOCOL.md §5, written into the scratch buffer:
   * "vigil.commitment.v1" 0x00 || u32be(len salt) || salt || u32be(len path) || path
   * || u32be(len value) || value. Leaves the salt (base64url) in `saltText`.
   */
  private commit(path: string, canonical: string): string {
    const buf = this.scratch;
    // UTF-8 takes at most 3 bytes per UTF-16 code unit; larger values take the allocating path.
    if ((path.length + canonical.length) * 3 + 200 > SCRATCH_BYTES) {
      const salt = this.drawSalt();
      this.saltText = encodeSalt(salt);
      return commitmentOfCanonical(path, canonical, salt);
    }
    let at: number;
    if (this.salts !== undefined) {
      const salt = this.salts.salt();
      at = buf.writeUInt32BE(salt.length, PREFIX_BYTES);
      salt.copy(buf, at);
      this.saltText = buf.toString('base64url', at, at + salt.length);
      at += salt.length;
    } else {
      // The domain and the salt's length never change: written once (constructor), not per call.
      at = SALTED_AT;
      const from = this.random.take(SALT_BYTES);
      this.random.buffer.copy(buf, at, from, from + SALT_BYTES);
      this.saltText = buf.toString('base64url', at, at + SALT_BYTES);
      at += SALT_BYTES;
    }
    // u32be(len path) || path: the same few paths recur, so their bytes are encoded once.
    const pathBytes = this.pathPreimage(path);
    buf.set(pathBytes, at);
    at += pathBytes.length;
    const valueBytes = buf.write(canonical, at + 4, 'utf8');
    buf.writeUInt32BE(valueBytes, at);
    at += 4 + valueBytes;
    return nodeHash('sha256', buf.subarray(0, at), 'hex');
  }

  /** `u32be(len path) || UTF-8(path)`, cached per path. */
  private pathPreimage(path: string): Buffer {
    let bytes = this.pathBytes.get(path);
    if (bytes === undefined) {
      const utf8 = Buffer.from(path, 'utf8');
      bytes = Buffer.alloc(4 + utf8.length);
      bytes.writeUInt32BE(utf8.length, 0);
      utf8.copy(bytes, 4);
      if (this.pathBytes.size > 1024) this.pathBytes.clear();
      this.pathBytes.set(path, bytes);
    }
    return bytes;
  }
}
