import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { alterTable } from '@vigil/query';
import { loadConfig } from '../config/config.js';
import { runRole, type RunningRole } from '../server/roles.js';
import { parseCommandLine } from './args.js';
import { searchCommand } from './search.js';

/**
 * `vigil search` against a real `vigil start`: the table names why a committed field shows no
 * value, and `--verify` checks every item as a client would (PROTOCOL.md §20.5), so an edit of
 * the store that the server passes on is caught by the reader.
 */

let role: RunningRole;
const dir = mkdtempSync(join(tmpdir(), 'vigil-cli-search-'));
let query = '';

async function search(...argv: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const args = parseCommandLine(
    ['--url', role.url, '--key', query, '--data-dir', dir, ...argv],
    searchCommand.flags,
  );
  const code = await searchCommand.run(args, {
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
  role = await runRole(config, {
    logger: pino({ level: 'silent' }),
    print: () => undefined,
  });
  query = (await role.directory!.createKey({ tenantId: 'default', scopes: ['query'] })).secret;
  const ingest = await role.directory!.createKey({ tenantId: 'default', scopes: ['ingest'] });
  await role.registry.refresh();
  const posted = await fetch(`${role.url}/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ingest.secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      events: [
        {
          action: 'user.login',
          category: 'authentication',
          outcome: 'success',
          actor: { type: 'user', id: 'cli-user', email: 'cli@example.eu' },
          context: { ip: '192.0.2.10' },
        },
      ],
    }),
  });
  expect(posted.status).toBe(202);
  // The sink stores the event soon after the 202.
  for (let i = 0; i < 200; i++) {
    if ((await search('--action', 'user.login', '--json')).out.length === 1) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the event was not stored within 20 s');
});
afterAll(async () => {
  await role?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('vigil search', () => {
  it('--verify: each item checked, a VERIFIED column and a summary', async () => {
    const table = await search('--action', 'user.login', '--verify');
    expect(table.code, table.out.join('\n')).toBe(0);
    expect(table.out[0]).toMatch(
      /^TIME\s+ACTION\s+OUTCOME\s+ACTOR\s+TARGET\s+IP\s+FLAGS\s+VERIFIED/,
    );
    expect(table.out[1]).toMatch(/user\.login\s+success\s+user:cli-user\s+192\.0\.2\.10\s+yes$/);
    expect(table.out.at(-1)).toMatch(/^1 events verified/);

    const json = await search('--action', 'user.login', '--verify', '--json');
    const item = JSON.parse(json.out[0] ?? '{}') as Record<string, unknown>;
    expect(item).toMatchObject({ verified: true, problems: [] });
    expect(typeof item['record']).toBe('string');
    expect(Object.keys(item['disclosures'] as object)).toContain('/actor/email');
  });

  it('--include without --verify returns what was asked, and refuses what is unknown', async () => {
    const json = await search('--action', 'user.login', '--json', '--include', 'record');
    const item = JSON.parse(json.out[0] ?? '{}') as Record<string, unknown>;
    expect(typeof item['record']).toBe('string');
    expect(item['disclosures']).toBeUndefined();
    await expect(search('--include', 'salts')).rejects.toThrow(
      '/include: salts is not one of: record, disclosures',
    );
  });

  it('--verify catches a disclosure edited in the store, and exits 1', async () => {
    // Whoever runs the database swaps the e-mail address the search shows.
    await role.store!.command(
      alterTable(
        role.store!,
        'events',
        "UPDATE disclosures = replaceAll(disclosures, 'cli@example.eu', 'eve@example.eu') WHERE action = 'user.login'",
      ),
      {},
      { mutations_sync: '2' },
    );
    const table = await search('--action', 'user.login', '--verify');
    expect(table.code).toBe(1);
    expect(table.out.join('\n')).toContain(
      '/disclosures/~1actor~1email: does not open the commitment in the record',
    );
    expect(table.out[1]).toMatch(/\sNO$/);
    expect(table.out.at(-1)).toBe('1 of 1 events FAILED verification');
  });
});
