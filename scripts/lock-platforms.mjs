// Adds lock-file entries for the platform builds of optional native packages (turbo, chdb) that
// the package registry reachable from our build machines does not serve (darwin, windows). npm
// skips such optional packages at install time and leaves them out of package-lock.json, after
// which `npm ci` refuses the lock file as out of sync. The entries carry the platform fields only,
// so `npm ci` on Linux skips them as it does any optional package for another platform.
//   node scripts/lock-platforms.mjs   (after any npm install that rewrote package-lock.json)
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const platforms = {
  'darwin-64': { os: ['darwin'], cpu: ['x64'] },
  'darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'windows-64': { os: ['win32'], cpu: ['x64'] },
  'windows-arm64': { os: ['win32'], cpu: ['arm64'] },
  'lib-darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  'lib-darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  'lib-linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
};
let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (lock.packages[key] || !/^@(turbo|chdb)\//.test(name)) continue;
    const platform = platforms[name.split('/')[1]];
    if (!platform) continue;
    lock.packages[key] = {
      version,
      ...platform,
      ...(entry.dev ? { dev: true } : {}),
      optional: true,
    };
    added++;
    void path;
  }
}
const sorted = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
lock.packages = sorted;
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`added ${added} platform entries to package-lock.json`);
