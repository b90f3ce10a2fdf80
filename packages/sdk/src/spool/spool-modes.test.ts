import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditClient } from '../client.js';
import { FakeCollector, quietLogger } from '../testing/fake-collector.testkit.js';

/**
 * The spool holds whole events, personal values and salts included: under a umask of 022 its
 * directory is still 0700 and its files (segments, lock, acknowledgements) 0600.
 */

function notOwnerOnly(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string): void => {
    const stat = lstatSync(at);
    if ((stat.mode & 0o077) !== 0) out.push(`${(stat.mode & 0o777).toString(8)} ${at}`);
    if (stat.isDirectory()) for (const name of readdirSync(at)) walk(join(at, name));
  };
  walk(dir);
  return out;
}

let collector: FakeCollector;
const parent = mkdtempSync(join(tmpdir(), 'vigil-sdk-modes-'));
let umask: number;

beforeAll(async () => {
  collector = await FakeCollector.start();
  umask = process.umask(0o022);
});

afterAll(async () => {
  process.umask(umask);
  await collector.close();
  rmSync(parent, { recursive: true, force: true });
});

describe('spool file modes', () => {
  it('creates an owner-only spool under umask 022', async () => {
    const dir = join(parent, 'app', 'spool');
    collector.intercept = () => ({ status: 503, body: {} });
    const audit = createAuditClient({
      endpoint: collector.url,
      apiKey: collector.apiKey,
      service: 'billing-api',
      hostname: 'test-host',
      logger: quietLogger,
      spool: { dir },
      batch: { maxEvents: 5, maxDelayMs: 5 },
      retry: { initialDelayMs: 5, maxDelayMs: 20, refusedDelayMs: 20 },
    });
    for (let i = 0; i < 5; i++)
      await audit.record({
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: `u-${i}`, email: `u${i}@example.eu` },
      });
    const held = readdirSync(dir);
    expect(held.some((name) => name.endsWith('.log'))).toBe(true);
    expect(notOwnerOnly(join(parent, 'app'))).toEqual([]);
    collector.intercept = undefined;
    expect(await audit.flush()).toBe(true);
    await audit.close();
    expect(readdirSync(dir)).toContain('acked.json');
    expect(notOwnerOnly(join(parent, 'app'))).toEqual([]);
  });
});
