import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '@vigil/collector';
import { OPTIONS } from '../config/options.js';

export interface ParsedArgs {
  readonly positionals: string[];
  /** Config options given as flags, keyed by option key (`log.kind`). */
  readonly settings: Record<string, string | boolean>;
  /** Flags of the command itself (not config options). */
  readonly local: Record<string, string | boolean | string[]>;
}

type LocalSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** Parses flags: every config option as `--<flag>`, plus the command's own flags. */
export function parseCommandLine(argv: readonly string[], local: LocalSpec = {}): ParsedArgs {
  const options: NonNullable<ParseArgsConfig['options']> = {
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
    ...local,
  };
  for (const o of OPTIONS) options[o.flag] = { type: o.type === 'boolean' ? 'boolean' : 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: joinDashValues(argv, options),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; see --help`);
  }
  const settings: Record<string, string | boolean> = {};
  const own: Record<string, string | boolean | string[]> = {};
  for (const [name, value] of Object.entries(parsed.values)) {
    if (value === undefined) continue;
    const option = OPTIONS.find((o) => o.flag === name);
    if (option) settings[option.key] = value as string | boolean;
    else own[name] = value as string | boolean | string[];
  }
  return { positionals: parsed.positionals, settings, local: own };
}

/**
 * `--flag value` where the value starts with a dash: util.parseArgs refuses it as ambiguous, but
 * base64url keys and signatures start with `-` one time in 64 (`--public-key -Xb3…`). A value
 * that is not itself a known flag is joined to its string flag as `--flag=value`.
 */
function joinDashValues(
  argv: readonly string[],
  options: NonNullable<ParseArgsConfig['options']>,
): string[] {
  const known = new Set<string>();
  for (const [name, spec] of Object.entries(options)) {
    known.add(`--${name}`);
    if (spec.short !== undefined) known.add(`-${spec.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    const spec = arg.startsWith('--') ? options[arg.slice(2)] : undefined;
    if (
      spec?.type === 'string' &&
      next !== undefined &&
      next.length > 1 &&
      next.startsWith('-') &&
      next !== '--' &&
      !known.has(next.split('=')[0] as string)
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}
