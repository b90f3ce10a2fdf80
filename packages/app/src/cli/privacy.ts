import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { JsonValue, SignedErasureReceipt } from '@vigil/protocol';
import type { Restriction } from '@vigil/query';
import { ConfigError } from '@vigil/collector';
import type { ParsedArgs } from './args.js';
import { ensureOk } from './api.js';
import type { CliCommand, CliContext, FlagSpec } from './command.js';
import { stringFlag } from './command.js';
import { withAdminApi } from './with-api.js';

/**
 * The data-subject rights from the command line, through the admin API like every other
 * command: `vigil export`, `vigil erase`, `vigil erasures`, `vigil correct`, `vigil restrict`
 * and `vigil pseudonyms`.
 */

const CONNECTION: FlagSpec = {
  url: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
};

const CONNECTION_HELP = `Connection:
  --url URL      server (default http://<host>:<port> of the configuration; without a running
                 server, the API runs in this process on the local store and log)
  --key KEY      admin key (default: VIGIL_KEY, else the bootstrap admin key)
  --json         print the API's JSON answer`;

const SUBJECT: FlagSpec = {
  subject: { type: 'string' },
  email: { type: 'string', multiple: true },
};

function subjectOf(args: ParsedArgs, command: string): { subject: string; emails?: string[] } {
  const subject = stringFlag(args, 'subject');
  if (!subject) throw new ConfigError(`${command} needs --subject ID (the person's id)`);
  const emails = args.local['email'];
  const list = Array.isArray(emails) ? emails : typeof emails === 'string' ? [emails] : [];
  return { subject, ...(list.length > 0 ? { emails: list } : {}) };
}

function requireReason(args: ParsedArgs, command: string): string {
  const reason = stringFlag(args, 'reason');
  if (!reason) throw new ConfigError(`${command} needs --reason TEXT (it is recorded)`);
  return reason;
}

// ---- export ----------------------------------------------------------------------------------

export const EXPORT_HELP = `Usage: vigil export --subject ID [--email ADDRESS]… [--format json|csv|bundle] [--out FILE]

Everything stored about one person (GDPR Art. 15 access, Art. 20 portability): the events
where they are the actor, the target, the access subject or the grantor (by id, and by e-mail
address when given), with the corrections of those events. Only their own values are shown;
other people's stay commitments. The export is recorded as an audit event.

  --format json     one JSON document (default)
  --format csv      UTF-8 with BOM, CRLF, ISO times, cells that Excel would run as formulas
                    neutralised: opens in Excel and survives it
  --format bundle   a signed bundle an auditor verifies offline with the public key alone
                    (vigil verify --bundle FILE --key PUBKEY; PROTOCOL.md §16)
  --out FILE        write to FILE (default: standard output)

${CONNECTION_HELP}
`;

export const exportCommand: CliCommand = {
  name: 'export',
  summary: "Export a person's events as JSON, CSV or a signed bundle (GDPR Art. 15, 20).",
  flags: { ...CONNECTION, ...SUBJECT, format: { type: 'string' }, out: { type: 'string' } },
  help: () => EXPORT_HELP,
  async run(args, context) {
    const body = subjectOf(args, 'vigil export');
    const format = stringFlag(args, 'format') ?? 'json';
    if (!['json', 'csv', 'bundle'].includes(format))
      throw new ConfigError('--format must be json, csv or bundle');
    const out = stringFlag(args, 'out');
    return withAdminApi(args, context, async (api, key) => {
      const response = await api.stream('POST', '/v1/admin/subjects/export', key, {
        ...body,
        format,
      });
      if (response.status >= 400) {
        const chunks: Buffer[] = [];
        for await (const chunk of response.body) chunks.push(Buffer.from(chunk as Buffer));
        const text = Buffer.concat(chunks).toString('utf8');
        ensureOk({
          status: response.status,
          body: text ? (JSON.parse(text) as unknown) : undefined,
        });
      }
      // A subject export is the person's data in the clear: owner-only.
      const target: Writable = out ? createWriteStream(out, { mode: 0o600 }) : process.stdout;
      if (out) await pipeline(response.body, target);
      else for await (const chunk of response.body) process.stdout.write(chunk as Buffer);
      if (out) context.printError(`wrote the ${format} export of ${body.subject} to ${out}`);
      return 0;
    });
  },
};

// ---- erase -----------------------------------------------------------------------------------

export const ERASE_HELP = `Usage: vigil erase --subject ID [--email ADDRESS]… --reason TEXT
                   [--override-hold --hold-reason TEXT] [--purge] [--dry-run] [--receipt FILE]

Erases a person (GDPR Art. 17): deletes the disclosures (value and salt) of their fields in
every event they are a party of, the geolocation and user agent derived from them, and their
values in the embedded log, so no query, export, derived table or replay of the log returns
them. The hashed records stay, so every hash, chain link and proof still verifies. A signed
receipt is returned that names the person only by keyed digests; the erasure is recorded as
an audit event. Run it again to complete an erasure that was interrupted.

  --reason TEXT          why (kept in the receipt: do not name the person)
  --override-hold        erase although a legal hold covers the person, the tenant or some
                         of the events; needs --hold-reason, which is recorded
  --purge                merge the table now so the superseded rows leave the disk, and check
                         that none is left (otherwise ClickHouse drops them at its next merge)
  --dry-run              say what would be erased; change nothing
  --receipt FILE         also write the signed receipt to FILE

${CONNECTION_HELP}
`;

export const eraseCommand: CliCommand = {
  name: 'erase',
  summary: 'Erase a person, keeping every proof valid; prints a signed receipt (GDPR Art. 17).',
  flags: {
    ...CONNECTION,
    ...SUBJECT,
    reason: { type: 'string' },
    'override-hold': { type: 'boolean' },
    'hold-reason': { type: 'string' },
    purge: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
    receipt: { type: 'string' },
  },
  help: () => ERASE_HELP,
  async run(args, context) {
    const subject = subjectOf(args, 'vigil erase');
    const reason = requireReason(args, 'vigil erase');
    const override = args.local['override-hold'] === true;
    const holdReason = stringFlag(args, 'hold-reason');
    if (override && !holdReason)
      throw new ConfigError(
        '--override-hold needs --hold-reason TEXT: overriding a hold is recorded',
      );
    const receiptFile = stringFlag(args, 'receipt');
    return withAdminApi(args, context, async (api, key) => {
      const body = ensureOk(
        await api.call<{
          events: number;
          counts?: Record<string, number>;
          receipt?: SignedErasureReceipt;
          holds?: string[];
          purged?: { oldVersionsLeft: number };
          physicalDeletion?: string;
          dryRun?: boolean;
          disclosures?: number;
        }>('POST', '/v1/admin/subjects/erase', key, {
          ...subject,
          reason,
          ...(override ? { overrideHold: true, holdOverrideReason: holdReason } : {}),
          ...(args.local['purge'] === true ? { purge: true } : {}),
          ...(args.local['dry-run'] === true ? { dryRun: true } : {}),
        }),
      );
      if (receiptFile && body.receipt) {
        const { writeFileSync } = await import('node:fs');
        writeFileSync(receiptFile, JSON.stringify(body.receipt, null, 2) + '\n');
      }
      if (args.local['json'] === true) {
        context.print(JSON.stringify(body));
        return 0;
      }
      if (body.dryRun) {
        context.print(
          `would erase ${body.disclosures ?? 0} value(s) in ${body.events} event(s)${body.holds && body.holds.length > 0 ? `; held by ${body.holds.join(', ')}` : ''}`,
        );
        return 0;
      }
      const c = body.counts ?? {};
      context.print(
        `erased ${c['disclosures'] ?? 0} value(s) in ${c['events'] ?? 0} event(s), ${c['derivedColumns'] ?? 0} derived value(s), ${c['logRecords'] ?? 0} log record(s)`,
      );
      if (body.purged)
        context.print(
          body.purged.oldVersionsLeft === 0
            ? 'the superseded rows are gone from the table'
            : `${body.purged.oldVersionsLeft} superseded row(s) still on disk; run again with --purge`,
        );
      else if (body.physicalDeletion) context.print(body.physicalDeletion);
      if (body.receipt) {
        context.print(
          `receipt ${body.receipt.id}${receiptFile ? ` (written to ${receiptFile})` : ''}`,
        );
        if (!receiptFile) context.print(JSON.stringify(body.receipt));
      }
      return 0;
    });
  },
};

export const ERASURES_HELP = `Usage: vigil erasures [ERASURE_ID]

The tenant's signed erasure receipts (PROTOCOL.md §17), newest first, or one of them in full.
A receipt names the person by keyed digests only; vigil erasures --subject ID finds theirs.

  --subject ID / --email ADDRESS   only the receipts of this person

${CONNECTION_HELP}
`;

export const erasuresCommand: CliCommand = {
  name: 'erasures',
  summary: 'List the signed erasure receipts, or show one.',
  flags: { ...CONNECTION, ...SUBJECT },
  help: () => ERASURES_HELP,
  async run(args, context) {
    const [id] = args.positionals;
    return withAdminApi(args, context, async (api, key) => {
      if (id) {
        const receipt = ensureOk(
          await api.call<SignedErasureReceipt>(
            'GET',
            `/v1/admin/erasures/${encodeURIComponent(id)}`,
            key,
          ),
        );
        context.print(JSON.stringify(receipt, null, args.local['json'] === true ? 0 : 2));
        return 0;
      }
      const body = ensureOk(
        await api.call<{
          erasures: { erasure: string; erasedAt: string; receipt: SignedErasureReceipt }[];
        }>('GET', '/v1/admin/erasures', key),
      );
      let list = body.erasures;
      if (stringFlag(args, 'subject')) {
        const digests = ensureOk(
          await api.call<{ digests: string[] }>(
            'POST',
            '/v1/admin/subjects/digest',
            key,
            subjectOf(args, 'vigil erasures'),
          ),
        ).digests;
        list = list.filter((e) => {
          const subject = (JSON.parse(e.receipt.receipt) as { subject: string[] }).subject;
          return subject.some((d) => digests.includes(d));
        });
      }
      if (args.local['json'] === true) context.print(JSON.stringify({ erasures: list }));
      else if (list.length === 0) context.print('no erasure');
      else
        for (const e of list) {
          const s = JSON.parse(e.receipt.receipt) as { counts: { events: number }; reason: string };
          context.print(
            `${e.erasure}  ${e.erasedAt}  ${s.counts.events} event(s)  receipt ${e.receipt.id}  ${s.reason}`,
          );
        }
      return 0;
    });
  },
};

// ---- correct ---------------------------------------------------------------------------------

export const CORRECT_HELP = `Usage: vigil correct EVENT_ID --set POINTER=VALUE… --reason TEXT [--hash HEX]

Records a correction of an event (GDPR Art. 16, rectification; PROTOCOL.md §18): a new event
that names the event and the corrected values. The event itself never changes and stays
provable; searches show it corrected (vigil search --original shows it as recorded).

  --set POINTER=VALUE   a corrected field, as a JSON pointer into the event and a JSON value
                        (text that is not JSON is taken as a string):
                        --set /actor/email=zoe@example.eu --set /outcome=failure
  --reason TEXT         why (recorded)
  --hash HEX            the event's hash, when several stored copies share its id

${CONNECTION_HELP}
`;

/** `/actor/email=zoe@x` → ['/actor/email', 'zoe@x']; a JSON value is parsed, other text kept. */
export function parseSetting(item: string): [string, JsonValue] {
  const at = item.indexOf('=');
  if (at <= 0 || !item.startsWith('/'))
    throw new ConfigError(
      `--set "${item}" is not POINTER=VALUE (a JSON pointer such as /actor/email)`,
    );
  const raw = item.slice(at + 1);
  let value: JsonValue = raw;
  try {
    value = JSON.parse(raw) as JsonValue;
  } catch {
    // plain text
  }
  return [item.slice(0, at), value];
}

export const correctCommand: CliCommand = {
  name: 'correct',
  summary: 'Record a correction of an event (GDPR Art. 16); the original stays provable.',
  flags: {
    ...CONNECTION,
    set: { type: 'string', multiple: true },
    reason: { type: 'string' },
    hash: { type: 'string' },
  },
  help: () => CORRECT_HELP,
  async run(args, context) {
    const [eventId] = args.positionals;
    if (!eventId || args.positionals.length > 1)
      throw new ConfigError(
        'give exactly one event id: vigil correct EVENT_ID --set …; see --help',
      );
    const sets = args.local['set'];
    const items = Array.isArray(sets) ? sets : typeof sets === 'string' ? [sets] : [];
    if (items.length === 0)
      throw new ConfigError('vigil correct needs at least one --set POINTER=VALUE');
    const fields = Object.fromEntries(items.map(parseSetting));
    const reason = requireReason(args, 'vigil correct');
    const hash = stringFlag(args, 'hash');
    return withAdminApi(args, context, async (api, key) => {
      const body = ensureOk(
        await api.call<{ correction: { id: string; stream: string; seq: number } }>(
          'POST',
          `/v1/admin/events/${encodeURIComponent(eventId)}/corrections`,
          key,
          { fields, reason, ...(hash ? { hash } : {}) },
        ),
      );
      if (args.local['json'] === true) context.print(JSON.stringify(body));
      else
        context.print(
          `recorded correction ${body.correction.id} of ${eventId} (${body.correction.stream} seq ${body.correction.seq})`,
        );
      return 0;
    });
  },
};

// ---- restrict --------------------------------------------------------------------------------

export const RESTRICT_HELP = `Usage: vigil restrict --subject ID [--email ADDRESS]… --reason TEXT
       vigil restrict list [--all]
       vigil restrict lift RESTRICTION_ID --reason TEXT

Restriction of processing (GDPR Art. 18): the person's events are kept, for legal claims, but
hidden from search, analytics and detection until the restriction is lifted; their new events
are restricted as they arrive. An admin sees them with vigil search --include-restricted
(recorded). Placing and lifting are recorded as audit events.

${CONNECTION_HELP}
`;

function printRestriction(context: CliContext, r: Restriction): void {
  const state = r.active
    ? 'active'
    : `lifted ${new Date(r.liftedAt ?? 0).toISOString()} by ${r.liftedBy ?? '?'}: ${r.liftReason ?? ''}`;
  context.print(
    `${r.id}  placed ${new Date(r.placedAt).toISOString()} by ${r.placedBy}: ${r.reason}  [${state}]`,
  );
}

export const restrictCommand: CliCommand = {
  name: 'restrict',
  summary: "Restrict, list or lift restrictions of a person's data (GDPR Art. 18).",
  flags: { ...CONNECTION, ...SUBJECT, reason: { type: 'string' }, all: { type: 'boolean' } },
  help: () => RESTRICT_HELP,
  async run(args, context) {
    const [action, id] = args.positionals;
    const json = args.local['json'] === true;
    if (action !== undefined && action !== 'list' && action !== 'lift')
      throw new ConfigError(`unknown restrict action "${action}"; see vigil restrict --help`);
    if (action === 'lift' && !id)
      throw new ConfigError('vigil restrict lift needs the restriction id');
    const reason = action === 'list' ? undefined : requireReason(args, 'vigil restrict');
    const subject = action === undefined ? subjectOf(args, 'vigil restrict') : undefined;
    return withAdminApi(args, context, async (api, key) => {
      if (action === 'list') {
        const body = ensureOk(
          await api.call<{ restrictions: Restriction[] }>(
            'GET',
            `/v1/admin/restrictions${args.local['all'] === true ? '?all=true' : ''}`,
            key,
          ),
        );
        if (json) context.print(JSON.stringify(body));
        else if (body.restrictions.length === 0) context.print('no restriction');
        else for (const r of body.restrictions) printRestriction(context, r);
        return 0;
      }
      if (action === 'lift') {
        const body = ensureOk(
          await api.call<{ restriction: Restriction }>(
            'POST',
            `/v1/admin/restrictions/${encodeURIComponent(id ?? '')}/lift`,
            key,
            { reason },
          ),
        );
        if (json) context.print(JSON.stringify(body));
        else printRestriction(context, body.restriction);
        return 0;
      }
      const body = ensureOk(
        await api.call<{ restriction: Restriction; restrictedEvents: number }>(
          'POST',
          '/v1/admin/subjects/restrict',
          key,
          { ...subject, reason },
        ),
      );
      if (json) context.print(JSON.stringify(body));
      else {
        printRestriction(context, body.restriction);
        context.print(`${body.restrictedEvents} stored event(s) are now restricted`);
      }
      return 0;
    });
  },
};

// ---- pseudonyms ------------------------------------------------------------------------------

export const PSEUDONYMS_HELP = `Usage: vigil pseudonyms [show]
       vigil pseudonyms set KIND[,KIND…] [--reason TEXT]
       vigil pseudonyms off [--reason TEXT]
       vigil pseudonyms destroy-key --reason TEXT --yes

Pseudonymisation of the tenant's new events (GDPR Art. 25, 32): the chosen kinds of personal
fields are stored as keyed pseudonyms, so analysts see ps_… and 100::… instead of e-mail
addresses and IP addresses; their plain values are kept encrypted, for the person's own export.
Kinds: id, name, email, ip, userAgent, sessionId, requestId, metadata.

destroy-key deletes the tenant's pseudonym key: every event stored under it becomes anonymous at
once (its pseudonyms can be linked to no one, its protected values read by no one), while every
record and proof stays valid. Irreversible.

${CONNECTION_HELP}
`;

export const pseudonymsCommand: CliCommand = {
  name: 'pseudonyms',
  summary: "Show or set the tenant's pseudonymised fields, or destroy its pseudonym key.",
  flags: { ...CONNECTION, reason: { type: 'string' }, yes: { type: 'boolean' } },
  help: () => PSEUDONYMS_HELP,
  async run(args, context) {
    const [action = 'show', kinds] = args.positionals;
    const json = args.local['json'] === true;
    if (!['show', 'set', 'off', 'destroy-key'].includes(action))
      throw new ConfigError(`unknown pseudonyms action "${action}"; see vigil pseudonyms --help`);
    if (action === 'set' && !kinds)
      throw new ConfigError('vigil pseudonyms set needs the kinds: email,ip');
    if (action === 'destroy-key') {
      requireReason(args, 'vigil pseudonyms destroy-key');
      if (args.local['yes'] !== true)
        throw new ConfigError('destroying the pseudonym key cannot be undone: add --yes');
    }
    const reason = stringFlag(args, 'reason');
    return withAdminApi(args, context, async (api, key) => {
      if (action === 'show') {
        const body = ensureOk(
          await api.call<{
            pseudonymise: string[];
            keys: { keyId: string; createdAt: string; destroyedAt: string | null }[];
          }>('GET', '/v1/admin/privacy', key),
        );
        if (json) context.print(JSON.stringify(body));
        else {
          context.print(
            `pseudonymised: ${body.pseudonymise.length === 0 ? 'nothing' : body.pseudonymise.join(', ')}`,
          );
          for (const k of body.keys)
            context.print(
              `key ${k.keyId}  created ${k.createdAt}${k.destroyedAt ? `  destroyed ${k.destroyedAt}` : ''}`,
            );
        }
        return 0;
      }
      if (action === 'destroy-key') {
        const body = ensureOk(
          await api.call<{ destroyed?: string; purged: boolean; next?: string }>(
            'POST',
            '/v1/admin/privacy/destroy-key',
            key,
            { reason },
          ),
        );
        if (json) context.print(JSON.stringify(body));
        else
          context.print(
            body.destroyed
              ? `destroyed key ${body.destroyed}${body.purged ? '' : ' (some copies still on disk: run again)'}${body.next ? `; new events use key ${body.next}` : ''}`
              : 'the tenant has no pseudonym key',
          );
        return 0;
      }
      const pseudonymise =
        action === 'off'
          ? []
          : (kinds ?? '')
              .split(',')
              .map((k) => k.trim())
              .filter(Boolean);
      const body = ensureOk(
        await api.call<{ pseudonymise: string[]; keyId: string | null }>(
          'PUT',
          '/v1/admin/privacy',
          key,
          {
            pseudonymise,
            ...(reason ? { reason } : {}),
          },
        ),
      );
      if (json) context.print(JSON.stringify(body));
      else
        context.print(
          `pseudonymised from now on: ${body.pseudonymise.length === 0 ? 'nothing' : body.pseudonymise.join(', ')}${body.keyId ? ` (key ${body.keyId})` : ''}`,
        );
      return 0;
    });
  },
};
