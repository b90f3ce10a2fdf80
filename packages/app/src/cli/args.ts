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
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
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
