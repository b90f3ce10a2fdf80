import { describe, expect, it } from 'vitest';
import { csvRows } from '../export/csv.js';
import { csvRecords } from './csv-records.js';

describe('csvRecords', () => {
  it('writes the bytes csvRows writes, on every awkward cell', () => {
    const cells: unknown[] = [
      '',
      'plain',
      'with "quotes"',
      'comma, inside',
      'line\nbreak',
      'cr\r\nlf',
      '=1+1',
      '+cmd',
      '-2',
      '@SUM(A1)',
      '\tTab',
      '\rCR',
      'Zoë für 日本',
      ' leading space',
      '"',
      '""',
      0,
      -1,
      1.5,
      64500,
      true,
      null,
      undefined,
      { a: '"x"' },
      ['a', 'b'],
      '0193a4b2-6c1e-7000-8000-000000000000',
      '00123',
    ];
    const rows = [cells, [...cells].reverse(), ['only one'], cells.map((c) => [c, c])];
    expect(csvRecords(rows)).toBe(csvRows(rows));
  });

  it('writes nothing for no rows, as csvRows does', () => {
    expect(csvRecords([])).toBe(csvRows([]));
  });
});
