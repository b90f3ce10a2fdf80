import { stringify } from 'csv-stringify/sync';

/**
 * The one CSV writer of Vigil's exports (subject export, access reviews, search exports): RFC
 * 4180 records written by `csv-stringify`, with what a spreadsheet needs on top of it — a guard
 * against formula injection, an optional UTF-8 byte order mark, and one format for times.
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
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * A time as CSV cells carry it: `YYYY-MM-DD HH:MM:SS` in UTC (the zone is stated once, in the
 * column's header: see csvTimeHeader). Spreadsheets read this form as a date without help; ISO
 * 8601 with `T` and `Z` they read as text. '' for an absent time.
 */
export function csvTime(ms: number | undefined | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '';
  const d = new Date(ms);
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
 * Records of a CSV file: every cell through safeCell, every text cell quoted (so ids that look
 * like numbers stay text), CRLF line ends as RFC 4180 says.
 */
export function csvRows(rows: readonly (readonly unknown[])[]): string {
  if (rows.length === 0) return '';
  return stringify(
    rows.map((row) => row.map(safeCell)),
    { record_delimiter: 'windows', quoted_string: true },
  );
}
