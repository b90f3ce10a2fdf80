import { VigilError, type ErrorDetail } from '@vigil/protocol';

/** Error codes of the query package (store, keys, search). Documented in ERRORS.md. */
export const QueryErrorCodes = {
  STORE_UNAVAILABLE: 'VIGIL_ERR_STORE_UNAVAILABLE',
  STORE_LOCKED: 'VIGIL_ERR_STORE_LOCKED',
  MIGRATION_FAILED: 'VIGIL_ERR_MIGRATION_FAILED',
  INVALID_QUERY: 'VIGIL_ERR_INVALID_QUERY',
  INVALID_CURSOR: 'VIGIL_ERR_INVALID_CURSOR',
  TENANT_NOT_FOUND: 'VIGIL_ERR_TENANT_NOT_FOUND',
  TENANT_EXISTS: 'VIGIL_ERR_TENANT_EXISTS',
  TENANT_SUSPENDED: 'VIGIL_ERR_TENANT_SUSPENDED',
  KEY_NOT_FOUND: 'VIGIL_ERR_KEY_NOT_FOUND',
  KEY_INACTIVE: 'VIGIL_ERR_KEY_INACTIVE',
  UNAUTHENTICATED: 'VIGIL_ERR_UNAUTHENTICATED',
  FORBIDDEN: 'VIGIL_ERR_FORBIDDEN',
  HOLD_NOT_FOUND: 'VIGIL_ERR_HOLD_NOT_FOUND',
  HOLD_RELEASED: 'VIGIL_ERR_HOLD_RELEASED',
  EVENT_NOT_FOUND: 'VIGIL_ERR_EVENT_NOT_FOUND',
  CHECKPOINT_NOT_FOUND: 'VIGIL_ERR_CHECKPOINT_NOT_FOUND',
  PROOF_NOT_READY: 'VIGIL_ERR_PROOF_NOT_READY',
  TREE_INCOMPLETE: 'VIGIL_ERR_TREE_INCOMPLETE',
  TREE_INCONSISTENT: 'VIGIL_ERR_TREE_INCONSISTENT',
  ERASURE_HELD: 'VIGIL_ERR_ERASURE_HELD',
  PRIVACY_KEY_NOT_FOUND: 'VIGIL_ERR_PRIVACY_KEY_NOT_FOUND',
  RESTRICTION_NOT_FOUND: 'VIGIL_ERR_RESTRICTION_NOT_FOUND',
  RESTRICTION_LIFTED: 'VIGIL_ERR_RESTRICTION_LIFTED',
  RECEIPT_NOT_FOUND: 'VIGIL_ERR_RECEIPT_NOT_FOUND',
  SIGNER_UNAVAILABLE: 'VIGIL_ERR_SIGNER_UNAVAILABLE',
  EXPORT_INCOMPLETE: 'VIGIL_ERR_EXPORT_INCOMPLETE',
  BASELINE_CONFIG_INVALID: 'VIGIL_ERR_BASELINE_CONFIG_INVALID',
  BACKTEST_INVALID: 'VIGIL_ERR_BACKTEST_INVALID',
  WEBHOOK_NOT_FOUND: 'VIGIL_ERR_WEBHOOK_NOT_FOUND',
  WEBHOOK_URL_REFUSED: 'VIGIL_ERR_WEBHOOK_URL_REFUSED',
  DELIVERY_NOT_FOUND: 'VIGIL_ERR_DELIVERY_NOT_FOUND',
  WEBHOOK_DELIVERY_FAILED: 'VIGIL_ERR_WEBHOOK_DELIVERY_FAILED',
  ALERT_NOT_FOUND: 'VIGIL_ERR_ALERT_NOT_FOUND',
  TRIAGE_UNAVAILABLE: 'VIGIL_ERR_TRIAGE_UNAVAILABLE',
  REVIEW_NOT_FOUND: 'VIGIL_ERR_REVIEW_NOT_FOUND',
  REVIEW_CLOSED: 'VIGIL_ERR_REVIEW_CLOSED',
  // search: signed download links (links/signed.ts)
  LINK_INVALID: 'VIGIL_ERR_LINK_INVALID',
  LINK_EXPIRED: 'VIGIL_ERR_LINK_EXPIRED',
} as const;

export type QueryErrorCode = (typeof QueryErrorCodes)[keyof typeof QueryErrorCodes];

export const QueryErrorDescriptions: { readonly [K in QueryErrorCode]: string } = {
  VIGIL_ERR_STORE_UNAVAILABLE:
    'the store (chDB or ClickHouse) could not be reached or failed a statement; retriable (503).',
  VIGIL_ERR_STORE_LOCKED:
    "another process holds the embedded store's data directory; use the running server's API (503).",
  VIGIL_ERR_MIGRATION_FAILED:
    "a schema migration failed at start; the message names it and the store's error.",
  VIGIL_ERR_INVALID_QUERY: 'a search or admin parameter is invalid; details name each one (400).',
  VIGIL_ERR_INVALID_CURSOR:
    'a pagination cursor was not issued by this server or was altered (400).',
  VIGIL_ERR_TENANT_NOT_FOUND: 'no tenant with that id (404).',
  VIGIL_ERR_TENANT_EXISTS: 'a tenant with that id already exists (409).',
  VIGIL_ERR_TENANT_SUSPENDED:
    "the API key's tenant is suspended; its keys are refused until an operator resumes it (403).",
  VIGIL_ERR_KEY_NOT_FOUND:
    "no API key with that id in the caller's tenant; keys of other tenants answer the same (404).",
  VIGIL_ERR_KEY_INACTIVE:
    'the API key is revoked or expired, so it cannot be rotated; create a new key instead (409).',
  VIGIL_ERR_UNAUTHENTICATED: 'no API key, an unknown one, or a revoked or expired one (401).',
  VIGIL_ERR_FORBIDDEN:
    'the API key lacks the scope for this endpoint, or is used from an address outside its allow-list (403).',
  VIGIL_ERR_HOLD_NOT_FOUND: "no legal hold with that id in the key's tenant (404).",
  VIGIL_ERR_HOLD_RELEASED:
    'the legal hold was already released; a released hold stays released (409).',
  VIGIL_ERR_EVENT_NOT_FOUND:
    "no stored event with that id (and hash) in the key's tenant has a Merkle leaf (404).",
  VIGIL_ERR_CHECKPOINT_NOT_FOUND:
    "no checkpoint with that id, or stating that tree size, in the key's tenant (404).",
  VIGIL_ERR_PROOF_NOT_READY:
    'the event or tree size is stored but no checkpoint covers it yet; retry after the next checkpoint (409).',
  VIGIL_ERR_TREE_INCOMPLETE:
    'leaves of a Merkle tree are missing where the tree must have them; the owning sink repairs this, retry (503).',
  VIGIL_ERR_TREE_INCONSISTENT:
    'the stored Merkle tree contradicts itself or a signed checkpoint: an integrity alarm, run vigil verify (500).',
  VIGIL_ERR_ERASURE_HELD:
    'a legal hold covers the subject, the tenant or some of the events to erase; nothing was erased. Release the hold, or override it with a recorded reason (409).',
  VIGIL_ERR_PRIVACY_KEY_NOT_FOUND:
    'no such tenant key, or it cannot be opened with the configured privacy.keyFile (404, or 500 when the master key differs).',
  VIGIL_ERR_RESTRICTION_NOT_FOUND: "no restriction with that id in the key's tenant (404).",
  VIGIL_ERR_RESTRICTION_LIFTED:
    'the restriction was already lifted; a lifted restriction stays lifted (409).',
  VIGIL_ERR_RECEIPT_NOT_FOUND: "no erasure receipt with that id in the key's tenant (404).",
  VIGIL_ERR_SIGNER_UNAVAILABLE:
    'this process has no signing key for bundles and receipts (checkpoint.signer); use a role that has one (503).',
  VIGIL_ERR_EXPORT_INCOMPLETE:
    'a streamed export failed after its first bytes were sent: the last line names the error and the connection is closed without ending the response, so the file is incomplete; retry, and run vigil verify if it persists.',
  VIGIL_ERR_BASELINE_CONFIG_INVALID:
    'a detection baseline setting is invalid (history, keep or activation period, cache size); the message names it.',
  VIGIL_ERR_BACKTEST_INVALID:
    'a backtest request is invalid (from/to missing, not times, to not after from, range too long, unknown format); details name each field (400).',
  VIGIL_ERR_WEBHOOK_NOT_FOUND: "no webhook with that id in the key's tenant (404).",
  VIGIL_ERR_WEBHOOK_URL_REFUSED:
    'a webhook URL is not http(s), carries a user name or password, does not resolve, or reaches a loopback, private, link-local, shared (CGNAT), unspecified, multicast or reserved address that the operator has not allowed (webhooks.allowAddresses); checked when configured (400) and again at each connection (the delivery fails).',
  VIGIL_ERR_DELIVERY_NOT_FOUND:
    "no dead-lettered webhook delivery with that id in the key's tenant (404).",
  VIGIL_ERR_WEBHOOK_DELIVERY_FAILED:
    'a webhook receiver did not answer 2xx in time (or redirected, which is not followed); the delivery is retried with backoff, then dead-lettered.',
  VIGIL_ERR_ALERT_NOT_FOUND:
    "no alert with that id in the key's tenant (alerts of other tenants, and of restricted subjects, answer the same) (404).",
  VIGIL_ERR_TRIAGE_UNAVAILABLE:
    'this process cannot record audit events (it has no log), so it makes no triage change; use a server that runs the collector (503).',
  VIGIL_ERR_REVIEW_NOT_FOUND: "no access review campaign with that id in the key's tenant (404).",
  VIGIL_ERR_REVIEW_CLOSED:
    'the access review campaign is closed: its evidence pack is signed, it takes no more decisions; start a new one (409).',
  VIGIL_ERR_LINK_INVALID:
    'a download link was not signed by this server, or a byte of its path or parameters was changed; ask for a new link (403).',
  VIGIL_ERR_LINK_EXPIRED: 'a download link is past its expiry; ask for a new link (410).',
};

export class QueryError extends VigilError {
  constructor(
    code: QueryErrorCode,
    message: string,
    options: {
      status?: number;
      retriable?: boolean;
      cause?: unknown;
      details?: readonly ErrorDetail[];
    } = {},
  ) {
    super(code, message, options);
    this.name = 'QueryError';
  }
}

/** The store cannot be reached or failed a statement; retry later. */
export class StoreUnavailableError extends QueryError {
  constructor(message: string, cause?: unknown) {
    super(QueryErrorCodes.STORE_UNAVAILABLE, message, { status: 503, retriable: true, cause });
    this.name = 'StoreUnavailableError';
  }
}

/** Another process holds the embedded store's data directory (chDB allows one per directory). */
export class StoreLockedError extends QueryError {
  constructor(
    readonly path: string,
    cause?: unknown,
    /** The process that holds it, when known. */
    readonly holderPid?: number,
  ) {
    super(
      QueryErrorCodes.STORE_LOCKED,
      `the embedded store at ${path} is in use by another process${holderPid === undefined ? '' : ` (pid ${holderPid})`}; while a Vigil server runs, use its HTTP API (the CLI does this when --url or a running server is found)`,
      { status: 503, cause },
    );
    this.name = 'StoreLockedError';
  }
}

/** A query parameter is invalid; details name each one. */
export class InvalidQueryError extends QueryError {
  constructor(message: string, details: readonly ErrorDetail[] = []) {
    super(QueryErrorCodes.INVALID_QUERY, message, { status: 400, details });
    this.name = 'InvalidQueryError';
  }
}
