/**
 * What an access review flags and how it measures use: the `access.*` options of the config
 * (packages/app config/options.ts), parsed once. Every flag can be switched off (`flags`).
 */

/** The flags of a review row, in the order they are listed. */
export const REVIEW_FLAGS = [
  'dormant',
  'never_used',
  'privileged',
  'self_granted',
  'no_ticket',
  'expired',
  'leaver',
  'sod_conflict',
  'mfa_missing',
] as const;
export type ReviewFlag = (typeof REVIEW_FLAGS)[number];

/** What each flag means, for the CSV's documentation and `vigil access flags`. */
export const REVIEW_FLAG_MEANINGS: Readonly<Record<ReviewFlag, string>> = {
  dormant: 'the right was not used for access.dormantDays days before the review date',
  never_used:
    'no use of the right since it was granted, and tracking covered its whole life (the earliest retained event is older than the grant)',
  privileged: 'the role or permission is listed in access.privileged',
  self_granted: 'the subject granted the right to themselves',
  no_ticket: 'granted outside the change process: the grant names no ticket',
  expired: 'the grant has an expiry before the review date and was never revoked',
  leaver: 'the subject left (one of access.leaverActions) and still holds the right',
  sod_conflict:
    'the subject also holds the other right of a segregation-of-duties pair (access.sodPairs)',
  mfa_missing:
    'the tenant records mfa.* events and the last one of the subject is not an enrolment (access.mfaEnrolledActions)',
};

export interface ReviewPolicy {
  readonly dormantDays: number;
  /** Action patterns of a login: exact, or a prefix ending in `*`. */
  readonly loginActions: readonly string[];
  /** Role or permission name → the action patterns that are a use of it. */
  readonly permissionActions: Readonly<Record<string, readonly string[]>>;
  readonly privileged: readonly string[];
  readonly sodPairs: readonly (readonly [string, string])[];
  readonly mfaEnrolledActions: readonly string[];
  /** Actions that say a person left (also what the sink projects as `leave` facts). */
  readonly leaverActions: readonly string[];
  readonly flags: readonly ReviewFlag[];
}

export const DEFAULT_REVIEW_POLICY: ReviewPolicy = {
  dormantDays: 90,
  loginActions: ['user.login'],
  permissionActions: {},
  privileged: [],
  sodPairs: [],
  mfaEnrolledActions: ['mfa.enrolled', 'mfa.enabled'],
  leaverActions: ['user.deactivated', 'user.offboarded', 'employee.left'],
  flags: REVIEW_FLAGS,
};

/**
 * Parses the list forms of the config: `name=pattern|pattern` for access.permissionActions and
 * `a|b` for access.sodPairs. Returns the problems, each naming the option and the entry.
 */
export function parsePolicyLists(input: {
  readonly permissionActions: readonly string[];
  readonly sodPairs: readonly string[];
  readonly flags: readonly string[];
}): {
  permissionActions: Record<string, string[]>;
  sodPairs: [string, string][];
  flags: ReviewFlag[];
  problems: string[];
} {
  const problems: string[] = [];
  const permissionActions: Record<string, string[]> = {};
  for (const entry of input.permissionActions) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq).trim();
    const patterns = entry
      .slice(eq + 1)
      .split('|')
      .map((p) => p.trim())
      .filter(Boolean);
    if (eq <= 0 || patterns.length === 0)
      problems.push(
        `access.permissionActions: "${entry}" must be name=action|action (e.g. invoice.export=invoice.exported|invoice.downloaded)`,
      );
    else permissionActions[name] = [...(permissionActions[name] ?? []), ...patterns];
  }
  const sodPairs: [string, string][] = [];
  for (const entry of input.sodPairs) {
    const parts = entry.split('|').map((p) => p.trim());
    if (parts.length !== 2 || !parts[0] || !parts[1] || parts[0] === parts[1])
      problems.push(
        `access.sodPairs: "${entry}" must be two different rights joined by | (e.g. payment.create|payment.approve)`,
      );
    else sodPairs.push([parts[0], parts[1]]);
  }
  const flags: ReviewFlag[] = [];
  for (const f of input.flags) {
    if ((REVIEW_FLAGS as readonly string[]).includes(f)) flags.push(f as ReviewFlag);
    else
      problems.push(`access.flags: "${f}" is not a flag; use some of ${REVIEW_FLAGS.join(', ')}`);
  }
  return { permissionActions, sodPairs, flags, problems };
}

/** Splits action patterns into exact actions and prefixes (a pattern ending in `*`). */
export function splitPatterns(patterns: readonly string[]): {
  exact: string[];
  prefixes: string[];
} {
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const p of patterns) (p.endsWith('*') ? prefixes : exact).push(p.replace(/\*$/, ''));
  return { exact, prefixes };
}

export function matchesPattern(action: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('*') ? action.startsWith(p.slice(0, -1)) : action === p));
}
