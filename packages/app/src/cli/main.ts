#!/usr/bin/env node
import { VigilError } from '@vigil/protocol';
import { VERSION } from '@vigil/collector';
import { parseCommandLine } from './args.js';
import type { CliContext } from './command.js';
import { COMMANDS } from './commands.js';
import { mainHelp } from './help.js';

// Everything this process creates is owner-only: the data directory, the log, the chDB store
// (whose files chDB creates with the process umask, not with modes Vigil could choose), keys,
// exports. Vigil's own files are created 0600/0700 whatever the umask; this covers the rest.
process.umask(0o077);

const context: CliContext = {
  env: process.env,
  print: (line) => process.stdout.write(line + '\n'),
  printError: (line) => process.stderr.write(line + '\n'),
};

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    context.print(mainHelp(VERSION, COMMANDS));
    return 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    context.print(VERSION);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    context.printError(`vigil: unknown command "${name}"\n\n${mainHelp(VERSION, COMMANDS)}`);
    return 2;
  }
  const args = parseCommandLine(rest, command.flags);
  if (args.local['help'] === true) {
    context.print(command.help());
    return 0;
  }
  return command.run(args, context);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof VigilError) {
      context.printError(`vigil: ${error.message}`);
      for (const d of error.details)
        context.printError(`  - ${d.path ? `${d.path}: ` : ''}${d.message}`);
      process.exitCode = error.code === 'VIGIL_ERR_CONFIG_INVALID' || error.status < 500 ? 2 : 1;
    } else {
      context.printError(`vigil: ${error instanceof Error ? error.message : String(error)}`);
      if (context.env['VIGIL_DEBUG']) context.printError((error as Error).stack ?? '');
      process.exitCode = 1;
    }
  },
);
