import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  columnDigestHex,
  eventLeafHash,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type Disclosures,
  type EventInput,
  type SealedEvent,
} from '@vigil/protocol';
import type { EventRow } from '../store/event-columns.js';
import { eventRow } from '../store/rows.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { EVENT_SQL_SETTINGS, eventCheckSql, ROW_BITS } from './event-sql.js';

/**
 * The engine's per-row checks must agree with the reference derivation (store/rows.ts eventRow)
 * on every event eventRow stores, and must not pass a row whose stored columns or disclosures
 * differ from it: a "pass" in SQL is only allowed where the reference would pass too.
 */

const TENANT = 'acme';
const salts = randomSaltSource();
const T0 = Date.parse('2026-10-01T00:00:00.000Z');

type Input = EventInput & { id: string; time: string };

const inputs: Input[] = [
  {
    id: '0193a4b2-6c1e-7000-8000-000000000001',
    time: '2026-10-01T00:00:01.000Z',
    action: 'user.login',
    category: 'authentication',
    outcome: 'success',
    actor: { type: 'user', id: 'u-1', name: 'Zoë Müller', email: 'zoe@example.eu' },
    context: {
      ip: '203.0.113.9',
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) "quoted" \\ back/slash',
      requestId: 'req-1',
      sessionId: 'sess-1',
    },
  },
  {
    id: '0193a4b2-6c1e-7000-8000-000000000002',
    time: '2026-10-01T00:00:02.000Z',
    action: 'role.granted',
    category: 'access_change',
    outcome: 'success',
    actor: { type: 'service', id: 'provisioner' },
    target: { type: 'user', id: 'u-7', name: 'Kim', email: 'kim@example.eu' },
    access: {
      change: 'grant',
      subject: { type: 'user', id: 'u-7', email: 'kim@example.eu' },
      role: 'billing:manager',
      resource: { type: 'org', id: 'acme' },
      grantedBy: { type: 'user', id: 'u-1', name: 'Zoë' },
    },
    context: { ip: '2001:DB8:0:0::1', requestId: 'req-2' },
    metadata: { phone: '+33 6 12 34 56 78', n: 2 },
    personal: ['/metadata/phone', '/context/requestId'],
  },
  {
    id: '0193a4b2-6c1e-7000-8000-000000000003',
    time: '2026-10-01T00:00:03.000Z',
    action: 'invoice.exported',
    category: 'data_access',
    outcome: 'failure',
    actor: { type: 'api_key', id: 'key-1' },
    target: { type: 'invoice', id: 'inv-1', name: '€ 𝄞 \u0007 control' },
    context: { requestId: 'req-3', userAgent: 'curl/8 \u0001' },
    metadata: { 'a/b~c': { deep: [1, 'x'] }, x_future: 1e21 },
  },
  {
    id: '0193a4b2-6c1e-7000-8000-000000000004',
    time: '2026-10-01T00:00:04.000Z',
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'user', id: 'u-2', email: 'a@b.c' },
    target: { type: 'document', id: 'doc-1' },
    metadata: { deep: { nested: 'value' } },
    personal: ['/metadata/deep/nested'],
  },
  {
    // A link-local IPv6 address with its zone index: the column holds it without the zone.
    id: '0193a4b2-6c1e-7000-8000-000000000005',
    time: '2026-10-01T00:00:05.000Z',
    action: 'user.login',
    category: 'authentication',
    outcome: 'success',
    actor: { type: 'user', id: 'u-3' },
    context: { ip: 'fe80::1%eth0' },
  },
];

function sealAll(): { event: SealedEvent; record: ReturnType<typeof sealEvent>['record'] }[] {
  let prev = ZERO_HASH;
  return inputs.map((input, seq) => {
    const sealed = sealEvent(input, { stream: 'app/1', seq, prev }, salts);
    prev = sealed.event.hash;
    return sealed;
  });
}

/**
 * Live for 400 days from the engine's clock: TTL drops rows already expired when they are
 * written, and runs on that clock, so an expiry counted from the fixed T0 would fail one day.
 */
let expiresAt = 0;

function rowOf(
  sealed: ReturnType<typeof sealEvent>,
  index: number,
  disclosures: Disclosures | undefined = sealed.event.disclosures,
): EventRow {
  const row = eventRow(sealed.event, sealed.record, disclosures, {
    tenantId: TENANT,
    receivedAt: T0 + index,
    keyId: 'k',
    source: 'sealed',
    submittedDigest: '',
    logPartition: 0,
    logOffset: index,
    logIndex: 0,
    expiresAt,
    flags: [],
  });
  row.leaf_index = index;
  row.leaf_hash = eventLeafHash({
    tenant: TENANT,
    stream: sealed.record.stream,
    seq: sealed.record.seq,
    eventHash: sealed.event.hash,
    columns: columnDigestHex(sealed.record),
  }).toString('hex');
  return row;
}

describe.each([false, true])('the engine checks agree with eventRow (deep: %s)', (deep) => {
  let ts: TestStore;
  beforeAll(async () => {
    ts = await openTestStore();
    expiresAt = Math.floor((await ts.now()) / 1000) + 86_400 * 400;
  });
  afterAll(async () => {
    await ts.cleanup();
  });

  async function verdicts(rows: EventRow[]): Promise<Map<string, { bits: number; und: string[] }>> {
    await ts.store.command(`TRUNCATE TABLE ${ts.store.table('events')}`);
    await ts.store.insert(ts.store.table('events'), rows);
    const out = await ts.store.query<{ eid: string; bits: number | string; und: string[] }>(
      eventCheckSql(`FROM ${ts.store.table('events')} FINAL WHERE tenant_id = {tenant:String}`, {
        privacyColumns: true,
        deep,
      }),
      { tenant: TENANT },
      EVENT_SQL_SETTINGS,
    );
    return new Map(out.map((r) => [r.eid, { bits: Number(r.bits), und: r.und }]));
  }

  const failing = ROW_BITS.hash | ROW_BITS.leaf | ROW_BITS.columns | ROW_BITS.disclosure;

  it('passes every untampered row (or hands it to JavaScript), never fails one', async () => {
    const sealed = sealAll();
    const rows = sealed.map((s, i) => rowOf(s, i));
    const v = await verdicts(rows);
    for (const s of sealed) expect((v.get(s.record.id)?.bits ?? 0) & failing).toBe(0);
    // Committed metadata paths with plain disclosures are decided by the engine too.
    expect(sealed.map((s) => v.get(s.record.id)?.bits ?? 0)).toEqual([0, 0, 0, 0, 0]);
  });

  it('accepts every vector event of the protocol', async () => {
    const vectors = JSON.parse(
      readFileSync(new URL('../../../protocol/vectors/v2.json', import.meta.url), 'utf8'),
    ) as {
      stream: {
        events: {
          record: string;
          hash: string;
          disclosures?: Disclosures;
          link: { seq: number };
        }[];
      };
    };
    const rows = vectors.stream.events.map((e, i) =>
      rowOf(
        {
          event: {
            record: e.record,
            hash: e.hash,
            ...(e.disclosures ? { disclosures: e.disclosures } : {}),
          },
          record: JSON.parse(e.record) as ReturnType<typeof sealEvent>['record'],
        },
        i,
      ),
    );
    const v = await verdicts(rows);
    for (const [, verdict] of v) expect(verdict.bits & failing).toBe(0);
  });

  it('reports erased and withheld personal paths, and still passes the row', async () => {
    const sealed = sealAll();
    const first = sealed[0] as ReturnType<typeof sealEvent>;
    const { ['/actor/email']: _gone, ...rest } = first.event.disclosures as Disclosures;
    const erased = rowOf(first, 0, rest);
    erased.erased_paths = ['/actor/email'];
    const v = await verdicts([erased]);
    const verdict = v.get(first.record.id);
    expect((verdict?.bits ?? 0) & failing).toBe(0);
    // Without a disclosure, the digest needs the commitment from the record: deep reads it
    // there, the digest check hands the row to JavaScript.
    expect(verdict?.bits).toBe(deep ? 0 : ROW_BITS.js);
    expect(verdict?.und).toEqual(['/actor/email']);
  });

  // An edited clear column changes the column digest (the leaf no longer binds the row); an
  // edited personal column no longer holds its disclosed value.
  const edited = ROW_BITS.columns | ROW_BITS.leaf;

  it('fails a row for each typed column edited on its own', async () => {
    const sealed = sealAll();
    const columns = [
      'action',
      'category',
      'outcome',
      'actor_type',
      'actor_id',
      'actor_name',
      'actor_email',
      'target_type',
      'target_id',
      'target_name',
      'access_change',
      'subject_type',
      'subject_id',
      'access_role',
      'access_permission',
      'resource_type',
      'resource_id',
      'granted_by_id',
      'user_agent',
      'request_id',
      'session_id',
      'prev',
      'stream',
      'corrects_id',
    ] as const;
    for (const column of columns) {
      const row = rowOf(sealed[1] as ReturnType<typeof sealEvent>, 1);
      const r = row as unknown as Record<string, unknown>;
      r[column] = column === 'prev' ? 'f'.repeat(64) : `${String(r[column])}x`;
      const v = await verdicts([row]);
      expect({ column, failed: ((v.get(row.id)?.bits ?? 0) & edited) !== 0 }).toEqual({
        column,
        failed: true,
      });
    }
    const ip = rowOf(sealed[0] as ReturnType<typeof sealEvent>, 0);
    ip.ip = '::ffff:203.0.113.10';
    const time = rowOf(sealed[0] as ReturnType<typeof sealEvent>, 0);
    time.time = '2026-10-01 00:00:01.001';
    const seq = rowOf(sealed[0] as ReturnType<typeof sealEvent>, 0);
    seq.seq = 5;
    const personal = rowOf(sealed[0] as ReturnType<typeof sealEvent>, 0);
    personal.personal = personal.personal.slice(1);
    // A clear address (event 5) edited in its column.
    const clearIp = rowOf(sealed[4] as ReturnType<typeof sealEvent>, 4);
    clearIp.ip = 'fe80::2';
    const noIp = rowOf(sealed[4] as ReturnType<typeof sealEvent>, 4);
    noIp.ip = null;
    const cases = { ip, time, seq, personal, clearIp, noIp };
    for (const [name, row] of Object.entries(cases)) {
      const v = await verdicts([row]);
      // Failed, or handed to JavaScript (a `personal` without a listed disclosure's path).
      expect({ name, failed: ((v.get(row.id)?.bits ?? 0) & (edited | ROW_BITS.js)) !== 0 }).toEqual(
        {
          name,
          failed: true,
        },
      );
    }
  }, 120_000);

  it('never passes a disclosure that does not open its commitment', async () => {
    const first = sealAll()[0] as ReturnType<typeof sealEvent>;
    const d = first.event.disclosures as Disclosures;
    const email = d['/actor/email'] as { salt: string; value: string };
    const variants: Disclosures[] = [
      { ...d, '/actor/email': { ...email, value: 'eve@example.eu' } },
      { ...d, '/actor/email': { salt: 'A'.repeat(22), value: email.value } },
      { ...d, '/actor/email': { ...email, value: 5 } },
      { ...d, '/actor/name': { salt: email.salt, value: email.value } },
    ];
    for (const variant of variants) {
      const row = rowOf(first, 0, variant);
      // Keep the typed columns as eventRow derives them from the altered disclosures, so only
      // the commitment can tell.
      const v = await verdicts([row]);
      const bits = v.get(first.record.id)?.bits ?? 0;
      expect(bits & (ROW_BITS.disclosure | ROW_BITS.js | ROW_BITS.leaf)).not.toBe(0);
    }
    // A duplicate "value" member (a parser keeps the first, JSON.parse the last): JavaScript decides.
    const row = rowOf(first, 0);
    row.disclosures = row.disclosures.replace(
      `"value":"${email.value}"`,
      `"value":"${email.value}","value":"eve@example.eu"`,
    );
    const v = await verdicts([row]);
    expect((v.get(first.record.id)?.bits ?? 0) & ROW_BITS.js).toBe(ROW_BITS.js);
  });

  it('fails an edited record and a leaf that does not bind the row', async () => {
    const first = sealAll()[0] as ReturnType<typeof sealEvent>;
    const edited = rowOf(first, 0);
    edited.record = edited.record.toString().replace('user.login', 'user.logout');
    const leaf = rowOf(first, 0);
    leaf.leaf_hash = 'a'.repeat(64);
    const v1 = await verdicts([edited]);
    expect((v1.get(first.record.id)?.bits ?? 0) & ROW_BITS.hash).toBe(ROW_BITS.hash);
    const v2 = await verdicts([leaf]);
    expect((v2.get(first.record.id)?.bits ?? 0) & ROW_BITS.leaf).toBe(ROW_BITS.leaf);
  });
});
