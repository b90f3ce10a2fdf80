import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  randomSaltSource,
  sealEvent,
  sha256Hex,
  ZERO_HASH,
  type EventInput,
  type SealedEvent,
} from '@vigil/protocol';
import type { EventRow } from '@vigil/query';
import { openTestStore, type TestStore } from '@vigil/query/testing';
import { DEFAULT_RETENTION_DAYS } from '../stage-config.js';
import { MemoryLog } from '../log/memory-log.testkit.js';
import { encodeEventMessage, type EventMessage } from '../log/event-message.js';
import { MerklePlugin } from './merkle.js';
import type { SinkPlugin } from './plugins.js';
import { SinkRunner } from './runner.js';

/*
 * Log records a sink cannot store, already in the log (written around the collector: before
 * the depth limit, or by another writer), next to good records of two tenants in the same
 * partition. The partition must go on storing: the bad records are set aside with their tenant
 * and counted, and nothing else is lost.
 */

const salts = randomSaltSource();
// Receive times come from the store engine's clock (set in beforeAll): the TTL runs on it, and
// rows received too long before it would expire at insert.
let NOW = 0;
const silent = { info() {}, warn() {}, error() {} };

function input(
  i: number,
  overrides: Partial<EventInput> = {},
): EventInput & { id: string; time: string } {
  return {
    id: `0193a4b2-6c1e-7000-8000-${String(i).padStart(12, '0')}`,
    time: new Date(NOW + i).toISOString(),
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'service', id: `svc-${i}` },
    ...overrides,
  };
}

const head = (tenant: string, stream: string) => ({
  v: 2 as const,
  tenant,
  keyId: 'k1',
  receivedAt: NOW + 1000,
  backfillBefore: NOW - 86_400_000,
  stream,
});

function sealedRecord(tenant: string, stream: string, events: SealedEvent[]) {
  const message: EventMessage = { ...head(tenant, stream), kind: 'sealed', events };
  return { key: `${tenant}/${stream}`, value: encodeEventMessage(message), timestamp: NOW };
}

let next = 0;
function chainOf(
  stream: string,
  count: number,
  overrides: Partial<EventInput> = {},
): SealedEvent[] {
  const out: SealedEvent[] = [];
  let prev = ZERO_HASH;
  for (let seq = 0; seq < count; seq++) {
    const e = sealEvent(input(++next, overrides), { stream, seq, prev }, salts).event;
    out.push(e);
    prev = e.hash;
  }
  return out;
}

const brackets = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);

/** A sealed event whose metadata nests 7 000 levels (~14 KB): what JSON.stringify cannot write. */
function deepSealedRecord(tenant: string, stream: string) {
  const [e] = chainOf(stream, 1);
  const record = e!.record.replace('"outcome":', `"metadata":{"a":${brackets(7000)}},"outcome":`);
  // The header line, then the event as a line of the framing (log/event-message.ts).
  const text = JSON.stringify({ ...head(tenant, stream), kind: 'sealed' });
  return {
    key: `${tenant}/${stream}`,
    value: Buffer.from(`${text}\n${record}\t${sha256Hex(record)}\t\n`),
    timestamp: NOW,
  };
}

/** An unchained event nested 5 000 levels deep, as a collector without the limit logged it. */
function deepUnchainedRecord(tenant: string) {
  const id = input(++next).id;
  const entry = `{"input":{"id":"${id}","time":"${input(next).time}","action":"user.login","category":"authentication","outcome":"success","actor":{"type":"service","id":"s"},"metadata":{"b":${brackets(5000)}}},"digest":"${sha256Hex(id)}"}`;
  const text = JSON.stringify({ ...head(tenant, 'key/k1'), kind: 'unchained', events: 'EVENTS' });
  return {
    key: `${tenant}/key/k1`,
    value: Buffer.from(text.replace('"EVENTS"', `[${entry}]`)),
    timestamp: NOW,
  };
}

describe('a sink never stops on a record it cannot store', () => {
  let ts: TestStore;
  let log: MemoryLog;
  let runner: SinkRunner;
  const lag = new Map<string, number>();
  let rejectedCount = 0;
  let storeDown = false;

  // Two kinds of failure no check foresees: a plugin that throws on one record, and a plugin
  // that gives one row a value the store cannot parse (the store then refuses the whole insert).
  const hostile: SinkPlugin = {
    name: 'hostile',
    prepare() {
      if (storeDown) return Promise.reject(new Error('store unreachable'));
      return Promise.resolve();
    },
    decorate(row: EventRow) {
      if (row.stream === 'app/explode') throw new TypeError('plugin bug on this record');
      if (row.stream === 'app/unparsable')
        (row as unknown as Record<string, unknown>)['geo_latitude'] = 'north of here';
    },
  };

  beforeAll(async () => {
    ts = await openTestStore();
    NOW = await ts.now();
    log = new MemoryLog('events', 1);
    runner = new SinkRunner({
      store: ts.store,
      log,
      config: { group: 'sink', maxBatchRecords: 100 },
      retentionDays: DEFAULT_RETENTION_DAYS,
      logger: silent,
      salts,
      restartDelayMs: 20,
      maxRestartDelayMs: 100,
      lagIntervalMs: 20,
      plugins: [hostile, new MerklePlugin({ store: ts.store })],
      observer: {
        inserted() {},
        duplicate() {},
        chainIssue() {},
        rejectedRecord: () => rejectedCount++,
      },
      metrics: { consumerLag: { set: (l, v) => lag.set(l.partition, v) } },
    });
    await runner.start();
  });
  afterAll(async () => {
    await runner.stop();
    await ts.cleanup();
  });

  const stored = async (tenant: string): Promise<number> => {
    const rows = await ts.store.query<{ c: string | number }>(
      `SELECT count() AS c FROM ${ts.store.table('events')} WHERE tenant_id = {tenant:String} AND stream LIKE 'app/%'`,
      { tenant },
    );
    return Number(rows[0]?.c ?? 0);
  };

  it('stores the good records of every tenant, sets the bad ones aside with their tenant, and goes on', async () => {
    await log.append([
      sealedRecord('acme', 'app/a', chainOf('app/a', 3)),
      deepSealedRecord('acme', 'app/deep'),
      sealedRecord('globex', 'app/g', chainOf('app/g', 2)),
      deepUnchainedRecord('globex'),
      sealedRecord('acme', 'app/explode', chainOf('app/explode', 1)),
      sealedRecord('globex', 'app/unparsable', chainOf('app/unparsable', 1)),
      sealedRecord('globex', 'app/g2', chainOf('app/g2', 2)),
    ]);
    await expect.poll(() => stored('acme'), { timeout: 20_000 }).toBe(3);
    await expect.poll(() => stored('globex'), { timeout: 20_000 }).toBe(4);
    const rejected = await ts.store.query<{ tenant_id: string; log_offset: string; error: string }>(
      `SELECT tenant_id, log_offset, error FROM ${ts.store.table('rejected_records')} FINAL ORDER BY log_offset`,
    );
    expect(rejected.map((r) => [r.tenant_id, Number(r.log_offset)])).toEqual([
      ['acme', 1],
      ['globex', 3],
      ['acme', 4],
      ['globex', 5],
    ]);
    expect(rejected[0]?.error).toMatch(/\/events\/0\/record\/metadata\/a(\/0){30}.*deeper than 32/);
    expect(rejected[1]?.error).toMatch(/\/events\/0\/input\/metadata\/b(\/0){30}.*deeper than 32/);
    expect(rejected[2]?.error).toMatch(/cannot be turned into rows: plugin bug/);
    expect(rejected[3]?.error).toMatch(/the store refused its rows/);
    expect(rejectedCount).toBeGreaterThanOrEqual(4);
    // Tree positions stay dense: one leaf per stored event, none for the set-aside ones.
    const leaves = await ts.store.query<{ c: string | number; top: string | number }>(
      `SELECT count() AS c, max(leaf_index) + 1 AS top FROM ${ts.store.table('events')} WHERE tenant_id = 'globex'`,
    );
    expect(Number(leaves[0]?.c)).toBe(Number(leaves[0]?.top));

    // Later events of both tenants are stored.
    await log.append([
      sealedRecord('acme', 'app/later', chainOf('app/later', 2)),
      sealedRecord('globex', 'app/later', chainOf('app/later', 1)),
    ]);
    await expect.poll(() => stored('acme'), { timeout: 20_000 }).toBe(5);
    await expect.poll(() => stored('globex'), { timeout: 20_000 }).toBe(5);
    await expect.poll(() => lag.get('0'), { timeout: 5_000 }).toBe(0);
    expect(runner.state).toBe('running');
  });

  it('shows the lag of a partition while its consumer keeps failing', async () => {
    storeDown = true;
    await log.append([sealedRecord('acme', 'app/stalled', chainOf('app/stalled', 1))]);
    await log.append([sealedRecord('acme', 'app/stalled2', chainOf('app/stalled2', 1))]);
    await expect.poll(() => runner.state, { timeout: 5_000 }).toBe('restarting');
    await expect.poll(() => lag.get('0'), { timeout: 5_000 }).toBe(2);
    storeDown = false;
    await expect.poll(() => lag.get('0'), { timeout: 20_000 }).toBe(0);
    expect(await stored('acme')).toBe(7);
  });
});
