/**
 * Sparse offset index of one segment (`<base offset>.index`), as Kafka's `.index` files:
 * a sequence of 8-byte entries, each
 *
 *     position  size  field
 *     0         4     relative offset  u32: record offset - segment base offset
 *     4         4     position         u32: byte position of that record in the segment
 *
 * An entry is added for the first record that starts at least `INDEX_INTERVAL_BYTES` after
 * the previous entry (or the segment start, the implicit entry 0 → 0), so finding an offset
 * reads at most that many bytes of headers past the entry. Entries are strictly increasing in
 * both fields. The index is derived data: it is never fsynced on the append path, and on open
 * an index that does not agree with its segment is rebuilt by scanning the segment.
 */

export const INDEX_ENTRY_BYTES = 8;
export const INDEX_INTERVAL_BYTES = 4096;

export interface IndexEntry {
  readonly relativeOffset: number;
  readonly position: number;
}

export class OffsetIndex {
  private relativeOffsets = new Uint32Array(16);
  private positions = new Uint32Array(16);
  private count = 0;
  /** Entries already in the index file. */
  persisted = 0;

  get length(): number {
    return this.count;
  }

  /** Position of the last entry, or 0 (the implicit entry) when there is none. */
  get lastPosition(): number {
    return this.count === 0 ? 0 : (this.positions[this.count - 1] ?? 0);
  }

  /** Offers the record at `position`; adds an entry if it is far enough from the last. */
  offer(relativeOffset: number, position: number): void {
    if (position - this.lastPosition < INDEX_INTERVAL_BYTES) return;
    if (this.count === this.positions.length) {
      const relativeOffsets = new Uint32Array(this.count * 2);
      relativeOffsets.set(this.relativeOffsets);
      this.relativeOffsets = relativeOffsets;
      const positions = new Uint32Array(this.count * 2);
      positions.set(this.positions);
      this.positions = positions;
    }
    this.relativeOffsets[this.count] = relativeOffset;
    this.positions[this.count] = position;
    this.count++;
  }

  entry(i: number): IndexEntry {
    return { relativeOffset: this.relativeOffsets[i] ?? 0, position: this.positions[i] ?? 0 };
  }

  /** The last entry at or before `relativeOffset` (the implicit entry 0 → 0 if none). */
  floor(relativeOffset: number): IndexEntry {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if ((this.relativeOffsets[mid] ?? 0) <= relativeOffset) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found < 0 ? { relativeOffset: 0, position: 0 } : this.entry(found);
  }

  /** Drops the entries from `i` on. */
  truncate(i: number): void {
    if (i >= this.count) return;
    this.count = i;
    this.persisted = Math.min(this.persisted, i);
  }

  /** Entries `[from, length)` in file form. */
  encode(from: number): Buffer {
    const out = Buffer.allocUnsafe((this.count - from) * INDEX_ENTRY_BYTES);
    for (let i = from; i < this.count; i++) {
      const at = (i - from) * INDEX_ENTRY_BYTES;
      out.writeUInt32BE(this.relativeOffsets[i] ?? 0, at);
      out.writeUInt32BE(this.positions[i] ?? 0, at + 4);
    }
    return out;
  }

  /**
   * Reads an index file, keeping the longest prefix of entries that can be right for a
   * segment of `segmentBytes` bytes: a torn or stale tail of the file is dropped.
   */
  static decode(data: Buffer, segmentBytes: number): OffsetIndex {
    const index = new OffsetIndex();
    let previousOffset = 0;
    let previousPosition = 0;
    const entries = Math.floor(data.length / INDEX_ENTRY_BYTES);
    for (let i = 0; i < entries; i++) {
      const relativeOffset = data.readUInt32BE(i * INDEX_ENTRY_BYTES);
      const position = data.readUInt32BE(i * INDEX_ENTRY_BYTES + 4);
      if (
        relativeOffset <= previousOffset ||
        position - previousPosition < INDEX_INTERVAL_BYTES ||
        position >= segmentBytes
      ) {
        break;
      }
      index.offer(relativeOffset, position);
      previousOffset = relativeOffset;
      previousPosition = position;
    }
    index.persisted = index.count;
    return index;
  }
}
