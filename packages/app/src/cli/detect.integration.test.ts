import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import { migrate, openStore } from '@vigil/query';
import { storeDetectEvents, storeNow, type DetectInput } from '@vigil/query/testing';
import { parseCommandLine } from './args.js';
import { roleCommands } from './role-commands.js';

const detectCommand = roleCommands.find((c) => c.name === 'detect')!;

/**
 * `vigil detect backtest` and `vigil detect baselines refresh` on an embedded store that no
 * server holds: alerts in each format, progress and the summary on stderr.
 */

const dir = mkdtempSync(join(tmpdir(), 'vigil-cli-detect-'));
const DAY = 86_400_000;
let from = 0;

async function detect(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  return detectWith({}, ...argv);
}

async function detectWith(
  env: Record<string, string>,
  ...argv: string[]
): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const args = parseCommandLine(['--data-dir', dir, ...argv], detectCommand.flags);
  const code = await detectCommand.run(args, {
    env,
    print: (line) => out.push(line),
    printError: (line) => err.push(line),
  });
  return { code, out, err };
}

beforeAll(async () => {
  const store = await openStore({ kind: 'chdb', path: join(dir, 'store'), database: 'vigil' });
  await migrate(store);
  from = Math.floor((await storeNow(store)) / DAY) * DAY - 3 * DAY;
  const events: DetectInput[] = [];
  for (const tenant of ['acme', 'globex'])
    for (let i = 0; i < 12; i++)
      events.push({
        tenant,
        time: from + DAY + i * 10_000,
        action: 'user.login',
        outcome: 'failure',
        actor: { type: 'user', id: `${tenant}-u1` },
        ip: '198.51.100.9',
      });
  await storeDetectEvents(store, events);
  await store.close();
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('vigil detect', () => {
  it('backtests one tenant into a CSV file', async () => {
    const file = join(dir, 'alerts.csv');
    const iso = (ms: number) => new Date(ms).toISOString();
    const run = await detect(
      'backtest',
      '--from',
      iso(from),
      '--to',
      iso(from + 2 * DAY),
      '--tenant',
      'acme',
      '--format',
      'csv',
      '--out',
      file,
    );
    expect(run.code).toBe(0);
    expect(run.err.join('\n')).toMatch(/12 events read/);
    const rows = parse(readFileSync(file, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r['rule_id'])).toContain('auth.brute_force_account');
    expect(rows.every((r) => r['tenant'] === 'acme')).toBe(true);
  });

  it("uses the detector's overrides file (YAML) unless --overrides names another", async () => {
    const yaml = join(dir, 'overrides.yaml');
    writeFileSync(
      yaml,
      '# the detector reads YAML\ntenants:\n  acme:\n    disable: [auth.brute_force_account]\n',
    );
    const iso = (ms: number) => new Date(ms).toISOString();
    const range = ['--from', iso(from), '--to', iso(from + 2 * DAY), '--tenant', 'acme'];
    const rulesIn = (file: string) =>
      (JSON.parse(readFileSync(file, 'utf8')) as { alerts: { ruleId: string }[] }).alerts.map(
        (a) => a.ruleId,
      );
    const out = join(dir, 'with-overrides.json');
    const configured = await detectWith(
      { VIGIL_DETECT_OVERRIDES_FILE: yaml },
      'backtest',
      ...range,
      '--out',
      out,
    );
    expect(configured.code).toBe(0);
    expect(rulesIn(out)).not.toContain('auth.brute_force_account');
    // An explicit --overrides (JSON here) takes the place of the configured file.
    const json = join(dir, 'empty-overrides.json');
    writeFileSync(json, '{"tenants": {}}');
    const explicit = await detectWith(
      { VIGIL_DETECT_OVERRIDES_FILE: yaml },
      'backtest',
      ...range,
      '--overrides',
      json,
      '--out',
      out,
    );
    expect(explicit.code).toBe(0);
    expect(rulesIn(out)).toContain('auth.brute_force_account');
  });

  it('refreshes the baselines once per time', async () => {
    const asOf = new Date(from + 2 * DAY).toISOString();
    const first = await detect('baselines', 'refresh', '--as-of', asOf, '--tenant', 'acme');
    expect(first.code).toBe(0);
    const again = await detect('baselines', 'refresh', '--as-of', asOf, '--tenant', 'acme');
    expect(JSON.parse(again.out[0] ?? '{}')).toMatchObject({ generations: [], skipped: ['acme'] });
  });

  it('refuses a bad range before touching the store, naming the flag', async () => {
    await expect(detect('backtest', '--from', 'yesterday', '--to', '2026-01-01')).rejects.toThrow(
      /--from must be/,
    );
  });
});
