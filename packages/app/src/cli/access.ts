import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseAsOf, REVIEW_FORMATS } from '@vigil/query';
import { ConfigError } from '@vigil/collector';
import { connectApi, ensureOk } from './api.js';
import type { CliCommand } from './command.js';
import { configFor, stringFlag } from './command.js';
import { resolveKey } from './search.js';

/**
 * `vigil access review`: the rights held at an instant, with their use and flags, as CSV, JSON or
 * NDJSON, through the query API (GET /v1/access/review) like every other command.
 */

export const ACCESS_HELP = `Usage: vigil access review --as-of DATE [--format csv|json|ndjson] [--bom] [--out FILE]
                           [--right NAME,…] [--resource-type TYPE] [--resource-id ID]
       vigil access columns

review    Who held which role or permission at DATE (YYYY-MM-DD: the end of that day, UTC; or
          a time 2026-03-31T23:59:59.999Z), from the access projection the sink keeps past the
          events' retention: how each right was granted (by whom, ticket, reason, expiry), its
          last use (used / not_used since the earliest retained event / no_data) and its flags
          with one explanation each (access.* options). The review is recorded as an audit
          event; restricted subjects are shown, marked, and named in that event.
columns   What each column and flag means.

  --format csv      (default) RFC 4180, CRLF, ids as text, formula-like cells neutralised,
                    times YYYY-MM-DD HH:MM:SS in UTC (the header says so)
  --bom             CSV: start with a UTF-8 byte order mark (for Excel)
  --out FILE        write to FILE (default: standard output)
  --right NAME,…    only these roles or permissions
  --resource-type TYPE, --resource-id ID   only rights on this resource

Connection:
  --url URL      server (default http://<host>:<port> of the configuration)
  --key KEY      query key (default: VIGIL_KEY, else the bootstrap query key)
`;

export const accessCommand: CliCommand = {
  name: 'access',
  summary: 'Access reviews: who held which right on a date, its use and flags, as CSV or JSON.',
  flags: {
    url: { type: 'string' },
    key: { type: 'string' },
    'as-of': { type: 'string' },
    format: { type: 'string' },
    bom: { type: 'boolean' },
    out: { type: 'string' },
    right: { type: 'string' },
    'resource-type': { type: 'string' },
    'resource-id': { type: 'string' },
  },
  help: () => ACCESS_HELP,
  async run(args, context) {
    const [action = 'review'] = args.positionals;
    if (action !== 'review' && action !== 'columns')
      throw new ConfigError(`vigil access: unknown action "${action}" (review or columns)`);
    const config = configFor('start', args, context.env);
    const key = resolveKey(args, context.env, config, 'queryKey');
    let path = '/v1/access/columns';
    if (action === 'review') {
      const asOf = stringFlag(args, 'as-of');
      if (!asOf || parseAsOf(asOf) === undefined)
        throw new ConfigError(
          'vigil access review needs --as-of DATE: YYYY-MM-DD or 2026-03-31T23:59:59.999Z',
        );
      const format = stringFlag(args, 'format') ?? 'csv';
      if (!(REVIEW_FORMATS as readonly string[]).includes(format))
        throw new ConfigError(`--format must be one of ${REVIEW_FORMATS.join(', ')}`);
      const q = new URLSearchParams({ asOf, format });
      if (args.local['bom'] === true) q.set('bom', 'true');
      for (const [flag, param] of [
        ['right', 'right'],
        ['resource-type', 'resourceType'],
        ['resource-id', 'resourceId'],
      ] as const) {
        const v = stringFlag(args, flag);
        if (v !== undefined) q.set(param, v);
      }
      path = `/v1/access/review?${q.toString()}`;
    }
    const api = await connectApi(config, stringFlag(args, 'url'));
    try {
      const response = await api.stream('GET', path, key, undefined);
      if (response.status >= 400 || action === 'columns') {
        const chunks: Buffer[] = [];
        for await (const chunk of response.body) chunks.push(Buffer.from(chunk as Buffer));
        const text = Buffer.concat(chunks).toString('utf8');
        const body = ensureOk({
          status: response.status,
          body: text ? (JSON.parse(text) as unknown) : undefined,
        }) as {
          columns: { name: string; meaning: string }[];
          flags: { flag: string; meaning: string }[];
        };
        for (const c of body.columns) context.print(`${c.name.padEnd(30)} ${c.meaning}`);
        context.print('');
        for (const f of body.flags) context.print(`${f.flag.padEnd(30)} ${f.meaning}`);
        return 0;
      }
      const out = stringFlag(args, 'out');
      // A review names people: owner-only.
      if (out) {
        await pipeline(response.body, createWriteStream(out, { mode: 0o600 }));
        context.printError(`wrote the access review to ${out}`);
      } else for await (const chunk of response.body) process.stdout.write(chunk as Buffer);
      return 0;
    } finally {
      await api.close();
    }
  },
};
