import type { KeyView } from '@vigil/query';
import { ConfigError } from '@vigil/collector';
import type { ParsedArgs } from './args.js';
import { connectApi, ensureOk } from './api.js';
import {
  argument,
  durationMs,
  keyTable,
  parseWhen,
  printCreatedKey,
  subcommand,
} from './admin-output.js';
import type { CliCommand } from './command.js';
import { configFor, stringFlag } from './command.js';
import { resolveKey } from './search.js';

export const KEYS_HELP = `Usage: vigil keys list [--tenant ID] [--json]
       vigil keys create --scopes LIST [--name NAME] [--allow-ip CIDR]... [--expires WHEN]
                         [--rate-limit N] [--tenant ID] [--json]
       vigil keys revoke KEY_ID [--reason TEXT] [--tenant ID] [--json]
       vigil keys rotate KEY_ID [--grace DURATION] [--expires WHEN] [--json]

Manages API keys. With an admin key (the default), the keys of that key's own tenant; with
--tenant ID and an operator key, the keys of any tenant (--tenant _operator: the operator
keys themselves). A key looks like vgl_<key id>_<secret>; KEY_ID is the 12 hex digits after
vgl_. Vigil stores only a digest of each key: a new key is printed once and never again.

  list      the tenant's keys, revoked and expired ones included
  create    a new key
  revoke    refuse a key from now on
  rotate    a new key with the same settings; the old one keeps working for --grace, then
            expires (admin key only)

Each change is recorded as an audit event in the tenant's system stream (vigil/admin/…).

Options:
  --scopes LIST       comma-separated: ingest, query, admin (operator keys: operator, query)
  --name NAME         a label, e.g. "billing-api production"
  --allow-ip CIDR     an address or range the key may be used from; repeat or comma-separate
                      (default: anywhere)
  --expires WHEN      RFC 3339 time or a duration from now: 90d, 12h, 30m (default: never;
                      rotate: the old key's lifetime)
  --rate-limit N      requests per minute per scope for this key (default: the server's)
  --grace DURATION    rotate: how long the old key keeps working, e.g. 0, 1h, 7d (default 24h)
  --reason TEXT       revoke: why; recorded with the audit event
  --tenant ID         act as operator on tenant ID
  --json              JSON instead of a table
Connection:
  --url URL           server (default http://<host>:<port> of the configuration; without a
                      running server, the local store is used)
  --key KEY           admin key, or operator key with --tenant (default: VIGIL_KEY, else the
                      bootstrap admin or operator key of <dataDir>/bootstrap-credentials.json)

Examples:
  vigil keys create --scopes ingest --name billing-api --expires 90d
  vigil keys rotate 1f2e3d4c5b6a --grace 1h
  vigil keys list --tenant acme --key "$VIGIL_OPERATOR_KEY"
`;

function createBody(args: ParsedArgs): Record<string, unknown> {
  const scopes = stringFlag(args, 'scopes');
  if (!scopes) throw new ConfigError('vigil keys create needs --scopes, e.g. --scopes ingest');
  const raw = args.local['allow-ip'];
  const allowedIps = (Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  const name = stringFlag(args, 'name');
  const expires = stringFlag(args, 'expires');
  const rate = stringFlag(args, 'rate-limit');
  if (rate !== undefined && !/^[1-9]\d*$/.test(rate))
    throw new ConfigError('--rate-limit must be a whole number of requests per minute');
  return {
    scopes: scopes
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    ...(name !== undefined ? { name } : {}),
    ...(allowedIps.length > 0 ? { allowedIps } : {}),
    ...(expires !== undefined ? { expiresAt: parseWhen(expires, '--expires') } : {}),
    ...(rate !== undefined ? { rateLimitPerMinute: Number(rate) } : {}),
  };
}

export const keysCommand: CliCommand = {
  name: 'keys',
  summary: 'List, create, revoke and rotate API keys (admin key, or operator key with --tenant).',
  flags: {
    url: { type: 'string' },
    key: { type: 'string' },
    tenant: { type: 'string' },
    scopes: { type: 'string' },
    name: { type: 'string' },
    'allow-ip': { type: 'string', multiple: true },
    expires: { type: 'string' },
    'rate-limit': { type: 'string' },
    grace: { type: 'string' },
    reason: { type: 'string' },
    json: { type: 'boolean' },
  },
  help: () => KEYS_HELP,
  async run(args, context) {
    const sub = subcommand(args.positionals, 'keys', ['list', 'create', 'revoke', 'rotate']);
    const keyId =
      sub === 'revoke' || sub === 'rotate'
        ? argument(args.positionals, `vigil keys ${sub} KEY_ID`)
        : undefined;
    if (sub === 'list' || sub === 'create') {
      if (args.positionals.length > 1)
        throw new ConfigError(`vigil keys ${sub} takes no argument; see vigil keys --help`);
    }
    const tenant = stringFlag(args, 'tenant');
    if (sub === 'rotate' && tenant !== undefined) {
      throw new ConfigError(
        "rotate works with the tenant's admin key; as operator, create a new key with --tenant and revoke the old one",
      );
    }
    const body = sub === 'create' ? createBody(args) : undefined;
    const config = configFor('start', args, context.env);
    const key = resolveKey(args, context.env, config, tenant ? 'operatorKey' : 'adminKey');
    const json = args.local['json'] === true;
    const base = tenant
      ? `/v1/operator/tenants/${encodeURIComponent(tenant)}/keys`
      : '/v1/admin/keys';
    const api = await connectApi(config, stringFlag(args, 'url'));
    try {
      switch (sub) {
        case 'list': {
          const { keys } = ensureOk(await api.call<{ keys: KeyView[] }>('GET', base, key));
          if (json) context.print(JSON.stringify(keys));
          else if (keys.length === 0) context.print('no keys');
          else for (const line of keyTable(keys)) context.print(line);
          return 0;
        }
        case 'create': {
          const created = ensureOk(
            await api.call<{ key: KeyView; secret: string }>('POST', base, key, body),
          );
          printCreatedKey(context, json, created, 'Created');
          return 0;
        }
        case 'revoke': {
          const id = encodeURIComponent(keyId ?? '');
          if (tenant) {
            // The operator route revokes a key of any tenant: check it is one of --tenant's.
            const { keys } = ensureOk(await api.call<{ keys: KeyView[] }>('GET', base, key));
            if (!keys.some((k) => k.keyId === keyId))
              throw new ConfigError(`tenant ${tenant} has no API key ${keyId ?? ''}`);
          }
          const reason = stringFlag(args, 'reason');
          const { key: revoked } = ensureOk(
            await api.call<{ key: KeyView }>(
              'POST',
              tenant ? `/v1/operator/keys/${id}/revoke` : `/v1/admin/keys/${id}/revoke`,
              key,
              reason !== undefined ? { reason } : {},
            ),
          );
          if (json) context.print(JSON.stringify(revoked));
          else
            context.print(
              `API key ${revoked.keyId} of tenant ${revoked.tenantId} is revoked (since ${revoked.revokedAt ?? '?'}).`,
            );
          return 0;
        }
        case 'rotate': {
          const grace = stringFlag(args, 'grace');
          const graceMs = grace === undefined ? undefined : durationMs(grace);
          if (grace !== undefined && graceMs === undefined)
            throw new ConfigError('--grace must be a duration such as 0, 1h, 7d');
          const expires = stringFlag(args, 'expires');
          const rotated = ensureOk(
            await api.call<{ key: KeyView; secret: string; previous: KeyView }>(
              'POST',
              `/v1/admin/keys/${encodeURIComponent(keyId ?? '')}/rotate`,
              key,
              {
                ...(graceMs !== undefined ? { graceSeconds: Math.round(graceMs / 1000) } : {}),
                ...(expires !== undefined ? { expiresAt: parseWhen(expires, '--expires') } : {}),
              },
            ),
          );
          printCreatedKey(context, json, rotated, 'Rotated: new');
          return 0;
        }
        default:
          return 2;
      }
    } finally {
      await api.close();
    }
  },
};
