import { ZERO_HASH } from './constants.js';
import type { ErrorDetail } from './errors.js';

/** The last accepted event of a stream, as the owner of the stream's log partition knows it. */
export interface StreamHead {
  readonly seq: number;
  readonly hash: string;
}

/**
 * How an event relates to its stream's head (PROTOCOL.md §6.2):
 * - `next`: seq is head+1 (or 0 on a new stream) and prev is the head's hash;
 * - `gap`: seq skips ahead — events are missing between the head and this one (also a new
 *   stream whose first event seen has seq > 0);
 * - `fork`: seq is head+1 but prev is not the head's hash, or a new stream's seq 0 has a prev
 *   other than the zero hash;
 * - `behind`: seq is at or below the head: a replay (duplicate) if the stored event at that seq
 *   has the same hash, otherwise a fork. Only the store can tell, so the caller looks it up.
 */
export type LinkVerdict = 'next' | 'gap' | 'fork' | 'behind';

export function judgeLink(head: StreamHead | undefined, seq: number, prev: string): LinkVerdict {
  if (head === undefined) {
    if (seq === 0) return prev === ZERO_HASH ? 'next' : 'fork';
    return 'gap';
  }
  if (seq <= head.seq) return 'behind';
  if (seq === head.seq + 1) return prev === head.hash ? 'next' : 'fork';
  return 'gap';
}

export interface BatchLinkItem {
  readonly index: number;
  readonly stream: string;
  readonly seq: number;
  readonly prev: string;
  readonly hash: string;
}

/**
 * Checks the links between events of the same stream inside one batch: each must follow the
 * previous one of its stream (seq + 1, prev = its hash). Links to events outside the batch need
 * the stream's state and are judged later by the stream's owner with {@link judgeLink}.
 */
export function checkBatchLinks(items: readonly BatchLinkItem[]): ErrorDetail[] {
  const last = new Map<string, BatchLinkItem>();
  const details: ErrorDetail[] = [];
  for (const item of items) {
    const before = last.get(item.stream);
    if (before !== undefined) {
      if (item.seq !== before.seq + 1) {
        details.push({
          index: item.index,
          path: '/record/seq',
          message: `must be ${before.seq + 1}: the previous event of stream ${item.stream} in this batch (index ${before.index}) has seq ${before.seq}`,
        });
      } else if (item.prev !== before.hash) {
        details.push({
          index: item.index,
          path: '/record/prev',
          message: `must be the hash of event ${before.index} of this batch (${before.hash})`,
        });
      }
    }
    last.set(item.stream, item);
  }
  return details;
}
