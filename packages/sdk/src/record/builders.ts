import type {
  Category,
  EventContext,
  EventInput,
  JsonObject,
  JsonValue,
  Outcome,
  Party,
  Resource,
} from '@vigil/protocol';

/**
 * The actions the typed helpers record. Names are `<object>.<verb in the past tense>` for things
 * that happened, and `<object>.<noun>` for attempts whose result is the outcome (`user.login`
 * with outcome success or failure), so one action counts every attempt and the outcome splits
 * them. README "Action names" documents this table; `stream.*` is the SDK's own.
 */
export const ACTIONS = {
  loginSucceeded: 'user.login',
  loginFailed: 'user.login',
  logout: 'user.logout',
  mfaEnrolled: 'mfa.enrolled',
  mfaDisabled: 'mfa.disabled',
  mfaChallengeFailed: 'mfa.challenge',
  passwordChanged: 'password.changed',
  passwordReset: 'password.reset',
  sessionRevoked: 'session.revoked',
  accessGranted: 'access.granted',
  accessRevoked: 'access.revoked',
  roleAssigned: 'role.assigned',
  roleRemoved: 'role.removed',
  dataViewed: 'data.viewed',
  dataExported: 'data.exported',
  dataDeleted: 'data.deleted',
  configChanged: 'config.changed',
  apiKeyCreated: 'api_key.created',
  apiKeyUsed: 'api_key.used',
  apiKeyRevoked: 'api_key.revoked',
  apiRequest: 'api.request',
  aiModelCalled: 'ai.model_called',
  consentGiven: 'consent.given',
  consentWithdrawn: 'consent.withdrawn',
} as const;

/** Fields every helper accepts besides its own. */
export interface CommonFields {
  /** Request context: IP, user agent, request and session ids (IP and user agent are committed). */
  readonly context?: EventContext;
  readonly metadata?: JsonObject;
  /** Your own UUIDv7, when the event must be linkable before it is recorded. */
  readonly id?: string;
  /** Event time (protocol form); default now. */
  readonly time?: string;
  /** Extra JSON pointers to commit, such as `/metadata/phone`. */
  readonly personal?: string[];
}

function build(
  action: string,
  category: Category,
  outcome: Outcome,
  actor: Party,
  common: CommonFields,
  extra: {
    target?: Party | undefined;
    metadata?: JsonObject | undefined;
    access?: EventInput['access'];
  },
): EventInput {
  const event: EventInput = { action, category, outcome, actor };
  if (extra.target !== undefined) event.target = extra.target;
  if (extra.access !== undefined) event.access = extra.access;
  if (common.context !== undefined) event.context = common.context;
  const metadata =
    extra.metadata === undefined
      ? common.metadata
      : common.metadata === undefined
        ? extra.metadata
        : { ...common.metadata, ...extra.metadata };
  if (metadata !== undefined && Object.keys(metadata).length > 0) event.metadata = metadata;
  if (common.id !== undefined) event.id = common.id;
  if (common.time !== undefined) event.time = common.time;
  if (common.personal !== undefined) event.personal = common.personal;
  return event;
}

/** Metadata from optional fields, leaving out those not given (exactOptionalPropertyTypes). */
function defined(fields: Record<string, JsonValue | undefined>): JsonObject | undefined {
  let out: JsonObject | undefined;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    if (value !== undefined) (out ??= {})[key] = value;
  }
  return out;
}

// --- authentication ---------------------------------------------------------------------------

export interface LoginFields extends CommonFields {
  /** The user who logged in (or tried to: the identifier typed in, if no account matched). */
  readonly actor: Party;
  /** `password`, `sso:okta`, `passkey`, `password+totp` … */
  readonly method?: string;
  readonly mfa?: boolean;
}

export interface LoginFailedFields extends LoginFields {
  /** Why: `bad_password`, `unknown_user`, `locked`, `mfa_required` … */
  readonly reason: string;
  /** `denied` when policy refused (locked account, IP not allowed); default `failure`. */
  readonly outcome?: 'failure' | 'denied';
}

export function loginSucceeded(f: LoginFields): EventInput {
  return build(ACTIONS.loginSucceeded, 'authentication', 'success', f.actor, f, {
    metadata: defined({ method: f.method, mfa: f.mfa }),
  });
}

export function loginFailed(f: LoginFailedFields): EventInput {
  return build(ACTIONS.loginFailed, 'authentication', f.outcome ?? 'failure', f.actor, f, {
    metadata: defined({ method: f.method, mfa: f.mfa, reason: f.reason }),
  });
}

export interface ActorFields extends CommonFields {
  readonly actor: Party;
}

export function logout(f: ActorFields & { readonly reason?: string }): EventInput {
  return build(ACTIONS.logout, 'authentication', 'success', f.actor, f, {
    metadata: defined({ reason: f.reason }),
  });
}

export interface MfaFields extends CommonFields {
  readonly actor: Party;
  /** `totp`, `webauthn`, `sms` … */
  readonly factor: string;
  /** The user concerned when someone else (an admin) acted. */
  readonly target?: Party;
}

export function mfaEnrolled(f: MfaFields): EventInput {
  return build(ACTIONS.mfaEnrolled, 'authentication', 'success', f.actor, f, {
    target: f.target,
    metadata: { factor: f.factor },
  });
}

export function mfaDisabled(f: MfaFields): EventInput {
  return build(ACTIONS.mfaDisabled, 'authentication', 'success', f.actor, f, {
    target: f.target,
    metadata: { factor: f.factor },
  });
}

export function mfaChallengeFailed(f: MfaFields & { readonly reason?: string }): EventInput {
  return build(ACTIONS.mfaChallengeFailed, 'authentication', 'failure', f.actor, f, {
    target: f.target,
    metadata: defined({ factor: f.factor, reason: f.reason }),
  });
}

export interface PasswordFields extends CommonFields {
  readonly actor: Party;
  /** The account whose password changed, when not the actor's own. */
  readonly target?: Party;
}

export function passwordChanged(f: PasswordFields): EventInput {
  return build(ACTIONS.passwordChanged, 'authentication', 'success', f.actor, f, {
    target: f.target,
  });
}

export function passwordReset(f: PasswordFields & { readonly via?: string }): EventInput {
  return build(ACTIONS.passwordReset, 'authentication', 'success', f.actor, f, {
    target: f.target,
    metadata: defined({ via: f.via }),
  });
}

export interface SessionRevokedFields extends CommonFields {
  readonly actor: Party;
  /** Whose session ended, when not the actor's. */
  readonly target?: Party;
  readonly sessionId: string;
  readonly reason?: string;
}

export function sessionRevoked(f: SessionRevokedFields): EventInput {
  return build(ACTIONS.sessionRevoked, 'authentication', 'success', f.actor, f, {
    target: f.target,
    metadata: defined({ sessionId: f.sessionId, reason: f.reason }),
  });
}

// --- access changes ---------------------------------------------------------------------------

export interface AccessFieldsBase extends CommonFields {
  /** Who made the change. */
  readonly actor: Party;
  /** Who gets or loses the right. */
  readonly subject: Party;
  readonly resource?: Resource;
  /** Who approved it, when not the actor. */
  readonly grantedBy?: Party;
  readonly ticket?: string;
  readonly reason?: string;
  /** End of a time-boxed grant (protocol time form). */
  readonly expiresAt?: string;
}

export interface PermissionChangeFields extends AccessFieldsBase {
  readonly permission: string;
}

export interface RoleChangeFields extends AccessFieldsBase {
  readonly role: string;
}

function access(
  change: 'grant' | 'revoke',
  f: AccessFieldsBase,
  right: { role?: string; permission?: string },
): NonNullable<EventInput['access']> {
  const out: NonNullable<EventInput['access']> = { change, subject: f.subject, ...right };
  if (f.resource !== undefined) out.resource = f.resource;
  if (f.grantedBy !== undefined) out.grantedBy = f.grantedBy;
  if (f.ticket !== undefined) out.ticket = f.ticket;
  if (f.reason !== undefined) out.reason = f.reason;
  if (f.expiresAt !== undefined) out.expiresAt = f.expiresAt;
  return out;
}

export function accessGranted(f: PermissionChangeFields): EventInput {
  return build(ACTIONS.accessGranted, 'access_change', 'success', f.actor, f, {
    access: access('grant', f, { permission: f.permission }),
  });
}

export function accessRevoked(f: PermissionChangeFields): EventInput {
  return build(ACTIONS.accessRevoked, 'access_change', 'success', f.actor, f, {
    access: access('revoke', f, { permission: f.permission }),
  });
}

export function roleAssigned(f: RoleChangeFields): EventInput {
  return build(ACTIONS.roleAssigned, 'access_change', 'success', f.actor, f, {
    access: access('grant', f, { role: f.role }),
  });
}

export function roleRemoved(f: RoleChangeFields): EventInput {
  return build(ACTIONS.roleRemoved, 'access_change', 'success', f.actor, f, {
    access: access('revoke', f, { role: f.role }),
  });
}

// --- sensitive data ---------------------------------------------------------------------------

export interface DataFields extends CommonFields {
  readonly actor: Party;
  /** What was read, exported or deleted: a record, a file, a customer (`type: 'customer'` is a person). */
  readonly target: Party;
  /** Kinds of personal data concerned: `contact`, `health`, `payment` … */
  readonly dataCategories?: readonly string[];
  /** How many records, for bulk reads and exports. */
  readonly records?: number;
  readonly outcome?: Outcome;
}

function dataMetadata(
  f: DataFields,
  more: Record<string, JsonValue | undefined> = {},
): JsonObject | undefined {
  return defined({
    dataCategories: f.dataCategories === undefined ? undefined : [...f.dataCategories],
    records: f.records,
    ...more,
  });
}

export function dataViewed(f: DataFields): EventInput {
  return build(ACTIONS.dataViewed, 'data_access', f.outcome ?? 'success', f.actor, f, {
    target: f.target,
    metadata: dataMetadata(f),
  });
}

export function dataExported(
  f: DataFields & { readonly format?: string; readonly destination?: string },
): EventInput {
  return build(ACTIONS.dataExported, 'data_access', f.outcome ?? 'success', f.actor, f, {
    target: f.target,
    metadata: dataMetadata(f, { format: f.format, destination: f.destination }),
  });
}

export function dataDeleted(f: DataFields & { readonly reason?: string }): EventInput {
  return build(ACTIONS.dataDeleted, 'data_change', f.outcome ?? 'success', f.actor, f, {
    target: f.target,
    metadata: dataMetadata(f, { reason: f.reason }),
  });
}

// --- administration ---------------------------------------------------------------------------

export interface ConfigChange {
  /** The setting, as a dotted name or a JSON pointer. */
  readonly field: string;
  readonly from?: JsonValue;
  readonly to?: JsonValue;
}

export interface ConfigChangedFields extends CommonFields {
  readonly actor: Party;
  /** What was configured: `{ type: 'org', id: 'acme' }`, `{ type: 'sso_connection', id }` … */
  readonly target: Party;
  readonly changes: readonly ConfigChange[];
  readonly reason?: string;
}

export function configChanged(f: ConfigChangedFields): EventInput {
  const changes: JsonValue[] = f.changes.map((c) => {
    const out: JsonObject = { field: c.field };
    if (c.from !== undefined) out['from'] = c.from;
    if (c.to !== undefined) out['to'] = c.to;
    return out;
  });
  return build(ACTIONS.configChanged, 'admin', 'success', f.actor, f, {
    target: f.target,
    metadata: defined({ changes, reason: f.reason }),
  });
}

export interface ApiKeyFields extends CommonFields {
  readonly actor: Party;
  /** The key's id, never the secret. */
  readonly keyId: string;
  readonly keyName?: string;
  readonly scopes?: readonly string[];
  readonly expiresAt?: string;
}

function apiKeyTarget(f: ApiKeyFields): Party {
  return f.keyName === undefined
    ? { type: 'api_key', id: f.keyId }
    : { type: 'api_key', id: f.keyId, name: f.keyName };
}

export function apiKeyCreated(f: ApiKeyFields): EventInput {
  return build(ACTIONS.apiKeyCreated, 'security', 'success', f.actor, f, {
    target: apiKeyTarget(f),
    metadata: defined({
      scopes: f.scopes === undefined ? undefined : [...f.scopes],
      expiresAt: f.expiresAt,
    }),
  });
}

export function apiKeyRevoked(f: ApiKeyFields & { readonly reason?: string }): EventInput {
  return build(ACTIONS.apiKeyRevoked, 'security', 'success', f.actor, f, {
    target: apiKeyTarget(f),
    metadata: defined({ reason: f.reason }),
  });
}

export interface ApiKeyUsedFields extends CommonFields {
  readonly keyId: string;
  readonly keyName?: string;
  /** The operation the key was used for: `GET /v1/invoices` or a scope. */
  readonly operation?: string;
  readonly outcome?: Outcome;
}

/** The key itself is the actor (a non-person party, so its id stays in the clear). */
export function apiKeyUsed(f: ApiKeyUsedFields): EventInput {
  const actor: Party =
    f.keyName === undefined
      ? { type: 'api_key', id: f.keyId }
      : { type: 'api_key', id: f.keyId, name: f.keyName };
  return build(ACTIONS.apiKeyUsed, 'api', f.outcome ?? 'success', actor, f, {
    metadata: defined({ operation: f.operation }),
  });
}

// --- API requests -----------------------------------------------------------------------------

export interface ApiRequestFields extends CommonFields {
  readonly actor: Party;
  readonly method: string;
  /** The route pattern (`/users/:id`), not the concrete URL, so ids in paths stay out of the clear. */
  readonly route: string;
  readonly status: number;
  readonly latencyMs: number;
}

/** Outcome from an HTTP status: < 400 success, 401/403 denied, other 4xx failure, 5xx error. */
export function outcomeOfStatus(status: number): Outcome {
  if (status < 400) return 'success';
  if (status === 401 || status === 403) return 'denied';
  return status < 500 ? 'failure' : 'error';
}

export function apiRequest(f: ApiRequestFields): EventInput {
  return build(ACTIONS.apiRequest, 'api', outcomeOfStatus(f.status), f.actor, f, {
    metadata: {
      method: f.method,
      route: f.route,
      status: f.status,
      latencyMs: Math.round(f.latencyMs * 1000) / 1000,
    },
  });
}

// --- AI model calls ---------------------------------------------------------------------------

export interface AiModelCallFields extends CommonFields {
  /** Who or what triggered the call (the user whose request it serves, or the service). */
  readonly actor: Party;
  /** Model name and version: `gpt-4o-2024-08-06`, `mistral-large-2411` … */
  readonly model: string;
  readonly provider?: string;
  /** Why the model was called: `support_reply_draft`, `fraud_scoring` … */
  readonly purpose: string;
  /** Kinds of personal data sent to the model: `contact`, `ticket_text`, `none` … */
  readonly dataCategories: readonly string[];
  /** The person whose data was sent, when there is one (committed like any person). */
  readonly subject?: Party;
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly outcome?: Outcome;
}

/**
 * A call to an AI model, category `data_access`: sending data to a model is a use of that data,
 * and privacy policies promise that each such use can be traced (model, purpose, data sent).
 */
export function aiModelCalled(f: AiModelCallFields): EventInput {
  return build(ACTIONS.aiModelCalled, 'data_access', f.outcome ?? 'success', f.actor, f, {
    target: f.subject,
    metadata: defined({
      model: f.model,
      provider: f.provider,
      purpose: f.purpose,
      dataCategories: [...f.dataCategories],
      inputTokens: f.inputTokens,
      outputTokens: f.outputTokens,
    }),
  });
}

// --- consent ----------------------------------------------------------------------------------

export interface ConsentFields extends CommonFields {
  /** The person giving or withdrawing consent (or an agent acting for them). */
  readonly actor: Party;
  /** The person concerned when the actor is someone else. */
  readonly target?: Party;
  /** What the consent covers: `marketing_email`, `analytics`, `ai_training` … */
  readonly purpose: string;
  /** Version of the text agreed to. */
  readonly version?: string;
  /** Where it was given: `signup_form`, `preferences`, `support` … */
  readonly channel?: string;
}

export function consentGiven(f: ConsentFields): EventInput {
  return build(ACTIONS.consentGiven, 'data_change', 'success', f.actor, f, {
    target: f.target,
    metadata: defined({ purpose: f.purpose, version: f.version, channel: f.channel }),
  });
}

export function consentWithdrawn(f: ConsentFields): EventInput {
  return build(ACTIONS.consentWithdrawn, 'data_change', 'success', f.actor, f, {
    target: f.target,
    metadata: defined({ purpose: f.purpose, version: f.version, channel: f.channel }),
  });
}

/** Every builder, for building events without a client (tests, batch imports). */
export const auditEvents = {
  loginSucceeded,
  loginFailed,
  logout,
  mfaEnrolled,
  mfaDisabled,
  mfaChallengeFailed,
  passwordChanged,
  passwordReset,
  sessionRevoked,
  accessGranted,
  accessRevoked,
  roleAssigned,
  roleRemoved,
  dataViewed,
  dataExported,
  dataDeleted,
  configChanged,
  apiKeyCreated,
  apiKeyUsed,
  apiKeyRevoked,
  apiRequest,
  aiModelCalled,
  consentGiven,
  consentWithdrawn,
} as const;
