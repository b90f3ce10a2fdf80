import type { AccessChangeKind, Category, Outcome } from './constants.js';

export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Who acted, or who or what was acted on. */
export interface Party {
  type: string;
  id: string;
  name?: string;
  email?: string;
  [extra: string]: unknown;
}

/** A thing a right applies to (`project/42`, `billing`, `org/acme`). */
export interface Resource {
  type: string;
  id: string;
  name?: string;
  [extra: string]: unknown;
}

export interface EventContext {
  ip?: string;
  userAgent?: string;
  requestId?: string;
  sessionId?: string;
  [extra: string]: unknown;
}

/** Which subject got or lost which role or permission on which resource, by whom and why. */
export interface AccessChange {
  change: AccessChangeKind;
  subject: Party;
  role?: string;
  permission?: string;
  resource?: Resource;
  grantedBy?: Party;
  ticket?: string;
  reason?: string;
  /** When a time-boxed grant ends (protocol time form). */
  expiresAt?: string;
  [extra: string]: unknown;
}

/** What an application says happened: the part of an event that is not chain or identity. */
export interface EventContent {
  action: string;
  category: Category;
  outcome: Outcome;
  actor: Party;
  target?: Party;
  context?: EventContext;
  access?: AccessChange;
  metadata?: JsonObject;
  /** Set on a correction: the event it corrects (PROTOCOL.md §18). */
  corrects?: { event: string; hash: string };
}

/**
 * An event as an application or an unchained client submits it. `id` (UUIDv7) and `time`
 * are filled in when absent; `personal` names extra JSON pointers to commit (for example
 * `/metadata/phone`) on top of the fields the protocol always treats as personal.
 */
export interface EventInput extends EventContent {
  id?: string;
  time?: string;
  personal?: string[];
  [extra: string]: unknown;
}

/** The hashed record: the object whose RFC 8785 bytes are hashed, shipped and stored unchanged. */
export interface EventRecord extends EventContent {
  v: 2;
  id: string;
  stream: string;
  seq: number;
  prev: string;
  time: string;
  /** Sorted JSON pointers whose values in this record are commitments. */
  personal?: string[];
  [extra: string]: unknown;
}

/** The opening of a commitment: a personal value and its salt (base64url). */
export interface Disclosure {
  salt: string;
  value: JsonValue;
}

/** Disclosures keyed by the JSON pointer of the committed field. */
export type Disclosures = { [path: string]: Disclosure };

/** An event on the wire and in storage: exact record bytes, their hash, and the disclosures. */
export interface SealedEvent {
  record: string;
  hash: string;
  disclosures?: Disclosures;
}

/** The position of an event in its stream. */
export interface ChainLink {
  stream: string;
  seq: number;
  prev: string;
}
