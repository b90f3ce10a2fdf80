import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { csvHeader, csvRows } from '../export/csv.js';
import {
  parseAsOf,
  REVIEW_COLUMNS,
  reviewCells,
  reviewCsv,
  reviewFile,
  reviewNdjson,
} from './export.js';
import type { ReviewRow, ReviewSnapshot } from './review.js';

const T = Date.UTC(2026, 2, 31, 23, 59, 59, 999);

function row(overrides: Partial<ReviewRow>): ReviewRow {
  return {
    subjectKey: 'a'.repeat(64),
    subjectState: 'active',
    subjectType: 'user',
    subjectId: '00123',
    subjectName: 'Zoë Müller',
    rightKind: 'role',
    right: 'admin',
    resourceType: 'org',
    resourceId: 'acme',
    grantedAt: Date.UTC(2025, 0, 2, 3, 4, 5, 678),
    grantedBy: 'u-1',
    ticket: 'SEC-1',
    reason: '',
    expiresAt: null,
    grantEvent: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    lastLogin: { state: 'used', at: Date.UTC(2026, 0, 1) },
    lastResourceAction: { state: 'not_used' },
    lastPermissionUse: { state: 'no_data' },
    lastUsed: { state: 'not_used', measure: 'resource' },
    flags: ['dormant', 'privileged'],
    explanations: ['dormant: …', 'privileged: admin is listed in access.privileged'],
    ...overrides,
  };
}

const snapshot: ReviewSnapshot = {
  tenant: 'acme',
  asOf: T,
  trackingSince: Date.UTC(2024, 5, 1),
  restrictedSubjects: [],
  rows: [
    row({}),
    row({ subjectName: '=HYPERLINK("http://evil","x")', subjectId: '+41 79', right: '-1+1' }),
    row({ subjectName: '@SUM(A1)', reason: '\tTAB', ticket: '\rCR', subjectId: '李雷' }),
  ],
};

describe('access review files', () => {
  it('writes a CSV that a CSV parser reads back: columns, formula guard, non-ASCII, times, ids as text', () => {
    const text = reviewCsv(snapshot);
    expect(text.startsWith('\ufeff')).toBe(false);
    const records = parse(text, { columns: true }) as Record<string, string>[];
    expect(Object.keys(records[0] ?? {})).toEqual(REVIEW_COLUMNS.map(([c]) => c));
    expect(records[0]).toMatchObject({
      'as_of (UTC)': '2026-03-31 23:59:59',
      subject_id: '00123',
      subject_name: 'Zoë Müller',
      'granted_at (UTC)': '2025-01-02 03:04:05',
      'expires_at (UTC)': '',
      'last_login (UTC)': '2026-01-01 00:00:00',
      last_login_state: 'used',
      last_resource_action_state: 'not_used',
      last_permission_use_state: 'no_data',
      last_used_measure: 'resource',
      'tracking_since (UTC)': '2024-06-01 00:00:00',
      flags: 'dormant privileged',
      flag_explanations: 'dormant: … | privileged: admin is listed in access.privileged',
    });
    expect(records[1]).toMatchObject({
      subject_name: `'=HYPERLINK("http://evil","x")`,
      subject_id: "'+41 79",
      right: "'-1+1",
    });
    expect(records[2]).toMatchObject({
      subject_name: "'@SUM(A1)",
      reason: "'\tTAB",
      ticket: "'\rCR",
      subject_id: '李雷',
    });
    // Ids are quoted, so a spreadsheet keeps the leading zeros.
    expect(text).toContain('"00123"');
    expect(text.split('\r\n')).toHaveLength(snapshot.rows.length + 2);
  });

  it('writes the bytes of the shared writer over reviewCells, on hostile rows', () => {
    const hostile: ReviewSnapshot = {
      ...snapshot,
      trackingSince: null,
      rows: [
        ...snapshot.rows,
        row({
          subjectKey: '"key"',
          subjectType: '=cmd',
          subjectName: 'a,"b"\r\nc',
          resourceType: '',
          resourceId: '-1',
          grantedBy: '@x',
          ticket: '"',
          reason: 'line\nbreak, "quoted"',
          expiresAt: Date.UTC(2026, 1, 1, 12),
          grantEvent: '',
          lastLogin: { state: 'no_data' },
          lastResourceAction: { state: 'used', at: Date.UTC(2025, 11, 31, 23, 59, 59, 999) },
          lastPermissionUse: { state: 'used', at: 0 },
          lastUsed: { state: 'used', at: 0, measure: 'permission' },
          flags: [],
          explanations: [],
        }),
        row({ explanations: ['=1 "a"', '+b'], flags: ['sod_conflict', 'mfa_missing'] }),
      ],
    };
    for (const s of [snapshot, hostile])
      for (const bom of [false, true])
        expect(reviewCsv(s, { bom })).toBe(
          csvHeader(
            REVIEW_COLUMNS.map(([c]) => c),
            { bom },
          ) + csvRows(s.rows.map((r) => reviewCells(r, s))),
        );
  });

  it('starts with a UTF-8 byte order mark only when asked to', () => {
    const text = reviewCsv(snapshot, { bom: true });
    expect(Buffer.from(text, 'utf8').subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    const records = parse(text, { columns: true, bom: true }) as Record<string, string>[];
    expect(records[0]?.['as_of (UTC)']).toBe('2026-03-31 23:59:59');
    expect(records[0]?.['subject_name']).toBe('Zoë Müller');
  });

  it('gives the same rows as JSON and NDJSON, times in the protocol form', () => {
    const json = JSON.parse(reviewFile(snapshot, 'json').body) as {
      asOf: string;
      rows: { subjectName: string; grantedAt: string; lastUsed: unknown }[];
    };
    expect(json.asOf).toBe('2026-03-31T23:59:59.999Z');
    expect(json.rows.map((r) => r.subjectName)).toEqual(snapshot.rows.map((r) => r.subjectName));
    expect(json.rows[0]?.grantedAt).toBe('2025-01-02T03:04:05.678Z');
    expect(json.rows[0]?.lastUsed).toEqual({ state: 'not_used', at: null, measure: 'resource' });
    const lines = reviewNdjson(snapshot).trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[2] ?? '')).toMatchObject({
      asOf: '2026-03-31T23:59:59.999Z',
      subjectId: '李雷',
    });
  });

  it('reads a date as the end of that day in UTC, and refuses what is not a real instant', () => {
    expect(parseAsOf('2026-03-31')).toBe(T);
    expect(parseAsOf('2026-03-31T12:00:00.000Z')).toBe(Date.UTC(2026, 2, 31, 12));
    for (const bad of ['2026-02-30', '31/03/2026', '2026-03-31T12:00:00Z', ''])
      expect(parseAsOf(bad), bad).toBeUndefined();
  });
});
