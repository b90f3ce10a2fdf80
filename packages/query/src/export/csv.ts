import { stringify } from 'csv-stringify/sync';

/**
 * The one CSV writer of Vigil's exports (subject export, access reviews, search exports): RFC
 * 4180 records (the header line by `csv-stringify`, the records by csvRecord below, byte for byte
 * what csv-stringify writes), with what a spreadsheet needs on top of it — a guard against
 * formula injection, an optional UTF-8 byte order mark, and one format for times.
 */

/**
 * A cell as Excel must see it: text that starts with = + - @ TAB or CR is a formula there, so it
 * gets a leading apostrophe (OWASP, "CSV Injection"). Numbers, booleans and objects are written
 * as JSON text; absent values as an empty cell.
 */
export function safeCell(value: unknown): string {
  const text =
    value === undefined || value === null
      ? ''
      : typeof value === 'string'
        ? value
        : JSON.stringify(value);
  // The first character by code, not a regular expression: this runs for every cell of every export.
  const first = text.charCodeAt(0);
  return first === 61 || first === 43 || first === 45 || first === 64 || first === 9 || first === 13
    ? `'${text}`
    : text;
}

const D2 = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : String(i)));
const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * A time as CSV cells carry it: `YYYY-MM-DD HH:MM:SS` in UTC (the zone is stated once, in the
 * column's header: see csvTimeHeader). Spreadsheets read this form as a date without help; ISO
 * 8601 with `T` and `Z` they read as text. '' for an absent time.
 */
export function csvTime(ms: number | undefined | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '';
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  // Two-digit fields from a table rather than padStart: six strings fewer per time, and this
  // runs for several cells of every row of a review (measured ≈ 2× faster).
  if (year >= 1000 && year <= 9999)
    return (
      `${year}-${D2[d.getUTCMonth() + 1]}-${D2[d.getUTCDate()]} ` +
      `${D2[d.getUTCHours()]}:${D2[d.getUTCMinutes()]}:${D2[d.getUTCSeconds()]}`
    );
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
  );
}

/** The header of a time column: its name and the zone its cells are in. */
export function csvTimeHeader(name: string): string {
  return `${name} (UTC)`;
}

export interface CsvOptions {
  /** Start the file with a UTF-8 byte order mark, so that Excel reads it as UTF-8. */
  readonly bom?: boolean;
}

/** The header line of a CSV file (CRLF-terminated), with the BOM when asked for. */
export function csvHeader(columns: readonly string[], options: CsvOptions = {}): string {
  return (options.bom ? '\ufeff' : '') + stringify([[...columns]], { record_delimiter: 'windows' });
}

/**
 * One record of a CSV file (CRLF-terminated): every cell through safeCell, every cell quoted (so
 * ids that look like numbers stay text; RFC 4180 §2.5-2.7: a quote inside is doubled).
 *
 * Written by hand rather than through csv-stringify (which writes the header line above, and is
 * the reference the tests compare these bytes with on hostile cells): csv-stringify cost ≈ 3 µs
 * per cell measured on the 2-core development VM (76 µs per 24-cell row, against ≈ 5 µs for this
 * loop), and in an access review of 70 000 rights its 27 MB took 4–5 s of a 8–16 s review, with
 * the arrays of cells it copies feeding a garbage collector that already took a third of the CPU.
 * Exports of a million rows need ≥ 200 000 rows/s.
 */
export function csvRecord(row: readonly unknown[]): string {
  let line = '';
  for (let i = 0; i < row.length; i++) line += (i === 0 ? '' : ',') + csvCell(row[i]);
  return line + '\r\n';
}

/**
 * One cell as csvRecord writes it: through safeCell, quoted, quotes doubled. For writers that
 * build a record from known fields without an array of cells (access/export.ts).
 */
export function csvCell(value: unknown): string {
  const cell = safeCell(value);
  return '"' + (cell.includes('"') ? cell.replaceAll('"', '""') : cell) + '"';
}

/** Records of a CSV file: csvRecord of each row, concatenated ('' for no rows). */
export function csvRows(rows: readonly (readonly unknown[])[]): string {
  const text = new TextBuilder();
  for (const row of rows) text.append(csvRecord(row));
  return text.toString();
}

/**
 * A long text built from many short strings, as UTF-8 in a growing buffer. `+=` over tens of
 * thousands of records builds a V8 rope of millions of nodes that live until the end and are
 * then flattened: in an access review of 70 000 rows (27 MB) that took 3.1–3.5 s, mostly in the
 * garbage collector, against 1.7 s writing each record's bytes here as it is made (measured on
 * the loaded 2-core VM); each record then dies young.
 */
export class TextBuilder {
  private buffer = Buffer.allocUnsafe(64 * 1024);
  private length = 0;

  append(text: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, 2 units, is 4).
    if (this.buffer.length - this.length < text.length * 3) {
      const grown = Buffer.allocUnsafe(
        Math.max(this.buffer.length * 2, this.length + text.length * 3),
      );
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    this.length += this.buffer.write(text, this.length, 'utf8');
  }

  toString(): string {
    return this.buffer.toString('utf8', 0, this.length);
  }
}
