import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as protocol from '@vigil/protocol';
import { rawPublicKey, type SignedCheckpoint } from '@vigil/protocol';
import {
  MANIFEST_FILE,
  openStore,
  StoreLockedError,
  TenantKeys,
  verifyEvidence,
  verifyLog,
  type Finding,
  type Store,
  type TrustedCheckpoint,
  type VerifyProgress,
  type VerifyReport,
} from '@vigil/query';
import type { Config } from '../config/config.js';
import { ConfigError } from '@vigil/collector';
import { openMasterKey } from '@vigil/collector';
import { credentialsPath } from '../server/bootstrap.js';
import { announcedUrl, defaultUrl, explainLockedStore } from './api.js';
import type { ParsedArgs } from './args.js';
import type { CliCommand, CliContext } from './command.js';
import { configFor, stringFlag } from './command.js';

export const VERIFY_HELP = `Usage: vigil verify --key KEY [--key KEY …] [--tenant ID] [--from TIME] [--to TIME]
                    [--stream ID] [--checkpoint FILE …] [--witness DIR] [--deep] [--json]
                    [--url URL] [--api-key KEY]
       vigil verify --bundle FILE --key KEY
       vigil verify --evidence DIR --key KEY

Verifies a tenant's stored log against public keys you pin (PROTOCOL.md §19): every record's
hash and canonical form, every disclosure against its commitment, every typed column against
the record, every chain link, every leaf, every tree root against every signed checkpoint, and
that no checkpoint states leaves the store no longer has. Reports each event or leaf range that
fails and why, and what retention and erasure legitimately removed.

Exit codes: 0 when nothing fails; 1 when something does (the report names it); 2 on a usage
error; 3 when the check could not run (the store is locked by another process and no server
answers, the store or the server cannot be reached, the server refused): then no report is
printed, only what went wrong, on standard error.

  --key KEY           a pinned Ed25519 public key: raw in hex (64 digits) or base64url, a PEM
                      file, or a JSON file holding "publicKey" (a key file, a witness document)
                      or "keys" (GET /v1/keys/checkpoint). Repeat for retired keys. Required:
                      keys the store publishes are never trusted on their own.
  --tenant ID         the tenant (default: the API key's tenant, or the bootstrap tenant)
  --from / --to TIME  check only events of this time range (RFC 3339 UTC with milliseconds);
                      trees are always recomputed whole
  --stream ID         check only this stream's events and links
  --checkpoint FILE   a checkpoint you trust (JSON: {id, checkpoint, signature}, a witness
                      document, or one per line as "vigil checkpoints --json" prints); repeat
  --witness DIR       a witness directory (witness.dir): every checkpoint file in it
  --deep              also parse every record and compare each typed column and disclosure
                      with it; without it, one hash per row checks them through the column
                      digest each leaf binds (PROTOCOL.md §13.2.1, §19.2)
  --json              one JSON object: totals and every finding
  --url URL           verify through this server (POST /v1/verify, scope admin). Without it,
                      the local store is opened; when another process holds the embedded
                      store, the server it announced (else the one at --port) is used (the
                      report then comes from that process)
  --api-key KEY       admin key for --url (default: VIGIL_KEY, else the bootstrap admin key)
  --bundle FILE       verify a subject export bundle offline, with --key only
  --evidence DIR      verify the evidence pack of a closed access review offline, with --key
                      only: manifest.json is signed by a pinned key, and the directory holds
                      exactly the files it lists, each with its SHA-256 (vigil review close)
`;

/** `vigil verify`'s exit code when the check could not run at all (never an empty report). */
export const VERIFY_CANNOT_RUN = 3;

/** Why a verification could not run: the store or the server, never the log's contents. */
class CannotVerifyError extends Error {
  override readonly name = 'CannotVerifyError';
}

/** The pinned keys of the command line (every --key). */
export function pinnedKeys(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    if (/^[0-9a-fA-F]{64}$/.test(value)) {
      out.push(Buffer.from(value, 'hex').toString('base64url'));
      continue;
    }
    if (/^[A-Za-z0-9_-]{43}$/.test(value)) {
      out.push(value);
      continue;
    }
    if (!existsSync(value))
      throw new ConfigError(
        `--key: "${value}" is neither a raw Ed25519 public key (hex or base64url) nor a file`,
      );
    const text = readFileSync(value, 'utf8').trim();
    if (text.startsWith('-----BEGIN')) {
      out.push(rawPublicKey(text).toString('base64url'));
      continue;
    }
    if (/^([0-9a-fA-F]{64}|[A-Za-z0-9_-]{43})$/.test(text)) {
      out.push(...pinnedKeys([text]));
      continue;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ConfigError(`--key ${value}: not a PEM key, a raw key or JSON`);
    }
    const found = keysIn(json);
    if (found.length === 0)
      throw new ConfigError(`--key ${value}: no "publicKey" or "keys" member in the JSON`);
    out.push(...found);
  }
  for (const k of out) {
    try {
      rawPublicKey(k);
    } catch (error) {
      throw new ConfigError(`--key: ${(error as Error).message}`);
    }
  }
  return [...new Set(out)];
}

function keysIn(json: unknown): string[] {
  if (typeof json !== 'object' || json === null) return [];
  const o = json as { publicKey?: unknown; keys?: unknown };
  if (typeof o.publicKey === 'string') return [o.publicKey];
  if (Array.isArray(o.keys)) return o.keys.flatMap(keysIn);
  return [];
}

function signedIn(json: unknown): SignedCheckpoint | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const o = json as Record<string, unknown>;
  if (
    typeof o['id'] === 'string' &&
    typeof o['checkpoint'] === 'string' &&
    typeof o['signature'] === 'string'
  )
    return { id: o['id'], checkpoint: o['checkpoint'], signature: o['signature'] };
  return undefined;
}

/** Checkpoints of a file: one JSON document, or one per line. */
export function readCheckpointFile(file: string): SignedCheckpoint[] {
  const text = readFileSync(file, 'utf8').trim();
  if (text === '') return [];
  try {
    const one = signedIn(JSON.parse(text));
    if (one) return [one];
  } catch {
    // not one document: try one per line
  }
  const out: SignedCheckpoint[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let parsed: SignedCheckpoint | undefined;
    try {
      parsed = signedIn(JSON.parse(line));
    } catch {
      parsed = undefined;
    }
    if (!parsed)
      throw new ConfigError(
        `${file}:${i + 1} is not a signed checkpoint {id, checkpoint, signature}`,
      );
    out.push(parsed);
  }
  return out;
}

/** Every checkpoint file under a witness directory (PROTOCOL.md §14.7 layout, any depth). */
export function readWitnessDir(dir: string): TrustedCheckpoint[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new ConfigError(`--witness: ${dir} is not a directory`);
  const out: TrustedCheckpoint[] = [];
  const walk = (at: string): void => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.json'))
        for (const checkpoint of readCheckpointFile(path))
          out.push({ checkpoint, source: 'witness', origin: path });
    }
  };
  walk(dir);
  return out;
}

/** The API key of --url mode: --api-key, VIGIL_KEY, or the bootstrap admin key. */
function adminKey(args: ParsedArgs, env: NodeJS.ProcessEnv, config: Config): string {
  const explicit = stringFlag(args, 'api-key') ?? env['VIGIL_KEY'];
  if (explicit) return explicit;
  const creds = bootstrapCredentials(config);
  if (creds?.['adminKey']) return creds['adminKey'];
  throw new ConfigError(
    `no API key: pass --api-key, set VIGIL_KEY, or run where ${credentialsPath(config.dataDir)} holds an adminKey`,
  );
}

function bootstrapCredentials(config: Config): Record<string, string | undefined> | undefined {
  try {
    return JSON.parse(readFileSync(credentialsPath(config.dataDir), 'utf8')) as Record<
      string,
      string | undefined
    >;
  } catch {
    return undefined;
  }
}

async function serverAnswers(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) });
    return true;
  } catch {
    return false;
  }
}

const number = (n: number): string => n.toLocaleString('en-US');

/** A progress line on a terminal: phase, count, rate and time left. */
export class ProgressBar {
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(p: VerifyProgress): void {
    const now = Date.now();
    if (now - this.lastDraw < 100 && p.phase !== 'done') return;
    this.lastDraw = now;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const [done, total, unit] =
      p.phase === 'events' || p.events < p.totalEvents
        ? [p.events, p.totalEvents, 'events']
        : [p.leaves, p.totalLeaves, 'leaves'];
    const fraction = total === 0 ? 1 : Math.min(done / total, 1);
    const width = 24;
    const fill = Math.round(fraction * width);
    const rate = p.events / seconds;
    const left = rate > 0 ? Math.max(0, (p.totalEvents - p.events) / rate) : 0;
    const label = p.phase === 'chains' ? 'checking chains' : p.phase === 'done' ? 'done' : unit;
    const line = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${number(done)}/${number(total)} ${label}  ${number(Math.round(rate))} events/s  ETA ${left.toFixed(0)}s`;
    this.out.write(`\r${line}\u001b[K`);
    this.drawn = true;
  }

  finish(): void {
    if (this.drawn) this.out.write('\r\u001b[K');
  }
}

function where(f: Finding): string {
  const parts: string[] = [];
  if (f.eventId) parts.push(`event ${f.eventId}`);
  if (f.stream !== undefined)
    parts.push(`stream ${f.stream}${f.seq !== undefined ? ` seq ${f.seq}` : ''}`);
  if (f.partition !== undefined && f.leafFrom !== undefined)
    parts.push(
      `partition ${f.partition} ${f.leafFrom === f.leafTo ? `leaf ${f.leafFrom}` : `leaves ${f.leafFrom}–${f.leafTo}`}`,
    );
  if (f.checkpoint)
    parts.push(
      `checkpoint ${f.checkpoint.slice(0, 16)}${f.sources ? ` (${f.sources.join(', ')})` : ''}`,
    );
  if (f.paths && f.paths.length > 0) parts.push(f.paths.join(', '));
  return parts.join(', ');
}

/** The human summary of a report. */
export function formatReport(report: VerifyReport, limit = 100): string[] {
  const t = report.totals;
  const c = t.checkpoints;
  const lines = [
    `tenant ${report.tenant}: ${number(t.events)} events in ${number(t.streams)} streams, ${t.partitions} trees of ${number(t.leaves)} leaves`,
    `checkpoints: ${c.verified} of ${c.store} in the store verify with the pinned key${report.keys.length > 1 ? 's' : ''} (${report.keys.join(', ')})` +
      (c.trusted + c.witness > 0
        ? `; ${c.trusted} trusted and ${c.witness} witness copies given, ${c.notInStore} of them not in the store`
        : ''),
    `checked in ${report.seconds.toFixed(1)} s (${number(Math.round(t.events / Math.max(report.seconds, 0.001)))} events/s)`,
  ];
  const failures = report.findings.filter((f) => f.severity === 'failure');
  const infos = report.findings.filter((f) => f.severity === 'info');
  const block = (title: string, list: readonly Finding[]): void => {
    if (list.length === 0) return;
    lines.push('', title);
    const width = Math.max(...list.map((f) => f.category.length));
    for (const f of list.slice(0, limit)) {
      const at = where(f);
      lines.push(
        `  ${f.category.padEnd(width)}  ${f.count > 1 ? `${number(f.count)} × ` : ''}${f.message}${at ? ` [${at}]` : ''}`,
      );
    }
    if (list.length > limit) lines.push(`  … ${number(list.length - limit)} more: use --json`);
  };
  block(`FAILURES (${number(t.failures)})`, failures);
  block('INFORMATION', infos);
  lines.push(
    '',
    report.ok ? 'RESULT: OK, nothing failed' : `RESULT: FAILED, ${number(t.failures)} failure(s)`,
  );
  return lines;
}

/** Reads an NDJSON response: progress lines, then the report or an error. */
async function verifyThroughServer(
  url: string,
  key: string,
  body: unknown,
  onProgress: (p: VerifyProgress) => void,
): Promise<VerifyReport> {
  let response: Response;
  try {
    response = await fetch(`${url}/v1/verify`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new CannotVerifyError(`cannot reach the server at ${url}: ${causeOf(error)}`);
  }
  if (!response.ok || !response.body) {
    const text = await response.text();
    let message = text;
    try {
      const error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      message = `${error?.code ?? ''}: ${error?.message ?? text}`;
    } catch {
      // keep the text
    }
    throw new CannotVerifyError(`the server at ${url} answered ${response.status} ${message}`);
  }
  const decoder = new TextDecoder();
  let buffered = '';
  let report: VerifyReport | undefined;
  const handle = (line: string): void => {
    if (line.trim() === '') return;
    const message = JSON.parse(line) as {
      progress?: VerifyProgress;
      report?: VerifyReport;
      error?: { code?: string; message?: string };
    };
    if (message.progress) onProgress(message.progress);
    if (message.report) report = message.report;
    if (message.error)
      throw new CannotVerifyError(
        `the server at ${url} stopped: ${message.error.code ?? ''}: ${message.error.message ?? ''}`,
      );
  };
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let at: number;
    while ((at = buffered.indexOf('\n')) >= 0) {
      handle(buffered.slice(0, at));
      buffered = buffered.slice(at + 1);
    }
  }
  handle(buffered);
  if (!report)
    throw new CannotVerifyError(`the server at ${url} ended the verification without a report`);
  return report;
}

/** The innermost message of a failed fetch (undici says "fetch failed" and keeps the reason). */
function causeOf(error: unknown): string {
  let at: unknown = error;
  while (at instanceof Error && at.cause instanceof Error) at = at.cause;
  return at instanceof Error ? at.message : String(at);
}

/** The tenant of a local verification: --tenant, else the bootstrap tenant, else the only one. */
async function localTenant(args: ParsedArgs, config: Config, store: Store): Promise<string> {
  const flag = stringFlag(args, 'tenant');
  if (flag) return flag;
  const creds = bootstrapCredentials(config);
  if (creds?.['tenant']) return creds['tenant'];
  const rows = await store.query<{ t: string }>(
    `SELECT DISTINCT tenant_id AS t FROM ${store.table('merkle_leaves')} LIMIT 2`,
  );
  if (rows.length === 1) return (rows[0] as { t: string }).t;
  throw new ConfigError('several tenants in the store: name one with --tenant');
}

function verifyBundleFile(
  file: string,
  keys: readonly string[],
  context: CliContext,
  json: boolean,
): number {
  // The bundle format and its verifier are the protocol package's (PROTOCOL.md §16).
  const verify = (protocol as Record<string, unknown>)['verifyBundle'];
  if (typeof verify !== 'function')
    throw new ConfigError(
      '--bundle: this build has no bundle verifier (verifyBundle in @vigil/protocol)',
    );
  const result = (verify as typeof protocol.verifyBundle)(readFileSync(file), keys);
  if (json) {
    context.print(JSON.stringify(result));
    return result.ok ? 0 : 1;
  }
  if (result.ok) {
    context.print(
      `bundle ${file}: verified with key ${result.checkpoint.keyId}; ${number(result.entries)} events of tenant ${result.checkpoint.tenant}` +
        (result.unproven > 0
          ? ` (${number(result.unproven)} signed but without an inclusion proof)`
          : ''),
    );
    context.print('RESULT: OK');
    return 0;
  }
  context.printError(`bundle ${file} does NOT verify:`);
  for (const p of result.problems) context.printError(`  - ${p}`);
  context.printError('RESULT: FAILED');
  return 1;
}

function verifyEvidenceDir(
  dir: string,
  keys: readonly string[],
  context: CliContext,
  json: boolean,
): number {
  if (!existsSync(join(dir, MANIFEST_FILE)))
    throw new ConfigError(`--evidence: no ${MANIFEST_FILE} in ${dir}`);
  const files = new Map<string, Buffer>();
  for (const entry of readdirSync(dir, { withFileTypes: true }))
    if (entry.isFile()) files.set(entry.name, readFileSync(join(dir, entry.name)));
    else files.set(entry.name, Buffer.alloc(0)); // a directory where a file should be: reported
  const result = verifyEvidence(readFileSync(join(dir, MANIFEST_FILE), 'utf8'), files, keys);
  const ok = result.problems.length === 0;
  if (json) {
    context.print(
      JSON.stringify({ ok, statement: result.statement ?? null, problems: result.problems }),
    );
    return ok ? 0 : 1;
  }
  if (ok && result.statement) {
    const s = result.statement;
    context.print(
      `evidence ${dir}: review ${s.campaign} of tenant ${s.tenant} as of ${s.asOf}, closed ${s.closedAt}; ${s.files.length} files verified with key ${s.keyId}`,
    );
    context.print('RESULT: OK');
    return 0;
  }
  context.printError(`evidence ${dir} does NOT verify:`);
  for (const p of result.problems) context.printError(`  - ${p}`);
  context.printError('RESULT: FAILED');
  return 1;
}

async function verifyLocally(
  args: ParsedArgs,
  config: Config,
  store: Store,
  keys: readonly string[],
  trusted: readonly TrustedCheckpoint[],
  scope: { from?: string; to?: string; stream?: string },
  onProgress: (p: VerifyProgress) => void,
  deep: boolean,
): Promise<VerifyReport> {
  const tenant = await localTenant(args, config, store);
  const masterFile = config.privacy.keyFile;
  const tenantKeys = existsSync(masterFile)
    ? new TenantKeys(store, openMasterKey(masterFile))
    : undefined;
  return verifyLog(store, {
    tenant,
    keys,
    trusted,
    scope,
    onProgress,
    deep,
    ...(tenantKeys ? { tenantKeys: (t: string, keyId: string) => tenantKeys.get(t, keyId) } : {}),
  });
}

export const verifyCommand: CliCommand = {
  name: 'verify',
  summary: 'Verify the stored log (or a subject bundle) against pinned public keys.',
  flags: {
    key: { type: 'string', multiple: true },
    tenant: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    stream: { type: 'string' },
    checkpoint: { type: 'string', multiple: true },
    witness: { type: 'string' },
    json: { type: 'boolean' },
    deep: { type: 'boolean' },
    url: { type: 'string' },
    'api-key': { type: 'string' },
    bundle: { type: 'string' },
    evidence: { type: 'string' },
  },
  help: () => VERIFY_HELP,
  async run(args, context) {
    if (args.positionals.length > 0)
      throw new ConfigError(`unexpected argument "${args.positionals[0]}"; see --help`);
    const keyFlags = args.local['key'];
    const keyValues = Array.isArray(keyFlags)
      ? keyFlags
      : typeof keyFlags === 'string'
        ? [keyFlags]
        : [];
    if (keyValues.length === 0)
      throw new ConfigError('--key is required: pin the public key you trust; see --help');
    const keys = pinnedKeys(keyValues);
    const json = args.local['json'] === true;
    const deep = args.local['deep'] === true;
    const bundle = stringFlag(args, 'bundle');
    if (bundle) return verifyBundleFile(bundle, keys, context, json);
    const evidence = stringFlag(args, 'evidence');
    if (evidence) return verifyEvidenceDir(evidence, keys, context, json);

    const trusted: TrustedCheckpoint[] = [];
    const files = args.local['checkpoint'];
    for (const file of Array.isArray(files) ? files : typeof files === 'string' ? [files] : []) {
      if (!existsSync(file)) throw new ConfigError(`--checkpoint: no file ${file}`);
      for (const checkpoint of readCheckpointFile(file))
        trusted.push({ checkpoint, source: 'trusted', origin: file });
    }
    const witness = stringFlag(args, 'witness');
    if (witness) trusted.push(...readWitnessDir(witness));
    const scope = {
      ...(stringFlag(args, 'from') ? { from: stringFlag(args, 'from') as string } : {}),
      ...(stringFlag(args, 'to') ? { to: stringFlag(args, 'to') as string } : {}),
      ...(stringFlag(args, 'stream') ? { stream: stringFlag(args, 'stream') as string } : {}),
    };
    for (const k of ['from', 'to'] as const) {
      const v = scope[k];
      if (v !== undefined && protocol.parseTime(v) === undefined)
        throw new ConfigError(`--${k} must be a time such as 2026-11-23T00:00:00.000Z`);
    }

    const config = configFor('start', args, context.env);
    const bar = process.stderr.isTTY ? new ProgressBar(process.stderr) : undefined;
    const onProgress = (p: VerifyProgress): void => bar?.update(p);
    const explicitUrl = stringFlag(args, 'url');
    const url = (explicitUrl ?? defaultUrl(config)).replace(/\/$/, '');
    const throughServer = async (at: string): Promise<VerifyReport> => {
      const tenant = stringFlag(args, 'tenant');
      const served = await verifyThroughServer(
        at,
        adminKey(args, context.env, config),
        { keys, trusted, ...scope, ...(deep ? { deep } : {}) },
        onProgress,
      );
      if (tenant && served.tenant !== tenant)
        throw new ConfigError(
          `the API key belongs to tenant ${served.tenant}, not ${tenant}: use that tenant's admin key`,
        );
      if (!json) context.printError(`verified by the server at ${at} (its process ran the checks)`);
      return served;
    };
    const finish = (done: VerifyReport): number => {
      if (json) context.print(JSON.stringify(done));
      else for (const line of formatReport(done)) context.print(line);
      return done.ok ? 0 : 1;
    };
    let report: VerifyReport;
    try {
      if (explicitUrl !== undefined) report = await throughServer(url);
      else {
        // The store is opened first: whether some server answers on the configured port says
        // nothing about who holds this data directory (another instance may listen there, a
        // busy server may answer late). Only when the directory is held (chDB allows one
        // process) is the holder's server asked, at the URL it announced, else the port's.
        const opened: Store | string = await openStore(config.store).catch(
          async (error: unknown) => {
            if (!(error instanceof StoreLockedError)) throw error;
            const at = announcedUrl(config, error.holderPid)?.replace(/\/$/, '') ?? url;
            if (!(await serverAnswers(at)))
              throw new CannotVerifyError((explainLockedStore(error, config, at) as Error).message);
            return at;
          },
        );
        if (typeof opened === 'string') report = await throughServer(opened);
        else {
          try {
            report = await verifyLocally(
              args,
              config,
              opened,
              keys,
              trusted,
              scope,
              onProgress,
              deep,
            );
          } finally {
            await opened.close();
          }
        }
      }
    } catch (error) {
      if (error instanceof ConfigError) throw error; // a usage error: exit code 2
      context.printError(
        `vigil verify: cannot verify: ${error instanceof Error ? error.message : String(error)}`,
      );
      return VERIFY_CANNOT_RUN;
    } finally {
      bar?.finish();
    }
    return finish(report);
  },
};
