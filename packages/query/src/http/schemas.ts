/**
 * Response schemas for the API description (/docs) of answers whose shape is open or nested
 * deeply (events, reports, receipts). fastify also serialises answers through their response
 * schema, and fast-json-stringify drops properties a schema does not list: these schemas are
 * therefore open (`additionalProperties: true`) and type only what is certain, so nothing an
 * answer holds is ever silently dropped or coerced. Properties given without a type are
 * written as they are (JSON.stringify).
 */

type Property = { readonly description: string; readonly [keyword: string]: unknown };

/** An open JSON object answer with documented members. */
export function openAnswer(
  description: string,
  properties: Readonly<Record<string, Property | string>>,
): Record<string, unknown> {
  return {
    type: 'object',
    description,
    additionalProperties: true,
    properties: Object.fromEntries(
      Object.entries(properties).map(([name, p]) => [
        name,
        typeof p === 'string' ? { description: p } : p,
      ]),
    ),
  };
}

/**
 * A shared response schema with the description of one route's answer (@fastify/swagger takes
 * an answer's description from its schema; without one it writes "Default Response").
 */
export function described<T extends object>(
  description: string,
  schema: T,
): T & { readonly description: string } {
  return { ...schema, description };
}

/** The tenant an answer is about: every admin answer names it. */
export const tenantMember: Property = { type: 'string', description: "the key's tenant" };

/** A non-JSON answer (a file, NDJSON, Prometheus text): documented, never serialised. */
export function fileAnswer(
  description: string,
  mediaTypes: readonly string[],
): Record<string, unknown> {
  return {
    description,
    content: Object.fromEntries(mediaTypes.map((m) => [m, { schema: { type: 'string' } }])),
  };
}

/** A query string that takes no parameters (unknown parameters are refused). */
export const noQuery = { type: 'object', properties: {}, additionalProperties: false } as const;
