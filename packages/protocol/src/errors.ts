/**
 * Errors of the protocol package. Every error Vigil raises extends {@link VigilError}
 * and carries a stable `code` (documented in ERRORS.md), whether retrying can help,
 * and, where it reaches the HTTP API, a status.
 */
export interface VigilErrorOptions {
  readonly retriable?: boolean;
  readonly status?: number;
  readonly cause?: unknown;
  readonly details?: readonly ErrorDetail[];
}

/** Where in a request something was wrong: the event index (if any), a JSON pointer, and what. */
export interface ErrorDetail {
  readonly index?: number;
  readonly path: string;
  readonly message: string;
}

export class VigilError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  readonly status: number;
  readonly details: readonly ErrorDetail[];

  constructor(code: string, message: string, options: VigilErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VigilError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.status = options.status ?? 500;
    this.details = options.details ?? [];
  }
}

export const ProtocolErrorCodes = {
  INVALID_EVENT: 'VIGIL_ERR_INVALID_EVENT',
  NOT_CANONICAL: 'VIGIL_ERR_NOT_CANONICAL',
} as const;

export type ProtocolErrorCode = (typeof ProtocolErrorCodes)[keyof typeof ProtocolErrorCodes];

/** One line per code; ERRORS.md is generated from these tables and a test keeps them equal. */
export const ProtocolErrorDescriptions: { readonly [K in ProtocolErrorCode]: string } = {
  VIGIL_ERR_INVALID_EVENT:
    'an event breaks the protocol (schema, personal paths); details list every problem with its JSON pointer (400).',
  VIGIL_ERR_NOT_CANONICAL:
    'a value has no RFC 8785 form: NaN, Infinity, a lone surrogate, a cycle or a BigInt (400).',
};

/** An event (or an SDK call) that breaks the protocol; `details` lists every problem found. */
export class InvalidEventError extends VigilError {
  constructor(message: string, details: readonly ErrorDetail[]) {
    super(ProtocolErrorCodes.INVALID_EVENT, message, { status: 400, details });
    this.name = 'InvalidEventError';
  }
}

/** A value that has no RFC 8785 form (NaN, Infinity, lone surrogate, cycle, BigInt). */
export class NotCanonicalError extends VigilError {
  constructor(message: string, cause?: unknown) {
    super(ProtocolErrorCodes.NOT_CANONICAL, message, { status: 400, cause });
    this.name = 'NotCanonicalError';
  }
}
