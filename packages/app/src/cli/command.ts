import type { Config, Role } from '../config/config.js';
import { loadConfig } from '../config/config.js';
import type { ParsedArgs } from './args.js';

export type FlagSpec = Record<
  string,
  { type: 'string' | 'boolean'; short?: string; multiple?: boolean }
>;

export interface CliContext {
  readonly env: NodeJS.ProcessEnv;
  readonly print: (line: string) => void;
  readonly printError: (line: string) => void;
}

/**
 * One `vigil` command. Commands are listed in commands.ts; main.ts parses flags (every config
 * setting plus the command's own), handles --help and runs it. `run` returns the exit code.
 */
export interface CliCommand {
  readonly name: string;
  readonly summary: string;
  readonly flags?: FlagSpec;
  /** Help text for `vigil <name> --help`. */
  help(): string;
  run(args: ParsedArgs, context: CliContext): Promise<number>;
}

/** The configuration as the command line, the environment and --config give it. */
export function configFor(role: Role, args: ParsedArgs, env: NodeJS.ProcessEnv): Config {
  const file = args.local['config'];
  return loadConfig({
    role,
    flags: args.settings,
    env,
    ...(typeof file === 'string' ? { file } : {}),
  });
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.local[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}
