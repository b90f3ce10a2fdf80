import { spawn } from 'node:child_process';
import {
  newEventId,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type EventInput,
  type SealedEvent,
} from '@vigil/protocol';
import { CLI } from './vigil.js';

export interface CliRun {
  readonly code: number | null;
  /** Standard output. */
  readonly out: string;
  /** Standard error. */
  readonly err: string;
  /** Both, in the order they came. */
  readonly all: string;
}

/** Runs the built `vigil` command to its end (`env` is added to this process's environment). */
export function runCli(
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    let out = '';
    let err = '';
    let all = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      all += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      all += c.toString();
    });
    child.once('exit', (code) => resolve({ code, out, err, all }));
  });
}

const salts = randomSaltSource();

/**
 * `count` events sealed on `stream` from seq 0, each linked to the one before: a user views
 * an invoice. `extra` adds or replaces fields of event `seq`.
 */
export function sealedChain(
  count: number,
  stream: string,
  extra: (seq: number) => Partial<EventInput> = () => ({}),
): SealedEvent[] {
  let prev = ZERO_HASH;
  return Array.from({ length: count }, (_, seq) => {
    const e = sealEvent(
      {
        id: newEventId(),
        time: new Date().toISOString(),
        action: 'invoice.viewed',
        category: 'data_access',
        outcome: 'success',
        actor: { type: 'user', id: `u-${seq}` },
        target: { type: 'invoice', id: `inv-${seq}` },
        ...extra(seq),
      },
      { stream, seq, prev },
      salts,
    ).event;
    prev = e.hash;
    return e;
  });
}
