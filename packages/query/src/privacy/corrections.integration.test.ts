import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSaltSource, sealEvent, ZERO_HASH, type CompleteInput } from '@vigil/protocol';
import { eventRow } from '../store/rows.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { correctViews } from './corrections.js';

/**
 * Corrections apply oldest first, by time and then by id as text (PROTOCOL.md §18.2): ClickHouse
 * orders UUIDs by their last eight bytes first, so two corrections made in one millisecond
 * would otherwise apply in an order the protocol does not name.
 */

const salts = randomSaltSource();
const TIME = '2026-11-20T10:00:00.000Z';

function row(input: CompleteInput, stream: string, seq: number) {
  const { event, record } = sealEvent(input, { stream, seq, prev: ZERO_HASH }, salts);
  return eventRow(event, record, event.disclosures, {
    tenantId: 'a',
    receivedAt: Date.parse('2026-11-20T10:00:01.000Z'),
    keyId: 'k',
    source: 'sealed',
    submittedDigest: '',
    logPartition: 0,
    logOffset: seq,
    logIndex: 0,
    expiresAt: Math.floor(Date.now() / 1000) + 86_400,
    flags: [],
  });
}

describe('correctViews', () => {
  let ts: TestStore;
  beforeAll(async () => {
    ts = await openTestStore();
  });
  afterAll(async () => {
    await ts?.cleanup();
  });

  it('applies corrections of one millisecond in the text order of their ids', async () => {
    const original = row(
      {
        id: '0193a4b2-6c1e-7000-8000-000000000001',
        time: TIME,
        action: 'invoice.paid',
        category: 'data_change',
        outcome: 'success',
        actor: { type: 'service', id: 'billing' },
      },
      's/1',
      0,
    );
    // As text, first < second; ClickHouse's UUID order puts second first.
    const [first, second] = [
      '0193a4b2-6c40-7000-8000-000000000002',
      '0193a4b2-6c41-7000-8000-000000000000',
    ];
    const correction = (id: string, outcome: string, seq: number) =>
      row(
        {
          id,
          time: TIME,
          action: 'event.corrected',
          category: 'data_change',
          outcome: 'success',
          actor: { type: 'api_key', id: 'k-admin' },
          target: { type: 'event', id: original.id },
          corrects: { event: original.id, hash: original.hash },
          metadata: { corrected: { '/outcome': outcome }, reason: 'test' },
        },
        'vigil/admin/h/1',
        seq,
      );
    await ts.store.insert(ts.store.table('events'), [
      original,
      correction(second, 'failure', 1),
      correction(first, 'unknown', 2),
    ]);
    const [view] = await correctViews(
      ts.store,
      'a',
      [{ id: original.id, outcome: 'success' }],
      (v) => v.id,
    );
    expect(view?.correctedBy).toEqual([first, second]);
    expect(view?.outcome).toBe('failure');
  });

  it('applies a correction only to the copy it names by hash, when the caller gives hashes', async () => {
    const input: CompleteInput = {
      id: '0193a4b2-6c1e-7000-8000-000000000009',
      time: TIME,
      action: 'invoice.paid',
      category: 'data_change',
      outcome: 'success',
      actor: { type: 'service', id: 'billing' },
    };
    // Two copies of one id (a fork): the correction names the first by its hash.
    const copy = row(input, 's/2', 0);
    const fork = row(input, 's/2', 1);
    const fix = row(
      {
        id: '0193a4b2-6c40-7000-8000-000000000009',
        time: TIME,
        action: 'event.corrected',
        category: 'data_change',
        outcome: 'success',
        actor: { type: 'api_key', id: 'k-admin' },
        target: { type: 'event', id: input.id },
        corrects: { event: input.id, hash: copy.hash },
        metadata: { corrected: { '/outcome': 'failure' }, reason: 'test' },
      },
      'vigil/admin/h/2',
      0,
    );
    await ts.store.insert(ts.store.table('events'), [copy, fork, fix]);
    const views = [copy, fork].map((r) => ({ id: input.id, hash: r.hash, outcome: 'success' }));
    const corrected = await correctViews(
      ts.store,
      'a',
      views,
      (v) => v.id,
      (v) => v.hash,
    );
    expect(corrected.map((v) => v.outcome)).toEqual(['failure', 'success']);
  });
});
