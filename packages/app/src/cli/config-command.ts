import { VigilError } from '@vigil/protocol';
import type { Role } from '../config/config.js';
import { configMarkdownTable } from '../config/markdown.js';
import { OPTIONS } from '../config/options.js';
import type { CliCommand } from './command.js';
import { configFor, stringFlag } from './command.js';

const ROLES: readonly Role[] = ['start', 'collector', 'sink', 'query'];

function redact(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (k, v: unknown) => (/password/i.test(k) && v ? '***' : v)),
  ) as unknown;
}

export const configCommand: CliCommand = {
  name: 'config',
  summary: 'Print the effective configuration, or every setting with --all.',
  flags: { all: { type: 'boolean' }, role: { type: 'string' }, markdown: { type: 'boolean' } },
  help: () =>
    [
      'Usage: vigil config [--role start|collector|sink|query] [settings…]',
      '       vigil config --all | --markdown',
      '',
      'Prints the configuration the given flags, environment and --config file produce (passwords',
      'masked), after the same validation a start runs; --all lists every setting with its',
      'environment variable and flag; --markdown prints the README table.',
    ].join('\n'),
  run(args, context) {
    if (args.local['markdown'] === true) {
      context.print(configMarkdownTable());
      return Promise.resolve(0);
    }
    if (args.local['all'] === true) {
      for (const o of OPTIONS) context.print(`${o.key.padEnd(26)} ${o.env.padEnd(34)} --${o.flag}`);
      return Promise.resolve(0);
    }
    const role = stringFlag(args, 'role') ?? 'start';
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new VigilError('VIGIL_ERR_CONFIG_INVALID', `--role must be one of ${ROLES.join(', ')}`);
    }
    context.print(JSON.stringify(redact(configFor(role as Role, args, context.env)), null, 2));
    return Promise.resolve(0);
  },
};
