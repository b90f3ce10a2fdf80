import type { Role } from '../config/config.js';
import { runRole } from '../server/roles.js';
import { roleLogger } from '../server/logger.js';
import type { CliCommand } from './command.js';
import { configFor } from './command.js';
import { announceServer } from './api.js';
import { roleHelp } from './help.js';
import { DETECT_TOOL_FLAGS, DETECT_TOOLS_HELP, runDetectTool } from './detect.js';

const SUMMARIES: Readonly<Record<Role, string>> = {
  start: 'Run everything in one process on embedded defaults (file log + chDB).',
  collector: 'Run the ingest role (POST /v1/events) against Kafka.',
  sink: 'Run the sink role: consume the log, check chains, store events.',
  query: 'Run the query role (GET /v1/events) against a ClickHouse server.',
  detect:
    'Run the detector role: its own consumer group on the log, rules in event time, alerts to the store.',
};

function roleCommand(role: Role): CliCommand {
  // `vigil detect` runs the detector; `vigil detect backtest|baselines …` are its tools.
  const tools = role === 'detect';
  return {
    name: role,
    summary: SUMMARIES[role],
    ...(tools ? { flags: DETECT_TOOL_FLAGS } : {}),
    help: () => (tools ? `${roleHelp(role)}\n${DETECT_TOOLS_HELP}` : roleHelp(role)),
    async run(args, context) {
      if (tools && args.positionals.length > 0) return runDetectTool(args, context);
      const config = configFor(role, args, context.env);
      const logger = roleLogger(config, { role });
      const running = await runRole(config, { logger, print: context.print });
      // A CLI command that finds the embedded store held reads where this server listens.
      const withdraw =
        config.store.kind === 'chdb' && running.store
          ? announceServer(config, running.url)
          : () => undefined;
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: string): void => {
          if (stopping) {
            logger.warn({ signal }, 'second signal: exiting without waiting');
            process.exit(1);
          }
          stopping = true;
          logger.info({ signal }, 'shutting down: finishing in-flight requests and batches');
          running.close().then(resolve, (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            resolve();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      withdraw();
      return 0;
    },
  };
}

export const roleCommands: readonly CliCommand[] = (
  ['start', 'collector', 'sink', 'query', 'detect'] as const
).map(roleCommand);
