import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSaltSource, sealEvent, ZERO_HASH, type EventInput } from '@vigil/protocol';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { eventRow } from '../store/rows.js';
import { keysetSql } from './filters.js';
import { searchEvents } from './search.js';

const salts = randomSaltSource();
/**
 * Thirty days before the engine's clock, to the minute: the search keeps only rows whose
 * expiry is after the engine's now(), so times counted from a fixed date would fail one day.
 */
let T0 = 0;

async function seed(ts: TestStore, tenant: string, count: number): Promise<void> {
  const rows = [];
  let prev = ZERO_HASH;
  for (let i = 0; i < count; i++) {
    const input: EventInput & { id: string; time: string } = {
      id: `0193a4b2-6c1e-7000-8000-${String(i).padStart(12, '0')}`,
      time: new Date(T0 + i * 60_000).toISOString(),
      action: i % 2 === 0 ? 'user.login' : 'document.viewed',
      category: i % 2 === 0 ? 'authentication' : 'data_access',
      outcome: i % 5 === 0 ? 'failure' : 'success',
      actor: { type: 'user', id: `u-${i % 4}` },
      target: { type: 'document', id: `doc-${i % 3}` },
    };
    const { event, record } = sealEvent(input, { stream: 's/1', seq: i, prev }, salts);
    prev = event.hash;
    rows.push(
      eventRow(event, record, event.disclosures, {
        tenantId: tenant,
        receivedAt: T0 + i * 60_000 + 5,
        keyId: 'k',
        source: 'sealed',
        submittedDigest: '',
        logPartition: 0,
        logOffset: i,
        logIndex: 0,
        expiresAt: Math.floor(T0 / 1000) + 86_400 * 400,
        flags: [],
      }),
    );
  }
  await ts.store.insert(ts.store.table('events'), rows);
}

describe('searchEvents', () => {
  let ts: TestStore;
  beforeAll(async () => {
    ts = await openTestStore();
    T0 = Math.floor((await ts.now()) / 60_000) * 60_000 - 30 * 86_400_000;
    await seed(ts, 'a', 25);
    await seed(ts, 'b', 5);
  });
  afterAll(async () => {
    await ts.cleanup();
  });

  it('pages through a tenant newest first with a cursor, each event once', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await searchEvents(
        ts.store,
        'a',
        cursor ? { limit: 10, cursor } : { limit: 10 },
      );
      seen.push(...page.events.map((e) => String(e.event['id'])));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    expect(seen[0]).toBe('0193a4b2-6c1e-7000-8000-000000000024');
  });

  it('filters by time, actor, action prefix, category, outcome and target', async () => {
    const q = (f: Parameters<typeof searchEvents>[2]) =>
      searchEvents(ts.store, 'a', { ...f, limit: 100 }).then((p) => p.events);
    expect(
      await q({
        from: new Date(T0 + 10 * 60_000).toISOString(),
        to: new Date(T0 + 12 * 60_000).toISOString(),
      }),
    ).toHaveLength(2);
    expect(
      (await q({ actor: 'u-1' })).every((e) => (e.event['actor'] as { id: string }).id === 'u-1'),
    ).toBe(true);
    expect(await q({ action: 'user.*' })).toHaveLength(13);
    expect(await q({ category: ['data_access'], outcome: ['failure'] })).toHaveLength(2);
    expect(await q({ target: 'doc-0', order: 'asc' })).toHaveLength(9);
  });

  it("never returns another tenant's events", async () => {
    const b = await searchEvents(ts.store, 'b', { limit: 100 });
    expect(b.events).toHaveLength(5);
    expect((await searchEvents(ts.store, 'nobody', {})).events).toHaveLength(0);
  });

  it('rejects bad parameters, naming each', async () => {
    await expect(
      searchEvents(ts.store, 'a', { from: 'yesterday', limit: 0, category: ['x'] }),
    ).rejects.toMatchObject({
      code: 'VIGIL_ERR_INVALID_QUERY',
      status: 400,
      details: expect.arrayContaining([
        expect.objectContaining({ path: '/from' }),
        expect.objectContaining({ path: '/limit' }),
        expect.objectContaining({ path: '/category' }),
      ]),
    });
    await expect(searchEvents(ts.store, 'a', { cursor: 'garbage' })).rejects.toMatchObject({
      code: 'VIGIL_ERR_INVALID_CURSOR',
    });
  });

  it('treats hostile filter values as values, never as SQL', async () => {
    const events = await searchEvents(ts.store, 'a', {
      actor: "u-1' OR 1=1 --",
      target: "') OR ('1'='1",
    });
    expect(events.events).toHaveLength(0);
  });
  it('bounds a keyset by time so that the sorting key skips what is before the cursor', async () => {
    // The plan of the condition a page or export batch after a cursor adds: the primary key's
    // condition must bound `time` (a tuple comparison alone reads every granule of the tenant).
    for (const [desc, inclusive] of [
      [true, false],
      [false, false],
      [true, true],
      [false, true],
    ] as const) {
      const plan = await ts.store.query<Record<string, string>>(
        `EXPLAIN indexes = 1 SELECT id FROM ${ts.store.table('events')}
         WHERE tenant_id = {tenant:String} AND ${keysetSql(desc, 'ct', 'cid', inclusive)}`,
        {
          tenant: 'a',
          ct: new Date(T0 + 10 * 60_000).toISOString().replace('T', ' ').slice(0, 23),
          cid: '0193a4b2-6c1e-7000-8000-000000000010',
        },
      );
      const lines = plan.map((r) => String(Object.values(r)[0]));
      const key = lines.findIndex((l) => l.trim() === 'PrimaryKey');
      expect(key).toBeGreaterThan(-1);
      const condition = lines.slice(key).find((l) => l.trim().startsWith('Condition:'));
      expect(condition).toMatch(/\(time in /);
    }
    // And it selects the rows the tuple comparison alone selects.
    const after = await searchEvents(ts.store, 'a', { limit: 10 });
    const next = await searchEvents(ts.store, 'a', {
      limit: 100,
      cursor: String(after.nextCursor),
    });
    expect(next.events.map((e) => e.event['id'])).toEqual(
      Array.from(
        { length: 15 },
        (_, i) => `0193a4b2-6c1e-7000-8000-${String(14 - i).padStart(12, '0')}`,
      ),
    );
  });
});
