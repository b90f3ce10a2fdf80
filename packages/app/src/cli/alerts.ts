import type { Api } from './api.js';
import { connectApi, ensureOk } from './api.js';
import type { CliCommand, CliContext } from './command.js';
import { configFor, stringFlag } from './command.js';
import type { ParsedArgs } from './args.js';
import { ConfigError } from '@vigil/collector';
import { resolveKey } from './search.js';

/**
 * `vigil alerts …`: the alerts of the key's tenant and their triage, through the API (a running
 * server, or the API in-process on the local store). Reading needs a query key; triage a key
 * with scope triage (or admin): --key, VIGIL_KEY, else the bootstrap admin key.
 */

export const ALERTS_HELP = `Usage: vigil alerts [list] [filters] [--group-by rule|entity|address] [--json] [--all]
       vigil alerts show ID [--json]
       vigil alerts ack ID… [--reason TEXT]
       vigil alerts close ID… [--reason TEXT]
       vigil alerts false-positive ID… [--reason TEXT]
       vigil alerts accept-risk ID… --until TIME [--reason TEXT]
       vigil alerts reopen ID… [--reason TEXT]
       vigil alerts assign ID… --to NAME | --nobody
       vigil alerts note ID TEXT

The alerts the detector raised in the key's tenant, newest last event first, and their
triage. States: open (new alerts), acknowledged, closed, false_positive, accepted_risk (until a
time; after it the alert is open again). Every change is recorded as an audit event
(alert.triaged) before it is made; notes and assignees are kept as personal data.

Several IDs change them all at once (one audit event). Instead of IDs, --rule RULE and/or
--entity VALUE change every alert of that rule or entity (with --state, only those in these
states), at most 10000.

Filters (list):
  --state LIST        open,acknowledged,closed,false_positive,accepted_risk
  --severity LIST     low,medium,high,critical
  --rule LIST         rule ids
  --entity VALUE      an account, address or API key the alert is about
  --assignee NAME     alerts assigned to NAME
  --from TIME         alerts whose window ends at or after TIME (RFC 3339 UTC, ms)
  --to TIME           alerts whose window starts before TIME
  --limit N           per page (1-500, default 100); --all follows the pages
  --group-by KIND     counts per rule, entity (account) or address instead of alerts
Changes:
  --until TIME        accept-risk: when the acceptance ends, e.g. 2026-12-31T00:00:00.000Z
  --reason TEXT       why (kept with the change)
  --to NAME / --nobody   assign: the assignee, or none
Output:
  --json              the API's JSON answer (one alert or group per line for list)
Connection:
  --url URL           server (default http://<host>:<port> of the configuration)
  --key KEY           query key to read, triage or admin key to change (default: VIGIL_KEY,
                      else the bootstrap query or admin key)
`;

interface Triage {
  state: string;
  setState: string;
  until: string | null;
  assignee: string | null;
  notes: { author: string; at: string; text: string }[];
}

interface AlertView {
  id: string;
  ruleId: string;
  title: string;
  severity: string;
  entity: Record<string, string>;
  firstEventTime: string;
  lastEventTime: string;
  eventCount?: number;
  eventIds?: string[];
  evidence?: Record<string, unknown>;
  attack?: string[];
  triage: Triage;
}

interface GroupView {
  key: string;
  alerts: number;
  states: Record<string, number>;
  severities: Record<string, number>;
  rules: string[];
  lastEventTime: string;
}

const STATE_OF: Readonly<Record<string, string>> = {
  ack: 'acknowledged',
  close: 'closed',
  'false-positive': 'false_positive',
  'accept-risk': 'accepted_risk',
  reopen: 'open',
};

const SUBCOMMANDS = ['list', 'show', ...Object.keys(STATE_OF), 'assign', 'note'] as const;

const WIDTHS = [32, 10, 28, 24, 15, 20, 24];

function row(cells: readonly string[]): string {
  return cells
    .map((c, i) => (i === cells.length - 1 ? c : c.slice(0, WIDTHS[i]).padEnd(WIDTHS[i] ?? 10)))
    .join(' ');
}

const entityText = (entity: Record<string, string>): string =>
  Object.entries(entity)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

function stateText(t: Triage): string {
  if (t.setState === 'accepted_risk' && t.state === 'open') return 'open (risk expired)';
  if (t.state === 'accepted_risk' && t.until) return `accepted until ${t.until.slice(0, 10)}`;
  return t.state;
}

function listQuery(args: ParsedArgs): URLSearchParams {
  const params = new URLSearchParams();
  const names: [string, string][] = [
    ['state', 'state'],
    ['severity', 'severity'],
    ['rule', 'rule'],
    ['entity', 'entity'],
    ['assignee', 'assignee'],
    ['from', 'from'],
    ['to', 'to'],
    ['limit', 'limit'],
    ['group-by', 'groupBy'],
  ];
  for (const [flag, param] of names) {
    const v = stringFlag(args, flag);
    if (v !== undefined) params.set(param, v);
  }
  return params;
}

async function list(api: Api, key: string, args: ParsedArgs, context: CliContext): Promise<number> {
  const params = listQuery(args);
  const json = args.local['json'] === true;
  const all = args.local['all'] === true;
  const grouped = params.has('groupBy');
  let count = 0;
  let cursor: string | undefined;
  do {
    if (cursor) params.set('cursor', cursor);
    const page = ensureOk(
      await api.call<{ alerts?: AlertView[]; groups?: GroupView[]; nextCursor?: string }>(
        'GET',
        `/v1/alerts?${params.toString()}`,
        key,
      ),
    );
    if (grouped) {
      for (const g of page.groups ?? []) {
        if (json) context.print(JSON.stringify(g));
        else {
          if (count === 0)
            context.print(row(['GROUP', 'ALERTS', 'STATES', 'SEVERITIES', 'LAST EVENT']));
          const states = Object.entries(g.states)
            .map(([s, n]) => `${s}:${n}`)
            .join(',');
          const sev = Object.entries(g.severities)
            .map(([s, n]) => `${s}:${n}`)
            .join(',');
          context.print(row([g.key || '(none)', String(g.alerts), states, sev, g.lastEventTime]));
        }
        count++;
      }
    } else {
      for (const a of page.alerts ?? []) {
        if (json) context.print(JSON.stringify(a));
        else {
          if (count === 0)
            context.print(
              row(['ID', 'SEVERITY', 'RULE', 'STATE', 'ASSIGNEE', 'LAST EVENT', 'ENTITY']),
            );
          context.print(
            row([
              a.id,
              a.severity,
              a.ruleId,
              stateText(a.triage),
              a.triage.assignee ?? '',
              a.lastEventTime.slice(0, 19).replace('T', ' '),
              entityText(a.entity),
            ]),
          );
        }
        count++;
      }
    }
    cursor = all ? page.nextCursor : undefined;
    if (!json && !all && page.nextCursor)
      context.print(
        `… more ${grouped ? 'groups' : 'alerts'}: repeat with --all, or narrow the filters`,
      );
  } while (cursor);
  if (!json && count === 0) context.print(grouped ? 'no alerts to group' : 'no alerts match');
  return 0;
}

function show(a: AlertView, context: CliContext): void {
  const lines = [
    `${a.id}  ${a.severity.toUpperCase()}  ${a.title} (${a.ruleId}${a.attack?.length ? `, ${a.attack.join(' ')}` : ''})`,
    `  state:     ${stateText(a.triage)}${a.triage.until ? ` (accepted until ${a.triage.until})` : ''}`,
    `  assignee:  ${a.triage.assignee ?? '-'}`,
    `  entity:    ${entityText(a.entity) || '-'}`,
    `  window:    ${a.firstEventTime} … ${a.lastEventTime} (${a.eventCount ?? 0} events)`,
    `  evidence:  ${JSON.stringify(a.evidence ?? {})}`,
    ...(a.eventIds && a.eventIds.length > 0 ? [`  events:    ${a.eventIds.join(' ')}`] : []),
    ...(a.triage.notes.length > 0 ? ['  notes:'] : []),
    ...a.triage.notes.map((n) => `    ${n.at} ${n.author}: ${n.text}`),
  ];
  for (const line of lines) context.print(line);
}

/** Sends one triage change to the alerts named by ids, or selected by --rule/--entity. */
async function change(
  api: Api,
  key: string,
  ids: readonly string[],
  args: ParsedArgs,
  body: Record<string, unknown>,
  context: CliContext,
): Promise<number> {
  const rule = stringFlag(args, 'rule');
  const entity = stringFlag(args, 'entity');
  const state = stringFlag(args, 'state');
  const reason = stringFlag(args, 'reason');
  const changeBody = { ...body, ...(reason ? { reason } : {}) };
  let answer: { changed: number; event: string; alert?: AlertView };
  if (ids.length === 1 && !rule && !entity) {
    answer = ensureOk(
      await api.call<typeof answer>(
        'PATCH',
        `/v1/alerts/${encodeURIComponent(ids[0] as string)}`,
        key,
        changeBody,
      ),
    );
  } else if (ids.length > 0 || rule || entity) {
    answer = ensureOk(
      await api.call<typeof answer>('POST', '/v1/alerts/bulk', key, {
        ...(ids.length > 0 ? { ids } : {}),
        ...(rule ? { rule } : {}),
        ...(entity ? { entity } : {}),
        ...(state ? { state: state.split(',') } : {}),
        change: changeBody,
      }),
    );
  } else {
    throw new ConfigError(
      'name the alerts: one or more IDs, or --rule / --entity (see vigil alerts --help)',
    );
  }
  if (args.local['json'] === true) context.print(JSON.stringify(answer));
  else if (answer.alert) show(answer.alert, context);
  else
    context.print(
      `${answer.changed} alerts changed${answer.event ? ` (audit event ${answer.event})` : ''}`,
    );
  return 0;
}

export const alertsCommand: CliCommand = {
  name: 'alerts',
  summary: 'List, show and triage the alerts of the detector.',
  flags: {
    url: { type: 'string' },
    key: { type: 'string' },
    json: { type: 'boolean' },
    all: { type: 'boolean' },
    state: { type: 'string' },
    severity: { type: 'string' },
    rule: { type: 'string' },
    entity: { type: 'string' },
    assignee: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    limit: { type: 'string' },
    'group-by': { type: 'string' },
    until: { type: 'string' },
    reason: { type: 'string' },
    nobody: { type: 'boolean' },
  },
  help: () => ALERTS_HELP,
  async run(args, context) {
    const positionals = args.positionals;
    const sub = positionals[0] ?? 'list';
    if (!(SUBCOMMANDS as readonly string[]).includes(sub))
      throw new ConfigError(
        `unknown subcommand "${sub}": vigil alerts ${SUBCOMMANDS.join('|')} (see vigil alerts --help)`,
      );
    const rest = positionals.slice(1);
    const reading = sub === 'list' || sub === 'show';
    const config = configFor('start', args, context.env);
    const key = resolveKey(args, context.env, config, reading ? 'queryKey' : 'adminKey');
    // `--to` means the assignee for assign and the end of the window for list.
    const body = ((): Record<string, unknown> | undefined => {
      if (reading) return undefined;
      if (sub === 'assign') {
        const to = stringFlag(args, 'to');
        if ((to === undefined) === (args.local['nobody'] !== true))
          throw new ConfigError('usage: vigil alerts assign ID… --to NAME | --nobody');
        return { assignee: to ?? null };
      }
      if (sub === 'note') return {};
      const state = STATE_OF[sub] as string;
      const until = stringFlag(args, 'until');
      if (sub === 'accept-risk' && until === undefined)
        throw new ConfigError('usage: vigil alerts accept-risk ID… --until TIME (RFC 3339 UTC)');
      return { state, ...(until !== undefined ? { until } : {}) };
    })();
    const api = await connectApi(config, stringFlag(args, 'url'));
    try {
      if (sub === 'list') {
        if (rest.length > 0) throw new ConfigError('usage: vigil alerts list [filters] (no IDs)');
        return await list(api, key, args, context);
      }
      if (sub === 'show') {
        if (rest.length !== 1) throw new ConfigError('usage: vigil alerts show ID');
        const a = ensureOk(
          await api.call<AlertView>(
            'GET',
            `/v1/alerts/${encodeURIComponent(rest[0] as string)}`,
            key,
          ),
        );
        if (args.local['json'] === true) context.print(JSON.stringify(a));
        else show(a, context);
        return 0;
      }
      if (sub === 'note') {
        if (rest.length !== 2) throw new ConfigError('usage: vigil alerts note ID TEXT');
        const answer = ensureOk(
          await api.call<{ alert?: AlertView }>(
            'POST',
            `/v1/alerts/${encodeURIComponent(rest[0] as string)}/notes`,
            key,
            { text: rest[1] },
          ),
        );
        if (args.local['json'] === true) context.print(JSON.stringify(answer));
        else if (answer.alert) show(answer.alert, context);
        return 0;
      }
      return await change(api, key, rest, args, body ?? {}, context);
    } finally {
      await api.close();
    }
  },
};
