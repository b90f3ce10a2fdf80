import { VigilError, type ErrorDetail } from '@vigil/protocol';

/**
 * Error codes of the SDK. Codes thrown synchronously at a call site are misuse (options, action
 * names, full queues under the `throw` policy, a closed client). Codes reported through the
 * client's `error` event are infrastructure problems the SDK handles itself (the collector refused
 * a key, a disk write failed): they never reach the application as a throw or a rejection.
 *
 * An event that breaks the protocol is thrown as the protocol's own `InvalidEventError`
 * (`VIGIL_ERR_INVALID_EVENT`) or `NotCanonicalError` (`VIGIL_ERR_NOT_CANONICAL`), the codes the
 * collector would answer with, so one code means one problem wherever it is detected.
 */
export const SdkErrorCodes = {
  INVALID_OPTIONS: 'VIGIL_ERR_SDK_INVALID_OPTIONS',
  RESERVED_ACTION: 'VIGIL_ERR_SDK_RESERVED_ACTION',
  CLOSED: 'VIGIL_ERR_SDK_CLOSED',
  QUEUE_FULL: 'VIGIL_ERR_SDK_QUEUE_FULL',
  SPOOL_FULL: 'VIGIL_ERR_SDK_SPOOL_FULL',
  SPOOL_LOCKED: 'VIGIL_ERR_SDK_SPOOL_LOCKED',
  SPOOL_IO: 'VIGIL_ERR_SDK_SPOOL_IO',
  SPOOL_CORRUPT: 'VIGIL_ERR_SDK_SPOOL_CORRUPT',
  UNAUTHORIZED: 'VIGIL_ERR_SDK_UNAUTHORIZED',
  DEAD_LETTERED: 'VIGIL_ERR_SDK_DEAD_LETTERED',
  DELIVERY_FAILED: 'VIGIL_ERR_SDK_DELIVERY_FAILED',
  REJECTED: 'VIGIL_ERR_SDK_REJECTED',
  EVENTS_DROPPED: 'VIGIL_ERR_SDK_EVENTS_DROPPED',
  INTEGRATION: 'VIGIL_ERR_SDK_INTEGRATION',
} as const;

export type SdkErrorCode = (typeof SdkErrorCodes)[keyof typeof SdkErrorCodes];

/** One line per code; ERRORS.md is built from this table and a test keeps them in step. */
export const SdkErrorDescriptions: { readonly [K in SdkErrorCode]: string } = {
  VIGIL_ERR_SDK_INVALID_OPTIONS:
    'createAuditClient or an integration was given invalid options; the message says what to change (thrown).',
  VIGIL_ERR_SDK_RESERVED_ACTION:
    'record() was given an action the SDK writes itself (stream.*) (thrown).',
  VIGIL_ERR_SDK_CLOSED: 'record() was called after close() began (thrown).',
  VIGIL_ERR_SDK_QUEUE_FULL:
    'the in-memory queue is full and its policy is throw, or more than queue.maxEvents events are already waiting under block (thrown).',
  VIGIL_ERR_SDK_SPOOL_FULL:
    'the spool reached spool.maxBytes and its policy is throw, or too many events wait under block (thrown).',
  VIGIL_ERR_SDK_SPOOL_LOCKED:
    'another live process holds the spool directory; give each process its own directory (thrown by createAuditClient).',
  VIGIL_ERR_SDK_SPOOL_IO:
    'reading or writing the spool failed (thrown by createAuditClient when the directory is unusable, emitted afterwards).',
  VIGIL_ERR_SDK_SPOOL_CORRUPT:
    'a spool file held a torn or unreadable line; it was cut off and the chain gap will show at the collector (emitted).',
  VIGIL_ERR_SDK_UNAUTHORIZED:
    'the collector refused the API key (401) or its scope (403); events are kept and retried slowly (emitted).',
  VIGIL_ERR_SDK_DEAD_LETTERED:
    'the collector refused some events (400/409 naming them, or one event too large for any request); they went to the dead-letter file (emitted).',
  VIGIL_ERR_SDK_DELIVERY_FAILED:
    'a request failed in a way retrying can fix (network error, timeout, 5xx, 429/503); it is retried with backoff (emitted).',
  VIGIL_ERR_SDK_REJECTED:
    'the collector refused a request for a reason retrying soon cannot fix (404, 415, other 4xx); events are kept and retried slowly (emitted).',
  VIGIL_ERR_SDK_EVENTS_DROPPED:
    'events were dropped under the drop-oldest policy of a full queue or spool; the chain gap shows at the collector (emitted).',
  VIGIL_ERR_SDK_INTEGRATION:
    'the fastify or express integration could not record a request (the actor resolver threw or built an invalid event) (emitted).',
};

export interface SdkErrorOptions {
  readonly retriable?: boolean;
  readonly status?: number;
  readonly cause?: unknown;
  readonly details?: readonly ErrorDetail[];
  /** Ids of the events concerned, where the error is about particular events. */
  readonly eventIds?: readonly string[];
}

export class SdkError extends VigilError {
  /** Ids of the events this error is about (dead-lettered or dropped ones), when known. */
  readonly eventIds: readonly string[];

  constructor(code: SdkErrorCode, message: string, options: SdkErrorOptions = {}) {
    super(code, message, options);
    this.name = 'SdkError';
    this.eventIds = options.eventIds ?? [];
  }
}

export class InvalidOptionsError extends SdkError {
  constructor(message: string, details: readonly ErrorDetail[] = []) {
    super(SdkErrorCodes.INVALID_OPTIONS, message, { details });
    this.name = 'InvalidOptionsError';
  }
}

export class ClientClosedError extends SdkError {
  constructor() {
    super(
      SdkErrorCodes.CLOSED,
      'the audit client is closed: record() cannot take events after close()',
    );
    this.name = 'ClientClosedError';
  }
}

/** Thrown at the call site; `retriable` because the same call may succeed once the queue drains. */
export class QueueFullError extends SdkError {
  constructor(
    code: typeof SdkErrorCodes.QUEUE_FULL | typeof SdkErrorCodes.SPOOL_FULL,
    message: string,
  ) {
    super(code, message, { retriable: true });
    this.name = 'QueueFullError';
  }
}
