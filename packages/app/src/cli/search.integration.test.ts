import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

  it('--facet and --histogram draw counts; neither is recorded, a search is, queryably', async () => {
    const facet = await search('--facet', 'action', '--category', 'authentication');
    expect(facet.out[0]).toMatch(/^user\.login\s+1 █+$/);
    expect(facet.out.at(-1)).toBe('1 events');
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const histogram = await search('--histogram', '--from', from, '--action', 'user.login');
    expect(histogram.out[0]).toMatch(/60 s buckets, 1 events$/);
    expect(histogram.out.filter((l) => l.endsWith('█'))).toHaveLength(1);
    // The meta-audit: each search is an event of the tenant's Vigil stream, found by a search
    // like any other event once the sink has stored it; facets and histograms add none.
    await search('--actor', 'cli-user', '--json');
    const recorded = async () =>
      (await search('--action', 'search.*', '--json', '--all')).out.map(
        (l) => JSON.parse(l) as { event: { action: string; stream: string; metadata: unknown } },
      );
    let events = await recorded();
    for (
      let i = 0;
      i < 100 && !events.some((e) => JSON.stringify(e.event.metadata).includes('cli-user'));
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      events = await recorded();
    }
    const mine = events.find((e) => JSON.stringify(e.event.metadata).includes('cli-user'));
    expect(mine?.event).toMatchObject({
      action: 'search.performed',
      metadata: { filters: { actor: 'cli-user' } },
    });
    expect(mine?.event.stream).toMatch(/^vigil\/admin\//);
    expect(events.every((e) => e.event.action === 'search.performed')).toBe(true);
  });

  it('--export writes every matching event and says it is complete; --link serves it without a key', async () => {
    const file = join(dir, 'export.csv');
    const done = await search('--action', 'user.login', '--export', 'csv', '--out', file);
    expect(done.code).toBe(0);
    expect(done.out.at(-1)).toBe(`export complete: all 1 matching events in ${file}`);
    const text = readFileSync(file, 'utf8');
    expect(text.split('\r\n')[0]).toMatch(/^time \(UTC\),id,action,/);
    expect(text).toContain('"cli-user"');
    const cut = await search('--export', 'ndjson', '--export-limit', '1', '--out', join(dir, 'x'));
    expect(cut.out.at(-1)).toMatch(/^export INCOMPLETE: the first 1 matching events/);
    const link = await search('--action', 'user.login', '--export', 'csv', '--link');
    const url = link.out[0] as string;
    expect(url.startsWith(`${role.url}/v1/search/export?`)).toBe(true);
    const downloaded = await fetch(url);
    expect(downloaded.status).toBe(200);
    expect(await downloaded.text()).toBe(text);
  });
});
