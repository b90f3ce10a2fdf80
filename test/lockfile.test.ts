import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

interface LockEntry {
  optionalDependencies?: Record<string, string>;
}

describe('package-lock.json', () => {
  // npm leaves optional platform builds it cannot fetch out of the lock, and `npm ci` then
  // refuses the lock; scripts/lock-platforms.mjs puts them back. See that script.
  it('lists every platform build of turbo and chdb, so npm ci accepts it', () => {
    const lock = JSON.parse(
      readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'),
    ) as {
      packages: Record<string, LockEntry>;
    };
    const missing: string[] = [];
    for (const entry of Object.values(lock.packages)) {
      for (const name of Object.keys(entry.optionalDependencies ?? {})) {
        if (/^@(turbo|chdb)\//.test(name) && !lock.packages[`node_modules/${name}`])
          missing.push(name);
      }
    }
    expect(missing, 'run: node scripts/lock-platforms.mjs').toEqual([]);
  });
});
