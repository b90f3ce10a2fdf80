// Shared event generator for the benchmarks: realistic ~500-byte events with 4 personal fields
// (actor id and email, IP, user agent), sealed on distinct streams so every batch is a valid,
// contiguous piece of a chain.
import {
  formatTime,
  frameSealedEvents,
  newEventId,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
} from '@vigil/protocol';

const salts = randomSaltSource();
const ACTIONS = [
  'document.viewed',
  'document.exported',
  'user.login',
  'invoice.updated',
  'role.assigned',
];

export function sampleInput(i, time = Date.now()) {
  return {
    id: newEventId(time),
    time: formatTime(time),
    action: ACTIONS[i % ACTIONS.length],
    category: i % 5 === 2 ? 'authentication' : 'data_access',
    outcome: i % 13 === 0 ? 'failure' : 'success',
    actor: { type: 'user', id: `user-${i % 5000}`, email: `user${i % 5000}@example.eu` },
    target: { type: 'document', id: `doc-${i % 20000}` },
    context: {
      ip: `203.0.${(i >> 8) & 255}.${i & 255}`,
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0',
      requestId: `req-${i}`,
    },
    metadata: { route: '/api/v1/documents/:id', durationMs: i % 250, plan: 'enterprise' },
  };
}

/** Yields `count` batches of `size` sealed events, each batch its own stream (seq 0..size-1). */
function* eachSealedBatch(count, size, label) {
  let n = 0;
  const now = Date.now();
  for (let b = 0; b < count; b++) {
    const stream = `${label}/host/${newEventId()}`;
    let prev = ZERO_HASH;
    const events = [];
    for (let seq = 0; seq < size; seq++) {
      const e = sealEvent(sampleInput(n++, now), { stream, seq, prev }, salts).event;
      prev = e.hash;
      events.push(e);
    }
    yield events;
  }
}

/** `count` batches of `size` sealed events, each batch its own stream (seq 0..size-1). */
export function sealedEventBatches(count, size, label = 'bench') {
  return [...eachSealedBatch(count, size, label)];
}

/** The same, each batch as the JSON body `{"events":[…]}` (the JSON form, v1's only one). */
export function sealedBatches(count, size, label = 'bench') {
  return sealedEventBatches(count, size, label).map((events) => JSON.stringify({ events }));
}

/**
 * `count` bodies of `size` sealed events in the sealed framing (PROTOCOL.md §9), as the SDK
 * sends them, each batch its own stream. Framed one batch at a time, so only the bodies stay in
 * memory (the events of a million-event run as objects do not fit a default heap).
 */
export function framedSealedBodies(count, size, label = 'bench') {
  const bodies = [];
  for (const events of eachSealedBatch(count, size, label)) bodies.push(frameSealedEvents(events));
  return bodies;
}

/** Batches as bodies of the sealed framing (PROTOCOL.md §9), as the SDK sends them. */
export function framedBodies(batches) {
  return batches.map((events) => frameSealedEvents(events));
}

/** Bytes of one event as the wire carries it (record string + hash + disclosures). */
export function eventWireBytes(batchJson, size) {
  return Math.round(Buffer.byteLength(batchJson) / size);
}
