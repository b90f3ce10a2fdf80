import { readFileSync } from 'node:fs';
import { checkItem, type SearchFilters, type SearchItem, type SearchPage } from '@vigil/query';
import type { Config } from '../config/config.js';
import { credentialsPath } from '../server/bootstrap.js';
import { ConfigError } from '@vigil/collector';
import type { ParsedArgs } from './args.js';
import { connectApi, ensureOk } from './api.js';
import type { CliCommand } from './command.js';
import { configFor, stringFlag } from './command.js';

export const SEARCH_HELP = `Usage: vigil search [filters] [--url URL] [--key KEY] [--json] [--all]

Searches the events of the key's tenant, newest first. While a Vigil server runs, the search
goes through its API (chDB lets one process open the store); otherwise the local store is read.

Filters:
  --from TIME / --to TIME   RFC 3339 UTC with milliseconds, e.g. 2026-11-23T00:00:00.000Z
  --actor ID                actor id
  --action NAME             action, or a prefix such as "user.*"
  --category LIST           comma-separated: authentication,access_change,data_access,...
  --outcome LIST            comma-separated: success,failure,denied,error
  --target ID               target id
  --stream ID               one stream
  --limit N                 events per page (1-1000, default 100)
  --all                     follow the cursor to the last page
  --original                events as recorded, without the corrections recorded for them
  --include-restricted      also events of restricted subjects (GDPR Art. 18): admin key
                            only, and recorded
Output:
  --json                    one JSON item per line instead of a table: {hash, event,
                            personal, server[, record, disclosures]} (PROTOCOL.md §20)
  --include LIST            with --json, also: record (the record bytes), disclosures
                            (salts and values of the disclosed fields)
  --verify                  check each event as a client would: its hash is the SHA-256 of
                            its record bytes, each disclosure opens its commitment; a VERIFIED
                            column (or "verified" with --json), exit 1 if one fails
Connection:
  --url URL                 server (default http://<host>:<port> of the configuration;
                            --port PORT or VIGIL_PORT for a server on another port)
  --key KEY                 query key (default: VIGIL_KEY, else the bootstrap query key)
`;

/**
 * The API key a CLI command uses: --key, else VIGIL_KEY, else the key of the given kind from
 * the bootstrap credentials of the data directory.
 */
export function resolveKey(
  args: ParsedArgs,
  env: NodeJS.ProcessEnv,
  config: Config,
  kind: 'queryKey' | 'adminKey' | 'ingestKey' | 'operatorKey' = 'queryKey',
): string {
  const explicit = stringFlag(args, 'key') ?? env['VIGIL_KEY'];
  if (explicit) return explicit;
  try {
    const creds = JSON.parse(readFileSync(credentialsPath(config.dataDir), 'utf8')) as Record<
      string,
      string | undefined
    >;
    const key = creds[kind];
    if (key) return key;
  } catch {
    // fall through to the error below
  }
  throw new ConfigError(
    `no API key: pass --key, set VIGIL_KEY, or run where ${credentialsPath(config.dataDir)} holds a ${kind}`,
  );
}

export function filtersFrom(args: ParsedArgs): SearchFilters {
  const f: { -readonly [K in keyof SearchFilters]: SearchFilters[K] } = {};
  for (const k of ['from', 'to', 'actor', 'action', 'target', 'stream'] as const) {
    const v = stringFlag(args, k);
    if (v !== undefined) f[k] = v;
  }
  const category = stringFlag(args, 'category');
  if (category) f.category = category.split(',');
  const outcome = stringFlag(args, 'outcome');
  if (outcome) f.outcome = outcome.split(',');
  const limit = stringFlag(args, 'limit');
  if (limit) f.limit = Number(limit);
  if (args.local['original'] === true) f.original = true;
  if (args.local['include-restricted'] === true) f.includeRestricted = true;
  const include = new Set(stringFlag(args, 'include')?.split(',') ?? []);
  // Verifying needs the bytes and the salts.
  if (args.local['verify'] === true) for (const i of ['record', 'disclosures']) include.add(i);
  if (include.size > 0) f.include = [...include];
  return f;
}

function queryString(filters: SearchFilters): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) {
    if (v !== undefined) params.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

const WIDTHS = [24, 28, 8, 28, 28, 16, 10, 8];

function formatRow(cells: readonly string[]): string {
  return cells
    .map((c, i) => (i === cells.length - 1 ? c : c.slice(0, WIDTHS[i]).padEnd(WIDTHS[i] ?? 10)))
    .join(' ');
}

/**
 * A committed field's value as the table shows it: the value, or why there is none, which a
 * plain `null` would not tell (PROTOCOL.md §20.2).
 */
function shown(item: SearchItem, path: string, value: unknown): string {
  const state = item.personal[path];
  if (state === 'erased' || state === 'withheld') return `[${state}]`;
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function party(item: SearchItem, member: 'actor' | 'target'): string {
  const o = item.event[member] as { type?: string; id?: unknown } | undefined;
  if (!o) return '';
  return `${o.type ?? '?'}:${shown(item, `/${member}/id`, o.id)}`;
}

function rowOf(item: SearchItem, verified: string | undefined): string[] {
  const e = item.event;
  const context = e['context'] as { ip?: unknown } | undefined;
  const cells = [
    String(e['time']),
    String(e['action']),
    String(e['outcome']),
    party(item, 'actor'),
    party(item, 'target'),
    shown(item, '/context/ip', context?.ip),
    item.server.flags.join(','),
  ];
  if (verified !== undefined) cells.push(verified);
  return cells;
}

export const searchCommand: CliCommand = {
  name: 'search',
  summary: 'Search events through a running server (or the local store).',
  flags: {
    url: { type: 'string' },
    key: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    actor: { type: 'string' },
    action: { type: 'string' },
    category: { type: 'string' },
    outcome: { type: 'string' },
    target: { type: 'string' },
    stream: { type: 'string' },
    limit: { type: 'string' },
    all: { type: 'boolean' },
    json: { type: 'boolean' },
    original: { type: 'boolean' },
    'include-restricted': { type: 'boolean' },
    include: { type: 'string' },
    verify: { type: 'boolean' },
  },
  help: () => SEARCH_HELP,
  async run(args, context) {
    const config = configFor('start', args, context.env);
    // Restricted subjects' events are shown to an admin key only (GDPR Art. 18).
    const key = resolveKey(
      args,
      context.env,
      config,
      args.local['include-restricted'] === true ? 'adminKey' : 'queryKey',
    );
    const filters = filtersFrom(args);
    const json = args.local['json'] === true;
    const all = args.local['all'] === true;
    const verify = args.local['verify'] === true;
    let failed = 0;
    const api = await connectApi(config, stringFlag(args, 'url'));
    let count = 0;
    try {
      let cursor: string | undefined;
      do {
        const page = ensureOk(
          await api.call<SearchPage>(
            'GET',
            `/v1/events${queryString(cursor ? { ...filters, cursor } : filters)}`,
            key,
          ),
        );
        for (const item of page.events) {
          const problems = verify ? checkItem(item) : [];
          if (problems.length > 0) failed++;
          const verdict = verify ? (problems.length === 0 ? 'yes' : 'NO') : undefined;
          if (json) {
            context.print(
              JSON.stringify(
                verify ? { ...item, verified: problems.length === 0, problems } : item,
              ),
            );
          } else {
            if (count === 0) {
              const head = ['TIME', 'ACTION', 'OUTCOME', 'ACTOR', 'TARGET', 'IP', 'FLAGS'];
              context.print(formatRow(verify ? [...head, 'VERIFIED'] : head));
            }
            context.print(formatRow(rowOf(item, verdict)));
            for (const p of problems) context.print(`  ${item.hash} ${p.path}: ${p.message}`);
          }
          count++;
        }
        cursor = all ? page.nextCursor : undefined;
        if (!json && !all && page.nextCursor)
          context.print('… more events: repeat with --all, or narrow the filters');
      } while (cursor);
      if (!json && count === 0) context.print('no events match');
      if (verify && !json)
        context.print(
          failed === 0
            ? `${count} events verified: each hash is the SHA-256 of its record bytes, each disclosure opens its commitment`
            : `${failed} of ${count} events FAILED verification`,
        );
      return failed === 0 ? 0 : 1;
    } finally {
      await api.close();
    }
  },
};
