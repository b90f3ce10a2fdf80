import { CATEGORIES } from '@vigil/protocol';
import type { AppliedPolicy, LegalHold, PolicyChange, TenantPolicy } from '@vigil/query';
import { ConfigError } from '@vigil/collector';
import { ensureOk } from './api.js';
import type { CliCommand, CliContext, FlagSpec } from './command.js';
import { stringFlag } from './command.js';
import { withAdminApi } from './with-api.js';

/**
 * `vigil retention …` and `vigil holds …`: the retention policies and legal holds of the admin
 * key's tenant, through the admin API (a running server, or the API in-process on the local
 * store), like every other command.
 */

const CONNECTION_FLAGS: FlagSpec = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
};

const CONNECTION_HELP = `Connection:
  --url URL      server (default http://<host>:<port> of the configuration)
  --key KEY      admin key (default: VIGIL_KEY, else the bootstrap admin key)
  --json         print the API's JSON answer`;

export const RETENTION_HELP = `Usage: vigil retention [show]
       vigil retention set CATEGORY=DAYS|default … [--reason TEXT] [--apply-stored]
       vigil retention apply CATEGORY …
       vigil retention history [--limit N]

How long the tenant of the admin key keeps each category of events. An event expires
DAYS after the collector received it (never counted from the event's own time).

  show       days per category, and whether each is the tenant's own or the default
  set        change days (1-36600), or "default" to use the configured default again;
             new events get the new period within sink.policyRefreshSeconds
  apply      re-apply the current period to the stored events of these categories
  history    every change: when, by which key, old and new days, why

Stored events keep the expiry they were given unless re-applied (set --apply-stored, or
apply). Re-applying is a ClickHouse mutation: it rewrites the expires_at column of every
stored part that holds such events, and events then past their expiry (and not under a
legal hold) are deleted by that rewrite. Run it off-peak on large stores.

Categories: ${CATEGORIES.join(', ')}

${CONNECTION_HELP}
`;

export const HOLDS_HELP = `Usage: vigil holds [list] [--all]
       vigil holds place [--subject ID] --reason TEXT
       vigil holds release HOLD_ID [--reason TEXT]

Legal holds of the admin key's tenant: events a hold covers are not deleted, whatever their
expiry, until it is released.

  list       active holds (--all: released ones too)
  place      hold the whole tenant, or with --subject one person: the events where that id
             is the actor, the target or the access subject; stored events are flagged at
             once, new ones as they arrive (events already past their expiry are not saved)
  release    release a hold: the events no other hold covers expire as their policy says

${CONNECTION_HELP}
`;

function printPolicy(context: CliContext, policy: TenantPolicy): void {
  context.print(`${'CATEGORY'.padEnd(16)} ${'DAYS'.padStart(6)}  SOURCE`);
  for (const category of CATEGORIES) {
    const entry = policy[category];
    context.print(`${category.padEnd(16)} ${String(entry.days).padStart(6)}  ${entry.source}`);
  }
}

function printApplied(context: CliContext, applied: readonly AppliedPolicy[]): void {
  for (const a of applied)
    context.print(
      `re-applied ${a.days} days to stored ${a.category} events (${a.seconds.toFixed(2)} s)`,
    );
}

/** `api=30 authentication=default` → `{ api: 30, authentication: null }`. */
export function parseAssignments(items: readonly string[]): Record<string, number | null> {
  if (items.length === 0)
    throw new ConfigError('retention set needs at least one CATEGORY=DAYS (or CATEGORY=default)');
  const out: Record<string, number | null> = {};
  for (const item of items) {
    const match = /^([a-z_]+)=(\d+|default)$/.exec(item);
    const category = match?.[1];
    const value = match?.[2];
    if (!category || !value || !(CATEGORIES as readonly string[]).includes(category)) {
      throw new ConfigError(
        `"${item}" is not CATEGORY=DAYS or CATEGORY=default; categories: ${CATEGORIES.join(', ')}`,
      );
    }
    out[category] = value === 'default' ? null : Number(value);
  }
  return out;
}

export const retentionCommand: CliCommand = {
  name: 'retention',
  summary: "Show or change how long the tenant's events are kept.",
  flags: {
    ...CONNECTION_FLAGS,
    reason: { type: 'string' },
    'apply-stored': { type: 'boolean' },
    limit: { type: 'string' },
  },
  help: () => RETENTION_HELP,
  async run(args, context) {
    const [action = 'show', ...rest] = args.positionals;
    const json = args.local['json'] === true;
    // Argument mistakes are reported before connecting.
    if (!['show', 'set', 'apply', 'history'].includes(action))
      throw new ConfigError(`unknown retention action "${action}"; see vigil retention --help`);
    const days = action === 'set' ? parseAssignments(rest) : {};
    if (action === 'apply' && rest.length === 0)
      throw new ConfigError('retention apply needs the categories to re-apply');
    return await withAdminApi(args, context, async (api, key) => {
      switch (action) {
        case 'show': {
          const body = ensureOk(
            await api.call<{ tenant: string; policy: TenantPolicy }>(
              'GET',
              '/v1/admin/retention',
              key,
            ),
          );
          if (json) context.print(JSON.stringify(body));
          else printPolicy(context, body.policy);
          return 0;
        }
        case 'set': {
          const reason = stringFlag(args, 'reason');
          const apply = args.local['apply-stored'] === true;
          const body = ensureOk(
            await api.call<{
              policy: TenantPolicy;
              changes: PolicyChange[];
              applied?: AppliedPolicy[];
              refreshSeconds: number;
            }>('PUT', `/v1/admin/retention${apply ? '?apply=stored' : ''}`, key, {
              days,
              ...(reason !== undefined ? { reason } : {}),
            }),
          );
          if (json) {
            context.print(JSON.stringify(body));
            return 0;
          }
          context.print(
            body.changes.length === 0
              ? 'no change: the policy already says so'
              : `${body.changes.length} change(s) recorded; new events follow within ${body.refreshSeconds} s`,
          );
          printApplied(context, body.applied ?? []);
          printPolicy(context, body.policy);
          return 0;
        }
        case 'apply': {
          const body = ensureOk(
            await api.call<{ applied: AppliedPolicy[] }>('POST', '/v1/admin/retention/apply', key, {
              categories: rest,
            }),
          );
          if (json) context.print(JSON.stringify(body));
          else printApplied(context, body.applied);
          return 0;
        }
        default: {
          const limit = stringFlag(args, 'limit');
          const body = ensureOk(
            await api.call<{ changes: PolicyChange[] }>(
              'GET',
              `/v1/admin/retention/history${limit ? `?limit=${encodeURIComponent(limit)}` : ''}`,
              key,
            ),
          );
          if (json) {
            context.print(JSON.stringify(body));
            return 0;
          }
          if (body.changes.length === 0) context.print('no change recorded: the defaults apply');
          for (const c of body.changes) {
            const from = `${c.previousEffectiveDays}${c.previousDays === null ? ' (default)' : ''}`;
            const to = `${c.effectiveDays}${c.days === null ? ' (default)' : ''}`;
            context.print(
              `${new Date(c.changedAt).toISOString()}  ${c.category.padEnd(15)} ${from} → ${to}  by ${c.actorKeyId}${c.reason ? `: ${c.reason}` : ''}`,
            );
          }
          return 0;
        }
      }
    });
  },
};

function printHold(context: CliContext, h: LegalHold): void {
  const scope = h.subject === null ? 'tenant' : `subject ${h.subject}`;
  const state = h.active
    ? 'active'
    : `released ${new Date(h.releasedAt ?? 0).toISOString()} by ${h.releasedBy ?? '?'}${h.releaseReason ? `: ${h.releaseReason}` : ''}`;
  context.print(
    `${h.id}  ${scope}  placed ${new Date(h.placedAt).toISOString()} by ${h.placedBy}: ${h.reason}  [${state}]`,
  );
}

export const holdsCommand: CliCommand = {
  name: 'holds',
  summary: 'List, place or release legal holds that suspend deletion.',
  flags: {
    ...CONNECTION_FLAGS,
    all: { type: 'boolean' },
    subject: { type: 'string' },
    reason: { type: 'string' },
  },
  help: () => HOLDS_HELP,
  async run(args, context) {
    const [action = 'list', ...rest] = args.positionals;
    const json = args.local['json'] === true;
    if (!['list', 'place', 'release'].includes(action))
      throw new ConfigError(`unknown holds action "${action}"; see vigil holds --help`);
    const reason = stringFlag(args, 'reason');
    if (action === 'place' && !reason)
      throw new ConfigError('holds place needs --reason (why the hold is placed)');
    const [id] = rest;
    if (action === 'release' && !id)
      throw new ConfigError('holds release needs the hold id (see vigil holds list)');
    return await withAdminApi(args, context, async (api, key) => {
      switch (action) {
        case 'list': {
          const all = args.local['all'] === true;
          const body = ensureOk(
            await api.call<{ holds: LegalHold[] }>(
              'GET',
              `/v1/admin/holds${all ? '?all=true' : ''}`,
              key,
            ),
          );
          if (json) context.print(JSON.stringify(body));
          else if (body.holds.length === 0)
            context.print(all ? 'no legal hold' : 'no active legal hold');
          else for (const h of body.holds) printHold(context, h);
          return 0;
        }
        case 'place': {
          const subject = stringFlag(args, 'subject');
          const body = ensureOk(
            await api.call<{ hold: LegalHold; heldEvents: number }>(
              'POST',
              '/v1/admin/holds',
              key,
              {
                reason,
                ...(subject !== undefined ? { subject } : {}),
              },
            ),
          );
          if (json) context.print(JSON.stringify(body));
          else {
            printHold(context, body.hold);
            context.print(`${body.heldEvents} stored event(s) are now held`);
          }
          return 0;
        }
        default: {
          const body = ensureOk(
            await api.call<{ hold: LegalHold; stillHeld: boolean }>(
              'POST',
              `/v1/admin/holds/${encodeURIComponent(id ?? '')}/release`,
              key,
              reason !== undefined ? { reason } : {},
            ),
          );
          if (json) context.print(JSON.stringify(body));
          else {
            printHold(context, body.hold);
            if (body.stillHeld) context.print('a tenant hold still covers every event');
          }
          return 0;
        }
      }
    });
  },
};
