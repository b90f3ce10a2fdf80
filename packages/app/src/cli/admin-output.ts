import type { KeyView, TenantView } from '@vigil/query';
import { ConfigError } from '@vigil/collector';
import type { CliContext } from './command.js';

/** Helpers the `tenants` and `keys` commands share: tables, created keys, times. */

/** Columns padded to their widest cell (the last one is not padded). */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const day = (iso: string | null): string =>
  iso === null ? 'never' : iso.replace(/:\d\d\.\d{3}Z$/, 'Z');

export function keyTable(keys: readonly KeyView[]): string[] {
  return formatTable(
    ['KEY ID', 'NAME', 'SCOPES', 'STATUS', 'EXPIRES', 'RATE/MIN', 'ALLOWED IPS'],
    keys.map((k) => [
      k.keyId,
      k.name,
      k.scopes.join(','),
      k.status,
      k.revokedAt === null ? day(k.expiresAt) : `revoked ${day(k.revokedAt)}`,
      k.rateLimitPerMinute === null ? 'default' : String(k.rateLimitPerMinute),
      k.allowedIps.length === 0 ? 'any' : k.allowedIps.join(','),
    ]),
  );
}

export function tenantTable(tenants: readonly TenantView[]): string[] {
  return formatTable(
    ['TENANT', 'NAME', 'STATUS', 'CREATED'],
    tenants.map((t) => [t.id, t.name, t.status, day(t.createdAt)]),
  );
}

export const SHOWN_ONCE =
  'This key is shown only this once: store it now (a secret manager, an environment variable). Vigil keeps only its SHA-256 digest and cannot show it again.';

/** Prints a key that was just created: the secret once, with the warning. */
export function printCreatedKey(
  context: CliContext,
  json: boolean,
  result: { key: KeyView; secret: string; previous?: KeyView },
  what: string,
): void {
  if (json) {
    context.print(JSON.stringify(result));
    context.printError(`warning: ${SHOWN_ONCE}`);
    return;
  }
  const k = result.key;
  context.print(
    `${what} API key ${k.keyId} of tenant ${k.tenantId} (scopes: ${k.scopes.join(', ')}):`,
  );
  context.print('');
  context.print(`    ${result.secret}`);
  context.print('');
  if (result.previous) {
    context.print(
      `The old key ${result.previous.keyId} keeps working until ${result.previous.expiresAt ?? 'it is revoked'}.`,
    );
  }
  context.print(SHOWN_ONCE);
}

/**
 * A point in time: RFC 3339 (`2027-01-31T00:00:00Z`), or a duration from now (`90d`, `12h`,
 * `30m`, `45s`).
 */
export function parseWhen(text: string, flag: string, now = Date.now()): string {
  const ms = durationMs(text);
  if (ms !== undefined) return new Date(now + ms).toISOString();
  const at = Date.parse(text);
  if (Number.isNaN(at) || !/^\d{4}-\d\d-\d\d/.test(text))
    throw new ConfigError(`${flag} must be an RFC 3339 time or a duration such as 90d, 12h, 30m`);
  return new Date(at).toISOString();
}

/** `90d`, `12h`, `30m`, `45s` or a plain number of seconds, in milliseconds. */
export function durationMs(text: string): number | undefined {
  const match = /^(\d+)([dhms]?)$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, '': 1000 }[
    match[2] as 'd' | 'h' | 'm' | 's' | ''
  ];
  return Number(match[1]) * unit;
}

/** The subcommand, or a usage error naming the ones there are. */
export function subcommand(
  positionals: readonly string[],
  command: string,
  known: readonly string[],
): string {
  const sub = positionals[0];
  if (sub === undefined || !known.includes(sub)) {
    throw new ConfigError(
      `${sub === undefined ? 'missing' : `unknown`} subcommand${sub === undefined ? '' : ` "${sub}"`}: vigil ${command} ${known.join('|')} (see vigil ${command} --help)`,
    );
  }
  return sub;
}

/** The one positional argument a subcommand needs. */
export function argument(positionals: readonly string[], usage: string): string {
  const value = positionals[1];
  if (value === undefined || positionals.length > 2) throw new ConfigError(`usage: ${usage}`);
  return value;
}
