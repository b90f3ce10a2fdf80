import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAuditClient, type AuditClient } from '../client.js';
import type { EventInput } from '@vigil/protocol';
import { backoffDelay, parseRetryAfter } from './backoff.js';
import type { AuditTransport, OutgoingBatch, TransportResult } from './transport.js';

/** A transport that records when each batch arrived and answers from a script. */
class ScriptedTransport implements AuditTransport {
  readonly calls: { at: number; size: number; bytes: number }[] = [];
  answers: TransportResult[] = [];

  send(batch: OutgoingBatch): Promise<TransportResult> {
    this.calls.push({ at: Date.now(), size: batch.size, bytes: batch.body.length });
    return Promise.resolve(
      this.answers.shift() ?? { kind: 'accepted', accepted: batch.size, duplicates: 0 },
    );
  }
}

function event(n: number, pad = 0): EventInput {
  return {
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'service', id: 'worker' },
    metadata: { n, pad: 'x'.repeat(pad) },
  };
}

/** Lets the promise callbacks of a settled send run under fake timers. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

let transport: ScriptedTransport;
let audit: AuditClient | undefined;

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
  transport = new ScriptedTransport();
});

afterEach(async () => {
  const closing = audit?.close({ deadlineMs: 10 });
  await vi.runAllTimersAsync();
  await closing;
  audit = undefined;
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function client(
  batch: { maxEvents?: number; maxBytes?: number; maxDelayMs?: number },
  retry = {},
): AuditClient {
  audit = createAuditClient({ service: 'svc', transport, logger: false, batch, retry });
  return audit;
}

describe('batching (fake timers)', () => {
  it('sends a full batch at once, by count, and the rest after maxDelayMs', async () => {
    const c = client({ maxEvents: 10, maxDelayMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000); // stream.opened goes alone after its delay
    expect(transport.calls.map((x) => x.size)).toEqual([1]);
    for (let i = 0; i < 25; i++) void c.record(event(i));
    await settle();
    expect(transport.calls.map((x) => x.size)).toEqual([1, 10, 10]);
    await vi.advanceTimersByTimeAsync(999);
    expect(transport.calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(transport.calls.map((x) => x.size)).toEqual([1, 10, 10, 5]);
  });

  it('cuts batches by bytes', async () => {
    const c = client({ maxEvents: 1000, maxBytes: 4000, maxDelayMs: 1000 });
    await vi.advanceTimersByTimeAsync(1000);
    for (let i = 0; i < 10; i++) void c.record(event(i, 900));
    await settle();
    await vi.advanceTimersByTimeAsync(1000);
    const sizes = transport.calls.slice(1).map((x) => x.size);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(10);
    expect(transport.calls.slice(1).every((x) => x.bytes <= 4000)).toBe(true);
    expect(sizes.length).toBeGreaterThan(2);
  });

  it('holds a partial batch exactly maxDelayMs', async () => {
    const c = client({ maxEvents: 100, maxDelayMs: 250 });
    await vi.advanceTimersByTimeAsync(250);
    transport.calls.length = 0;
    void c.record(event(1));
    void c.record(event(2));
    await vi.advanceTimersByTimeAsync(249);
    expect(transport.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(transport.calls.map((x) => x.size)).toEqual([2]);
  });
});

describe('backoff (fake timers)', () => {
  it('retries with exponential backoff and full jitter', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    transport.answers = [
      { kind: 'retry', reason: 'down' },
      { kind: 'retry', reason: 'down' },
      { kind: 'retry', reason: 'down' },
    ];
    client({ maxDelayMs: 0 }, { initialDelayMs: 200, maxDelayMs: 10_000 });
    await vi.advanceTimersByTimeAsync(10_000);
    const times = transport.calls.map((x) => x.at - 1_000_000);
    // Ceilings 200, 400, 800 ms; a draw of 0.5 waits half of each.
    expect(times).toEqual([0, 100, 300, 700]);
  });

  it('never comes back before Retry-After', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    transport.answers = [{ kind: 'retry', reason: '503', status: 503, retryAfterMs: 5000 }];
    client({ maxDelayMs: 0 }, { initialDelayMs: 200 });
    await vi.advanceTimersByTimeAsync(4999);
    expect(transport.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(transport.calls).toHaveLength(2);
  });

  it('waits refusedDelayMs after a 401', async () => {
    transport.answers = [
      {
        kind: 'rejected',
        status: 401,
        code: 'VIGIL_ERR_UNAUTHENTICATED',
        message: 'no',
        details: [],
      },
    ];
    client({ maxDelayMs: 0 }, { refusedDelayMs: 60_000 });
    await vi.advanceTimersByTimeAsync(59_999);
    expect(transport.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(transport.calls).toHaveLength(2);
  });

  it('keeps jitter within [0, min(max, initial·2^n))', () => {
    const policy = { initialDelayMs: 100, maxDelayMs: 5000 };
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(5000, 100 * 2 ** attempt);
      expect(backoffDelay(attempt, policy, () => 0)).toBe(0);
      expect(backoffDelay(attempt, policy, () => 0.999999)).toBe(ceiling - 1);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, policy);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
      }
    }
    expect(backoffDelay(0, policy, () => 0.1, 7000)).toBe(7000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(
      parseRetryAfter(new Date(Date.now() + 10_000).toUTCString(), Date.now()),
    ).toBeGreaterThan(8000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('999999')).toBe(3_600_000);
  });
});
