import { createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { loadRules, readRuleDir, type CompiledRule } from '@vigil/detect';
import {
  BaselineRefresher,
  checkBacktestRequest,
  formatBacktest,
  migrate,
  openStore,
  PrivacyService,
  runBacktest,
  timeZonesOf,
  type Store,
} from '@vigil/query';
import {
  ConfigError,
  loadDetectorOverrides,
  loadDetectorRules,
  openMasterKey,
} from '@vigil/collector';
import type { Config } from '../config/config.js';
import { defaultUrl, explainLockedStore } from './api.js';
import type { ParsedArgs } from './args.js';
import type { CliContext } from './command.js';
import { configFor, stringFlag } from './command.js';

export const DETECT_TOOLS_HELP = `Usage: vigil detect backtest --from TIME --to TIME [--tenant ID] [--rules FILE|DIR]
                             [--overrides FILE] [--format json|ndjson|csv] [--out FILE]
       vigil detect baselines refresh [--as-of TIME] [--tenant ID …] [--overrides FILE]

backtest   runs a rule pack (default: the built-in pack) over the stored events whose own
           time is in [--from, --to), late and backfilled ones included, and writes the
           alerts it would have raised; nothing is delivered. Windows are warmed up from one
           longest rule timespan before --from; an alert is reported when its last event is
           in the range (as it stands at --to). Each event meets the baseline generation the
           live detector used at its time. Progress goes to stderr.
             --tenant    one tenant (default: every tenant of the store)
             --rules     a rule file or a directory of *.yaml files (default: the
                         detector's, detect.rulesDir, else the built-in pack)
             --overrides per-tenant overrides (thresholds, allow-lists, time zones), YAML
                         or JSON (default: the detector's, detect.overridesFile)
             --format    json (default: one document with a summary), ndjson (one alert
                         per line, the summary last) or csv
             --out       write to FILE instead of stdout
baselines refresh
           computes the baseline generation as of --as-of (default now) for every tenant
           with events in the history window (or the --tenant ones), as the schedule of
           detect.baselines.refreshMinutes does; a generation already there is left alone.

Both read the store directly (the embedded store only while no server holds it).
`;

/** --rules, else the detector's rules (detect.rulesDir, else the built-in pack). */
function readRules(path: string | undefined, config: Config): CompiledRule[] {
  if (path === undefined) return loadDetectorRules(config.detect.rulesDir);
  try {
    if (statSync(path).isDirectory()) return loadRules(readRuleDir(path));
    return loadRules([{ file: path, text: readFileSync(path, 'utf8') }]);
  } catch (error) {
    throw new ConfigError(`--rules ${path}: ${(error as Error).message}`);
  }
}

/**
 * --overrides, else the detector's (detect.overridesFile), read as the detector reads them
 * (YAML or JSON, validated).
 */
function readOverrides(path: string | undefined, config: Config): unknown {
  return loadDetectorOverrides(path ?? config.detect.overridesFile);
}

function tenantFlags(args: ParsedArgs): string[] | undefined {
  const v = args.local['tenant'];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).map(String).filter((t) => t !== '');
}

async function withStore<T>(config: Config, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config.store).catch((error: unknown) => {
    throw explainLockedStore(error, config, defaultUrl(config));
  });
  try {
    await migrate(store);
    return await work(store);
  } finally {
    await store.close();
  }
}

function privacyOf(config: Config, store: Store): PrivacyService | undefined {
  const file = config.privacy.keyFile;
  return existsSync(file) ? new PrivacyService(store, openMasterKey(file)) : undefined;
}

async function backtest(args: ParsedArgs, context: CliContext): Promise<number> {
  const { from, to, format } = (() => {
    try {
      return checkBacktestRequest({
        from: stringFlag(args, 'from'),
        to: stringFlag(args, 'to'),
        format: stringFlag(args, 'format') ?? 'json',
      });
    } catch (error) {
      const details = (error as { details?: { path: string; message: string }[] }).details ?? [];
      throw new ConfigError(
        `vigil detect backtest: ${details.map((d) => `--${d.path.slice(1)} ${d.message}`).join('; ')}`,
      );
    }
  })();
  const config = configFor('start', args, context.env);
  const rules = readRules(stringFlag(args, 'rules'), config);
  const overrides = readOverrides(stringFlag(args, 'overrides'), config);
  const tenants = tenantFlags(args);
  if (tenants !== undefined && tenants.length > 1)
    throw new ConfigError('vigil detect backtest takes one --tenant (or none: every tenant)');
  const tenant = tenants?.[0];
  const out = stringFlag(args, 'out');
  const result = await withStore(config, (store) => {
    const privacy = privacyOf(config, store);
    return runBacktest({
      store,
      from,
      to,
      rules,
      overrides,
      ...(tenant !== undefined ? { tenant } : {}),
      ...(privacy ? { privacy } : {}),
      onProgress: (p) =>
        process.stderr.write(
          `\rbacktest: ${p.events} events, at ${new Date(p.time).toISOString()}, ${p.alerts} alerts\u001b[K`,
        ),
    });
  });
  process.stderr.write('\r\u001b[K');
  context.printError(
    `backtest: ${result.summary.events} events read from ${new Date(result.summary.readFrom).toISOString()}, ${result.alerts.length} alerts in range, ${result.summary.ms} ms`,
  );
  if (out === undefined) {
    for (const chunk of formatBacktest(result, format)) process.stdout.write(chunk);
    return 0;
  }
  const file = createWriteStream(out, { mode: 0o600 });
  for (const chunk of formatBacktest(result, format))
    if (!file.write(chunk)) await once(file, 'drain');
  file.end();
  await once(file, 'finish');
  return 0;
}

async function refreshBaselines(args: ParsedArgs, context: CliContext): Promise<number> {
  const asOfText = stringFlag(args, 'as-of');
  const asOf = asOfText === undefined ? Date.now() : Date.parse(asOfText);
  if (!Number.isFinite(asOf))
    throw new ConfigError('--as-of must be a time such as 2026-11-23T00:00:00.000Z');
  const list = tenantFlags(args);
  const config = configFor('start', args, context.env);
  const overrides = readOverrides(stringFlag(args, 'overrides'), config);
  const b = config.baselines;
  const report = await withStore(config, (store) =>
    new BaselineRefresher(store, {
      historyMs: b.historyMs,
      keepMs: b.keepMs,
      activationMs: b.activationMs,
      timeZone: timeZonesOf(overrides, loadDetectorRules(config.detect.rulesDir)),
    }).refresh(asOf, list),
  );
  context.print(JSON.stringify(report));
  return 0;
}

/**
 * `vigil detect backtest …` and `vigil detect baselines refresh`. (`vigil detect` without a
 * tool is the detector role where it exists: the role's command hands these sub-commands here.)
 */
export async function runDetectTool(args: ParsedArgs, context: CliContext): Promise<number> {
  const [tool, action] = args.positionals;
  if (tool === 'backtest') return backtest(args, context);
  if (tool === 'baselines' && action === 'refresh') return refreshBaselines(args, context);
  throw new ConfigError(
    `unknown detect tool "${[tool, action].filter(Boolean).join(' ')}"; see vigil detect --help`,
  );
}

export const DETECT_TOOL_FLAGS = {
  from: { type: 'string' },
  to: { type: 'string' },
  tenant: { type: 'string', multiple: true },
  rules: { type: 'string' },
  overrides: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  'as-of': { type: 'string' },
} as const;
