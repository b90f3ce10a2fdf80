import { OPTIONS } from '../config/options.js';
import type { Role } from '../config/config.js';

export function mainHelp(
  version: string,
  commands: readonly { name: string; summary: string }[],
): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `vigil ${version} — audit log and security monitoring`,
    '',
    'Usage: vigil <command> [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "vigil <command> --help" for its flags. Every setting can also come from an environment',
    'variable (VIGIL_…) or a JSON file (--config FILE); flags win over the environment, which wins',
    'over the file.',
    '',
    'Quick start:',
    '  vigil start                       # serves http://127.0.0.1:8080, data in ./.vigil',
    '  vigil search --action "user.*"    # uses the query key from ./.vigil/bootstrap-credentials.json',
  ].join('\n');
}

export function roleHelp(role: Role): string {
  const options = OPTIONS.filter((o) => o.roles.includes(role));
  const lines = options.map((o) => {
    const def =
      o.default === undefined
        ? ''
        : ` (default: ${Array.isArray(o.default) ? o.default.join(',') || 'none' : String(o.default)})`;
    const choices = o.choices ? ` [${o.choices.join('|')}]` : '';
    return `  --${o.flag}${choices}\n      ${o.description}${def}\n      env ${o.env}`;
  });
  return [
    `Usage: vigil ${role} [flags]`,
    '',
    'Flags:',
    '  -c, --config FILE   JSON config file',
    ...lines,
  ].join('\n');
}
