import { parse } from 'csv-parse/sync';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSaltSource, sealEvent, ZERO_HASH, type EventInput } from '@vigil/protocol';
import type { EventRow } from '../store/event-columns.js';
import { eventRow, type EventFlag } from '../store/rows.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { hourlyCounts } from '../rollups/hourly.js';
import { LinkSigner } from '../links/signed.js';
import { facet, histogram, bucketFor } from './aggregate.js';
import { csvRecord, EXPORT_COLUMNS, prepareExport } from './export.js';
import { csvHeader, csvRows } from '../export/csv.js';
import type { SearchFilters } from './filters.js';
import { searchEvents } from './search.js';

/**
 * Analyst search on chDB: every filter against a known history, cursors under concurrent
 * inserts, facets and histogram against plain counts, exports that say whether they are
 * complete, and the hourly rollup. Times are counted back from the engine's clock (rows expire
 * against it), never from a calendar date.
 */

const salts = randomSaltSource();
let T0 = 0;
let nextSeq = 0;
let prev = ZERO_HASH;

interface Extra {
  country?: string;
  asn?: number;
  browser?: string;
  flags?: EventFlag[];
  restricted?: boolean;
}

function row(
  tenant: string,
  i: number,
  input: EventInput,
  extra: Extra = {},
  stream = 'app/1',
): EventRow {
  const time = T0 + i * 60_000;
  const full: EventInput & { id: string; time: string } = {
    ...input,
    id: `0193a4b2-6c1e-7000-8000-${String(nextSeq).padStart(12, '0')}`,
    time: new Date(time).toISOString(),
  };
  const { event, record } = sealEvent(full, { stream, seq: nextSeq, prev }, salts);
  prev = event.hash;
  const r = eventRow(event, record, event.disclosures, {
    tenantId: tenant,
    receivedAt: time + 5,
    keyId: 'k',
    source: 'sealed',
    submittedDigest: '',
    logPartition: 0,
    logOffset: nextSeq,
    logIndex: 0,
    expiresAt: Math.floor(T0 / 1000) + 86_400 * 400,
    flags: extra.flags ?? [],
  });
  nextSeq++;
  if (extra.country !== undefined) r.geo_country = extra.country;
  if (extra.asn !== undefined) r.geo_asn = extra.asn;
  if (extra.browser !== undefined) r.ua_browser = extra.browser;
  if (extra.restricted) r.restricted_by = ['rst_1'];
  return r;
}

/** 40 events of tenant a: each property on a known subset. */
function history(tenant: string, from: number, count: number): EventRow[] {
  const rows: EventRow[] = [];
  for (let i = from; i < from + count; i++) {
    rows.push(
      row(
        tenant,
        i,
        {
          action: i % 2 === 0 ? 'user.login' : i % 3 === 0 ? 'user.logout' : 'document.viewed',
          category: i % 2 === 0 ? 'authentication' : 'data_access',
          outcome: i % 5 === 0 ? 'failure' : 'success',
          actor: { type: 'user', id: `u-${i % 4}` },
          target: { type: 'document', id: `doc-${i % 3}` },
          context: {
            ip: i % 2 === 0 ? `203.0.113.${i}` : `2001:db8::${i.toString(16)}`,
            userAgent: 'Mozilla/5.0',
            sessionId: `sess-${i % 5}`,
            requestId: `req-${i}`,
          },
          metadata: { plan: i % 2 === 0 ? 'pro' : 'free', note: `Invoice ${i} für Zoë`, n: i },
          ...(i === 7
            ? {
                access: {
                  change: 'grant',
                  subject: { type: 'user', id: 'u-9' },
                  role: 'admin',
                  resource: { type: 'project', id: 'prj-1' },
                },
              }
            : {}),
        },
        {
          country: i % 3 === 0 ? 'FR' : 'DE',
          asn: i % 2 === 0 ? 64500 : 64501,
          browser: i % 4 === 0 ? 'Firefox' : 'Chrome',
          flags: i === 11 ? ['gap'] : i === 12 ? ['backfill'] : [],
          restricted: i === 13,
        },
      ),
    );
  }
  return rows;
}

describe('analyst search', () => {
  let ts: TestStore;
  let all: EventRow[];

  beforeAll(async () => {
    ts = await openTestStore();
    T0 = Math.floor((await ts.now()) / 3_600_000) * 3_600_000 - 10 * 86_400_000;
    all = history('a', 0, 40);
    await ts.store.insert(ts.store.table('events'), all);
    await ts.store.insert(ts.store.table('events'), history('b', 0, 5));
  });
  afterAll(async () => {
    await ts?.cleanup();
  });

  /** Every event of tenant a the search returns (one page of up to 1000). */
  const ids = async (f: SearchFilters) =>
    (await searchEvents(ts.store, 'a', { ...f, limit: 1000 })).events.map((e) => e.event['id']);
  /** The ids the same predicate picks from the inserted rows (restricted ones left out). */
  const expected = (pick: (r: EventRow, i: number) => boolean) =>
    all
      .filter((r, i) => (r.restricted_by ?? []).length === 0 && pick(r, i))
      .map((r) => r.id)
      .reverse();

  it('filters on every typed field, each against the rows it must pick', async () => {
    const cases: [SearchFilters, (r: EventRow, i: number) => boolean][] = [
      [
        {
          from: new Date(T0 + 10 * 60_000).toISOString(),
          to: new Date(T0 + 15 * 60_000).toISOString(),
        },
        (_r, i) => i >= 10 && i < 15,
      ],
      [{ actor: 'u-1' }, (r) => r.actor_id === 'u-1'],
      [{ action: 'user.*' }, (r) => r.action.startsWith('user.')],
      [{ action: 'user.logout' }, (r) => r.action === 'user.logout'],
      [{ category: ['data_access'] }, (r) => r.category === 'data_access'],
      [{ outcome: ['failure'] }, (r) => r.outcome === 'failure'],
      [{ target: 'doc-2' }, (r) => r.target_id === 'doc-2'],
      [{ resource: 'prj-1' }, (_r, i) => i === 7],
      [{ resourceType: 'project' }, (_r, i) => i === 7],
      [{ ip: '203.0.113.4' }, (_r, i) => i === 4],
      [{ ip: '203.0.113.0/28' }, (_r, i) => i % 2 === 0 && i < 16],
      [{ ip: '2001:db8::/120' }, (_r, i) => i % 2 === 1],
      [{ ip: '2001:db8::b' }, (_r, i) => i === 11],
      [{ country: ['FR'] }, (_r, i) => i % 3 === 0],
      [{ asn: [64501] }, (_r, i) => i % 2 === 1],
      [{ browser: ['Firefox'] }, (_r, i) => i % 4 === 0],
      [{ session: 'sess-3' }, (_r, i) => i % 5 === 3],
      [{ request: 'req-21' }, (_r, i) => i === 21],
      [{ meta: ['plan=pro'] }, (_r, i) => i % 2 === 0],
      [{ meta: ['n=17'] }, (_r, i) => i === 17],
      [{ meta: ['plan=pro', 'n=4'] }, (_r, i) => i === 4],
      [{ q: 'INVOICE 3 FÜR' }, (_r, i) => i === 3],
      [{ q: 'invoice 3' }, (_r, i) => i === 3 || (i >= 30 && i < 40)],
      [{ flag: ['gap', 'backfill'] }, (_r, i) => i === 11 || i === 12],
    ];
    for (const [filters, pick] of cases) {
      const want = expected(pick);
      expect(want.length, JSON.stringify(filters)).toBeGreaterThan(0);
      expect(await ids(filters), JSON.stringify(filters)).toEqual(want);
    }
    // Restricted events stay hidden whatever the filter.
    expect(await ids({ request: 'req-13' })).toEqual([]);
  });

  it('refuses bad input with a 400 naming each field', async () => {
    await expect(
      searchEvents(ts.store, 'a', {
        ip: '300.1.1.1/8',
        country: ['france'],
        asn: [-1],
        meta: ['=x', 'a..b=1'],
        q: '',
      }),
    ).rejects.toMatchObject({
      status: 400,
      details: expect.arrayContaining([
        expect.objectContaining({ path: '/ip' }),
        expect.objectContaining({ path: '/country' }),
        expect.objectContaining({ path: '/asn' }),
        expect.objectContaining({ path: '/meta' }),
        expect.objectContaining({ path: '/q' }),
      ]),
    });
    await expect(searchEvents(ts.store, 'a', { ip: '10.0.0.0/33' })).rejects.toMatchObject({
      details: [expect.objectContaining({ path: '/ip' })],
    });
  });

  it('treats hostile values as values', async () => {
    expect(await ids({ meta: ["plan=pro' OR '1'='1"] })).toEqual([]);
    await expect(ids({ meta: ["plan') OR 1=1 --=pro"] })).rejects.toMatchObject({
      details: [expect.objectContaining({ path: '/meta' })],
    });
    expect(await ids({ q: "'; DROP TABLE events; --" })).toEqual([]);
  });

  it('pages stably while events arrive between pages, each old event once, no new one', async () => {
    const seen: unknown[] = [];
    let page = await searchEvents(ts.store, 'a', { limit: 7, action: 'user.*' });
    seen.push(...page.events.map((e) => e.event['id']));
    // Events arrive between pages: some sort before the cursor (an older time, backfilled),
    // some after, some newest of all.
    const late = [
      row('a', 41, {
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'u-1' },
      }),
    ];
    const backfilled = row('a', 1, {
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: 'u-1' },
    });
    // Received after the search's snapshot (the engine's clock when the first page ran).
    const arrival = (await ts.now()) + 20;
    backfilled.received_at = arrival;
    late[0]!.received_at = arrival;
    await ts.store.insert(ts.store.table('events'), [...late, backfilled]);
    while (page.nextCursor) {
      page = await searchEvents(ts.store, 'a', {
        limit: 7,
        action: 'user.*',
        cursor: page.nextCursor,
      });
      seen.push(...page.events.map((e) => e.event['id']));
    }
    expect(seen).toEqual(expected((r) => r.action.startsWith('user.')));
    // A search started after they arrived sees them.
    while ((await ts.now()) <= arrival) await new Promise((r) => setTimeout(r, 10));
    expect(await ids({ action: 'user.*' })).toContain(backfilled.id);
    // Clean up for the other tests: the late rows are removed again.
    await ts.store.command(
      `DELETE FROM ${ts.store.table('events')} WHERE id IN {ids:Array(UUID)}`,
      { ids: [late[0]!.id, backfilled.id] },
    );
  });

  it('refuses a cursor of other filters, or an altered one', async () => {
    const page = await searchEvents(ts.store, 'a', { limit: 5, actor: 'u-1' });
    await expect(
      searchEvents(ts.store, 'a', { limit: 5, actor: 'u-2', cursor: page.nextCursor as string }),
    ).rejects.toMatchObject({ code: 'VIGIL_ERR_INVALID_CURSOR', status: 400 });
    const mac = new LinkSigner(randomBytes(32));
    const signed = await searchEvents(ts.store, 'a', { limit: 5 }, { cursorMac: mac });
    const cursor = signed.nextCursor as string;
    await expect(
      searchEvents(ts.store, 'a', { limit: 5, cursor }, { cursorMac: mac }),
    ).resolves.toMatchObject({ events: expect.any(Array) });
    // The body of a cursor names where the page starts: a forged one (one that starts on
    // another event, skipping the record of a search) is refused.
    const body = JSON.parse(
      Buffer.from(cursor.split('.')[0] as string, 'base64url').toString(),
    ) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...body, t: 0 })).toString('base64url');
    await expect(
      searchEvents(
        ts.store,
        'a',
        { limit: 5, cursor: `${forged}.${cursor.split('.')[1]}` },
        { cursorMac: mac },
      ),
    ).rejects.toMatchObject({ code: 'VIGIL_ERR_INVALID_CURSOR' });
    await expect(
      searchEvents(
        ts.store,
        'a',
        { limit: 5, cursor: cursor.replace(/\.[^.]*$/, '.forged') },
        { cursorMac: mac },
      ),
    ).rejects.toMatchObject({ code: 'VIGIL_ERR_INVALID_CURSOR' });
  });

  it('counts facets as a plain count does', async () => {
    const f = await facet(ts.store, 'a', { category: ['data_access'] }, 'country', 10);
    const plain = await ts.store.query<{ value: string; n: string }>(
      `SELECT geo_country AS value, count() AS n FROM ${ts.store.table('events')}
       WHERE tenant_id = 'a' AND category = 'data_access' AND empty(restricted_by)
       GROUP BY value ORDER BY n DESC, value`,
    );
    expect(f.values).toEqual(plain.map((p) => ({ value: p.value, count: Number(p.n) })));
    expect(f.total).toBe(plain.reduce((s, p) => s + Number(p.n), 0));
    expect(f.other).toBe(0);
    const top = await facet(ts.store, 'a', {}, 'actor', 1);
    expect(top.values).toHaveLength(1);
    expect(top.total).toBe(39);
    expect(top.other).toBe(39 - (top.values[0]?.count ?? 0));
    const flags = await facet(ts.store, 'a', {}, 'flag');
    expect(flags.values).toEqual([
      { value: 'backfill', count: 1 },
      { value: 'gap', count: 1 },
    ]);
    await expect(facet(ts.store, 'a', {}, 'record')).rejects.toMatchObject({
      status: 400,
      details: [expect.objectContaining({ path: '/field' })],
    });
  });

  it('draws a histogram whose buckets add up to the plain count', async () => {
    const from = new Date(T0).toISOString();
    const to = new Date(T0 + 40 * 60_000).toISOString();
    const h = await histogram(ts.store, 'a', { from, to, outcome: ['success'] });
    expect(h.bucketSeconds).toBe(60);
    expect(h.buckets).toHaveLength(40);
    const [plain] = await ts.store.query<{ n: string }>(
      `SELECT count() AS n FROM ${ts.store.table('events')}
       WHERE tenant_id = 'a' AND outcome = 'success' AND empty(restricted_by)
         AND time >= {from:DateTime64(3)} AND time < {to:DateTime64(3)}`,
      { from: from.replace('T', ' ').slice(0, 23), to: to.replace('T', ' ').slice(0, 23) },
    );
    expect(h.total).toBe(Number(plain?.n));
    expect(h.buckets[5]).toEqual({ start: new Date(T0 + 5 * 60_000).toISOString(), count: 0 });
    expect(h.buckets[6]?.count).toBe(1);
    // Wider ranges take wider buckets: 30 days → 6 h (120 buckets), 1 year → 1 day.
    expect(bucketFor(30 * 86_400_000)).toBe(6 * 3600);
    expect(bucketFor(3 * 3_600_000)).toBe(60);
    expect(bucketFor(365 * 86_400_000)).toBe(86_400);
    const month = await histogram(ts.store, 'a', {
      from: new Date(T0 - 20 * 86_400_000).toISOString(),
      to: new Date(T0 + 10 * 86_400_000).toISOString(),
    });
    expect(month.bucketSeconds).toBe(6 * 3600);
    expect(month.total).toBe(39);
  });

  it('exports every matching event, or says it was cut, with the count', async () => {
    const text = async (p: Awaited<ReturnType<typeof prepareExport>>) => {
      let out = '';
      for await (const chunk of p.stream()) out += chunk;
      return out;
    };
    const full = await prepareExport(ts.store, 'a', { actor: 'u-1' }, { format: 'ndjson' });
    // u-1 acts in 10 events, one of them restricted: 9 to export.
    expect(full).toMatchObject({ complete: true, count: 9 });
    const lines = (await text(full))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(10);
    expect(lines[9]).toMatchObject({ vigilExport: { complete: true, count: 9, matched: 9 } });
    const cut = await prepareExport(
      ts.store,
      'a',
      { actor: 'u-1' },
      { format: 'ndjson', limit: 4 },
    );
    expect(cut).toMatchObject({ complete: false, count: 4 });
    const cutLines = (await text(cut)).trim().split('\n');
    expect(cutLines).toHaveLength(5);
    expect(JSON.parse(cutLines[4] as string)).toMatchObject({
      vigilExport: { complete: false, count: 4, matchedMoreThan: 4 },
    });
    const csv = await prepareExport(
      ts.store,
      'a',
      { meta: ['plan=pro'] },
      { format: 'csv', bom: true },
    );
    const body = await text(csv);
    expect(body.startsWith('\ufeff')).toBe(true);
    const records = parse(body, { bom: true, columns: true }) as Record<string, string>[];
    expect(Object.keys(records[0] as object)).toEqual([...EXPORT_COLUMNS]);
    expect(records).toHaveLength(csv.count);
    expect(records[0]?.['metadata']).toContain('für Zoë');
    expect(records[0]?.['time (UTC)']).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  it('exports over many store queries as in one, each event once, in both orders', async () => {
    const all = async (format: 'csv' | 'ndjson', batchRows?: number, order?: 'asc' | 'desc') => {
      const filters: SearchFilters = order ? { order } : {};
      const p = await prepareExport(ts.store, 'a', filters, {
        format,
        ...(batchRows ? { batchRows } : {}),
      });
      let out = '';
      for await (const chunk of p.stream()) out += chunk;
      // The NDJSON summary names the snapshot, which differs between exports.
      return out.replace(/"snapshot":"[^"]*"/, '');
    };
    for (const format of ['csv', 'ndjson'] as const)
      for (const order of ['asc', 'desc'] as const) {
        const one = await all(format, undefined, order);
        expect(await all(format, 7, order)).toBe(one);
        expect(await all(format, 1, order)).toBe(one);
      }
    expect((await all('ndjson')).trim().split('\n')).toHaveLength(40); // 39 events + the summary
  });

  it('writes CSV from the typed columns exactly as from the search items', async () => {
    // Tenant c: plain events, one with personal metadata (a commitment in the record, its value
    // disclosed), one corrected by a correction on a Vigil admin stream.
    const base = (i: number, extra: Partial<EventInput> = {}) =>
      row('c', i, {
        action: 'invoice.paid',
        category: 'data_change',
        outcome: 'success',
        actor: { type: 'user', id: `u-${i}`, name: `=cmd|' /C calc'!A${i}` },
        context: { ip: i % 2 ? '192.0.2.1' : '2001:db8::1', sessionId: `s-${i}` },
        metadata: { amount: i * 10, note: `Zoë ${i}` },
        ...extra,
      });
    const plain = [base(0), base(1), base(2)];
    const personal = base(3, { personal: ['/metadata/note', '/actor/id'] });
    const target = base(4);
    const correction = row(
      'c',
      5,
      {
        action: 'event.corrected',
        category: 'data_change',
        outcome: 'success',
        actor: { type: 'api_key', id: 'k-admin' },
        target: { type: 'event', id: target.id },
        corrects: { event: target.id, hash: target.hash },
        metadata: { corrected: { '/outcome': 'failure' }, reason: 'test' },
      },
      {},
      'vigil/admin/h/1',
    );
    await ts.store.insert(ts.store.table('events'), [...plain, personal, target, correction]);
    const p = await prepareExport(ts.store, 'c', {}, { format: 'csv' });
    let body = '';
    for await (const chunk of p.stream()) body += chunk;
    const items = (await searchEvents(ts.store, 'c', { limit: 1000 })).events;
    expect(items.find((i) => i.event['id'] === target.id)?.event['outcome']).toBe('failure');
    expect(items.find((i) => i.event['id'] === personal.id)?.personal).toMatchObject({
      '/metadata/note': 'disclosed',
    });
    expect(body).toBe(csvHeader(EXPORT_COLUMNS) + csvRows(items.map(csvRecord)));
    expect(body).toContain(`"'=cmd|`); // the formula guard
    // In batches: those without a row that needs the item view are the engine's text as it is
    // (FORMAT RawBLOB), the others are joined in Node; the bytes are the same.
    for (const batchRows of [1, 2, 4]) {
      const b = await prepareExport(ts.store, 'c', {}, { format: 'csv', batchRows });
      let batched = '';
      for await (const chunk of b.stream()) batched += chunk;
      expect(batched).toBe(body);
    }
  });

  it('keeps hourly counts by category, action, outcome and country', async () => {
    const rows = await hourlyCounts(ts.store, 'a', {
      from: new Date(T0).toISOString(),
      to: new Date(T0 + 3_600_000).toISOString(),
      by: ['category'],
    });
    // Counts every stored event (restricted ones too: counts only, no personal value), and the
    // two that the paging test inserted and deleted again: counts outlive their events.
    expect(rows).toEqual([
      { hour: new Date(T0).toISOString(), category: 'authentication', events: 22 },
      { hour: new Date(T0).toISOString(), category: 'data_access', events: 20 },
    ]);
    // An erasure writes rows again with row_version + 1: not counted again.
    await ts.store.insert(
      ts.store.table('events'),
      all.slice(0, 3).map((r) => ({ ...r, row_version: 1, geo_country: '' })),
    );
    const after = await hourlyCounts(ts.store, 'a', {
      from: new Date(T0).toISOString(),
      to: new Date(T0 + 3_600_000).toISOString(),
    });
    expect(after).toEqual([{ hour: new Date(T0).toISOString(), events: 42 }]);
    await expect(
      hourlyCounts(ts.store, 'a', { from: 'x', to: new Date(T0).toISOString(), by: ['actor_id'] }),
    ).rejects.toMatchObject({ status: 400 });
  });
});
