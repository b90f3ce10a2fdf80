import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../config/config.js';
import { runRole, type RunningRole } from './roles.js';

/**
 * POST /v1/detect/backtest on a real `vigil start`: the key's tenant only, rules checked before
 * the answer starts, alerts streamed in the format asked for.
 */

let role: RunningRole;
const dir = mkdtempSync(join(tmpdir(), 'vigil-backtest-api-'));
const admin: Record<string, string> = {};
let from = '';
let to = '';

async function backtest(tenant: string, body: object): Promise<Response> {
  return fetch(`${role.url}/v1/detect/backtest`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin[tenant]}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  const config = loadConfig({
    role: 'start',
    flags: { dataDir: dir, host: '127.0.0.1', port: '0' },
  });
  role = await runRole(config, { logger: pino({ level: 'silent' }), print: () => undefined });
  const directory = role.directory!;
  await directory.createTenant('globex');
  const start = Date.now() - 3_600_000;
  from = new Date(start - 60_000).toISOString();
  to = new Date(Date.now() + 60_000).toISOString();
  for (const tenant of ['default', 'globex']) {
    admin[tenant] = (await directory.createKey({ tenantId: tenant, scopes: ['admin'] })).secret;
    const ingest = (await directory.createKey({ tenantId: tenant, scopes: ['ingest'] })).secret;
    await role.registry.refresh();
    // default: a brute force on one account; globex: a few failures only.
    const n = tenant === 'default' ? 12 : 3;
    const res = await fetch(`${role.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ingest}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        events: Array.from({ length: n }, (_, i) => ({
          action: 'user.login',
          category: 'authentication',
          outcome: 'failure',
          time: new Date(start + i * 5000).toISOString(),
          actor: { type: 'user', id: 'victim' },
          context: { ip: '198.51.100.9' },
        })),
      }),
    });
    expect(res.status).toBe(202);
  }
  await role.registry.refresh();
  // Wait until the sink stored them (asking the store, not the rate-limited API).
  const store = role.store!;
  for (let i = 0; i < 200; i++) {
    const [row] = await store.query<{ n: string }>(
      `SELECT count() AS n FROM ${store.table('events')} WHERE action = 'user.login'`,
    );
    if (Number(row?.n) === 15) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}, 60_000);
afterAll(async () => {
  await role.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('POST /v1/detect/backtest', () => {
  it("raises the tenant's own alerts, never another tenant's", async () => {
    const res = await backtest('default', { from, to });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    const mine = JSON.parse(text) as {
      alerts: { ruleId: string; tenant: string }[];
      summary: { events: number };
    };
    // Its 12 failures, and Vigil's own audit events of the tenant (keys created).
    expect(mine.summary.events).toBeGreaterThanOrEqual(12);
    expect(mine.alerts.map((a) => a.ruleId)).toContain('auth.brute_force_account');
    const theirs = (await (await backtest('globex', { from, to })).json()) as {
      alerts: unknown[];
      summary: { events: number };
    };
    expect(theirs.summary.events).toBeGreaterThanOrEqual(3);
    expect(theirs.summary.events).toBeLessThan(mine.summary.events);
    expect(theirs.alerts).toEqual([]);
  });

  it('takes rules and overrides, checked before the answer', async () => {
    const raised = await backtest('default', {
      from,
      to,
      format: 'ndjson',
      overrides: { thresholds: { 'auth.brute_force_account': 20 } },
    });
    expect(raised.headers.get('content-type')).toContain('application/x-ndjson');
    const lines = (await raised.text()).trimEnd().split('\n');
    expect(lines.some((l) => l.includes('auth.brute_force_account'))).toBe(false);
    const bad = await backtest('default', { from, to, rules: 'id: x\ntitle: [' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe(
      'VIGIL_ERR_RULE_INVALID',
    );
    const range = await backtest('default', { from: to, to: from });
    expect(range.status).toBe(400);
    expect(await range.json()).toMatchObject({
      error: { code: 'VIGIL_ERR_BACKTEST_INVALID', details: [{ path: '/to' }] },
    });
  });
});
