import {
  checkpointId,
  checkpointSigningInput,
  CHECKPOINT_VERSION,
  encodeCheckpoint,
  formatTime,
  type CheckpointStatement,
  type PartitionHead,
  type SignedCheckpoint,
} from '@vigil/protocol';
import type { TreeObserver } from '../sink/merkle.js';
import type { CheckpointSigner } from './signer.js';
import type { WitnessedCheckpoint } from './witness.js';

/**
 * Signs checkpoints (PROTOCOL.md §14): for each tenant with new leaves, every `everyEvents`
 * leaves or every `intervalMs`, whichever comes first, a statement of the heads of all its
 * partition trees, signed, stored, and handed to the witnesses.
 *
 * It runs in the sink role, told by the tree plugin about the leaves this sink stores, which it
 * passes on to the tree writer (`tree`) that builds nodes and heads. The heads of a tenant's
 * other partitions, owned by other sinks, are read from the store. With N sinks, each signs
 * checkpoints for the tenants it stored leaves of; every leaf is therefore covered within
 * `intervalMs`, and a checkpoint that would state nothing newer than the tenant's latest (another
 * sink covered it) is skipped. Trees whose stored leaves no head states (a sink stopped before
 * signing them) are found by a sweep (`lagging`) at start and every few intervals, so they are
 * signed even if no new event reaches them. Checkpoints of one tenant are not numbered: trees
 * only grow, so any two are related by a consistency proof per partition.
 *
 * Work is serialised (one checkpoint at a time) and never blocks the sink: a failure (signer,
 * store) keeps the tenant pending, is counted, and is retried at the next tick.
 */

/** Where the heads of a tenant's trees come from (the store's merkle_heads). */
export interface HeadSource {
  heads(tenant: string): Promise<PartitionHead[]>;
}

/** Where checkpoints go (the store's checkpoints table). */
export interface CheckpointSink {
  latest(tenant: string): Promise<SignedCheckpoint | undefined>;
  insert(signed: SignedCheckpoint, statement: CheckpointStatement): Promise<void>;
}

export interface CheckpointObserver {
  signed(seconds: number): void;
  failed(error: Error): void;
  leaves(count: number): void;
}

export interface CheckpointerOptions {
  readonly heads: HeadSource;
  /** Gets every report of stored leaves first (the tree writer). */
  readonly tree?: TreeObserver;
  /**
   * Tenants with trees whose stored leaves no head states, for at least `olderThanMs` (the tree
   * writer's `lagging`); swept at start and every `sweepEveryMs`.
   */
  readonly lagging?: (olderThanMs: number) => Promise<string[]>;
  /** Default: 5 × intervalMs. */
  readonly sweepEveryMs?: number;
  readonly sink: CheckpointSink;
  readonly signer: CheckpointSigner;
  /** Sign after this many new leaves of a tenant (checkpoint.events). */
  readonly everyEvents: number;
  /** Sign tenants with new leaves this often (checkpoint.intervalSeconds). */
  readonly intervalMs: number;
  readonly witnesses?: { submit(c: WitnessedCheckpoint): void };
  readonly observer?: CheckpointObserver;
  readonly logger?: {
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
  /** The clock of statement times (tests). */
  readonly now?: () => number;
}

export class Checkpointer implements TreeObserver {
  /** New leaves per tenant since its last checkpoint from this process. */
  private readonly pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly queued = new Set<string>();
  private stopped = false;

  constructor(private readonly options: CheckpointerOptions) {}

  /** Called by the tree plugin once leaves of `tenant` are stored. */
  leavesStored(
    tenant: string,
    partition: number,
    start: number,
    leafHashes: readonly Buffer[],
  ): void {
    this.options.tree?.leavesStored(tenant, partition, start, leafHashes);
    const count = (this.pending.get(tenant) ?? 0) + leafHashes.length;
    this.pending.set(tenant, count);
    this.options.observer?.leaves(leafHashes.length);
    if (count >= this.options.everyEvents) this.schedule([tenant]);
  }

  treeLoaded(tenant: string, partition: number, size: number): void {
    this.options.tree?.treeLoaded?.(tenant, partition, size);
  }

  /** Starts the interval trigger and the sweep for unsigned leaves (at once, then periodically). */
  start(): void {
    if (this.timer || this.options.intervalMs <= 0) return;
    this.timer = setInterval(
      () => this.schedule([...this.pending.keys()]),
      this.options.intervalMs,
    );
    this.timer.unref();
    if (this.options.lagging) {
      this.sweep(0);
      // Trees other sinks are extending are behind by up to one interval; only older lag is a
      // tree nobody is signing.
      this.sweepTimer = setInterval(
        () => this.sweep(2 * this.options.intervalMs),
        this.options.sweepEveryMs ?? 5 * this.options.intervalMs,
      );
      this.sweepTimer.unref();
    }
  }

  private sweep(olderThanMs: number): void {
    const lagging = this.options.lagging;
    if (!lagging) return;
    this.queue = this.queue.then(async () => {
      if (this.stopped) return;
      try {
        const tenants = await lagging(olderThanMs);
        if (tenants.length === 0) return;
        this.options.logger?.warn(
          { tenants: tenants.length },
          'stored leaves that no checkpoint states yet (a sink stopped before signing them); signing them now',
        );
        this.schedule(tenants);
      } catch (error) {
        this.options.observer?.failed(error as Error);
        this.options.logger?.error(
          { err: error },
          'sweep for unsigned leaves failed; retried later',
        );
      }
    });
  }

  /** Tenants with leaves not yet in a checkpoint of this process. */
  pendingTenants(): string[] {
    return [...this.pending.keys()];
  }

  /** Signs every pending tenant now and waits for it (used on shutdown and by tests). */
  async flush(): Promise<void> {
    this.schedule([...this.pending.keys()]);
    await this.queue;
  }

  /** Stops the timer, then signs what is pending, so a clean shutdown leaves nothing unsigned. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.timer = undefined;
    this.sweepTimer = undefined;
    await this.flush();
    this.stopped = true;
  }

  private schedule(tenants: readonly string[]): void {
    for (const tenant of tenants) {
      if (this.queued.has(tenant)) continue;
      this.queued.add(tenant);
      this.queue = this.queue.then(async () => {
        this.queued.delete(tenant);
        if (this.stopped) return;
        try {
          await this.checkpoint(tenant);
        } catch (error) {
          this.options.observer?.failed(error as Error);
          this.options.logger?.error(
            { tenant, err: error },
            'checkpoint failed; the tenant stays pending and is retried at the next tick',
          );
        }
      });
    }
  }

  /**
   * Signs, stores and witnesses one checkpoint of `tenant` from the heads in the store. Returns
   * undefined when the heads state nothing newer than the tenant's latest checkpoint.
   */
  async checkpoint(tenant: string): Promise<SignedCheckpoint | undefined> {
    const started = performance.now();
    const taken = this.pending.get(tenant) ?? 0;
    const heads = await this.options.heads.heads(tenant);
    const latest = await this.options.sink.latest(tenant);
    if (heads.length === 0 || (latest && !extends_(heads, latest))) {
      this.settle(tenant, taken);
      return undefined;
    }
    const { signer } = this.options;
    const statement: CheckpointStatement = {
      v: CHECKPOINT_VERSION,
      tenant,
      time: formatTime((this.options.now ?? Date.now)()),
      keyId: signer.keyId,
      partitions: heads,
    };
    const text = encodeCheckpoint(statement);
    const signature = await signer.sign(checkpointSigningInput(text));
    const signed: SignedCheckpoint = {
      id: checkpointId(text),
      checkpoint: text,
      signature: signature.toString('base64url'),
    };
    await this.options.sink.insert(signed, statement);
    this.settle(tenant, taken);
    this.options.observer?.signed((performance.now() - started) / 1000);
    this.options.witnesses?.submit({
      type: 'vigil.checkpoint',
      ...signed,
      tenant,
      time: statement.time,
      keyId: statement.keyId,
      publicKey: signer.publicKey().toString('base64url'),
    });
    return signed;
  }

  /** Leaves that arrived while the checkpoint was made stay pending. */
  private settle(tenant: string, taken: number): void {
    const left = (this.pending.get(tenant) ?? 0) - taken;
    if (left > 0) this.pending.set(tenant, left);
    else this.pending.delete(tenant);
  }
}

/** Whether `heads` state something `latest` does not: a new partition or a larger tree. */
function extends_(heads: readonly PartitionHead[], latest: SignedCheckpoint): boolean {
  let stated: readonly PartitionHead[];
  try {
    stated = (JSON.parse(latest.checkpoint) as CheckpointStatement).partitions;
  } catch {
    return true;
  }
  const sizes = new Map(stated.map((p) => [p.partition, p.size]));
  return heads.some((h) => h.size > (sizes.get(h.partition) ?? 0));
}
