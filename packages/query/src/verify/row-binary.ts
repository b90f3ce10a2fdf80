import type { ClickHouseSettings } from '@clickhouse/client';
import type { QueryParams, Store } from '../store/store.js';

/**
 * Reads a query result in ClickHouse's RowBinary format (ClickHouse docs, "Formats: RowBinary"):
 * the verifier streams every leaf hash of a tree, and binary rows cost a fraction of JSON to
 * produce and to parse. Only the types the verifier selects are decoded: UInt8, UInt64 and
 * Int64 (as JS numbers, exact below 2^53), FixedString(N) and String (LEB128 length + bytes).
 */
export class RowBinaryReader {
  private buffer: Buffer = Buffer.alloc(0);
  private at = 0;

  /** Adds the next chunk of the result; unread bytes of the previous chunk are kept. */
  push(chunk: Buffer): void {
    const rest = this.buffer.length - this.at;
    this.buffer = rest === 0 ? chunk : Buffer.concat([this.buffer.subarray(this.at), chunk]);
    this.at = 0;
  }

  /** Whether at least `n` more bytes are buffered. */
  has(n: number): boolean {
    return this.buffer.length - this.at >= n;
  }

  /** Position to come back to when a row turns out to be incomplete. */
  mark(): number {
    return this.at;
  }

  reset(mark: number): void {
    this.at = mark;
  }

  get done(): boolean {
    return this.at === this.buffer.length;
  }

  u8(): number {
    return this.buffer[this.at++] as number;
  }

  u64(): number {
    const low = this.buffer.readUInt32LE(this.at);
    const high = this.buffer.readUInt32LE(this.at + 4);
    this.at += 8;
    return high * 2 ** 32 + low;
  }

  /** An Int64, as a JS number (exact between −2^53 and 2^53). */
  i64(): number {
    const low = this.buffer.readUInt32LE(this.at);
    const high = this.buffer.readInt32LE(this.at + 4);
    this.at += 8;
    return high * 2 ** 32 + low;
  }

  fixed(n: number): Buffer {
    const out = this.buffer.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  /** A String, or undefined when its bytes are not all buffered yet. */
  string(): string | undefined {
    let length = 0;
    let shift = 0;
    let at = this.at;
    for (;;) {
      if (at >= this.buffer.length) return undefined;
      const byte = this.buffer[at++] as number;
      length += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
      shift += 7;
    }
    if (this.buffer.length - at < length) return undefined;
    this.at = at + length;
    return this.buffer.toString('utf8', at, at + length);
  }
}

/**
 * Runs a SELECT with `FORMAT RowBinary` and hands each complete row to `row`, which reads it
 * from the reader and returns false when the row is not complete yet (it is retried with more
 * bytes). Works over HTTP (streamed) and on chDB (one buffer).
 */
export async function forEachRowBinary(
  store: Store,
  sql: string,
  params: QueryParams,
  row: (reader: RowBinaryReader) => boolean,
  settings: ClickHouseSettings = {},
): Promise<void> {
  const bytes = await store.stream(`${sql}\nFORMAT RowBinary`, params, settings);
  const reader = new RowBinaryReader();
  for await (const chunk of bytes) {
    reader.push(chunk);
    for (;;) {
      const mark = reader.mark();
      if (reader.done || !row(reader)) {
        reader.reset(mark);
        break;
      }
    }
  }
  if (!reader.done) throw new Error('the store ended a RowBinary result in the middle of a row');
}
