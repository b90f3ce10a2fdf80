import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CollectorErrorCodes } from '../errors.js';
import type { BatchCheck, CheckLimits } from './batch-check.js';
import { owned, type CheckReply, type CheckTask } from './check-messages.js';

export interface CheckPoolLogger {
  error(obj: object, msg: string): void;
}

/**
 * The parent's Node flags minus export conditions: the worker is the compiled script and must
 * resolve packages to their builds even when the parent (a test runner) resolves to sources.
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '-C' || a === '--conditions') i++;
    else if (!a.startsWith('--conditions=')) out.push(a);
  }
  return out;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, (result: BatchCheck) => void>;
}

/**
 * Worker threads that run the stateless checks of ingest requests in parallel: on a machine with
 * more cores than one, hashing and validation no longer queue behind the event loop. Bounded:
 * beyond `maxInFlight` tasks per worker a request is refused with a retriable 503 rather than
 * queued without limit. A worker that dies is replaced; its tasks fail as retriable.
 */
export class CheckPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    size: number,
    private readonly limits: CheckLimits,
    private readonly maxInFlight = 32,
    private readonly logger?: CheckPoolLogger,
  ) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  get size(): number {
    return this.slots.length;
  }

  /** The compiled worker script; tests running TypeScript sources use the build's copy. */
  static workerFile(): string {
    const here = fileURLToPath(import.meta.url);
    return here.endsWith('.ts')
      ? join(dirname(here), '../../dist/ingest/check-worker.js')
      : join(dirname(here), 'check-worker.js');
  }

  private spawn(): Slot {
    const worker = new Worker(CheckPool.workerFile(), {
      workerData: { limits: this.limits },
      execArgv: workerExecArgv(),
    });
    const slot: Slot = { worker, inFlight: new Map() };
    worker.on('message', (reply: CheckReply) => {
      const resolve = slot.inFlight.get(reply.id);
      slot.inFlight.delete(reply.id);
      // An idle pool must not keep the process alive; a busy one must.
      if (slot.inFlight.size === 0) worker.unref();
      resolve?.(reply.result);
    });
    const fail = (error: Error): void => {
      for (const resolve of slot.inFlight.values()) {
        resolve({
          ok: false,
          code: CollectorErrorCodes.OVERLOADED,
          status: 503,
          message: `a check worker failed: ${error.message}`,
          details: [],
        });
      }
      slot.inFlight.clear();
      if (this.closed) return;
      this.logger?.error({ err: error }, 'ingest check worker died; starting a new one');
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots[index] = this.spawn();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (!this.closed) fail(new Error(`exited with code ${code}`));
    });
    worker.unref();
    return slot;
  }

  run(task: Omit<CheckTask, 'id'>): Promise<BatchCheck> {
    let slot = this.slots[0] as Slot;
    for (const s of this.slots) if (s.inFlight.size < slot.inFlight.size) slot = s;
    if (this.closed || slot.inFlight.size >= this.maxInFlight) {
      return Promise.resolve({
        ok: false,
        code: CollectorErrorCodes.OVERLOADED,
        status: 503,
        message: 'the collector is saturated; retry after the Retry-After delay',
        details: [],
      });
    }
    const id = this.nextId++;
    const body = owned(task.body);
    return new Promise<BatchCheck>((resolve) => {
      slot.inFlight.set(id, resolve);
      slot.worker.ref();
      slot.worker.postMessage({ ...task, id, body } satisfies CheckTask, [
        body.buffer as ArrayBuffer,
      ]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
