import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 8192;

/**
 * Cryptographically random bytes from a pooled buffer: one getrandom() call per 8 KiB
 * instead of one per salt. The returned buffer is a copy, so later refills never
 * change a salt already handed out.
 */
export class RandomPool {
  private pool = Buffer.allocUnsafe(POOL_SIZE);
  private offset = POOL_SIZE;

  bytes(n: number): Buffer {
    if (n > POOL_SIZE) return randomFillSync(Buffer.allocUnsafe(n));
    if (this.offset + n > POOL_SIZE) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const out = Buffer.allocUnsafe(n);
    this.pool.copy(out, 0, this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}

/** Where salts come from; tests inject fixed salts to reproduce the test vectors. */
export interface SaltSource {
  salt(): Buffer;
}

export const SALT_BYTES = 16;

export function randomSaltSource(bytes = SALT_BYTES): SaltSource {
  const pool = new RandomPool();
  return { salt: () => pool.bytes(bytes) };
}
