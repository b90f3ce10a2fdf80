import { describe, expect, it } from 'vitest';
import { INDEX_ENTRY_BYTES, INDEX_INTERVAL_BYTES, OffsetIndex } from './offset-index.js';

function indexOf(records: number, recordBytes: number): OffsetIndex {
  const index = new OffsetIndex();
  for (let i = 0; i < records; i++) index.offer(i, i * recordBytes);
  return index;
}

describe('OffsetIndex', () => {
  it('adds an entry once a record starts INDEX_INTERVAL_BYTES past the previous one', () => {
    const index = indexOf(100, 1000);
    expect(index.length).toBe(19);
    expect(index.entry(0)).toEqual({ relativeOffset: 5, position: 5000 });
    expect(index.entry(1)).toEqual({ relativeOffset: 10, position: 10_000 });
    for (let i = 1; i < index.length; i++) {
      expect(index.entry(i).position - index.entry(i - 1).position).toBeGreaterThanOrEqual(
        INDEX_INTERVAL_BYTES,
      );
    }
  });

  it('finds the last entry at or before an offset', () => {
    const index = indexOf(100, 1000);
    expect(index.floor(0)).toEqual({ relativeOffset: 0, position: 0 });
    expect(index.floor(4)).toEqual({ relativeOffset: 0, position: 0 });
    expect(index.floor(5)).toEqual({ relativeOffset: 5, position: 5000 });
    expect(index.floor(12)).toEqual({ relativeOffset: 10, position: 10_000 });
    expect(index.floor(1000)).toEqual({ relativeOffset: 95, position: 95_000 });
  });

  it('reads back what it writes, as 8-byte big-endian entries', () => {
    const index = indexOf(100, 1000);
    const file = index.encode(0);
    expect(file.length).toBe(index.length * INDEX_ENTRY_BYTES);
    expect(file.subarray(0, 8).toString('hex')).toBe('0000000500001388');
    const decoded = OffsetIndex.decode(file, 100_000);
    expect(decoded.length).toBe(index.length);
    expect(decoded.persisted).toBe(index.length);
    expect(decoded.floor(57)).toEqual(index.floor(57));
  });

  it('keeps only the entries a torn or stale file can vouch for', () => {
    const file = indexOf(100, 1000).encode(0);
    // A torn last entry, then zeros from unwritten blocks.
    const torn = Buffer.concat([file.subarray(0, 8 * 4 + 5), Buffer.alloc(16)]);
    expect(OffsetIndex.decode(torn, 100_000).length).toBe(4);
    // Entries past the end of a segment cut short.
    expect(OffsetIndex.decode(file, 30_001).length).toBe(6);
  });
});
