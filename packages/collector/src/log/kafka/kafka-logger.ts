import { logLevel, type LogEntry, type logCreator } from 'kafkajs';

/** The subset of a pino logger that the Kafka log writes to. */
export interface KafkaLogLogger {
  error(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  info(object: object, message?: string): void;
  debug(object: object, message?: string): void;
}

/**
 * Routes kafkajs's own log lines to `logger`, or silences them when there is none.
 *
 * kafkajs logs at ERROR every attempt it is about to retry (a broker restart, a leader move,
 * a rebalance); the Kafka log reports the failures that reach Vigil itself, so those lines are
 * warnings here. Its INFO lines are group joins and stops: rare and useful to operators.
 */
export function kafkaLogging(logger: KafkaLogLogger | undefined): {
  logLevel: logLevel;
  logCreator: logCreator;
} {
  if (logger === undefined) return { logLevel: logLevel.NOTHING, logCreator: () => () => {} };
  const write = ({ namespace, level, log }: LogEntry): void => {
    const { message, timestamp: _timestamp, logger: _source, ...fields } = log;
    const entry = { kafkajs: namespace, ...fields };
    if (level === logLevel.ERROR || level === logLevel.WARN) logger.warn(entry, message);
    else if (level === logLevel.INFO) logger.info(entry, message);
    else logger.debug(entry, message);
  };
  return { logLevel: logLevel.INFO, logCreator: () => write };
}
