import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newEventId,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type Category,
  type SealedEvent,
} from '@vigil/protocol';
import { LegalHolds, RetentionPolicies, expirySeconds, type Store } from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { DEFAULT_RETENTION_DAYS } from '../stage-config.js';
import { encodeEventMessage, type EventMessage } from '../log/event-message.js';
import type { ConsumedBatch } from '../log/log.js';
import type { SinkPlugin } from './plugins.js';
import { RetentionPlugin } from './retention.js';
import { SinkProcessor } from './sink.js';

/**
 * Retention end to end on chDB: the expiry the sink gives each row, the TTL that deletes by it
 * when ClickHouse merges, and legal holds that suspend it. TTL runs on the engine's clock, so
 * every receive time here is counted from the engine's `now64()` (`ts.now()`), never from a
 * calendar date or the JS clock: the tests pass on any day, with any process clock.
 */

const salts = randomSaltSource();
const DAY = 86_400_000;
let offset = 0;

function events(
  stream: string,
  actors: readonly string[],
  options: { category?: Category; time: number },
): SealedEvent[] {
  let prev = ZERO_HASH;
  return actors.map((actor, seq) => {
    const time = options.time;
    const e = sealEvent(
      {
        id: newEventId(time),
        time: new Date(time).toISOString(),
        action: 'document.viewed',
        category: options.category ?? 'data_access',
        outcome: 'success',
        actor: { type: 'user', id: actor },
        target: { type: 'document', id: `doc-${seq}` },
      },
      { stream, seq, prev },
      salts,
    ).event;
    prev = e.hash;
    return e;
  });
}

function batch(
  tenant: string,
  stream: string,
  sealed: SealedEvent[],
  receivedAt: number,
): ConsumedBatch {
  const message: EventMessage = {
    v: 2,
    tenant,
    keyId: 'k1',
    receivedAt,
    backfillBefore: receivedAt - DAY,
    stream,
    kind: 'sealed',
    events: sealed,
  };
  return {
    partition: 0,
    records: [
      {
        partition: 0,
        offset: offset++,
        key: `${tenant}/${stream}`,
        value: encodeEventMessage(message),
        timestamp: receivedAt,
      },
    ],
    highWatermark: offset,
  };
}

interface Stored {
  actor_id: string;
  expires_at: string;
  legal_hold: number;
  flags: string[];
}

async function stored(store: Store, tenant: string): Promise<Stored[]> {
  return store.query<Stored>(
    `SELECT actor_id, toString(expires_at) AS expires_at, legal_hold, flags
     FROM ${store.table('events')} FINAL WHERE tenant_id = {t:String} ORDER BY actor_id`,
    { t: tenant },
  );
}

/** Forces the merges that apply TTL (ClickHouse docs, "OPTIMIZE": FINAL merges every part). */
async function merge(store: Store): Promise<void> {
  await store.command(`OPTIMIZE TABLE ${store.table('events')} FINAL`);
}

const toText = (seconds: number): string =>
  new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');

describe('retention on chDB: expiry at ingest, TTL on merge, legal holds', () => {
  let ts: TestStore;
  let policies: RetentionPolicies;
  let holds: LegalHolds;
  let sink: SinkProcessor;
  const processor = (plugins: SinkPlugin[] = []): SinkProcessor =>
    new SinkProcessor({
      store: ts.store,
      config: { group: 'g', maxBatchRecords: 100 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      salts,
      plugins: [
        ...plugins,
        new RetentionPlugin({ store: ts.store, defaults: DEFAULT_RETENTION_DAYS, refreshMs: 0 }),
      ],
    });

  beforeAll(async () => {
    ts = await openTestStore();
    policies = new RetentionPolicies(ts.store, DEFAULT_RETENTION_DAYS);
    holds = new LegalHolds(ts.store);
    sink = processor();
  });
  afterAll(async () => {
    await ts.cleanup();
  });

  it("gives each row received_at + its tenant's days for its category", async () => {
    await policies.change('acme', { api: 30, data_access: 7 }, 'key-admin', 'contract §4');
    // Three days ago: live under the 7 days of the tenant's policy whatever today is.
    const receivedAt = (await ts.now()) - 3 * DAY;
    const time = receivedAt;
    await sink.process(batch('acme', 'app/r/1', events('app/r/1', ['u1'], { time }), receivedAt));
    await sink.process(
      batch(
        'acme',
        'app/r/2',
        events('app/r/2', ['u2'], { category: 'security', time }),
        receivedAt,
      ),
    );
    await sink.process(batch('other', 'app/r/1', events('app/r/1', ['u3'], { time }), receivedAt));
    expect((await stored(ts.store, 'acme')).map((r) => [r.actor_id, r.expires_at])).toEqual([
      ['u1', toText(expirySeconds(receivedAt, 7))], // the tenant's own value
      ['u2', toText(expirySeconds(receivedAt, DEFAULT_RETENTION_DAYS.security))], // the default
    ]);
    expect((await stored(ts.store, 'other'))[0]?.expires_at).toBe(
      toText(expirySeconds(receivedAt, DEFAULT_RETENTION_DAYS.data_access)),
    );
  });

  it('counts expiry from receipt: a producer cannot push it with a 1970 (backfill) time', async () => {
    const receivedAt = await ts.now();
    await sink.process(
      batch('backfill', 'app/b/1', events('app/b/1', ['old'], { time: 0 }), receivedAt),
    );
    await merge(ts.store);
    const [row] = await stored(ts.store, 'backfill');
    expect(row?.flags).toContain('backfill');
    expect(row?.expires_at).toBe(
      toText(expirySeconds(receivedAt, DEFAULT_RETENTION_DAYS.data_access)),
    );
  });

  it('deletes expired rows on a merge and keeps the rows of a held tenant until the hold is released', async () => {
    // Received 500 days ago: past the 396 days of data_access.
    const receivedAt = (await ts.now()) - 500 * DAY;
    const time = receivedAt;
    const { hold } = await holds.place('held', { reason: 'litigation 2026-17' }, 'key-admin');
    await sink.process(
      batch('held', 'app/t/1', events('app/t/1', ['a', 'b'], { time }), receivedAt),
    );
    await sink.process(
      batch('free', 'app/t/1', events('app/t/1', ['a', 'b'], { time }), receivedAt),
    );
    expect((await stored(ts.store, 'held')).map((r) => r.legal_hold)).toEqual([1, 1]);

    await merge(ts.store);
    expect(await stored(ts.store, 'free')).toHaveLength(0);
    expect(await stored(ts.store, 'held')).toHaveLength(2);

    await holds.release('held', hold.id, 'key-admin', 'case closed');
    await merge(ts.store);
    expect(await stored(ts.store, 'held')).toHaveLength(0);
  });

  it("holds one subject's stored rows, through a re-applied shorter policy, until release", async () => {
    const receivedAt = (await ts.now()) - 30 * DAY;
    await sink.process(
      batch(
        'subj',
        'app/s/1',
        events('app/s/1', ['alice', 'bob', 'carol'], { time: receivedAt }),
        receivedAt,
      ),
    );
    const placed = await holds.place('subj', { subject: 'alice', reason: 'DSAR dispute' }, 'k');
    expect(placed.heldEvents).toBe(1);
    expect((await stored(ts.store, 'subj')).map((r) => [r.actor_id, r.legal_hold])).toEqual([
      ['alice', 1],
      ['bob', 0],
      ['carol', 0],
    ]);

    // One day of retention, re-applied to stored events: all three are now past expiry.
    await policies.change('subj', { data_access: 1 }, 'k');
    const applied = await policies.applyToStored('subj', 'data_access');
    expect(applied.days).toBe(1);
    await merge(ts.store);
    expect((await stored(ts.store, 'subj')).map((r) => [r.actor_id, r.expires_at])).toEqual([
      ['alice', toText(expirySeconds(receivedAt, 1))],
    ]);

    await holds.release('subj', placed.hold.id, 'k');
    await merge(ts.store);
    expect(await stored(ts.store, 'subj')).toHaveLength(0);
  });

  it('keeps rows covered by another hold when one is released', async () => {
    const receivedAt = (await ts.now()) - 30 * DAY;
    await sink.process(
      batch(
        'two',
        'app/2/1',
        events('app/2/1', ['alice', 'bob'], { time: receivedAt }),
        receivedAt,
      ),
    );
    const a = await holds.place('two', { subject: 'alice', reason: 'case A' }, 'k');
    const b = await holds.place('two', { subject: 'bob', reason: 'case B' }, 'k');
    const t = await holds.place('two', { reason: 'whole tenant' }, 'k');
    expect((await holds.release('two', t.hold.id, 'k')).stillHeld).toBe(false);
    expect((await stored(ts.store, 'two')).map((r) => r.legal_hold)).toEqual([1, 1]);
    await holds.release('two', a.hold.id, 'k');
    expect((await stored(ts.store, 'two')).map((r) => [r.actor_id, r.legal_hold])).toEqual([
      ['alice', 0],
      ['bob', 1],
    ]);
    expect((await holds.list('two')).map((h) => h.id)).toEqual([b.hold.id]);
    expect((await holds.list('two', { all: true })).map((h) => h.active)).toEqual([
      false,
      true,
      false,
    ]);
    await expect(holds.release('two', a.hold.id, 'k')).rejects.toMatchObject({
      code: 'VIGIL_ERR_HOLD_RELEASED',
    });
    await expect(holds.release('two', 'hold_0000000000000000', 'k')).rejects.toMatchObject({
      code: 'VIGIL_ERR_HOLD_NOT_FOUND',
    });
  });

  it('flags the rows of a batch when a hold is placed while the batch is being stored', async () => {
    // The hold arrives after the sink loaded the holds and before its insert: the hold's own
    // mutation runs before the rows exist, so only the sink's re-check can flag them.
    const late: SinkPlugin = {
      name: 'late-hold',
      prepare: async () => {
        await holds.place('race', { subject: 'mallory', reason: 'fraud' }, 'k');
      },
    };
    const racing = new SinkProcessor({
      store: ts.store,
      config: { group: 'g', maxBatchRecords: 100 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      salts,
      plugins: [
        new RetentionPlugin({ store: ts.store, defaults: DEFAULT_RETENTION_DAYS, refreshMs: 0 }),
        late,
      ],
    });
    const now = await ts.now();
    await racing.process(
      batch('race', 'app/x/1', events('app/x/1', ['mallory', 'trent'], { time: now }), now),
    );
    expect((await stored(ts.store, 'race')).map((r) => [r.actor_id, r.legal_hold])).toEqual([
      ['mallory', 1],
      ['trent', 0],
    ]);
  });

  it('keeps every policy change, and the configured defaults, as history', async () => {
    const history = await policies.history('acme');
    expect(history.map((c) => [c.category, c.previousEffectiveDays, c.effectiveDays])).toEqual(
      expect.arrayContaining([
        ['api', DEFAULT_RETENTION_DAYS.api, 30],
        ['data_access', DEFAULT_RETENTION_DAYS.data_access, 7],
      ]),
    );
    expect(history[0]).toMatchObject({ actorKeyId: 'key-admin', reason: 'contract §4' });
    const before = Date.now();
    await policies.change('acme', { api: null }, 'key-admin');
    expect((await policies.policy('acme')).api).toEqual({
      days: DEFAULT_RETENTION_DAYS.api,
      source: 'default',
    });
    expect(await policies.history('acme')).toHaveLength(3);
    // What was in force when: the sink recorded the defaults it started with.
    expect((await policies.daysAt('acme', before - 1)).api).toBe(30);
    expect((await policies.daysAt('acme', Date.now())).api).toBe(DEFAULT_RETENTION_DAYS.api);
    expect((await policies.daysAt('nobody', Date.now())).system).toBe(
      DEFAULT_RETENTION_DAYS.system,
    );
  });
});
