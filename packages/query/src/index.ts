export { openStore, onCluster, assertIdentifier, embeddedStoreHolder } from './store/store.js';
export type {
  Store,
  StoreConfig,
  ChdbStoreConfig,
  ClickHouseStoreConfig,
  QueryParams,
} from './store/store.js';
export { migrate, MIGRATIONS } from './store/migrations.js';
export type { MigrationReport } from './store/migrations.js';
export type { Migration } from './store/migration-types.js';
export { createTable, createMaterializedView, alterTable, localName } from './store/schema.js';
export { eventRow, openRecord, toChTime, fromChTime, ipColumn, EVENT_FLAGS } from './store/rows.js';
export type { EventRowMeta, EventFlag, EventSource } from './store/rows.js';
export { absentValue, EVENT_COLUMN_TYPES, PERSONAL_COLUMNS } from './store/event-columns.js';
export { RowBinaryCodec, RowBinaryError, Writer as RowBinaryWriter } from './store/row-binary.js';
export type { ColumnTypes } from './store/row-binary.js';
export type { EventRow, PersonalColumn } from './store/event-columns.js';
export {
  DERIVED_PERSONAL_COLUMNS,
  DERIVED_COLUMN_TYPES,
  ERASED_VALUES,
  GEO_COLUMNS,
  USER_AGENT_COLUMNS,
  derivedView,
} from './store/derived.js';
export type {
  DerivedColumns,
  DerivedColumn,
  GeoColumns,
  UserAgentColumns,
  GeoView,
  UserAgentView,
} from './store/derived.js';
export {
  expirySeconds,
  MIN_RETENTION_DAYS,
  MAX_RETENTION_DAYS,
  MAX_EXPIRY_SECONDS,
} from './retention/expiry.js';
export type { RetentionDays } from './retention/expiry.js';
export { RetentionPolicies, DEFAULTS_TENANT, resolvePolicy, daysOf } from './retention/policies.js';
export type {
  PolicyEntry,
  TenantPolicy,
  PolicyChange,
  PolicyUpdate,
  AppliedPolicy,
} from './retention/policies.js';
export { LegalHolds, HOLD_SUBJECT_COLUMNS, NO_HOLDS, newHoldId } from './retention/holds.js';
export type { LegalHold, ActiveHolds } from './retention/holds.js';
export {
  QueryError,
  QueryErrorCodes,
  QueryErrorDescriptions,
  StoreUnavailableError,
  StoreLockedError,
  InvalidQueryError,
} from './errors.js';
export {
  TenantDirectory,
  SCOPES,
  generateKey,
  digestOfKey,
  validTenantId,
  isCidrOrIp,
  scopesProblem,
  OPERATOR_TENANT,
  TENANT_SCOPES,
  OPERATOR_SCOPES,
} from './auth/keys.js';
export type {
  Scope,
  Tenant,
  ApiKeyInfo,
  CreatedKey,
  StoredKey,
  PreparedKey,
  KeyOptions,
} from './auth/keys.js';
export { KeyRegistry } from './auth/registry.js';
export type { AuthResult, KeySource } from './auth/registry.js';
export { HttpKeySource } from './auth/http-source.js';
export type { KeyDirectory } from './auth/http-source.js';
export { registerKeyDirectoryRoutes } from './http/key-directory-routes.js';
export type { KeyDirectoryRoutesOptions } from './http/key-directory-routes.js';
export { requireScope, tenantOf } from './http/auth.js';
export type { AuthObserver } from './http/auth.js';
export { registerQueryRoutes } from './http/routes.js';
export type { QueryRoutesOptions } from './http/routes.js';
export {
  registerAdminRoutes,
  keyView,
  tenantView,
  DEFAULT_ROTATION_GRACE_SECONDS,
} from './http/admin-routes.js';
export type { AdminRoutesOptions, KeyView, TenantView } from './http/admin-routes.js';
export { ADMIN_ACTIONS } from './system/changes.js';
export type { ChangeRecorder, ChangeActor, AdminChange, RecordedChange } from './system/changes.js';
export { registerRetentionRoutes } from './http/retention-routes.js';
export type { RetentionRoutesOptions, RecordChange } from './http/retention-routes.js';
export {
  searchEvents,
  checkFilters,
  encodeCursor,
  MAX_LIMIT,
  DEFAULT_LIMIT,
} from './search/search.js';
export type { SearchFilters, SearchPage } from './search/search.js';
export { FIELD_STATES, itemOf } from './search/item.js';
export { checkItem } from './search/check-item.js';
export type { FieldState, SearchItem, ServerFields } from './search/item.js';
// analyst search: facets, histogram, export, signed links, meta-audit, hourly rollups
export { facet, histogram, bucketFor, FACET_FIELDS } from './search/aggregate.js';
export type { FacetAnswer, FacetField, HistogramAnswer } from './search/aggregate.js';
export { prepareExport, EXPORT_COLUMNS, EXPORT_FORMATS } from './search/export.js';
export type {
  ExportFormat as SearchExportFormat,
  ExportOptions as SearchExportOptions,
  PreparedExport as PreparedSearchExport,
} from './search/export.js';
export { filterSql, ipRange } from './search/filters.js';
export { registerSearchRoutes } from './http/search-routes.js';
export type { SearchRoutesOptions } from './http/search-routes.js';
export { SEARCH_ACTIONS, searchChange } from './http/search-query.js';
export { LinkSigner, LINK_PARAMS, MAX_LINK_SECONDS } from './links/signed.js';
export type { LinkGrant, SignedLink } from './links/signed.js';
export { MerkleStore, TreeIncompleteError, TreeInconsistentError } from './proof/tree-store.js';
export type { StoredLeaf, NodeRow } from './proof/tree-store.js';
export { CheckpointStore, signedForm, CHECKPOINT_KEY_PURPOSE } from './proof/checkpoint-store.js';
export type { StoredCheckpoint, CheckpointPage } from './proof/checkpoint-store.js';
export { ProofService } from './proof/proofs.js';
export type { InclusionProofResponse } from './proof/proofs.js';
export {
  registerProofRoutes,
  signedCheckpointSchema,
  inclusionProofSchema,
  consistencyProofSchema,
} from './http/proof-routes.js';
export type { ProofRoutesOptions } from './http/proof-routes.js';
export {
  PSEUDONYM_FIELDS,
  fieldOfPath,
  pseudonymOf,
  isPseudonym,
  protectRow,
  sealDisclosures,
  openDisclosures,
  rowPrivacyOf,
} from './privacy/pseudonyms.js';
export type { PseudonymField, RowPrivacy } from './privacy/pseudonyms.js';
export { TenantKeys } from './privacy/keys.js';
export type { TenantKey, TenantKeyInfo } from './privacy/keys.js';
export { PrivacyService } from './privacy/service.js';
export type { SubjectForms, PrivacySettingChange } from './privacy/service.js';
export {
  PARTIES,
  SUBJECT_MATCH_SQL,
  subjectParams,
  subjectRoles,
  subjectPaths,
  correctionPaths,
} from './privacy/subject.js';
export type { MatchRow } from './privacy/subject.js';
export { Eraser, newErasureId, serialised } from './privacy/erasure.js';
export type {
  StoredRow,
  PlannedEvent,
  ErasurePlan,
  AppliedErasure,
  ErasureMarker,
} from './privacy/erasure.js';
export { SubjectExporter, CSV_COLUMNS } from './privacy/export.js';
export { safeCell, csvTime, csvTimeHeader, csvHeader, csvRows } from './export/csv.js';
export type { CsvOptions } from './export/csv.js';
export type {
  ExportFormat,
  DocumentSigner,
  PreparedExport,
  SubjectItem,
} from './privacy/export.js';
export { Restrictions, newRestrictionId, UNRESTRICTED_SQL } from './privacy/restrictions.js';
export type { Restriction, ActiveRestriction } from './privacy/restrictions.js';
export {
  correctionEvent,
  correctionsOf,
  correctViews,
  TRUSTED_CORRECTIONS_SQL,
} from './privacy/corrections.js';
export type { CorrectionRequest, EventCorrection } from './privacy/corrections.js';
export { registerPrivacyRoutes } from './http/privacy-routes.js';
export type { PrivacyRoutesOptions, LogErasure } from './http/privacy-routes.js';
export { verifyLog } from './verify/verify.js';
export type { VerifyOptions, VerifyProgress, VerifyReport } from './verify/verify.js';
export { FAILURE_CATEGORIES, INFO_CATEGORIES, severityOf } from './verify/findings.js';
export type {
  Finding,
  Category as FindingCategory,
  FailureCategory,
  InfoCategory,
  Severity,
  CheckpointSource,
} from './verify/findings.js';
export type { TrustedCheckpoint, CheckpointSummary } from './verify/checkpoints.js';
export type { TenantKeyLookup, VerifierTenantKey } from './verify/events.js';
export type { ScopeFilter } from './verify/scope.js';
export type { TreeResult } from './verify/tree.js';
export { registerVerifyRoutes } from './http/verify-routes.js';
export type { VerifyRoutesOptions } from './http/verify-routes.js';
export { AlertStore } from './alerts/store.js';
export type { StoredAlert, AlertFilter, AlertStoreOptions } from './alerts/store.js';
export { detectionEvent } from './detect/event-view.js';
export type { DetectionSource } from './detect/event-view.js';
export {
  BaselineRefresher,
  BASELINE_FACETS,
  eraseFromBaselines,
  listGenerations,
  timeZonesOf,
} from './detect/baselines.js';
export type {
  BaselineRefreshOptions,
  RefreshReport,
  RefreshedGeneration,
  GenerationInfo,
} from './detect/baselines.js';
export { StoreBaselines } from './detect/baseline-lookup.js';
export { registerDetectRoutes } from './http/detect-routes.js';
export type { DetectRoutesOptions } from './http/detect-routes.js';
export type {
  BaselineLookupOptions,
  BaselineLookupStats,
  EntityRate,
} from './detect/baseline-lookup.js';
export {
  runBacktest,
  formatBacktest,
  checkBacktestRequest,
  BACKTEST_FORMATS,
  MAX_BACKTEST_RANGE_MS,
} from './detect/backtest.js';
export type {
  BacktestOptions,
  BacktestResult,
  BacktestAlert,
  BacktestSummary,
  BacktestProgress,
  BacktestFormat,
} from './detect/backtest.js';
export {
  AddressGuard,
  UrlRefused,
  addressClass,
  embeddedIpv4,
  systemResolver,
} from './webhooks/ssrf.js';
export type { AddressClass, Resolver, GuardOptions } from './webhooks/ssrf.js';
export {
  SIGNATURE_HEADER,
  EVENT_ID_HEADER,
  DELIVERY_ID_HEADER,
  newWebhookSecret,
  signatureHeader,
  signatureOf,
} from './webhooks/signature.js';
export { WebhookStore, WEBHOOK_FORMATS, newWebhookId, severityRank } from './webhooks/store.js';
export type { Webhook, WebhookFormat, SigningWebhook, NewWebhook } from './webhooks/store.js';
export { masterKeySecretBox, PLAIN_SECRETS } from './webhooks/secrets.js';
export type { SecretBox } from './webhooks/secrets.js';
export { DeliveryOutbox, DELIVERY_STATES, deliveryIdOf } from './webhooks/outbox.js';
export type { Delivery, DeliveryState, NewDelivery, OutboxOptions } from './webhooks/outbox.js';
export { alertEvent, renderBody, slackMessage, testEvent, eventIdOf } from './webhooks/payload.js';
export type { WebhookEvent, WebhookEventType, SlackMessage } from './webhooks/payload.js';
export { WebhookSender } from './webhooks/sender.js';
export type { SendResult, SendRequest, SenderOptions } from './webhooks/sender.js';
export {
  WebhookOutput,
  WebhookDispatcher,
  DEFAULT_RETRY,
  backoffMs,
} from './webhooks/dispatcher.js';
export type { DeliveryObserver, RetryPolicy, DispatcherOptions } from './webhooks/dispatcher.js';
export { registerWebhookRoutes } from './http/webhook-routes.js';
export type { WebhookRoutesOptions } from './http/webhook-routes.js';
export { AlertTriage, TRIAGE_STATES, ALERT_GROUPS } from './alerts/triage.js';
export type {
  Triage,
  TriagedAlert,
  TriageChange,
  TriageState,
  AlertGroup,
  AlertGrouping,
  AlertQuery,
} from './alerts/triage.js';
export { AlertPrivacy, pseudonymiseAlert } from './alerts/privacy.js';
export { registerAlertRoutes, ALERT_ACTIONS } from './http/alert-routes.js';
export type { AlertRoutesOptions } from './http/alert-routes.js';
export { factsOf, hasFacts } from './access/facts.js';
export type { AccessFactRow, FactKind, FactOptions } from './access/facts.js';
export { AccessProjection, ACCESS_TABLE, erasedFact } from './access/projection.js';
export {
  REVIEW_FLAGS,
  REVIEW_FLAG_MEANINGS,
  DEFAULT_REVIEW_POLICY,
  parsePolicyLists,
} from './access/policy.js';
export type { ReviewFlag, ReviewPolicy } from './access/policy.js';
export { AccessReviewer } from './access/review.js';
export type {
  ReviewRow,
  ReviewScope,
  ReviewSnapshot,
  Use,
  UseState,
  SubjectState,
} from './access/review.js';
export {
  reviewCsv,
  reviewJson,
  reviewNdjson,
  reviewFile,
  reviewRowJson,
  parseAsOf,
  REVIEW_COLUMNS,
  REVIEW_FORMATS,
} from './access/export.js';
export type { ReviewFormat } from './access/export.js';
export { registerAccessRoutes } from './http/access-routes.js';
export type { AccessRoutesOptions } from './http/access-routes.js';
export {
  ReviewCampaigns,
  DECISIONS,
  DECISION_COLUMNS,
  itemIdOf,
  newCampaignId,
} from './access/campaigns.js';
export type {
  Campaign,
  Decision,
  DecisionInput,
  StoredDecision,
  ReviewItem,
} from './access/campaigns.js';
export {
  verifyEvidence,
  encodeEvidence,
  evidenceFileOf,
  signedEvidence,
  evidenceSigningInput,
  EVIDENCE_DOMAIN,
  EVIDENCE_TYPE,
  MANIFEST_FILE,
} from './access/evidence.js';
export type { EvidenceFile, EvidenceStatement, SignedEvidenceManifest } from './access/evidence.js';
