import { CollectorError, CollectorErrorCodes, LogUnavailableError } from '../../errors.js';

/**
 * kafkajs reports failures as `KafkaJSError`s whose `retriable` flag says whether it retried them
 * itself; after its retries run out it wraps the last one in `KafkaJSNumberOfRetriesExceeded`
 * (`cause`/`originalError`). Broker errors carry the Kafka protocol error name in `type`
 * (kafkajs src/protocol/error.js, after the Kafka protocol guide's error codes).
 */
interface KafkaJSLikeError {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly type?: unknown;
  readonly cause?: unknown;
  readonly originalError?: unknown;
}

/** The innermost error of a kafkajs error chain. */
export function rootKafkaError(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 8; depth++) {
    if (typeof current !== 'object' || current === null) return current;
    const { cause, originalError } = current as KafkaJSLikeError;
    const next = originalError ?? cause;
    if (next === undefined || next === current) return current;
    current = next;
  }
  return current;
}

/** The Kafka protocol error name (`MESSAGE_TOO_LARGE`, …) somewhere in the chain, if any. */
export function kafkaErrorType(error: unknown): string | undefined {
  let current = error;
  for (let depth = 0; depth < 8; depth++) {
    if (typeof current !== 'object' || current === null) return undefined;
    const { type, cause, originalError } = current as KafkaJSLikeError;
    if (typeof type === 'string') return type;
    current = originalError ?? cause;
  }
  return undefined;
}

/** `TYPE: message` of the innermost error, e.g. `KafkaJSConnectionError: Connection error: …`. */
export function describeKafkaError(error: unknown): string {
  const root = rootKafkaError(error);
  if (typeof root !== 'object' || root === null) return String(root);
  const { name, message, type } = root as KafkaJSLikeError;
  const label = typeof type === 'string' ? type : typeof name === 'string' ? name : 'Error';
  return `${label}: ${typeof message === 'string' ? message : 'no message'}`;
}

/**
 * Broker rejections that no retry can fix: the batch is larger than the broker's
 * `message.max.bytes` / the topic's `max.message.bytes` (Kafka protocol error codes 10 and 18).
 */
const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/**
 * Maps a failed produce to the error the collector answers with: 413 when the batch can never
 * fit, otherwise a retriable 503 (broker down, leader moving, timeout, auth not yet granted…).
 */
export function appendError(error: unknown, topic: string): CollectorError {
  const type = kafkaErrorType(error);
  if (type !== undefined && TOO_LARGE.has(type)) {
    return new CollectorError(
      CollectorErrorCodes.BODY_TOO_LARGE,
      `Kafka rejected the batch for topic "${topic}" as too large (${type}); send smaller batches ` +
        `or raise the topic's max.message.bytes`,
      { status: 413, cause: error },
    );
  }
  return new LogUnavailableError(
    `cannot append to Kafka topic "${topic}": ${describeKafkaError(error)}`,
    error,
  );
}
