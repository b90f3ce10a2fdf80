import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditClient } from '@vigil/sdk';
import { CLI, startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';

/**
 * Issue 11's "done when", from the analyst's side and through the built CLI: `vigil start`, a
 * brute force on one account through the SDK, and the alert is in `vigil alerts` within 5 s of
 * the last event; then it is triaged with `vigil alerts ack` and the change is an audit event.
 */

const run = promisify(execFile);

describe('vigil alerts end to end', () => {
  const data = tempDataDir('alerts');
  let vigil: VigilProcess;

  async function vigilAlerts(...args: string[]): Promise<string> {
    const { stdout } = await run(process.execPath, [CLI, 'alerts', ...args, '--url', vigil.url], {
      env: { PATH: process.env['PATH'] ?? '', VIGIL_DATA_DIR: data.dir },
    });
    return stdout;
  }

  beforeAll(async () => {
    vigil = await startVigil({ dataDir: data.dir });
  }, 60_000);
  afterAll(async () => {
    await vigil?.stop();
    data.remove();
  });

  it('a brute force shows in vigil alerts within 5 s and is triaged there', async () => {
    const { ingestKey, queryKey, adminKey } = vigil.credentials();
    await waitFor(
      async () =>
        (await (await fetch(`${vigil.url}/readyz`)).json()) as { checks: Record<string, string> },
      (r) => r.checks['detector'] === 'ok',
      10_000,
      'the detector in /readyz',
    );
    const audit = createAuditClient({
      endpoint: vigil.url,
      apiKey: ingestKey,
      service: 'login-service',
      batch: { maxEvents: 50, maxDelayMs: 20 },
      logger: false,
    });
    for (let i = 0; i < 12; i++)
      await audit.record({
        action: 'user.login',
        category: 'authentication',
        outcome: 'failure',
        actor: { type: 'user', id: 'mallory-target' },
        context: { ip: '192.0.2.44' },
      });
    expect(await audit.flush({ deadlineMs: 10_000 })).toBe(true);
    const lastEventAt = Date.now();
    await audit.close({ deadlineMs: 5000 });
    const listed = await waitFor(
      async () =>
        (await vigilAlerts('--json', '--key', queryKey))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { id: string; ruleId: string; entity: object }),
      (alerts) => alerts.some((a) => a.ruleId === 'auth.brute_force_account'),
      5000,
      'the brute-force alert in vigil alerts',
    );
    expect(Date.now() - lastEventAt).toBeLessThan(5000);
    const brute = listed.find((a) => a.ruleId === 'auth.brute_force_account');
    expect(brute?.entity).toEqual({ 'actor.id': 'mallory-target' });

    const table = await vigilAlerts('--key', queryKey);
    expect(table).toMatch(/auth\.brute_force_account\s+open/);
    const acked = await vigilAlerts('ack', brute!.id, '--reason', 'on it', '--key', adminKey);
    expect(acked).toMatch(/state:\s+acknowledged/);
    // The change is an audit event of the tenant, stored like any other.
    await waitFor(
      async () =>
        (await (
          await fetch(`${vigil.url}/v1/events?action=alert.triaged`, {
            headers: { authorization: `Bearer ${queryKey}` },
          })
        ).json()) as { events: { event: { target?: { id?: string } } }[] },
      (page) => page.events.some((e) => e.event.target?.id === brute!.id),
      10_000,
      'the alert.triaged event',
    );
  }, 60_000);
});
