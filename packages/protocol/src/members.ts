/**
 * Signed and proof documents are closed (PROTOCOL.md §2): a member a verifier does not know is
 * refused, not skipped, since whatever it says is not covered by any check and renaming an
 * optional member by one byte would otherwise still verify. A new member means a new `v`.
 */

/**
 * Why `value` is not a plain object with exactly the members `required` plus some of `optional`
 * (PROTOCOL.md §2: signed and proof documents are closed), naming the first missing or unknown
 * member; undefined when it is. `what` names the object in the message.
 */
export function membersProblem(
  value: unknown,
  what: string,
  required: readonly string[],
  optional: readonly string[] = [],
): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return `${what} must be a JSON object`;
  for (const r of required)
    if (!Object.prototype.hasOwnProperty.call(value, r)) return `${what} has no member "${r}"`;
  for (const k of Object.keys(value))
    if (!required.includes(k) && !optional.includes(k))
      return `${what} has an unknown member "${k}": ${describeMembers(required, optional)}`;
  return undefined;
}

function describeMembers(required: readonly string[], optional: readonly string[]): string {
  const all = `it has exactly the members ${required.join(', ')}`;
  return optional.length > 0 ? `${all} (and optionally ${optional.join(', ')})` : all;
}

/** Whether `value` is a plain object with exactly the members `required` plus some of `optional`. */
export function hasMembers(
  value: unknown,
  required: readonly string[],
  optional: readonly string[] = [],
): value is Record<string, unknown> {
  return membersProblem(value, '', required, optional) === undefined;
}

/**
 * `value` as a record when it is a closed object of exactly `required` plus some of `optional`,
 * else the problem, naming the first missing or unknown member (see membersProblem).
 */
export function closedObject(
  value: unknown,
  what: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Record<string, unknown> | string {
  return membersProblem(value, what, required, optional) ?? (value as Record<string, unknown>);
}
