import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryLog } from '../log/memory-log.testkit.js';
import { CollectorErrorCodes } from '../errors.js';
import type { Log } from '../log/log.js';
import { Admission, LAG_RETRY_AFTER_SECONDS, SINK_RETRY_AFTER_SECONDS } from './admission.js';

async function appendRecords(log: Log, count: number): Promise<void> {
  for (let i = 0; i < count; i++)
    await log.append([{ key: `stream-${i}`, value: Buffer.from(`record ${i}`) }]);
}

async function commitAll(log: MemoryLog, group: string): Promise<void> {
  const consumer = log.consume({ group, handleBatch: () => Promise.resolve() });
  await consumer.start();
  await vi.waitFor(async () => {
    const lag = await log.groupLag(group);
    expect([...lag.values()].every((n) => n === 0)).toBe(true);
  });
  await consumer.stop();
}

describe('Admission', () => {
  let admission: Admission | undefined;
  afterEach(() => admission?.stop());

  it('refuses with 503 OVERLOADED once the group lags beyond the bound, and admits again below it', async () => {
    const log = new MemoryLog('events', 2);
    admission = new Admission({ log, group: 'sinks', maxLagRecords: 3, refreshMs: 60_000 });
    await admission.start();
    expect(admission.refusal()).toBeUndefined();

    await appendRecords(log, 4);
    await admission.refresh();
    expect(admission.lag).toBe(4);
    const refusal = admission.refusal();
    expect(refusal?.error.code).toBe(CollectorErrorCodes.OVERLOADED);
    expect(refusal?.error.status).toBe(503);
    expect(refusal?.error.retriable).toBe(true);
    expect(refusal?.retryAfterSeconds).toBe(LAG_RETRY_AFTER_SECONDS);
    expect(refusal?.error.message).toContain('ingest.maxLagRecords');

    await commitAll(log, 'sinks');
    await admission.refresh();
    expect(admission.lag).toBe(0);
    expect(admission.refusal()).toBeUndefined();
  });

  it('counts only the named group: another group having read everything does not help', async () => {
    const log = new MemoryLog('events', 2);
    await appendRecords(log, 5);
    await commitAll(log, 'someone-else');
    admission = new Admission({ log, group: 'sinks', maxLagRecords: 3, refreshMs: 60_000 });
    await admission.start();
    expect(admission.lag).toBe(5);
    expect(admission.refusal()?.error.code).toBe(CollectorErrorCodes.OVERLOADED);
  });

  it('has no bound at 0', async () => {
    const log = new MemoryLog('events', 1);
    await appendRecords(log, 10);
    admission = new Admission({ log, group: 'sinks', maxLagRecords: 0, refreshMs: 60_000 });
    await admission.start();
    expect(admission.lag).toBe(10);
    expect(admission.refusal()).toBeUndefined();
  });

  it('refuses with 503 SINK_NOT_READY while the sink of the process has failed or stopped, not while it starts', async () => {
    const log = new MemoryLog('events', 1);
    let state = 'restarting';
    admission = new Admission({
      log,
      group: 'sinks',
      maxLagRecords: 0,
      refreshMs: 60_000,
      sinkState: () => state,
    });
    await admission.start();
    const refusal = admission.refusal();
    expect(refusal?.error.code).toBe(CollectorErrorCodes.SINK_NOT_READY);
    expect(refusal?.error.status).toBe(503);
    expect(refusal?.retryAfterSeconds).toBe(SINK_RETRY_AFTER_SECONDS);
    expect(refusal?.error.message).toContain('restarting');
    state = 'running';
    expect(admission.refusal()).toBeUndefined();
    state = 'starting';
    expect(admission.refusal()).toBeUndefined();
    state = 'stopped';
    expect(admission.refusal()?.error.code).toBe(CollectorErrorCodes.SINK_NOT_READY);
  });

  it('keeps the last reading when the log cannot say its lag, and says so once', async () => {
    const log = new MemoryLog('events', 1);
    await appendRecords(log, 5);
    const warn = vi.fn();
    admission = new Admission({
      log,
      group: 'sinks',
      maxLagRecords: 3,
      refreshMs: 60_000,
      logger: { warn },
    });
    await admission.start();
    const failing = vi.spyOn(log, 'groupLag').mockRejectedValue(new Error('broker unreachable'));
    await admission.refresh();
    await admission.refresh();
    expect(admission.lag).toBe(5);
    expect(admission.refusal()?.error.code).toBe(CollectorErrorCodes.OVERLOADED);
    expect(warn).toHaveBeenCalledTimes(1);
    failing.mockRestore();
  });

  it('reads the lag again on its timer', async () => {
    vi.useFakeTimers();
    try {
      const log = new MemoryLog('events', 1);
      admission = new Admission({ log, group: 'sinks', maxLagRecords: 3, refreshMs: 1000 });
      await admission.start();
      await appendRecords(log, 4);
      expect(admission.refusal()).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1000);
      expect(admission.lag).toBe(4);
      expect(admission.refusal()?.error.code).toBe(CollectorErrorCodes.OVERLOADED);
    } finally {
      vi.useRealTimers();
    }
  });

  it('admits at most maxInFlight requests at once, and more once some are answered', async () => {
    const log = new MemoryLog('events', 1);
    admission = new Admission({
      log,
      group: 'sinks',
      maxLagRecords: 0,
      refreshMs: 60_000,
      maxInFlight: 2,
    });
    await admission.start();
    expect(admission.enter()).toBeUndefined();
    expect(admission.enter()).toBeUndefined();
    const refused = admission.enter();
    expect(refused?.error.code).toBe(CollectorErrorCodes.OVERLOADED);
    expect(refused?.error.status).toBe(503);
    expect(admission.requestsInFlight).toBe(2);
    admission.leave();
    expect(admission.enter()).toBeUndefined();
  });
});
