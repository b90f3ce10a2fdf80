import { randomSaltSource, sealEvent, ZERO_HASH, type EventInput } from '@vigil/protocol';
import type { EventRow } from './event-columns.js';
import { eventRow } from './rows.js';
import type { Store } from './store.js';

const salts = randomSaltSource();

/** One event to store: what it says, and the store-side columns a test cares about. */
export interface TestEvent {
  /** Its id and time are set here (ids by position, time = receivedAt). */
  readonly input: EventInput;
  readonly receivedAt: number;
  /** Epoch seconds. */
  readonly expiresAt: number;
  readonly legalHold?: boolean;
}

/**
 * Seals the events as one chain of `stream` and stores them as the sink would (eventRow),
 * without a log or a sink: for tests of what reads and changes stored events.
 */
export async function storeEvents(
  store: Store,
  tenant: string,
  events: readonly TestEvent[],
  stream = 'test/1',
): Promise<EventRow[]> {
  let prev = ZERO_HASH;
  const rows = events.map((e, seq) => {
    const input: EventInput & { id: string; time: string } = {
      ...e.input,
      id: `0193a4b2-6c1e-7000-8000-${String(seq).padStart(12, '0')}`,
      time: new Date(e.receivedAt).toISOString(),
    };
    const { event, record } = sealEvent(input, { stream, seq, prev }, salts);
    prev = event.hash;
    const row = eventRow(event, record, event.disclosures, {
      tenantId: tenant,
      receivedAt: e.receivedAt,
      keyId: 'k',
      source: 'sealed',
      submittedDigest: '',
      logPartition: 0,
      logOffset: seq,
      logIndex: 0,
      expiresAt: e.expiresAt,
      flags: [],
    });
    if (e.legalHold) row.legal_hold = 1;
    return row;
  });
  await store.insert(store.table('events'), rows);
  return rows;
}
