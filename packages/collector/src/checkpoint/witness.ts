import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SignedCheckpoint } from '@vigil/protocol';
import { WitnessError } from '../errors.js';

/**
 * Witnesses keep copies of every checkpoint outside Vigil (PROTOCOL.md §14.7), so that whoever
 * runs the store, or holds a key file, cannot rewrite history and re-sign it unnoticed: a
 * rewritten log no longer matches the roots the witnesses hold. One small interface, two
 * implementations; a WitnessQueue in front of each retries with backoff and never blocks the
 * sink.
 */

/** What a witness receives: the signed checkpoint plus what it needs to file and check it. */
export interface WitnessedCheckpoint extends SignedCheckpoint {
  readonly type: 'vigil.checkpoint';
  /** Unverified copies of statement members, for filing; the signed text is authoritative. */
  readonly tenant: string;
  readonly time: string;
  readonly keyId: string;
  /** The signing key (raw Ed25519, base64url), so a witness can verify what it keeps. */
  readonly publicKey: string;
}

export interface CheckpointWitness {
  readonly name: string;
  /** Takes one checkpoint; throws when it could not (the queue retries it). */
  submit(checkpoint: WitnessedCheckpoint): Promise<void>;
}

/** One witness document, as a file or a webhook body. */
export function witnessDocument(c: WitnessedCheckpoint): string {
  return (
    JSON.stringify(
      {
        type: c.type,
        id: c.id,
        tenant: c.tenant,
        time: c.time,
        keyId: c.keyId,
        publicKey: c.publicKey,
        checkpoint: c.checkpoint,
        signature: c.signature,
      },
      null,
      2,
    ) + '\n'
  );
}

/**
 * Writes each checkpoint as its own file, `<dir>/<tenant>/<time>_<id>.json`, created exclusively
 * and fsynced, and never overwrites: a file that exists with other content is an error. Point it
 * at storage Vigil's host cannot rewrite (another machine's mount, WORM or object-lock storage,
 * a directory a backup job copies away).
 */
export class DirectoryWitness implements CheckpointWitness {
  readonly name: string;

  constructor(private readonly dir: string) {
    this.name = `dir:${dir}`;
  }

  /** The file of a checkpoint; names sort in time order. */
  pathOf(c: WitnessedCheckpoint): string {
    const time = c.time.replace(/:/g, '-');
    return join(this.dir, encodeURIComponent(c.tenant), `${time}_${c.id}.json`);
  }

  async submit(c: WitnessedCheckpoint): Promise<void> {
    const path = this.pathOf(c);
    const text = witnessDocument(c);
    try {
      const tenantDir = join(this.dir, encodeURIComponent(c.tenant));
      await mkdir(tenantDir, { recursive: true });
      let handle;
      try {
        handle = await open(path, 'wx', 0o644);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        // Already witnessed (a retry after a lost acknowledgement): fine if identical.
        if ((await readFile(path, 'utf8')) === text) return;
        throw new WitnessError(`${path} exists with other content; a witness never overwrites`);
      }
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      const dirHandle = await open(tenantDir, 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
    } catch (error) {
      if (error instanceof WitnessError) throw error;
      throw new WitnessError(`cannot write ${path}: ${(error as Error).message}`, error);
    }
  }
}

export interface WebhookWitnessOptions {
  readonly url: string;
  /** Sent as `Authorization: Bearer <token>` when set. */
  readonly token?: string;
  readonly timeoutMs?: number;
}

/** POSTs each checkpoint as JSON (the witness document); any 2xx is success. */
export class WebhookWitness implements CheckpointWitness {
  readonly name: string;

  constructor(private readonly options: WebhookWitnessOptions) {
    const url = new URL(options.url);
    this.name = `webhook:${url.origin}${url.pathname}`;
  }

  async submit(c: WitnessedCheckpoint): Promise<void> {
    let response: Response;
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
        },
        body: witnessDocument(c),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (error) {
      throw new WitnessError(`${this.name}: ${(error as Error).message}`, error);
    }
    // Drain the body so the connection can be reused.
    await response.arrayBuffer().catch(() => undefined);
    if (response.status < 200 || response.status >= 300)
      throw new WitnessError(`${this.name} answered ${response.status}`);
  }
}

export interface WitnessObserver {
  delivered(witness: string): void;
  failed(witness: string, error: Error): void;
  dropped(witness: string): void;
  depth(witness: string, queued: number): void;
}

export interface WitnessQueueOptions {
  /** Checkpoints waiting at most; when full the oldest is dropped (and counted). */
  readonly capacity?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly observer?: WitnessObserver;
  readonly logger?: { warn(obj: object, msg: string): void };
}

/**
 * A bounded queue in front of one witness: delivers in order, retries the head with exponential
 * backoff (base, 2·base, … up to maxDelayMs) until it is taken, and drops the oldest entry when
 * full. Dropping loses no proof: any later checkpoint covers the same leaves, and consistency
 * proofs connect it to whatever the witness held before.
 */
export class WitnessQueue {
  private readonly items: WitnessedCheckpoint[] = [];
  private readonly capacity: number;
  private pumping: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private stopped = false;
  private attempts = 0;

  constructor(
    readonly witness: CheckpointWitness,
    private readonly options: WitnessQueueOptions = {},
  ) {
    this.capacity = Math.max(1, options.capacity ?? 1000);
  }

  get size(): number {
    return this.items.length;
  }

  enqueue(c: WitnessedCheckpoint): void {
    if (this.stopped) return;
    if (this.items.length >= this.capacity) {
      // Never the head while it is being delivered: drop the oldest waiting one.
      this.items.splice(this.items.length > 1 ? 1 : 0, 1);
      this.options.observer?.dropped(this.witness.name);
      this.options.logger?.warn(
        { witness: this.witness.name, capacity: this.capacity },
        'witness queue full: dropped its oldest checkpoint',
      );
    }
    this.items.push(c);
    this.options.observer?.depth(this.witness.name, this.items.length);
    this.pumping ??= this.pump().finally(() => {
      this.pumping = undefined;
    });
  }

  /** Waits until the queue is empty, at most `timeoutMs`; true when it is. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length > 0 && Date.now() < deadline && !this.stopped) {
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.items.length === 0;
  }

  /** Stops delivering; what is still queued is dropped. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
  }

  private async pump(): Promise<void> {
    const base = this.options.baseDelayMs ?? 1000;
    const max = this.options.maxDelayMs ?? 60_000;
    while (!this.stopped && this.items.length > 0) {
      const head = this.items[0] as WitnessedCheckpoint;
      try {
        await this.witness.submit(head);
        if (this.items[0] === head) this.items.shift();
        this.attempts = 0;
        this.options.observer?.delivered(this.witness.name);
        this.options.observer?.depth(this.witness.name, this.items.length);
      } catch (error) {
        this.attempts++;
        this.options.observer?.failed(this.witness.name, error as Error);
        const delay = Math.min(base * 2 ** (this.attempts - 1), max);
        this.options.logger?.warn(
          { witness: this.witness.name, err: error, attempt: this.attempts, retryInMs: delay },
          'witness did not take a checkpoint; retrying',
        );
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.timer = setTimeout(resolve, delay);
          this.timer.unref();
        });
        this.wake = undefined;
      }
    }
  }
}

/** Hands each checkpoint to every witness's queue. */
export class WitnessDispatcher {
  readonly queues: WitnessQueue[];

  constructor(witnesses: readonly CheckpointWitness[], options: WitnessQueueOptions = {}) {
    this.queues = witnesses.map((w) => new WitnessQueue(w, options));
  }

  submit(c: WitnessedCheckpoint): void {
    for (const q of this.queues) q.enqueue(c);
  }

  /** On shutdown: give the queues up to `timeoutMs` to empty, then stop them. */
  async close(timeoutMs = 2000): Promise<void> {
    await Promise.all(this.queues.map((q) => q.drain(timeoutMs)));
    for (const q of this.queues) q.stop();
  }
}
