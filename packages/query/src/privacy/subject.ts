import {
  correctedValuePath,
  normalEmail,
  subjectPathsOf,
  type Disclosures,
  type SubjectRole,
} from '@vigil/protocol';
import type { SubjectForms } from './service.js';

/**
 * Finding a person in the stored events, for their requests: access and portability (Art. 15,
 * 20), erasure (17), restriction (18). A person is matched where they are a *party* of an event
 * (actor, target, access subject or grantor) by their id, or by an e-mail address, in a field
 * that is personal (committed, PROTOCOL.md §5.1): values in the clear are part of the hashed
 * bytes and cannot be erased anyway, and an id in the clear belongs to a service, not a person.
 */

/** The parties of an event, with the pointers of their fields. */
export const PARTIES = [
  { role: 'actor', base: '/actor', column: 'actor_id' },
  { role: 'target', base: '/target', column: 'target_id' },
  { role: 'accessSubject', base: '/access/subject', column: 'subject_id' },
  { role: 'grantedBy', base: '/access/grantedBy', column: 'granted_by_id' },
] as const satisfies readonly { role: SubjectRole; base: string; column: string }[];

/**
 * The normal form of an address (PROTOCOL.md §17.2, `normalEmail`) in ClickHouse SQL: the
 * white space ECMAScript's trim removes, removed at both ends (trimBoth removes spaces only),
 * then lowerUTF8, which maps case as toLowerCase does (full mapping, Final_Sigma).
 */
const TRIMMED = String.raw`[\\x{9}-\\x{D} \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}]+`;
const normalEmailSql = (expr: string): string =>
  `lowerUTF8(replaceRegexpAll(${expr}, '^${TRIMMED}|${TRIMMED}$', ''))`;

/**
 * SQL condition matching the rows a subject is a party of, with the parameters
 * `{sids:Array(String)}` (SubjectForms.ids) and `{semails:Array(String)}` (SubjectForms.emails).
 * Addresses are compared lower-cased; pseudonymised ones through `pseudonyms`.
 */
export const SUBJECT_MATCH_SQL = `(
  (has(personal, '/actor/id') AND actor_id IN {sids:Array(String)})
  OR (has(personal, '/target/id') AND target_id IN {sids:Array(String)})
  OR (has(personal, '/access/subject/id') AND subject_id IN {sids:Array(String)})
  OR (has(personal, '/access/grantedBy/id') AND granted_by_id IN {sids:Array(String)})
  OR (notEmpty({semails:Array(String)}) AND (
    actor_email IN {semails:Array(String)} OR ${normalEmailSql('actor_email')} IN {semails:Array(String)}
    OR ${PARTIES.slice(1)
      .map(
        (p) =>
          `${normalEmailSql(`JSONExtractString(disclosures, '${p.base}/email', 'value')`)} IN {semails:Array(String)} OR JSONExtractString(pseudonyms, '${p.base}/email') IN {semails:Array(String)}`,
      )
      .join('\n    OR ')}
  ))
)`;

export function subjectParams(forms: SubjectForms): { sids: string[]; semails: string[] } {
  return { sids: [...forms.ids], semails: [...forms.emails] };
}

/** What of a stored row the matching reads. */
export interface MatchRow {
  readonly personal: readonly string[];
  readonly actor_id: string;
  readonly target_id: string;
  readonly subject_id: string;
  readonly granted_by_id: string;
  readonly actor_email: string;
}

/** A field's value in a row: disclosed, else its pseudonym. */
function valueAt(
  path: string,
  disclosures: Disclosures,
  pseudonyms: Readonly<Record<string, string>>,
): unknown {
  return disclosures[path]?.value ?? pseudonyms[path];
}

/**
 * How the subject takes part in the row's event: each party whose committed id, or e-mail
 * address, is one of the subject's forms.
 */
export function subjectRoles(
  row: MatchRow,
  disclosures: Disclosures,
  pseudonyms: Readonly<Record<string, string>>,
  forms: SubjectForms,
): SubjectRole[] {
  const personal = new Set(row.personal);
  const ids = new Set(forms.ids);
  const emails = new Set(forms.emails);
  const roles: SubjectRole[] = [];
  for (const party of PARTIES) {
    const idPath = `${party.base}/id`;
    const emailPath = `${party.base}/email`;
    const id = row[party.column];
    const email = valueAt(emailPath, disclosures, pseudonyms);
    const byId = personal.has(idPath) && ids.has(id);
    const byEmail =
      personal.has(emailPath) &&
      typeof email === 'string' &&
      (emails.has(email) || emails.has(normalEmail(email)));
    if (byId || byEmail) roles.push(party.role);
  }
  return roles;
}

/**
 * The committed paths of an event that are the subject's, given their roles in it: the rule a
 * bundle verifier checks too (PROTOCOL.md §16.3, `subjectPathsOf` in @vigil/protocol).
 *
 * - `erase` (Art. 17): the fields of every party that is the subject; the request context when
 *   they are the actor; and every committed `/metadata/…` value, since Vigil cannot tell whose
 *   it is: when in doubt, erase.
 * - `export` (Art. 15, 20): the same parties and context, but committed metadata only when no
 *   other person is a party: another person's data must not reach this one (Art. 15(4)).
 */
export function subjectPaths(
  row: MatchRow,
  roles: readonly SubjectRole[],
  mode: 'erase' | 'export',
): string[] {
  return subjectPathsOf(row.personal, roles, mode);
}

/**
 * The paths of a correction (a `vigil/admin/…` event whose `corrects` names one of the subject's
 * events) that hold corrected values of the subject's fields in that event.
 */
export function correctionPaths(
  correctionPersonal: readonly string[],
  subjectPathsInOriginal: readonly string[],
  mode: 'erase' | 'export',
): string[] {
  if (mode === 'erase')
    return correctionPersonal.filter((p) => p.startsWith('/metadata/corrected/')).sort();
  const wanted = new Set(subjectPathsInOriginal.map(correctedValuePath));
  return correctionPersonal.filter((p) => wanted.has(p)).sort();
}
