import { VigilError, type ErrorDetail } from '@vigil/protocol';

/**
 * Error codes of the collector package (ingest, log, sink, roles). Every code is unique across
 * Vigil and documented in ERRORS.md; errors.test.ts checks both.
 */
export const CollectorErrorCodes = {
  INVALID_BATCH: 'VIGIL_ERR_INVALID_BATCH',
  EVENT_CONFLICT: 'VIGIL_ERR_EVENT_CONFLICT',
  BODY_TOO_LARGE: 'VIGIL_ERR_BODY_TOO_LARGE',
  TOO_MANY_EVENTS: 'VIGIL_ERR_TOO_MANY_EVENTS',
  UNSUPPORTED_MEDIA_TYPE: 'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE',
  BAD_REQUEST: 'VIGIL_ERR_BAD_REQUEST',
  NOT_FOUND: 'VIGIL_ERR_NOT_FOUND',
  URI_TOO_LONG: 'VIGIL_ERR_URI_TOO_LONG',
  HEADERS_TOO_LARGE: 'VIGIL_ERR_HEADERS_TOO_LARGE',
  REQUEST_TIMEOUT: 'VIGIL_ERR_REQUEST_TIMEOUT',
  RATE_LIMITED: 'VIGIL_ERR_RATE_LIMITED',
  OVERLOADED: 'VIGIL_ERR_OVERLOADED',
  SINK_NOT_READY: 'VIGIL_ERR_SINK_NOT_READY',
  LOG_UNAVAILABLE: 'VIGIL_ERR_LOG_UNAVAILABLE',
  LOG_CORRUPT: 'VIGIL_ERR_LOG_CORRUPT',
  LOG_CLOSED: 'VIGIL_ERR_LOG_CLOSED',
  LOG_TOPIC_MISSING: 'VIGIL_ERR_LOG_TOPIC_MISSING',
  CONFIG_INVALID: 'VIGIL_ERR_CONFIG_INVALID',
  INTERNAL: 'VIGIL_ERR_INTERNAL',
  SIGNER_FAILED: 'VIGIL_ERR_SIGNER_FAILED',
  WITNESS_FAILED: 'VIGIL_ERR_WITNESS_FAILED',
} as const;

export type CollectorErrorCode = (typeof CollectorErrorCodes)[keyof typeof CollectorErrorCodes];

export const CollectorErrorDescriptions: { readonly [K in CollectorErrorCode]: string } = {
  VIGIL_ERR_INVALID_BATCH:
    'a batch holds invalid events; it was refused whole and details list every bad event by index and field (400).',
  VIGIL_ERR_EVENT_CONFLICT:
    'an event reuses an id already accepted with different content; nothing of the batch was stored (409).',
  VIGIL_ERR_BODY_TOO_LARGE:
    'the request body, after gzip decompression, is larger than ingest.maxBodyKiB (413).',
  VIGIL_ERR_TOO_MANY_EVENTS: 'the batch holds more than ingest.maxEvents events (413).',
  VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE:
    'the body is not application/vnd.vigil.sealed.v2, application/json or application/x-ndjson, or its Content-Encoding is not gzip (415).',
  VIGIL_ERR_BAD_REQUEST:
    'the request is malformed: body not JSON or not UTF-8, bad gzip, a URL that does not decode, unknown or invalid parameters (400).',
  VIGIL_ERR_NOT_FOUND: 'no such route (404).',
  VIGIL_ERR_URI_TOO_LONG:
    'a path parameter (an id) is longer than 100 characters; no route takes one that long (414).',
  VIGIL_ERR_HEADERS_TOO_LARGE:
    "the request line and headers together are larger than Node's limit of 16 KiB (431); send long filters in fewer or shorter parameters.",
  VIGIL_ERR_REQUEST_TIMEOUT:
    'the whole request (headers and body) did not arrive within http.requestTimeoutSeconds; the connection is closed (408).',
  VIGIL_ERR_RATE_LIMITED:
    'the API key sent more requests than its rate limit; wait Retry-After seconds (429).',
  VIGIL_ERR_OVERLOADED:
    'the collector is saturated: its check workers are all busy, or the sinks lag more than ingest.maxLagRecords log records behind; nothing was accepted; retry after Retry-After (503).',
  VIGIL_ERR_SINK_NOT_READY:
    'the sink of this process (vigil start) has failed and waits to restart (the store is down, say) or has stopped, so nothing would store the events; nothing was accepted; retry after Retry-After (503).',
  VIGIL_ERR_LOG_UNAVAILABLE:
    'the log cannot take events now (disk, broker); nothing was accepted; retry after Retry-After (503).',
  VIGIL_ERR_LOG_CORRUPT:
    'an embedded log file holds a bad record that no torn write explains; the message names file and position.',
  VIGIL_ERR_LOG_CLOSED:
    'the log is closed (the process is shutting down); retry on another instance (503).',
  VIGIL_ERR_LOG_TOPIC_MISSING:
    'the Kafka topic does not exist or has another partition count than log.partitions; the message says what to create.',
  VIGIL_ERR_CONFIG_INVALID:
    'the configuration is invalid; details name each setting and say what to change.',
  VIGIL_ERR_INTERNAL: 'an unexpected error; the server log has the details (500).',
  VIGIL_ERR_SIGNER_FAILED:
    'the checkpoint signer failed (key file unreadable, external command failed, timed out or returned a signature that does not verify); the checkpoint is retried.',
  VIGIL_ERR_WITNESS_FAILED:
    'a witness did not take a checkpoint (directory not writable, webhook refused or unreachable); it is retried with backoff and never blocks ingest.',
};

export class CollectorError extends VigilError {
  constructor(
    code: CollectorErrorCode,
    message: string,
    options: {
      status?: number;
      retriable?: boolean;
      cause?: unknown;
      details?: readonly ErrorDetail[];
    } = {},
  ) {
    super(code, message, options);
    this.name = 'CollectorError';
  }
}

/** The log cannot take or give records now (disk full, broker unreachable); retry later. */
export class LogUnavailableError extends CollectorError {
  constructor(message: string, cause?: unknown) {
    super(CollectorErrorCodes.LOG_UNAVAILABLE, message, { status: 503, retriable: true, cause });
    this.name = 'LogUnavailableError';
  }
}

/** A log file holds bytes that are not a valid record where no torn write can explain them. */
export class LogCorruptError extends CollectorError {
  constructor(message: string, cause?: unknown) {
    super(CollectorErrorCodes.LOG_CORRUPT, message, { status: 500, cause });
    this.name = 'LogCorruptError';
  }
}

export class LogClosedError extends CollectorError {
  constructor(message = 'the log is closed') {
    super(CollectorErrorCodes.LOG_CLOSED, message, { status: 503, retriable: true });
    this.name = 'LogClosedError';
  }
}

/** A configured topic does not exist on the broker, or has another partition count. */
export class LogTopicMissingError extends CollectorError {
  constructor(message: string) {
    super(CollectorErrorCodes.LOG_TOPIC_MISSING, message, { status: 503 });
    this.name = 'LogTopicMissingError';
  }
}

/** The configuration is invalid; the message says what to change. */
export class ConfigError extends CollectorError {
  constructor(message: string, details: readonly ErrorDetail[] = []) {
    super(CollectorErrorCodes.CONFIG_INVALID, message, { details });
    this.name = 'ConfigError';
  }
}

/** The checkpoint signer could not sign; retried at the next checkpoint. */
export class SignerError extends CollectorError {
  constructor(message: string, cause?: unknown) {
    super(CollectorErrorCodes.SIGNER_FAILED, message, { retriable: true, cause });
    this.name = 'SignerError';
  }
}

/** A witness did not take a checkpoint; retried with backoff. */
export class WitnessError extends CollectorError {
  constructor(message: string, cause?: unknown) {
    super(CollectorErrorCodes.WITNESS_FAILED, message, { retriable: true, cause });
    this.name = 'WitnessError';
  }
}
