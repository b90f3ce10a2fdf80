import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import {
  ACCESS_CHANGES,
  CATEGORIES,
  LIMITS,
  OUTCOMES,
  PATTERNS,
  PROTOCOL_VERSION,
} from './constants.js';
import type { ErrorDetail } from './errors.js';

/*
 * JSON Schemas (draft-07) of the event (PROTOCOL.md §3). They are compiled once with Ajv into
 * plain functions, which is what makes full validation cheap enough for the collector's hot
 * path; the same objects feed the OpenAPI description. Unknown properties are allowed and
 * preserved byte for byte (PROTOCOL.md §3.4), so a v2 reader accepts records of later v2.x writers.
 *
 * The compiled validators descend only as deep as the schemas (metadata and unknown members are
 * not walked), but `uniqueItems` compares items with a recursive deep-equal: they run only after
 * the depth check of §3.5 (jsonShapeProblem in validate.ts).
 */

const source = (re: RegExp): string => re.source;
const text = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength }) as const;
const typeName = { type: 'string', pattern: source(PATTERNS.typeName) } as const;
const time = { type: 'string', pattern: source(PATTERNS.time) } as const;

export const partySchema = {
  type: 'object',
  required: ['type', 'id'],
  properties: {
    type: typeName,
    id: text(LIMITS.idLength),
    name: text(LIMITS.nameLength),
    email: text(LIMITS.emailLength),
  },
} as const;

export const resourceSchema = {
  type: 'object',
  required: ['type', 'id'],
  properties: {
    type: typeName,
    id: text(LIMITS.idLength),
    name: text(LIMITS.nameLength),
  },
} as const;

export const contextSchema = {
  type: 'object',
  properties: {
    // 64: long enough for a commitment in place of the address; the address itself is
    // checked with net.isIP where its plain value is known.
    ip: text(64),
    userAgent: text(LIMITS.userAgentLength),
    requestId: text(LIMITS.contextIdLength),
    sessionId: text(LIMITS.contextIdLength),
  },
} as const;

export const accessSchema = {
  type: 'object',
  required: ['change', 'subject'],
  properties: {
    change: { enum: [...ACCESS_CHANGES] },
    subject: partySchema,
    role: text(LIMITS.nameLength),
    permission: text(LIMITS.nameLength),
    resource: resourceSchema,
    grantedBy: partySchema,
    ticket: text(LIMITS.nameLength),
    reason: text(LIMITS.reasonLength),
    expiresAt: time,
  },
  anyOf: [{ required: ['role'] }, { required: ['permission'] }],
} as const;

/**
 * A correction's reference to the event it corrects (PROTOCOL.md §18): its id and hash. Optional
 * and additive (§12): a v2 reader that does not know it keeps it as an unknown member. Closed:
 * a reference with another member would say something no check covers.
 */
export const correctsSchema = {
  type: 'object',
  required: ['event', 'hash'],
  additionalProperties: false,
  properties: {
    event: { type: 'string', pattern: source(PATTERNS.uuidV7) },
    hash: { type: 'string', pattern: source(PATTERNS.hash) },
  },
} as const;

const contentProperties = {
  action: { type: 'string', maxLength: LIMITS.actionLength, pattern: source(PATTERNS.action) },
  category: { enum: [...CATEGORIES] },
  outcome: { enum: [...OUTCOMES] },
  actor: partySchema,
  target: partySchema,
  context: contextSchema,
  access: accessSchema,
  metadata: { type: 'object', maxProperties: LIMITS.metadataKeys },
  corrects: correctsSchema,
} as const;

const personalList = {
  type: 'array',
  maxItems: LIMITS.personalPaths,
  uniqueItems: true,
  items: { type: 'string', minLength: 2, maxLength: 512, pattern: '^/' },
} as const;

/** An event submitted without chain fields (curl, other languages). */
export const eventInputSchema = {
  $id: 'vigil:event-input:v2',
  type: 'object',
  required: ['action', 'category', 'outcome', 'actor'],
  properties: {
    id: { type: 'string', pattern: source(PATTERNS.uuidV7) },
    time,
    personal: personalList,
    ...contentProperties,
  },
} as const;

/** The hashed record (PROTOCOL.md §3). */
export const eventRecordSchema = {
  $id: 'vigil:event-record:v2',
  type: 'object',
  required: ['v', 'id', 'stream', 'seq', 'prev', 'time', 'action', 'category', 'outcome', 'actor'],
  properties: {
    v: { const: PROTOCOL_VERSION },
    id: { type: 'string', pattern: source(PATTERNS.uuidV7) },
    stream: { type: 'string', pattern: source(PATTERNS.stream) },
    seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    prev: { type: 'string', pattern: source(PATTERNS.hash) },
    time,
    // In a record the member is present only when it lists something (PROTOCOL.md §4).
    personal: { ...personalList, minItems: 1 },
    ...contentProperties,
  },
} as const;

/** A sealed event on the wire: `record` is a JSON string holding the exact hashed bytes. */
export const sealedEventSchema = {
  $id: 'vigil:sealed-event:v2',
  type: 'object',
  required: ['record', 'hash'],
  properties: {
    record: { type: 'string', minLength: 2 },
    hash: { type: 'string', pattern: source(PATTERNS.hash) },
    disclosures: {
      type: 'object',
      maxProperties: LIMITS.personalPaths,
      additionalProperties: {
        type: 'object',
        required: ['salt', 'value'],
        additionalProperties: false,
        properties: {
          salt: {
            type: 'string',
            minLength: 22,
            maxLength: 86,
            pattern: source(PATTERNS.base64url),
          },
          value: {},
        },
      },
    },
  },
  additionalProperties: false,
} as const;

// strictRequired is off only because the access schema's anyOf names role/permission declared one level up.
// The collector runs these on every event, hence two speed settings: the patterns are plain
// ASCII and compile without the `u` flag, and length limits count UTF-16 units (String#length)
// rather than code points, an equally good bound and much cheaper. Ajv calls `unicode`
// deprecated; its warning about it is the one message this logger drops.
const ajv = new Ajv({
  allErrors: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
  unicodeRegExp: false,
  unicode: false,
  logger: {
    log: () => undefined,
    warn: (...args: unknown[]) => {
      if (!String(args[0]).includes('option unicode')) console.warn(...args);
    },
    error: (...args: unknown[]) => console.error(...args),
  },
});

export const validateEventInputShape: ValidateFunction = ajv.compile(eventInputSchema);
export const validateEventRecordShape: ValidateFunction = ajv.compile(eventRecordSchema);
export const validateSealedEventShape: ValidateFunction = ajv.compile(sealedEventSchema);

/** Turns Ajv's errors into the protocol's details, with JSON pointers below `prefix`. */
export function schemaDetails(
  errors: readonly ErrorObject[] | null | undefined,
  prefix: string,
  index?: number,
): ErrorDetail[] {
  if (!errors) return [];
  const out: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // Each failed anyOf branch is reported too; the anyOf error itself says it better.
    if (e.schemaPath.includes('/anyOf/')) continue;
    let path = prefix + e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      path += '/' + String((e.params as { missingProperty: string }).missingProperty);
      message = 'is required';
    } else if (e.keyword === 'enum') {
      message = `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    } else if (e.keyword === 'pattern') {
      message = describePattern(e.instancePath) ?? message;
    } else if (e.keyword === 'additionalProperties') {
      path += '/' + String((e.params as { additionalProperty: string }).additionalProperty);
      message = 'is not allowed here';
    } else if (e.keyword === 'anyOf' && e.instancePath.endsWith('/access')) {
      message = 'must name a role or a permission';
    } else if (e.keyword === 'const' && e.instancePath === '/v') {
      message = `must be ${PROTOCOL_VERSION} (protocol v${PROTOCOL_VERSION})`;
    }
    const key = path + '\u0000' + message;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(index === undefined ? { path, message } : { index, path, message });
  }
  return out;
}

function describePattern(instancePath: string): string | undefined {
  const field = instancePath.slice(instancePath.lastIndexOf('/') + 1);
  switch (field) {
    case 'id':
      return instancePath === '/id' ? 'must be a lower-case UUIDv7' : undefined;
    case 'action':
      return 'must be two or more dotted lower-case words, like user.login';
    case 'type':
      return 'must be a lower-case type name, like user, service or document';
    case 'stream':
      return 'must be 1-200 characters of A-Z a-z 0-9 . _ : @ / -, starting with a letter or digit';
    case 'prev':
    case 'hash':
      return 'must be 64 lower-case hex digits (SHA-256)';
    case 'time':
    case 'expiresAt':
      return 'must be RFC 3339 UTC with milliseconds, like 2026-11-23T10:50:48.123Z';
    case 'salt':
      return 'must be base64url without padding';
    default:
      return undefined;
  }
}
