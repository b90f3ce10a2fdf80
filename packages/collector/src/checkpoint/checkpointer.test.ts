import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  parseCheckpoint,
  verifyCheckpoint,
  type CheckpointStatement,
  type PartitionHead,
  type SignedCheckpoint,
} from '@vigil/protocol';
import { Checkpointer, type CheckpointSink, type HeadSource } from './checkpointer.js';
import { MemorySigner } from './signer.js';
import type { WitnessedCheckpoint } from './witness.js';

const root = (n: number): string => n.toString(16).padStart(64, '0');

/** Grows a fake tree and reports its new leaves, as the tree plugin does. */
function stored(c: Checkpointer, tenant: string, partition: number, count: number): void {
  const before = fakesRef.trees.get(tenant)?.get(partition) ?? 0;
  fakesRef.grow(tenant, partition, count);
  c.leavesStored(
    tenant,
    partition,
    before,
    Array.from({ length: count }, () => Buffer.alloc(32)),
  );
}
let fakesRef: Fakes;

/** Heads and checkpoints in memory, as the store would hold them. */
class Fakes implements HeadSource, CheckpointSink {
  readonly trees = new Map<string, Map<number, number>>();
  readonly stored: { signed: SignedCheckpoint; statement: CheckpointStatement }[] = [];
  failInsert = 0;

  grow(tenant: string, partition: number, by: number): PartitionHead {
    const t = this.trees.get(tenant) ?? new Map<number, number>();
    this.trees.set(tenant, t);
    const size = (t.get(partition) ?? 0) + by;
    t.set(partition, size);
    return { partition, size, root: root(size) };
  }

  heads(tenant: string): Promise<PartitionHead[]> {
    const t = this.trees.get(tenant) ?? new Map<number, number>();
    return Promise.resolve(
      [...t.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([partition, size]) => ({ partition, size, root: root(size) })),
    );
  }

  latest(tenant: string): Promise<SignedCheckpoint | undefined> {
    const mine = this.stored.filter((s) => s.statement.tenant === tenant);
    return Promise.resolve(mine[mine.length - 1]?.signed);
  }

  insert(signed: SignedCheckpoint, statement: CheckpointStatement): Promise<void> {
    if (this.failInsert > 0) {
      this.failInsert--;
      return Promise.reject(new Error('store down'));
    }
    this.stored.push({ signed, statement });
    return Promise.resolve();
  }

  of(tenant: string): CheckpointStatement[] {
    return this.stored.filter((s) => s.statement.tenant === tenant).map((s) => s.statement);
  }
}

describe('Checkpointer', () => {
  let fakes: Fakes;
  let signer: MemorySigner;
  let witnessed: WitnessedCheckpoint[];
  let failures: number;

  const make = (everyEvents: number, intervalMs: number): Checkpointer =>
    new Checkpointer({
      heads: fakes,
      sink: fakes,
      signer,
      everyEvents,
      intervalMs,
      witnesses: { submit: (c) => witnessed.push(c) },
      observer: { signed: () => undefined, failed: () => failures++, leaves: () => undefined },
      now: () => Date.now(),
    });

  beforeEach(() => {
    vi.useFakeTimers({ now: Date.parse('2026-11-23T10:00:00.000Z') });
    fakes = new Fakes();
    fakesRef = fakes;
    signer = MemorySigner.generate();
    witnessed = [];
    failures = 0;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('signs a tenant once it has N new leaves, without waiting for the interval', async () => {
    const c = make(100, 60_000);
    c.start();
    stored(c, 'acme', 0, 60);
    await vi.advanceTimersByTimeAsync(0);
    expect(fakes.of('acme')).toHaveLength(0);
    stored(c, 'acme', 0, 40);
    await vi.advanceTimersByTimeAsync(0);
    expect(fakes.of('acme')).toHaveLength(1);
    expect(fakes.of('acme')[0]).toMatchObject({
      v: 1,
      tenant: 'acme',
      time: '2026-11-23T10:00:00.000Z',
      keyId: signer.keyId,
      partitions: [{ partition: 0, size: 100, root: root(100) }],
    });
    expect(c.pendingTenants()).toEqual([]);
    await c.stop();
  });

  it('signs every tenant with new leaves each interval, and only those', async () => {
    const c = make(1_000_000, 10_000);
    c.start();
    stored(c, 'acme', 0, 3);
    stored(c, 'beta', 2, 1);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(fakes.stored).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(fakes.of('acme')).toHaveLength(1);
    expect(fakes.of('beta')).toHaveLength(1);
    // Quiet tenants get no new checkpoint.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(fakes.stored).toHaveLength(2);
    stored(c, 'acme', 1, 5);
    await vi.advanceTimersByTimeAsync(10_000);
    const acme = fakes.of('acme');
    expect(acme).toHaveLength(2);
    // All partitions of the tenant, ascending, with the time of signing.
    expect(acme[1]).toMatchObject({
      time: '2026-11-23T10:00:50.000Z',
      partitions: [
        { partition: 0, size: 3 },
        { partition: 1, size: 5 },
      ],
    });
    await c.stop();
  });

  it('signs checkpoints that verify with the public key, and hands them to the witnesses', async () => {
    const c = make(1, 60_000);
    stored(c, 'acme', 0, 2);
    await c.flush();
    expect(witnessed).toHaveLength(1);
    const w = witnessed[0]!;
    expect(w).toMatchObject({ type: 'vigil.checkpoint', tenant: 'acme', keyId: signer.keyId });
    expect(w.publicKey).toBe(signer.publicKey().toString('base64url'));
    const checked = verifyCheckpoint(w, [signer.publicKey()]);
    expect(checked.ok).toBe(true);
    expect(parseCheckpoint(fakes.stored[0]!.signed.checkpoint)).toEqual(checked);
  });

  it('skips a checkpoint that would state nothing newer (another sink signed those heads)', async () => {
    const c = make(1_000_000, 1000);
    c.start();
    stored(c, 'acme', 0, 4);
    const other = make(1_000_000, 1000);
    await other.checkpoint('acme');
    expect(fakes.stored).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(fakes.stored).toHaveLength(1);
    expect(c.pendingTenants()).toEqual([]);
    await c.stop();
  });

  it('keeps a tenant pending when storing fails, and retries at the next tick', async () => {
    const c = make(1_000_000, 5000);
    c.start();
    fakes.failInsert = 2;
    stored(c, 'acme', 0, 1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(failures).toBe(1);
    expect(c.pendingTenants()).toEqual(['acme']);
    await vi.advanceTimersByTimeAsync(5000);
    expect(failures).toBe(2);
    await vi.advanceTimersByTimeAsync(5000);
    expect(fakes.of('acme')).toHaveLength(1);
    expect(c.pendingTenants()).toEqual([]);
    await c.stop();
  });

  it('signs, at start and then periodically, the tenants a sweep finds with unsigned leaves', async () => {
    const asked: number[] = [];
    let lagging = ['acme'];
    fakes.grow('acme', 1, 9);
    const c = new Checkpointer({
      heads: fakes,
      sink: fakes,
      signer,
      everyEvents: 1_000_000,
      intervalMs: 10_000,
      lagging: (olderThanMs) => {
        asked.push(olderThanMs);
        const found = lagging;
        lagging = [];
        return Promise.resolve(found);
      },
    });
    c.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(asked).toEqual([0]);
    expect(fakes.of('acme').map((s) => s.partitions)).toEqual([
      [{ partition: 1, size: 9, root: root(9) }],
    ]);
    // Later sweeps only take lag older than two intervals: younger lag is a sink at work.
    await vi.advanceTimersByTimeAsync(50_000);
    expect(asked).toEqual([0, 20_000]);
    await c.stop();
  });

  it('signs what is pending when stopped, so a clean shutdown leaves no leaf unsigned', async () => {
    const c = make(1_000_000, 60_000);
    c.start();
    stored(c, 'acme', 0, 7);
    await c.stop();
    expect(fakes.of('acme').map((s) => s.partitions[0]?.size)).toEqual([7]);
    // After stop, nothing more is signed.
    stored(c, 'acme', 0, 1);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(fakes.of('acme')).toHaveLength(1);
  });
});
