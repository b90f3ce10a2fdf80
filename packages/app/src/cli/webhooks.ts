import { ConfigError } from '@vigil/collector';
import { ensureOk } from './api.js';
import type { CliCommand, CliContext, FlagSpec } from './command.js';
import { stringFlag } from './command.js';
import { withAdminApi } from './with-api.js';

/** `vigil webhooks …`: the alert webhooks of the admin key's tenant, through the admin API. */

const FLAGS: FlagSpec = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
  format: { type: 'string' },
  'min-severity': { type: 'string' },
  secret: { type: 'string' },
  description: { type: 'string' },
  disabled: { type: 'boolean' },
  webhook: { type: 'string' },
  all: { type: 'boolean' },
  limit: { type: 'string' },
};

export const WEBHOOKS_HELP = `Usage: vigil webhooks [list]
       vigil webhooks create URL [--format vigil|slack] [--min-severity LEVEL]
                                 [--secret SECRET] [--description TEXT] [--disabled]
       vigil webhooks enable|disable WEBHOOK_ID
       vigil webhooks update WEBHOOK_ID [--format F] [--min-severity LEVEL] [--description TEXT]
       vigil webhooks delete WEBHOOK_ID
       vigil webhooks test WEBHOOK_ID
       vigil webhooks dead-letters [--webhook WEBHOOK_ID] [--limit N]
       vigil webhooks redrive DELIVERY_ID … | --all [--webhook WEBHOOK_ID]

Alert webhooks of the admin key's tenant. Each alert at or above a webhook's minimum severity
(informational, low, medium, high, critical; default low) is POSTed to it, signed with
HMAC-SHA256 (header Vigil-Signature: t=<unix seconds>,v1=<hex>; see README, "Alert webhooks",
for the receiver's check). Format vigil is the alert as JSON; slack is a Slack incoming-webhook
message ({text, blocks}).

  list          the webhooks (never their secrets)
  create        add one; prints the signing secret ONCE (generated unless --secret is given)
  enable        send to it again; disable: send nothing to it (queued deliveries dead-letter)
  update        change its format, minimum severity or description (URL and secret: create anew)
  delete        remove one: nothing more is sent to it
  test          send a signed webhook.test event now and show the receiver's answer
  dead-letters  deliveries that failed every attempt
  redrive       queue dead letters again with a fresh count of attempts

URLs must be http(s) on public addresses unless the operator allows internal ones
(webhooks.allowAddresses).

Connection:
  --url URL      server (default http://<host>:<port> of the configuration)
  --key KEY      admin key (default: VIGIL_KEY, else the bootstrap admin key)
  --json         print the API's JSON answer
`;

interface WebhookView {
  id: string;
  url: string;
  format: string;
  minSeverity: string;
  enabled: boolean;
  description: string;
  createdAt: string;
}

interface DeliveryView {
  id: string;
  webhookId: string;
  eventId: string;
  attempts: number;
  lastStatus: number;
  lastError: string;
  updatedAt: string;
}

function printWebhook(context: CliContext, w: WebhookView): void {
  context.print(
    `${w.id}  ${w.enabled ? 'enabled ' : 'disabled'}  ${w.format.padEnd(5)}  >=${w.minSeverity.padEnd(13)} ${w.url}${w.description ? `  (${w.description})` : ''}`,
  );
}

function printDelivery(context: CliContext, d: DeliveryView): void {
  context.print(
    `${d.id}  webhook ${d.webhookId}  event ${d.eventId}  ${d.attempts} attempt(s), last ${d.updatedAt}: ${d.lastError}`,
  );
}

export const webhooksCommand: CliCommand = {
  name: 'webhooks',
  summary: "List, add, test or delete the tenant's alert webhooks; re-drive dead letters.",
  flags: FLAGS,
  help: () => WEBHOOKS_HELP,
  async run(args, context) {
    const [action = 'list', ...rest] = args.positionals;
    const json = args.local['json'] === true;
    const actions = [
      'list',
      'create',
      'enable',
      'disable',
      'update',
      'delete',
      'test',
      'dead-letters',
      'redrive',
    ];
    if (!actions.includes(action))
      throw new ConfigError(`unknown webhooks action "${action}"; see vigil webhooks --help`);
    const [target] = rest;
    if (!['list', 'dead-letters', 'redrive'].includes(action) && !target)
      throw new ConfigError(
        `webhooks ${action} needs ${action === 'create' ? 'the URL' : 'the webhook id (see vigil webhooks list)'}`,
      );
    const all = args.local['all'] === true;
    if (action === 'redrive' && (rest.length === 0) === !all)
      throw new ConfigError('webhooks redrive needs delivery ids, or --all');
    const webhook = stringFlag(args, 'webhook');
    return await withAdminApi(args, context, async (api, key) => {
      switch (action) {
        case 'list': {
          const body = ensureOk(
            await api.call<{ webhooks: WebhookView[] }>('GET', '/v1/webhooks', key),
          );
          if (json) context.print(JSON.stringify(body));
          else if (body.webhooks.length === 0) context.print('no webhook');
          else for (const w of body.webhooks) printWebhook(context, w);
          return 0;
        }
        case 'create': {
          const format = stringFlag(args, 'format');
          const minSeverity = stringFlag(args, 'min-severity');
          const secret = stringFlag(args, 'secret');
          const description = stringFlag(args, 'description');
          const body = ensureOk(
            await api.call<{ webhook: WebhookView; secret: string }>('POST', '/v1/webhooks', key, {
              url: target,
              ...(format !== undefined ? { format } : {}),
              ...(minSeverity !== undefined ? { minSeverity } : {}),
              ...(secret !== undefined ? { secret } : {}),
              ...(description !== undefined ? { description } : {}),
              ...(args.local['disabled'] === true ? { enabled: false } : {}),
            }),
          );
          if (json) context.print(JSON.stringify(body));
          else {
            printWebhook(context, body.webhook);
            context.print(`secret ${body.secret}`);
            context.print(
              'The secret is shown only now: give it to the receiver to check signatures.',
            );
          }
          return 0;
        }
        case 'enable':
        case 'disable':
        case 'update': {
          const format = stringFlag(args, 'format');
          const minSeverity = stringFlag(args, 'min-severity');
          const description = stringFlag(args, 'description');
          const change =
            action === 'update'
              ? {
                  ...(format !== undefined ? { format } : {}),
                  ...(minSeverity !== undefined ? { minSeverity } : {}),
                  ...(description !== undefined ? { description } : {}),
                }
              : { enabled: action === 'enable' };
          const body = ensureOk(
            await api.call<{ webhook: WebhookView }>(
              'PATCH',
              `/v1/webhooks/${encodeURIComponent(target ?? '')}`,
              key,
              change,
            ),
          );
          if (json) context.print(JSON.stringify(body));
          else printWebhook(context, body.webhook);
          return 0;
        }
        case 'delete': {
          const body = ensureOk(
            await api.call<{ webhook: WebhookView }>(
              'DELETE',
              `/v1/webhooks/${encodeURIComponent(target ?? '')}`,
              key,
            ),
          );
          if (json) context.print(JSON.stringify(body));
          else context.print(`deleted ${body.webhook.id} (${body.webhook.url})`);
          return 0;
        }
        case 'test': {
          const body = ensureOk(
            await api.call<{ delivered: boolean; status: number; error?: string }>(
              'POST',
              `/v1/webhooks/${encodeURIComponent(target ?? '')}/test`,
              key,
              {},
            ),
          );
          if (json) context.print(JSON.stringify(body));
          else
            context.print(
              body.delivered
                ? `delivered: the receiver answered ${body.status}`
                : `not delivered: ${body.error ?? `answered ${body.status}`}`,
            );
          return body.delivered ? 0 : 1;
        }
        case 'dead-letters': {
          const limit = stringFlag(args, 'limit');
          const query = new URLSearchParams({
            ...(webhook !== undefined ? { webhook } : {}),
            ...(limit !== undefined ? { limit } : {}),
          }).toString();
          const body = ensureOk(
            await api.call<{ deliveries: DeliveryView[] }>(
              'GET',
              `/v1/webhooks/dead-letters${query ? `?${query}` : ''}`,
              key,
            ),
          );
          if (json) context.print(JSON.stringify(body));
          else if (body.deliveries.length === 0) context.print('no dead letter');
          else for (const d of body.deliveries) printDelivery(context, d);
          return 0;
        }
        default: {
          const body = ensureOk(
            await api.call<{ deliveries: DeliveryView[] }>(
              'POST',
              '/v1/webhooks/dead-letters/redrive',
              key,
              all ? { all: true, ...(webhook !== undefined ? { webhook } : {}) } : { ids: rest },
            ),
          );
          if (json) context.print(JSON.stringify(body));
          else context.print(`${body.deliveries.length} delivery(ies) queued again`);
          return 0;
        }
      }
    });
  },
};
