import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { csvHeader, csvRows, csvTime, csvTimeHeader, safeCell } from './csv.js';

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
});
