export { AuditClient, createAuditClient } from './client.js';
export type {
  AuditClientEvents,
  AuditClientStats,
  CloseOptions,
  CloseResult,
  DeadLetterInfo,
  DroppedInfo,
  RetryInfo,
  SentInfo,
} from './client.js';
export type {
  AuditClientOptions,
  AuditLogger,
  BatchOptions,
  FsyncPolicy,
  FullPolicy,
  PersonalOptions,
  QueueOptions,
  RetryOptions,
  SpoolOptions,
} from './options.js';
export type { AuditTransport, OutgoingBatch, TransportResult } from './deliver/transport.js';
export { HttpTransport, interpret as interpretCollectorResponse } from './deliver/http.js';
export type { HttpTransportOptions } from './deliver/http.js';
export { backoffDelay, parseRetryAfter } from './deliver/backoff.js';
export type { BackoffPolicy } from './deliver/backoff.js';
export type { DeadLetterRecord } from './deliver/dead-letter.js';
export {
  SdkError,
  SdkErrorCodes,
  SdkErrorDescriptions,
  InvalidOptionsError,
  ClientClosedError,
  QueueFullError,
} from './errors.js';
export type { SdkErrorCode, SdkErrorOptions } from './errors.js';
export { ACTIONS, auditEvents, outcomeOfStatus } from './record/builders.js';
export type {
  AccessFieldsBase,
  ActorFields,
  AiModelCallFields,
  ApiKeyFields,
  ApiKeyUsedFields,
  ApiRequestFields,
  CommonFields,
  ConfigChange,
  ConfigChangedFields,
  ConsentFields,
  DataFields,
  LoginFailedFields,
  LoginFields,
  MfaFields,
  PasswordFields,
  PermissionChangeFields,
  RoleChangeFields,
  SessionRevokedFields,
} from './record/builders.js';
export { vigilFastify } from './integrations/fastify.js';
export type {
  FastifyAuditOptions,
  FastifyAuditPlugin,
  FastifyInstanceLike,
  FastifyReplyLike,
  FastifyRequestLike,
} from './integrations/fastify.js';
export { vigilExpress } from './integrations/express.js';
export type {
  ExpressAuditMiddleware,
  ExpressAuditOptions,
  ExpressRequestLike,
  ExpressResponseLike,
} from './integrations/express.js';
export { UNMATCHED_ROUTE } from './integrations/api-request.js';
export type { ApiRequestAuditOptions } from './integrations/api-request.js';
export { SDK_NAME, SDK_VERSION } from './version.js';
// The protocol types an application needs to build events, re-exported for one import.
export { newEventId, InvalidEventError, NotCanonicalError, VigilError } from '@vigil/protocol';
export type {
  EventInput,
  EventContext,
  Party,
  Resource,
  SealedEvent,
  JsonObject,
  JsonValue,
  Category,
  Outcome,
} from '@vigil/protocol';
