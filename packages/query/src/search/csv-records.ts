import { csvRows } from '../export/csv.js';

/**
 * CSV records as the shared writer writes them (csvRows, export/csv.ts): every cell through
 * safeCell, every cell quoted, quotes doubled, CRLF after each record. The hand-written encoder
 * that was here is now the shared writer's own; its test compares it with csv-stringify.
 */
export function csvRecords(rows: readonly (readonly unknown[])[]): string {
  return csvRows(rows);
}
