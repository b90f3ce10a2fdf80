import type { Logger } from 'pino';
import type { LogConfig } from '../stage-config.js';
import type { Log } from './log.js';

/** Opens the log the configuration names: the embedded file log or Kafka. */
export async function openLog(config: LogConfig, logger: Logger): Promise<Log> {
  if (config.kind === 'kafka') {
    const { KafkaLog } = await import('./kafka/kafka-log.js');
    return KafkaLog.open({
      brokers: config.brokers,
      clientId: config.clientId,
      topic: config.topic,
      partitions: config.partitions,
      ssl: config.ssl,
      ...(config.sasl ? { sasl: config.sasl } : {}),
      idempotent: config.idempotent,
      sessionTimeoutMs: config.sessionTimeoutMs,
      heartbeatIntervalMs: Math.max(500, Math.floor(config.sessionTimeoutMs / 10)),
      logger: logger.child({ component: 'kafka' }),
    });
  }
  const { FileLog } = await import('./file/file-log.js');
  return FileLog.open({
    dir: config.dir,
    topic: config.topic,
    partitions: config.partitions,
    segmentBytes: config.segmentBytes,
    fsync: config.fsync,
    fsyncIntervalMs: config.fsyncIntervalMs,
    retentionMs: config.retentionMs,
    logger: logger.child({ component: 'log' }),
  });
}
