import { pino, type DestinationStream, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import type { Config } from '../config/config.js';

/**
 * The format of a process's logs: JSON lines for log collectors, or pino-pretty's readable lines
 * for a person at a terminal. `auto` picks readable when stdout is a terminal.
 */
export function logFormatFor(
  format: Config['logFormat'],
  stdoutIsTerminal: boolean,
): 'json' | 'pretty' {
  if (format === 'auto') return stdoutIsTerminal ? 'pretty' : 'json';
  return format;
}

/**
 * The logger of a role on stdout, in the format `logFormatFor` chooses. pino-pretty runs as a
 * synchronous stream in this thread rather than as a transport worker: a person reads these
 * lines, so their cost does not matter, and nothing is lost on process.exit.
 */
export function roleLogger(
  config: Pick<Config, 'logLevel' | 'logFormat'>,
  base: Record<string, unknown>,
  stdout: { isTTY?: boolean } & DestinationStream = process.stdout,
): Logger {
  const options = { level: config.logLevel, base };
  if (logFormatFor(config.logFormat, stdout.isTTY === true) === 'json')
    return pino(options, stdout);
  return pino(
    options,
    PinoPretty({
      destination: stdout,
      sync: true,
      colorize: stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      // `[12:00:01.234] INFO: [start] sink: sink owns partitions {"partitions":[0,1,2,3]}`
      singleLine: true,
      messageFormat: '{if role}[{role}] {end}{if component}{component}: {end}{msg}',
      ignore: 'pid,hostname,role,component',
    }),
  );
}
