import { createWriteStream, readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import {
  checkItem,
  type FacetAnswer,
  type HistogramAnswer,
  type SearchFilters,
  type SearchItem,
  type SearchPage,
} from '@vigil/query';
import type { Config } from '../config/config.js';
import { credentialsPath } from '../server/bootstrap.js';
import { ConfigError } from '@vigil/collector';
import type { ParsedArgs } from './args.js';
import { connectApi, ensureOk } from './api.js';
import type { CliCommand } from './command.js';
import { configFor, stringFlag } from './command.js';

export const SEARCH_HELP = `Usage: vigil search [filters] [--url URL] [--key KEY] [--json] [--all]
       vigil search [filters] --facet FIELD [--size N]
       vigil search [filters] --histogram
       vigil search [filters] --export csv|ndjson [--out FILE] [--export-limit N] [--bom] [--link]

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
  --target-type TYPE        target type
  --resource ID             resource id of access events (--resource-type TYPE)
  --ip ADDRESS|CIDR         an address or a block: 203.0.113.0/24, 2001:db8::/32
  --country LIST            ISO 3166-1 alpha-2 codes of the address (geo enrichment)
  --asn LIST                autonomous system numbers of the address
  --browser LIST            user agent families (Chrome, Firefox, …); --os LIST
  --session ID / --request ID   /context/sessionId, /context/requestId
  --meta KEY=VALUE          a metadata member (dotted path for nested ones); repeatable
  --text TEXT               text anywhere in the metadata (case-insensitive)
  --flag LIST               chain or ingest flags, any of: gap, fork, backfill, …
  --limit N                 events per page (1-1000, default 100)
  --all                     follow the cursor to the last page
  --original                events as recorded, without the corrections recorded for them
  --include-restricted      also events of restricted subjects (GDPR Art. 18): admin key
                            only, and recorded
Aggregates (not recorded: the search they accompany is):
  --facet FIELD             counts by one field, largest first: action, category, outcome,
                            actor, actorType, target, targetType, resourceType, stream,
                            country, asn, browser, os, device, source, flag (--size N, 20)
  --histogram               counts per time bucket over --from/--to (default: the last
                            24 h), the bucket chosen from the range (1 minute to 1 day),
                            drawn as a bar chart (--json: the buckets)
Export (recorded):
  --export csv|ndjson       every matching event, streamed (to --out FILE, owner-only, or
                            stdout); says on stderr whether it is complete or was cut by
                            --export-limit N (default 1 000 000)
  --bom                     csv: start with a UTF-8 byte order mark (Excel)
  --link                    print a signed download link to the export instead (valid 1
                            hour, --ttl SECONDS up to 7 days; anyone holding it may download)
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
  const single = [
    ['target-type', 'targetType'],
    ['resource', 'resource'],
    ['resource-type', 'resourceType'],
    ['ip', 'ip'],
    ['session', 'session'],
    ['request', 'request'],
    ['text', 'q'],
  ] as const;
  for (const [flag, key] of single) {
    const v = stringFlag(args, flag);
    if (v !== undefined) f[key] = v;
  }
  for (const k of ['country', 'browser', 'os', 'flag'] as const) {
    const v = stringFlag(args, k);
    if (v !== undefined) f[k] = v.split(',');
  }
  const asn = stringFlag(args, 'asn');
  if (asn !== undefined) f.asn = asn.split(',').map(Number);
  const meta = args.local['meta'];
  if (Array.isArray(meta)) f.meta = meta.filter((m): m is string => typeof m === 'string');
  else if (typeof meta === 'string') f.meta = [meta];
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

function queryString(filters: SearchFilters, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) {
    if (v === undefined) continue;
    // meta is repeated (a value may hold a comma); the other lists are comma-separated.
    if (k === 'meta') for (const m of v as string[]) params.append(k, m);
    else params.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
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

type Context = Parameters<CliCommand['run']>[1];

/** Bars of a terminal chart: `count` of `max` as up to `width` block characters. */
export function bar(count: number, max: number, width = 40): string {
  if (max <= 0 || count <= 0) return '';
  const eighths = Math.max(1, Math.round((count / max) * width * 8));
  const full = Math.floor(eighths / 8);
  const part = eighths % 8;
  return '█'.repeat(full) + (part > 0 ? (' ▏▎▍▌▋▊▉'[part] as string) : '');
}

/** --facet, --histogram and --export: one request each (facets and histograms unrecorded). */
async function aggregate(
  api: Awaited<ReturnType<typeof connectApi>>,
  key: string,
  filters: SearchFilters,
  args: ParsedArgs,
  context: Context,
): Promise<number> {
  const { limit: _limit, include: _include, ...search } = filters;
  const json = args.local['json'] === true;
  const facetField = stringFlag(args, 'facet');
  if (facetField !== undefined) {
    const size = stringFlag(args, 'size');
    const answer = ensureOk(
      await api.call<FacetAnswer>(
        'GET',
        `/v1/search/facets${queryString(search, { field: facetField, ...(size ? { size } : {}) })}`,
        key,
      ),
    );
    if (json) {
      context.print(JSON.stringify(answer));
      return 0;
    }
    const max = answer.values[0]?.count ?? 0;
    const width = Math.min(40, Math.max(5, ...answer.values.map((v) => v.value.length)));
    for (const v of answer.values)
      context.print(
        `${(v.value || '(none)').slice(0, width).padEnd(width)} ${String(v.count).padStart(9)} ${bar(v.count, max)}`,
      );
    context.print(
      `${answer.total} events${answer.other > 0 ? `, ${answer.other} with other values` : ''}`,
    );
    return 0;
  }
  if (args.local['histogram'] === true) {
    const answer = ensureOk(
      await api.call<HistogramAnswer>('GET', `/v1/search/histogram${queryString(search)}`, key),
    );
    if (json) {
      context.print(JSON.stringify(answer));
      return 0;
    }
    const max = Math.max(0, ...answer.buckets.map((b) => b.count));
    context.print(
      `${answer.from} – ${answer.to}, ${answer.bucketSeconds} s buckets, ${answer.total} events`,
    );
    for (const b of answer.buckets)
      context.print(
        `${b.start.slice(0, 16).replace('T', ' ')} ${String(b.count).padStart(9)} ${bar(b.count, max)}`,
      );
    return 0;
  }
  const format = stringFlag(args, 'export') ?? 'csv';
  const exportLimit = stringFlag(args, 'export-limit');
  const options: Record<string, string> = {
    format,
    ...(exportLimit ? { limit: exportLimit } : {}),
    ...(args.local['bom'] === true ? { bom: 'true' } : {}),
  };
  if (args.local['link'] === true) {
    const ttl = stringFlag(args, 'ttl');
    const body: Record<string, unknown> = {
      ...options,
      ...(ttl ? { ttlSeconds: Number(ttl) } : {}),
    };
    for (const [k, v] of Object.entries(search))
      if (v !== undefined)
        body[k] = Array.isArray(v) ? (k === 'meta' ? v[0] : v.join(',')) : String(v);
    const link = ensureOk(
      await api.call<{ url: string; expiresAt: string }>(
        'POST',
        '/v1/search/export/link',
        key,
        body,
      ),
    );
    context.print(api.via === 'server' ? `${api.url}${link.url}` : link.url);
    context.printError(
      `valid until ${link.expiresAt}; anyone holding the link may download the export`,
    );
    return 0;
  }
  const response = await api.stream('GET', `/v1/search/export${queryString(search, options)}`, key);
  if (response.status >= 400) {
    const chunks: Buffer[] = [];
    for await (const chunk of response.body) chunks.push(Buffer.from(chunk as Buffer));
    const text = Buffer.concat(chunks).toString('utf8');
    ensureOk({ status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined });
  }
  const out = stringFlag(args, 'out');
  // Events hold personal data: a file of them is owner-only.
  if (out) await pipeline(response.body, createWriteStream(out, { mode: 0o600 }));
  else for await (const chunk of response.body) process.stdout.write(chunk as Buffer);
  const complete = response.header('x-vigil-export-complete') === 'true';
  const count = response.header('x-vigil-export-count');
  context.printError(
    complete
      ? `export complete: all ${count} matching events${out ? ` in ${out}` : ''}`
      : `export INCOMPLETE: the first ${count} matching events; more match (raise --export-limit or narrow the filters)`,
  );
  return 0;
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
    'target-type': { type: 'string' },
    resource: { type: 'string' },
    'resource-type': { type: 'string' },
    ip: { type: 'string' },
    country: { type: 'string' },
    asn: { type: 'string' },
    browser: { type: 'string' },
    os: { type: 'string' },
    session: { type: 'string' },
    request: { type: 'string' },
    meta: { type: 'string', multiple: true },
    text: { type: 'string' },
    flag: { type: 'string' },
    facet: { type: 'string' },
    size: { type: 'string' },
    histogram: { type: 'boolean' },
    export: { type: 'string' },
    out: { type: 'string' },
    'export-limit': { type: 'string' },
    bom: { type: 'boolean' },
    link: { type: 'boolean' },
    ttl: { type: 'string' },
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
    const facetField = stringFlag(args, 'facet');
    const exportFormat = stringFlag(args, 'export');
    if (
      facetField !== undefined ||
      args.local['histogram'] === true ||
      exportFormat !== undefined
    ) {
      try {
        return await aggregate(api, key, filters, args, context);
      } finally {
        await api.close();
      }
    }
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
