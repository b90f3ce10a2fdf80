import type { TenantView } from '@vigil/query';
import { connectApi, ensureOk } from './api.js';
import { argument, subcommand, tenantTable } from './admin-output.js';
import type { CliCommand } from './command.js';
import { configFor, stringFlag } from './command.js';
import { resolveKey } from './search.js';

export const TENANTS_HELP = `Usage: vigil tenants list [--json]
       vigil tenants create ID [--name NAME] [--json]
       vigil tenants suspend ID [--reason TEXT] [--json]
       vigil tenants resume ID [--reason TEXT] [--json]

Manages tenants with an operator key. A tenant is one customer: its events, keys and policies
are seen by its own keys only. Give a new tenant keys with
"vigil keys create --tenant ID --scopes ingest".

  list      every tenant, with its status
  create    a new tenant; ID is 1-63 of a-z, 0-9, _ and -, starting with a letter or digit
  suspend   refuse every key of the tenant (403) until it is resumed; nothing is deleted
  resume    let the tenant's keys work again

Each change is recorded as an audit event in the tenant's own system stream
(vigil/admin/…), which its query keys can search.

Options:
  --name NAME     display name of a new tenant (default: its id)
  --reason TEXT   why; recorded with the audit event
  --json          JSON instead of a table
Connection:
  --url URL       server (default http://<host>:<port> of the configuration; without a
                  running server, the local store is used)
  --key KEY       operator key (default: VIGIL_KEY, else operatorKey of
                  <dataDir>/bootstrap-credentials.json)
`;

export const tenantsCommand: CliCommand = {
  name: 'tenants',
  summary: 'List, create, suspend and resume tenants (operator key).',
  flags: {
    url: { type: 'string' },
    key: { type: 'string' },
    name: { type: 'string' },
    reason: { type: 'string' },
    json: { type: 'boolean' },
  },
  help: () => TENANTS_HELP,
  async run(args, context) {
    const sub = subcommand(args.positionals, 'tenants', ['list', 'create', 'suspend', 'resume']);
    const id = sub === 'list' ? undefined : argument(args.positionals, `vigil tenants ${sub} ID`);
    const config = configFor('start', args, context.env);
    const key = resolveKey(args, context.env, config, 'operatorKey');
    const json = args.local['json'] === true;
    const api = await connectApi(config, stringFlag(args, 'url'));
    try {
      if (sub === 'list') {
        const { tenants } = ensureOk(
          await api.call<{ tenants: TenantView[] }>('GET', '/v1/operator/tenants', key),
        );
        if (json) context.print(JSON.stringify(tenants));
        else if (tenants.length === 0) context.print('no tenants');
        else for (const line of tenantTable(tenants)) context.print(line);
        return 0;
      }
      const name = stringFlag(args, 'name');
      const reason = stringFlag(args, 'reason');
      const { tenant } = ensureOk(
        sub === 'create'
          ? await api.call<{ tenant: TenantView }>('POST', '/v1/operator/tenants', key, {
              id,
              ...(name !== undefined ? { name } : {}),
            })
          : await api.call<{ tenant: TenantView }>(
              'POST',
              `/v1/operator/tenants/${encodeURIComponent(id ?? '')}/${sub}`,
              key,
              reason !== undefined ? { reason } : {},
            ),
      );
      if (json) context.print(JSON.stringify(tenant));
      else
        context.print(
          sub === 'create'
            ? `Created tenant ${tenant.id} ("${tenant.name}"). Give it keys: vigil keys create --tenant ${tenant.id} --scopes ingest`
            : `Tenant ${tenant.id} is ${tenant.status}.`,
        );
      return 0;
    } finally {
      await api.close();
    }
  },
};
