import { describe, expect, it } from 'vitest';
import { parseCommandLine } from './args.js';
import type { CliContext } from './command.js';
import { holdsCommand, parseAssignments, retentionCommand } from './retention.js';

const context: CliContext = { env: {}, print: () => undefined, printError: () => undefined };
const run = (command: typeof retentionCommand, argv: string[]) =>
  command.run(parseCommandLine(argv, command.flags), context);

describe('vigil retention and vigil holds arguments', () => {
  it('reads CATEGORY=DAYS and CATEGORY=default', () => {
    expect(parseAssignments(['api=30', 'security=default'])).toEqual({ api: 30, security: null });
  });

  it('names each mistake before connecting to anything', async () => {
    // The URL answers nothing: these must fail on their arguments first.
    const url = ['--url', 'http://127.0.0.1:1', '--key', 'k'];
    await expect(run(retentionCommand, ['set', 'billing=30', ...url])).rejects.toThrow(
      /"billing=30" is not CATEGORY=DAYS/,
    );
    await expect(run(retentionCommand, ['set', ...url])).rejects.toThrow(/at least one/);
    await expect(run(retentionCommand, ['apply', ...url])).rejects.toThrow(/needs the categories/);
    await expect(run(retentionCommand, ['purge', ...url])).rejects.toThrow(
      /unknown retention action/,
    );
    await expect(run(holdsCommand, ['place', '--subject', 'u-1', ...url])).rejects.toThrow(
      /needs --reason/,
    );
    await expect(run(holdsCommand, ['release', ...url])).rejects.toThrow(/needs the hold id/);
  });
});
