import { safeCell } from '../export/csv.js';

/**
 * CSV records as `csvRows` (export/csv.ts) writes them, byte for byte: every cell through
 * safeCell, every cell quoted (RFC 4180 §2.5-2.7: a quote inside is doubled), CRLF after each
 * record. Written by hand because csv-stringify, behind csvRows, costs ≈ 3 µs per cell measured
 * here (76 µs per 24-cell row on the loaded 2-core VM, against ≈ 5 µs for this loop): a
 * 1 000 000-row export must write ≥ 200 000 rows/s. A test checks both give the same bytes.
 */
export function csvRecords(rows: readonly (readonly unknown[])[]): string {
  let out = '';
  for (const row of rows) {
    let line = '';
    for (let i = 0; i < row.length; i++) {
      const cell = safeCell(row[i]);
      line +=
        (i === 0 ? '"' : ',"') + (cell.includes('"') ? cell.replaceAll('"', '""') : cell) + '"';
    }
    out += line + '\r\n';
  }
  return out;
}
