import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId } from '@vigil/protocol';
import { CLI, startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';

const run = promisify(execFile);

const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

interface Page {
  events: { event: Record<string, unknown>; server: Record<string, unknown> }[];
}

/**
 * An operator's view of retention: events enriched on their way in, a policy changed and a
 * legal hold placed and released with the `vigil` command against a running server.
 */
describe('retention, legal holds and enrichment through a running vigil', () => {
  const data = tempDataDir('retention');
  let vigil: VigilProcess;
  const vigilCli = async (...args: string[]): Promise<string> => {
    const { adminKey } = vigil.credentials();
    const { stdout } = await run(
      process.execPath,
      [CLI, ...args, '--url', vigil.url, '--key', adminKey],
      { timeout: 30_000 },
    );
    return stdout;
  };

  beforeAll(async () => {
    vigil = await startVigil({ dataDir: data.dir });
  });
  afterAll(async () => {
    await vigil?.stop();
    data.remove();
  });

  it('stores events with the geo of their address and their parsed user agent, including a 1970 backfill', async () => {
    const { ingestKey, queryKey } = vigil.credentials();
    const events = [
      { time: new Date().toISOString(), actor: 'alice' },
      { time: '1970-01-01T00:00:00.000Z', actor: 'bob' },
    ].map(({ time, actor }) => ({
      id: newEventId(),
      time,
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: actor },
      context: { ip: '8.8.8.8', userAgent: CHROME },
    }));
    const posted = await fetch(`${vigil.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ingestKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(posted.status).toBe(202);
    const page = await waitFor(
      async () =>
        (await (
          await fetch(`${vigil.url}/v1/events?action=user.login&order=asc`, {
            headers: { authorization: `Bearer ${queryKey}` },
          })
        ).json()) as Page,
      (p) => p.events.length >= 2,
      20_000,
      'two enriched events',
    );
    for (const e of page.events) {
      expect(e.server).toMatchObject({
        geo: { country: 'US' },
        ua: { browser: 'Chrome', os: 'Windows', device: 'desktop' },
      });
    }
    expect(
      page.events.find((e) => e.event['time'] === '1970-01-01T00:00:00.000Z')?.server,
    ).toMatchObject({ flags: ['backfill'] });
  });

  it('changes and shows a policy with vigil retention', async () => {
    expect(
      await vigilCli('retention', 'set', 'api=30', 'security=default', '--reason', 'DPA'),
    ).toMatch(/1 change\(s\) recorded/);
    const shown = await vigilCli('retention', 'show');
    expect(shown).toMatch(/^api\s+30\s+tenant$/m);
    expect(shown).toMatch(/^authentication\s+396\s+default$/m);
    expect(await vigilCli('retention', 'history')).toMatch(
      /api\s+90 \(default\) → 30\s+by \w+: DPA/,
    );
    expect(await vigilCli('retention', 'apply', 'api')).toMatch(
      /re-applied 30 days to stored api events/,
    );
  });

  it('places, lists and releases a legal hold with vigil holds', async () => {
    const placed = await vigilCli('holds', 'place', '--subject', 'alice', '--reason', 'case 7');
    const id = /(hold_[0-9a-f]{16})/.exec(placed)?.[1];
    expect(id).toBeDefined();
    // alice's event, and perhaps already the audit event of this very hold (it names her too).
    expect(placed).toMatch(/[12] stored event\(s\) are now held/);
    expect(await vigilCli('holds')).toContain(`${id}  subject alice`);
    expect(await vigilCli('holds', 'release', id!, '--reason', 'closed')).toMatch(
      /released .* closed/,
    );
    expect(await vigilCli('holds')).toBe('no active legal hold\n');
    const all = JSON.parse(await vigilCli('holds', 'list', '--all', '--json')) as {
      holds: { id: string; active: boolean }[];
    };
    expect(all.holds).toEqual([expect.objectContaining({ id, active: false })]);
  });
});
