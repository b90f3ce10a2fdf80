import type { Entry } from './entry.js';

/**
 * FIFO of entries waiting to be sent, with their count and bytes. An array with a moving head,
 * compacted when the dead prefix dominates, so push and shift stay O(1) amortised without
 * allocating per event.
 */
export class EntryQueue {
  private items: (Entry | undefined)[] = [];
  private head = 0;
  private byteCount = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.byteCount;
  }

  push(entry: Entry): void {
    this.items.push(entry);
    this.byteCount += entry.bytes;
  }

  /** The entry `i` places from the front, without removing it. */
  peek(i = 0): Entry | undefined {
    return this.items[this.head + i];
  }

  shift(): Entry | undefined {
    if (this.head >= this.items.length) return undefined;
    const entry = this.items[this.head] as Entry;
    this.items[this.head] = undefined;
    this.head++;
    this.byteCount -= entry.bytes;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return entry;
  }

  /** Removes and returns every entry. */
  drain(): Entry[] {
    const out = this.items.slice(this.head) as Entry[];
    this.items = [];
    this.head = 0;
    this.byteCount = 0;
    return out;
  }
}
