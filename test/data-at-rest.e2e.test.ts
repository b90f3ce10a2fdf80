import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { newEventId } from '@vigil/protocol';
import { startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';

/**
 * Data at rest (README, "Security"): under a umask of 022, which would leave new files 0644 and
 * directories 0755, everything `vigil start` creates under its data directory — the log's
 * segments, indexes and offsets, the chDB store, keys, bootstrap credentials — is owner-only
 * once it has taken in and stored events with personal data.
 */

/** Every path under `dir` (itself included) whose mode lets anyone but the owner in. */
function notOwnerOnly(dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string): void => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return; // a link's own mode means nothing (always 0777 on Linux)
    if ((stat.mode & 0o077) !== 0) out.push(`${(stat.mode & 0o777).toString(8)} ${path}`);
    if (stat.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dir);
  return out;
}

describe('vigil start keeps its data owner-only', () => {
  const parent = tempDataDir('at-rest');
  const dataDir = join(parent.dir, 'data');
  let vigil: VigilProcess | undefined;
  const umask = process.umask(0o022);
  afterAll(async () => {
    await vigil?.stop();
    process.umask(umask);
    parent.remove();
  });

  it('creates every file 0600 and every directory 0700 under umask 022', async () => {
    vigil = await startVigil({ dataDir });
    const { ingestKey, queryKey } = vigil.credentials();
    const events = Array.from({ length: 5 }, (_, i) => ({
      id: newEventId(),
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: `dora-${i}`, email: `dora${i}@example.eu` },
      context: { ip: '192.0.2.77', userAgent: 'at-rest/1.0' },
    }));
    const res = await fetch(`${vigil.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
      body: JSON.stringify({ events }),
    });
    expect(res.status).toBe(202);
    await waitFor(
      async () =>
        (await (
          await fetch(`${vigil!.url}/v1/events?actor=dora-0`, {
            headers: { authorization: `Bearer ${queryKey}` },
          })
        ).json()) as { events: unknown[] },
      (r) => r.events.length === 1,
      20_000,
      'the events stored',
    );
    expect(await vigil.stop()).toBe(0);
    vigil = undefined;
    // What the run made: the log, the store, keys and credentials, all present.
    for (const name of ['log', 'store', 'keys', 'bootstrap-credentials.json'])
      expect(readdirSync(dataDir)).toContain(name);
    expect(notOwnerOnly(dataDir)).toEqual([]);
  });
});
