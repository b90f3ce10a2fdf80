import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import { csvHeader, csvRecord, csvRows, csvTime, csvTimeHeader, safeCell } from './csv.js';

describe('CSV writer', () => {
  it('neutralises cells a spreadsheet would run as formulas', () => {
    for (const bad of ['=1+1', '+1', '-1', '@SUM(A1)', '\tx', '\rx']) {
      expect(safeCell(bad)).toBe(`'${bad}`);
    }
    expect(safeCell('zoé@example.eu')).toBe('zoé@example.eu');
    expect(safeCell(undefined)).toBe('');
    expect(safeCell(42)).toBe('42');
  });

  it('writes RFC 4180 records a CSV parser reads back, with the BOM when asked', () => {
    const text =
      csvHeader(['id', csvTimeHeader('time'), 'name'], { bom: true }) +
      csvRows([
        ['00123', csvTime(Date.UTC(2026, 0, 2, 3, 4, 5)), 'Zoë "the" Ünal, =HYPERLINK()'],
        ['7', '', '=cmd|calc'],
      ]);
    expect(text.startsWith('\ufeffid,time (UTC),name\r\n')).toBe(true);
    const rows = parse(text, { bom: true }) as string[][];
    expect(rows).toEqual([
      ['id', 'time (UTC)', 'name'],
      ['00123', '2026-01-02 03:04:05', 'Zoë "the" Ünal, =HYPERLINK()'],
      ['7', '', "'=cmd|calc"],
    ]);
    expect(csvHeader(['a']).startsWith('\ufeff')).toBe(false);
    expect(csvRows([])).toBe('');
  });

  // csv-stringify is the reference: csvRows encodes by hand for speed (see csvRecord).
  const reference = (rows: readonly (readonly unknown[])[]): string =>
    rows.length === 0
      ? ''
      : stringify(
          rows.map((row) => row.map(safeCell)),
          { record_delimiter: 'windows', quoted_string: true },
        );

  it('writes the bytes csv-stringify writes, on every awkward cell', () => {
    const cells: unknown[] = [
      '',
      'plain',
      'with "quotes"',
      'comma, inside',
      'semi;colon',
      'line\nbreak',
      'cr\r\nlf',
      'lone\rcr',
      'trailing\n',
      '=1+1',
      '+cmd',
      '-2',
      '@SUM(A1)',
      '\tTab',
      '\rCR',
      ' =not at start',
      "'already quoted",
      'Zoë für 日本 😀',
      '\u0000nul',
      ' leading space',
      '"',
      '""',
      '","',
      0,
      -1,
      1.5,
      -0.25,
      64500,
      1e21,
      Number.NaN,
      true,
      false,
      null,
      undefined,
      { a: '"x"', b: [1, null] },
      ['a', 'b'],
      [],
      {},
      '0193a4b2-6c1e-7000-8000-000000000000',
      '00123',
    ];
    const rows = [cells, [...cells].reverse(), ['only one'], [], cells.map((c) => [c, c])];
    expect(csvRows(rows)).toBe(reference(rows));
    for (const row of rows) expect(csvRecord(row)).toBe(reference([row]));
    expect(csvRows([])).toBe(reference([]));
  });

  it('writes times as the pads did, in the four-digit years and outside them', () => {
    const padded = (ms: number): string => {
      const d = new Date(ms);
      const p = (n: number, w = 2): string => String(n).padStart(w, '0');
      return (
        `${p(d.getUTCFullYear(), 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
        `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`
      );
    };
    for (const ms of [
      0,
      Date.UTC(2026, 0, 2, 3, 4, 5, 999),
      Date.UTC(1969, 11, 31, 23, 59, 59, 1),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(10000, 0, 1),
      -62_167_219_200_000,
      Date.UTC(999, 11, 31, 23, 59, 59),
      Date.UTC(1000, 0, 1),
      8.64e15,
    ])
      expect(csvTime(ms)).toBe(padded(ms));
    expect(csvTime(Number.NaN)).toBe('');
    expect(csvTime(null)).toBe('');
  });
});
