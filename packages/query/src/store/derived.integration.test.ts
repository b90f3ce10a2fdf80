import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSaltSource, sealEvent, ZERO_HASH } from '@vigil/protocol';
import { searchEvents } from '../search/search.js';
import {
  DERIVED_COLUMN_TYPES,
  DERIVED_PERSONAL_COLUMNS,
  ERASED_VALUES,
  GEO_COLUMNS,
  USER_AGENT_COLUMNS,
  derivedView,
} from './derived.js';
import { eventRow } from './rows.js';
import { openTestStore, type TestStore } from './store.testkit.js';

const salts = randomSaltSource();

function row(id: string, derived: object) {
  const { event, record } = sealEvent(
    {
      id,
      time: '2026-11-20T10:00:00.000Z',
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: 'alice' },
      context: { ip: '81.2.69.160', userAgent: 'Mozilla/5.0' },
    },
    { stream: 's/1', seq: 0, prev: ZERO_HASH },
    salts,
  );
  return {
    ...eventRow(event, record, event.disclosures, {
      tenantId: 'a',
      receivedAt: Date.parse('2026-11-20T10:00:01.000Z'),
      keyId: 'k',
      source: 'sealed',
      submittedDigest: '',
      logPartition: 0,
      logOffset: 0,
      logIndex: 0,
      expiresAt: Math.floor(Date.now() / 1000) + 86_400,
      flags: [],
    }),
    ...derived,
  };
}

describe('derived (enrichment) columns', () => {
  let ts: TestStore;
  beforeAll(async () => {
    ts = await openTestStore();
  });
  afterAll(async () => {
    await ts.cleanup();
  });

  it('exist in events with the declared types, and their defaults are the erased values', async () => {
    const columns = await ts.store.query<{
      name: string;
      type: string;
      default_expression: string;
    }>(
      `SELECT name, type, default_expression FROM system.columns
       WHERE database = {db:String} AND table = 'events'`,
      { db: ts.store.database },
    );
    const byName = new Map(columns.map((c) => [c.name, c]));
    for (const [name, type] of Object.entries(DERIVED_COLUMN_TYPES))
      expect(byName.get(name)?.type, name).toBe(type);
    // A row inserted without them reads back the erased values.
    await ts.store.insert(ts.store.table('events'), [
      row('0193a4b2-6c1e-7000-8000-000000000001', {}),
    ]);
    const [stored] = await ts.store.query<Record<string, unknown>>(
      `SELECT ${Object.keys(ERASED_VALUES).join(', ')} FROM ${ts.store.table('events')}`,
    );
    expect(stored).toEqual(ERASED_VALUES);
  });

  it('are all listed under the personal field they come from', () => {
    expect(DERIVED_PERSONAL_COLUMNS).toEqual({
      '/context/ip': GEO_COLUMNS,
      '/context/userAgent': USER_AGENT_COLUMNS,
    });
    expect([...GEO_COLUMNS, ...USER_AGENT_COLUMNS].sort()).toEqual(
      Object.keys(DERIVED_COLUMN_TYPES).sort(),
    );
  });

  it('show in search results as geo and ua, only when known', async () => {
    await ts.store.insert(ts.store.table('events'), [
      row('0193a4b2-6c1e-7000-8000-000000000002', {
        geo_country: 'GB',
        geo_region: 'England',
        geo_city: 'London',
        geo_latitude: 51.5142,
        geo_longitude: -0.0931,
        geo_asn: 20712,
        geo_as_org: 'Andrews & Arnold',
        ua_browser: 'Chrome',
        ua_browser_version: '124.0.0.0',
        ua_os: 'Windows',
        ua_os_version: '10',
        ua_device: 'desktop',
      }),
    ]);
    const page = await searchEvents(ts.store, 'a', { order: 'asc' });
    expect(page.events[0]?.server).not.toHaveProperty('geo');
    expect(page.events[0]?.server).not.toHaveProperty('ua');
    expect(page.events[1]?.server).toMatchObject({
      geo: {
        country: 'GB',
        region: 'England',
        city: 'London',
        latitude: expect.closeTo(51.5142, 3) as number,
        longitude: expect.closeTo(-0.0931, 3) as number,
        asn: 20712,
        asOrganization: 'Andrews & Arnold',
      },
      ua: {
        browser: 'Chrome',
        browserVersion: '124.0.0.0',
        os: 'Windows',
        osVersion: '10',
        device: 'desktop',
      },
    });
  });

  it('view: text and numbers as returned, nothing for empty values', () => {
    expect(derivedView({ geo_country: 'FR', geo_asn: '3215', geo_latitude: null })).toEqual({
      geo: { country: 'FR', asn: 3215 },
    });
    expect(derivedView({ ...ERASED_VALUES })).toEqual({});
  });
});
