import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { AlertStore } from '@vigil/query';
import { storeNow } from '@vigil/query/testing';
import { loadConfig } from '../config/config.js';
import { runRole, type RunningRole } from '../server/roles.js';
import { parseCommandLine } from './args.js';
import { alertsCommand, ALERTS_HELP } from './alerts.js';

/**
 * `vigil alerts` against a real `vigil start`: list as a table and as JSON, show, and every
 * triage subcommand round trip through the API, with the bootstrap keys.
 */

let role: RunningRole;
const dir = mkdtempSync(join(tmpdir(), 'vigil-cli-alerts-'));

async function vigil(...argv: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const args = parseCommandLine(
    ['--url', role.url, '--data-dir', dir, ...argv],
    alertsCommand.flags,
  );
  const code = await alertsCommand.run(args, {
    env: {},
    print: (line) => out.push(line),
    printError: (line) => out.push(line),
  });
  return { code, out };
}

beforeAll(async () => {
  const config = loadConfig({
    role: 'start',
    flags: { dataDir: dir, host: '127.0.0.1', port: '0' },
  });
  role = await runRole(config, { logger: pino({ level: 'silent' }), print: () => undefined });
  const now = await storeNow(role.store!);
  const base = {
    title: 'Brute force on one account',
    attack: ['T1110.001'],
    tenant: 'default',
    eventIds: [],
    eventCount: 12,
    evidence: { count: 12 },
    version: 1,
  };
  await new AlertStore(role.store!).record(
    [
      {
        ...base,
        id: 'a1',
        key: 'k1',
        ruleId: 'auth.brute_force_account',
        severity: 'high',
        entity: { 'actor.id': 'u-1' },
        firstEventTime: now - 60_000,
        lastEventTime: now - 50_000,
      },
      {
        ...base,
        id: 'a2',
        key: 'k2',
        ruleId: 'auth.password_spraying',
        severity: 'medium',
        entity: { 'context.ip': '192.0.2.7' },
        firstEventTime: now - 40_000,
        lastEventTime: now - 30_000,
      },
    ],
    now,
  );
});
afterAll(async () => {
  await role?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('vigil alerts', () => {
  it('lists, shows and triages alerts through the API', async () => {
    const table = await vigil();
    expect(table.code).toBe(0);
    expect(table.out[0]).toMatch(/^ID\s+SEVERITY\s+RULE\s+STATE/);
    expect(table.out.slice(1).map((l) => l.split(' ')[0])).toEqual(['a2', 'a1']);

    expect((await vigil('ack', 'a1', '--reason', 'looking')).out.join('\n')).toMatch(
      /state:\s+acknowledged/,
    );
    expect((await vigil('assign', 'a1', '--to', 'ana')).out.join('\n')).toMatch(/assignee:\s+ana/);
    const noted = await vigil('note', 'a1', 'called the user');
    expect(noted.out.join('\n')).toMatch(/notes:\n.*: called the user/);
    const until = new Date(Date.now() + 30 * 86_400_000).toISOString();
    expect((await vigil('accept-risk', 'a2', '--until', until)).out.join('\n')).toMatch(
      /accepted until/,
    );
    const json = await vigil('list', '--json', '--state', 'accepted_risk');
    expect(json.out.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(['a2']);

    const bulk = await vigil('close', 'a1', 'a2', '--reason', 'incident 12 done');
    expect(bulk.out).toEqual([expect.stringMatching(/^2 alerts changed \(audit event /)]);
    const shown = await vigil('show', 'a1', '--json');
    expect(JSON.parse(shown.out[0] as string)).toMatchObject({
      id: 'a1',
      triage: { state: 'closed', assignee: 'ana' },
    });
    const fp = await vigil('false-positive', '--rule', 'auth.password_spraying');
    expect(fp.out).toEqual([expect.stringMatching(/^1 alerts changed/)]);
    const groups = await vigil('list', '--group-by', 'rule');
    expect(groups.out[0]).toMatch(/^GROUP\s+ALERTS/);
    expect(groups.out.join('\n')).toMatch(/auth\.password_spraying\s+1\s+false_positive:1/);
    expect((await vigil('reopen', 'a1')).out.join('\n')).toMatch(/state:\s+open/);
  });

  it('says what is wrong with a command line', async () => {
    await expect(vigil('accept-risk', 'a1')).rejects.toThrow(/--until/);
    await expect(vigil('assign', 'a1')).rejects.toThrow(/--to NAME \| --nobody/);
    await expect(vigil('frobnicate')).rejects.toThrow(/unknown subcommand/);
    await expect(vigil('show', 'nope')).rejects.toThrow(/404 VIGIL_ERR_ALERT_NOT_FOUND/);
    await expect(vigil('ack', 'a1', '--until', 'x')).rejects.toThrow(/\/until/);
    expect(ALERTS_HELP).toMatch(/accept-risk ID… --until TIME/);
  });
});
