import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_COLUMN_TYPES } from './event-columns.js';
import { storeEvents } from './events.testkit.js';
import { RowBinaryCodec } from './row-binary.js';
import { openTestStore, type TestStore } from './store.testkit.js';

/**
 * The encoder against the engine: every value written in RowBinary is read back by the store
 * (chDB here, a ClickHouse server with VIGIL_TEST_CLICKHOUSE_URL) exactly as it was meant.
 */
describe('RowBinary inserts into the store', () => {
  let t: TestStore;
  beforeAll(async () => {
    t = await openTestStore();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const TYPES = {
    s: 'String',
    lc: 'LowCardinality(String)',
    fixed: 'FixedString(64)',
    id: 'UUID',
    t64: "DateTime64(3, 'UTC')",
    t32: "DateTime('UTC')",
    u8: 'UInt8',
    u32: 'UInt32',
    u64: 'UInt64',
    ip: 'Nullable(IPv6)',
    f32: 'Nullable(Float32)',
    nu32: 'Nullable(UInt32)',
    arr: 'Array(String)',
    lcarr: 'Array(LowCardinality(String))',
    map: 'Map(String, String)',
    dflt: "String DEFAULT 'the default'",
  };

  const hostile = [
    '',
    'plain',
    'é€𝄞 — non-ASCII',
    'NUL\u0000in\u0000the middle\u0000',
    '\t\n\r leading whitespace and ; ',
    'x'.repeat(127),
    'y'.repeat(128),
    'z'.repeat(100_000),
    '"quoted" \\ back\\slash',
  ];

  it('reads back every type and hostile text exactly', async () => {
    const table = t.store.table('rb_types');
    const columns = Object.entries(TYPES)
      .map(([name, type]) => `${name} ${type}`)
      .join(', ');
    await t.store.command(
      `CREATE TABLE ${table} (n UInt32, ${columns}) ENGINE = MergeTree ORDER BY n`,
    );
    const rows = hostile.map((text, n) => ({
      n,
      s: text,
      lc: text,
      fixed: n % 2 === 0 ? 'ab'.repeat(32) : 'short',
      id: `0193a4b2-6c1e-7000-8000-${String(n).padStart(12, '0')}`,
      t64: n % 2 === 0 ? Date.UTC(2026, 0, 2, 3, 4, 5, n) : `2299-12-31 23:59:59.99${n}`,
      t32: 1_700_000_000 + n,
      u8: 255 - n,
      u32: 4_294_967_295 - n,
      u64: Number.MAX_SAFE_INTEGER - n,
      ip: [null, '::1', '::ffff:192.168.0.1', '2001:db8::8a2e:370:7334'][n % 4] ?? null,
      f32: n % 3 === 0 ? null : 1.5 * n,
      nu32: n % 3 === 1 ? null : n,
      arr: n === 0 ? [] : [text, '', text],
      lcarr: [text, 'x'],
      map: n === 0 ? {} : { [text]: text, k: '' },
      ...(n % 2 === 0 ? {} : { dflt: text }),
    }));
    const all = new RowBinaryCodec({ n: 'UInt32', ...TYPES, dflt: 'String' });
    await t.store.insertRowBinary(table, all.names, all.encode(rows).chunks());
    const back = await t.store.query<Record<string, unknown>>(
      `SELECT n, hex(s) AS s, hex(lc) AS lc, hex(fixed) AS fixed, toString(id) AS id,
              toUnixTimestamp64Milli(t64) AS t64, toUnixTimestamp(t32) AS t32, u8, u32, toString(u64) AS u64,
              toString(ip) AS ip, f32, nu32, arrayMap(x -> hex(x), arr) AS arr,
              arrayMap(x -> hex(x), lcarr) AS lcarr,
              arrayMap(k -> (hex(k), hex(map[k])), mapKeys(map)) AS map, dflt
       FROM ${table} ORDER BY n`,
    );
    const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex').toUpperCase();
    expect(back).toHaveLength(rows.length);
    rows.forEach((row, n) => {
      const got = back[n] as Record<string, unknown>;
      expect(Number(got['n'])).toBe(n);
      expect(got['s'], `s of row ${n}`).toBe(hex(row.s));
      expect(got['lc']).toBe(hex(row.lc));
      // FixedString pads a shorter value with NUL bytes.
      expect(got['fixed']).toBe(hex(row.fixed.padEnd(64, '\u0000')));
      expect(got['id']).toBe(row.id);
      expect(Number(got['t64'])).toBe(
        typeof row.t64 === 'number' ? row.t64 : Date.parse(row.t64.replace(' ', 'T') + 'Z'),
      );
      expect(Number(got['t32'])).toBe(row.t32);
      expect(Number(got['u8'])).toBe(row.u8);
      expect(Number(got['u32'])).toBe(row.u32);
      expect(got['u64']).toBe(String(row.u64));
      expect(got['ip']).toBe(row.ip);
      expect(got['f32']).toBe(row.f32);
      expect(got['nu32'] === null ? null : Number(got['nu32'])).toBe(row.nu32);
      expect(got['arr']).toEqual(row.arr.map(hex));
      expect(got['lcarr']).toEqual(row.lcarr.map(hex));
      expect(got['map']).toEqual(Object.entries(row.map).map(([k, v]) => [hex(k), hex(v)]));
      // A value left out takes the column's DEFAULT, as in JSONEachRow.
      expect(got['dflt']).toBe(row.dflt ?? 'the default');
    });
  });

  it('stores the record bytes as given, without re-encoding them', async () => {
    const table = t.store.table('rb_bytes');
    await t.store.command(
      `CREATE TABLE ${table} (n UInt8, record String) ENGINE = MergeTree ORDER BY n`,
    );
    // Bytes that are no UTF-8 at all, and a JSON text with escapes left as they are.
    const records = [
      Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x09]),
      Buffer.from('{"a":"\\u0000\\n"}'),
    ];
    const c = new RowBinaryCodec({ n: 'UInt8', record: 'String' });
    await t.store.insertRowBinary(
      table,
      c.names,
      c.encode(records.map((record, n) => ({ n, record: record.subarray(0) }))).chunks(),
    );
    const back = await t.store.query<{ record: string }>(
      `SELECT hex(record) AS record FROM ${table} ORDER BY n`,
    );
    expect(back.map((r) => r.record)).toEqual(records.map((r) => r.toString('hex').toUpperCase()));
  });

  it('writes IPv6 addresses as the engine parses their text', async () => {
    const table = t.store.table('rb_ip');
    await t.store.command(
      `CREATE TABLE ${table} (text String, ip IPv6) ENGINE = MergeTree ORDER BY text`,
    );
    const texts = [
      '::',
      '::1',
      '1::',
      '1:2:3:4:5:6:7:8',
      '1:2:3:4:5:6::8',
      '1::8',
      'fe80::1:2',
      '2001:DB8:0:0:8:800:200C:417A',
      'ff01::101',
      '::ffff:0.0.0.0',
      '::ffff:255.255.255.255',
      '::1.2.3.4',
      '64:ff9b::192.0.2.33',
      '1:2:3:4:5:6:1.2.3.4',
      '0:0:0:0:0:ffff:7f00:1',
    ];
    const c = new RowBinaryCodec({ text: 'String', ip: 'IPv6' });
    await t.store.insertRowBinary(
      table,
      c.names,
      c.encode(texts.map((text) => ({ text, ip: text }))).chunks(),
    );
    // (Aliases must not reuse column names: ClickHouse resolves them in WHERE too.)
    const differ = await t.store.query<{ text: string; ours: string; engine: string }>(
      `SELECT text, toString(ip) AS ours, toString(toIPv6(text)) AS engine FROM ${table} WHERE ip != toIPv6(text)`,
    );
    expect(differ).toEqual([]);
    const count = await t.store.query<{ c: string | number }>(`SELECT count() AS c FROM ${table}`);
    expect(Number(count[0]?.c)).toBe(texts.length);
  });

  it('names every column of events with its type in the migrated table', async () => {
    const columns = await t.store.query<{ name: string; type: string }>(
      `SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'events'`,
      { db: t.store.database },
    );
    const types = new Map(columns.map((c) => [c.name, c.type]));
    for (const [name, type] of Object.entries(EVENT_COLUMN_TYPES))
      expect(types.get(name), name).toBe(type);
  });

  it('stores an event row exactly as the JSON insert stored it', async () => {
    // The same rows, once through JSONEachRow (storeEvents) and once in RowBinary: every column
    // of the two copies is equal.
    const now = await t.now();
    const rows = await storeEvents(t.store, 'json', [
      {
        input: {
          action: 'document.viewed',
          category: 'data_access',
          outcome: 'success',
          actor: { type: 'user', id: 'u-1', email: 'ann@example.com', name: 'Ann\u0000é' },
          target: { type: 'document', id: 'd-1', name: '' },
          context: { ip: '10.1.2.3', userAgent: 'Mozilla/5.0 €' },
          metadata: { text: 'x'.repeat(3000) },
        },
        receivedAt: now,
        expiresAt: Math.floor(now / 1000) + 86_400,
      },
      {
        input: {
          action: 'access.granted',
          category: 'access_change',
          outcome: 'success',
          actor: { type: 'user', id: 'u-2' },
          access: { change: 'grant', subject: { type: 'user', id: 'u-3' }, role: 'admin' },
          context: { ip: '2001:db8::1' },
        },
        receivedAt: now + 1,
        expiresAt: Math.floor(now / 1000) + 86_400,
        legalHold: true,
      },
    ]);
    const codec = new RowBinaryCodec(EVENT_COLUMN_TYPES);
    const binary = rows.map((r) => ({
      ...r,
      tenant_id: 'binary',
      leaf_index: 3,
      leaf_hash: 'ab'.repeat(32),
      geo_latitude: 48.5,
      geo_asn: null,
    }));
    const json = rows.map((r) => ({
      ...r,
      leaf_index: 3,
      leaf_hash: 'ab'.repeat(32),
      geo_latitude: 48.5,
      geo_asn: null,
    }));
    await t.store.command(`TRUNCATE TABLE ${t.store.table('events')}`);
    await t.store.insert(t.store.table('events'), json);
    await t.store.insertRowBinary(
      t.store.table('events'),
      codec.names,
      codec.encode(binary).chunks(),
    );
    const read = async (tenant: string): Promise<unknown[]> =>
      t.store.query(
        `SELECT * EXCEPT (tenant_id) FROM ${t.store.table('events')} WHERE tenant_id = {tenant:String} ORDER BY seq`,
        { tenant },
      );
    const fromJson = await read('json');
    expect(fromJson).toHaveLength(2);
    expect(await read('binary')).toEqual(fromJson);
  });
});
