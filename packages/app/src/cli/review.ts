import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DECISIONS, MANIFEST_FILE, parseAsOf } from '@vigil/query';
import { ConfigError } from '@vigil/collector';
import { ensureOk, RawBody } from './api.js';
import type { CliCommand } from './command.js';
import { stringFlag } from './command.js';
import { withAdminApi } from './with-api.js';

/**
 * `vigil review`: access review campaigns through the admin API (/v1/reviews): start one on a
 * snapshot, hand out the worksheet, take decisions back (the filled worksheet, or one on the
 * command line), see what is undecided, and close it into a signed evidence pack.
 */

export const REVIEW_HELP = `Usage: vigil review start --as-of DATE [--right NAME,…] [--resource-type TYPE] [--resource-id ID]
       vigil review list
       vigil review status ID
       vigil review worksheet ID [--bom] [--out FILE]
       vigil review decide ID --file WORKSHEET.csv
       vigil review decide ID --item ITEM --decision approve|revoke|modify --reviewer NAME
                              [--justification TEXT]
       vigil review close ID --out DIR

start      snapshot the rights held at DATE (as "vigil access review") into a new campaign
status     progress, and the rights still waiting for a decision (the reminder to send)
worksheet  the snapshot as CSV with item_id, decision, reviewer, justification to fill in
decide     store decisions: the filled worksheet (rows without a decision are skipped), or one
           decision; revoke and modify need a justification. Each decision is recorded as an
           audit event; the latest decision on a right counts
close      close the campaign and write its evidence pack to DIR: snapshot.csv, decisions.csv,
           remediation.csv (the revocations that really happened, from later access events,
           with their times), leavers.csv (leavers against the removal of their rights), and
           manifest.json, the SHA-256 of every file signed like checkpoints. Check it offline
           with: vigil verify --evidence DIR --key KEY

Connection:
  --url URL      server (default http://<host>:<port> of the configuration)
  --key KEY      admin key (default: VIGIL_KEY, else the bootstrap admin key)
  --json         print the API's JSON answer
`;

type Answer = Record<string, unknown>;

export const reviewCommand: CliCommand = {
  name: 'review',
  summary: 'Access review campaigns: snapshot, decisions, reminders, signed evidence pack.',
  flags: {
    url: { type: 'string' },
    key: { type: 'string' },
    json: { type: 'boolean' },
    'as-of': { type: 'string' },
    right: { type: 'string' },
    'resource-type': { type: 'string' },
    'resource-id': { type: 'string' },
    bom: { type: 'boolean' },
    out: { type: 'string' },
    file: { type: 'string' },
    item: { type: 'string' },
    decision: { type: 'string' },
    reviewer: { type: 'string' },
    justification: { type: 'string' },
  },
  help: () => REVIEW_HELP,
  async run(args, context) {
    const [action, id] = args.positionals;
    const json = args.local['json'] === true;
    const needId = (): string => {
      if (!id || !/^rev_[0-9a-f]{16}$/.test(id))
        throw new ConfigError(`vigil review ${action ?? ''} needs the campaign id (rev_…)`);
      return id;
    };
    const show = (answer: unknown, text: () => void): void => {
      if (json) context.print(JSON.stringify(answer));
      else text();
    };
    switch (action) {
      case 'start': {
        const asOf = stringFlag(args, 'as-of');
        if (!asOf || parseAsOf(asOf) === undefined)
          throw new ConfigError('vigil review start needs --as-of DATE (YYYY-MM-DD or a time)');
        const right = stringFlag(args, 'right');
        const body = {
          asOf,
          ...(right ? { right: right.split(',').map((r) => r.trim()) } : {}),
          ...(stringFlag(args, 'resource-type')
            ? { resourceType: stringFlag(args, 'resource-type') }
            : {}),
          ...(stringFlag(args, 'resource-id')
            ? { resourceId: stringFlag(args, 'resource-id') }
            : {}),
        };
        return withAdminApi(args, context, async (api, key) => {
          const answer = ensureOk(await api.call<Answer>('POST', '/v1/reviews', key, body));
          const c = answer['campaign'] as { id: string; asOf: string };
          show(answer, () =>
            context.print(
              `started review ${c.id} as of ${c.asOf}: ${String(answer['items'])} rights to decide on; vigil review worksheet ${c.id} --out review.csv`,
            ),
          );
          return 0;
        });
      }
      case 'list':
        return withAdminApi(args, context, async (api, key) => {
          const answer = ensureOk(await api.call<Answer>('GET', '/v1/reviews', key));
          show(answer, () => {
            for (const c of answer['campaigns'] as Answer[])
              context.print(
                `${String(c['id'])}  ${String(c['status']).padEnd(6)}  as of ${String(c['asOf'])}  started ${String(c['startedAt'])}`,
              );
          });
          return 0;
        });
      case 'status': {
        const campaign = needId();
        return withAdminApi(args, context, async (api, key) => {
          const answer = ensureOk(await api.call<Answer>('GET', `/v1/reviews/${campaign}`, key));
          show(answer, () => {
            const undecided = answer['undecided'] as Answer[];
            context.print(
              `${campaign}: ${String(answer['decided'])} of ${String(answer['items'])} rights decided, ${undecided.length} undecided`,
            );
            for (const u of undecided)
              context.print(
                `  ${String(u['item'])}  ${String(u['right'])}  ${String(u['resourceType'])}/${String(u['resourceId'])}`,
              );
          });
          return 0;
        });
      }
      case 'worksheet': {
        const campaign = needId();
        return withAdminApi(args, context, async (api, key) => {
          const q = args.local['bom'] === true ? '?bom=true' : '';
          const response = await api.stream(
            'GET',
            `/v1/reviews/${campaign}/worksheet${q}`,
            key,
            undefined,
          );
          const chunks: Buffer[] = [];
          for await (const chunk of response.body) chunks.push(Buffer.from(chunk as Buffer));
          const text = Buffer.concat(chunks);
          if (response.status >= 400)
            ensureOk({
              status: response.status,
              body: JSON.parse(text.toString('utf8')) as unknown,
            });
          const out = stringFlag(args, 'out');
          if (out) {
            writeFileSync(out, text, { mode: 0o600 });
            context.printError(`wrote the worksheet of ${campaign} to ${out}`);
          } else process.stdout.write(text);
          return 0;
        });
      }
      case 'decide': {
        const campaign = needId();
        const file = stringFlag(args, 'file');
        let body: unknown;
        if (file) body = new RawBody('text/csv; charset=utf-8', readFileSync(file, 'utf8'));
        else {
          const decision = stringFlag(args, 'decision');
          if (
            !stringFlag(args, 'item') ||
            !decision ||
            !(DECISIONS as readonly string[]).includes(decision)
          )
            throw new ConfigError(
              `vigil review decide needs --file WORKSHEET.csv, or --item, --decision (${DECISIONS.join('|')}) and --reviewer`,
            );
          body = {
            decisions: [
              {
                item: stringFlag(args, 'item'),
                decision,
                reviewer: stringFlag(args, 'reviewer') ?? '',
                ...(stringFlag(args, 'justification')
                  ? { justification: stringFlag(args, 'justification') }
                  : {}),
              },
            ],
          };
        }
        return withAdminApi(args, context, async (api, key) => {
          const answer = ensureOk(
            await api.call<Answer>('POST', `/v1/reviews/${campaign}/decisions`, key, body),
          );
          show(answer, () =>
            context.print(
              `${String(answer['decided'])} decisions stored; ${String(answer['undecided'])} rights still undecided`,
            ),
          );
          return 0;
        });
      }
      case 'close': {
        const campaign = needId();
        const out = stringFlag(args, 'out');
        if (!out) throw new ConfigError('vigil review close needs --out DIR for the evidence pack');
        return withAdminApi(args, context, async (api, key) => {
          const answer = ensureOk(
            await api.call<{
              manifest: unknown;
              files: Record<string, string>;
            }>('POST', `/v1/reviews/${campaign}/close`, key, {}),
          );
          mkdirSync(out, { recursive: true, mode: 0o700 });
          for (const [name, content] of Object.entries(answer.files))
            writeFileSync(join(out, name), content, { mode: 0o600 });
          writeFileSync(join(out, MANIFEST_FILE), JSON.stringify(answer.manifest), { mode: 0o600 });
          show({ ...answer, files: Object.keys(answer.files) }, () =>
            context.print(
              `closed ${campaign}; evidence pack in ${out} (${Object.keys(answer.files).length} files and ${MANIFEST_FILE}); check it with vigil verify --evidence ${out} --key KEY`,
            ),
          );
          return 0;
        });
      }
      default:
        throw new ConfigError(
          `vigil review: unknown action "${action ?? ''}" (start, list, status, worksheet, decide, close)`,
        );
    }
  },
};
