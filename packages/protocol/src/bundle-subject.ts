import { correctedValuePath, correctionRef } from './correction.js';
import { normalEmail } from './subject.js';
import type { Disclosures, JsonValue } from './types.js';

/**
 * Whose values a subject bundle may hold (PROTOCOL.md §16.3, "Whose values", and §16.5 step 5).
 * The exporter and the verifier share these rules: the exporter decides with them which
 * disclosures an entry carries, the verifier checks with them that a bundle discloses only the
 * subject's values and only events the subject takes part in, from nothing but the bundle.
 */

/** The parties of an event: a role and the pointer of the party's object. */
export const SUBJECT_PARTIES = [
  { role: 'actor', base: '/actor' },
  { role: 'target', base: '/target' },
  { role: 'accessSubject', base: '/access/subject' },
  { role: 'grantedBy', base: '/access/grantedBy' },
] as const;
export type PartyRole = (typeof SUBJECT_PARTIES)[number]['role'];

/** The request context belongs to the actor: exported and erased with them. */
export const ACTOR_CONTEXT_PATHS = [
  '/context/ip',
  '/context/userAgent',
  '/context/sessionId',
  '/context/requestId',
] as const;

/** The admin streams: the only corrections Vigil applies, exports and erases (§18.2). */
export const ADMIN_STREAM_PREFIX = 'vigil/admin/';

/** Where a correction commits its corrected values (§18.1, `correctedValuePath`). */
const CORRECTED_PREFIX = '/metadata/corrected/';

/** Whether the committed paths `personal` name a person in `base` (its id or e-mail). */
function committedParty(personal: readonly string[], base: string): boolean {
  return personal.includes(`${base}/id`) || personal.includes(`${base}/email`);
}

/**
 * The committed paths of an event that are the subject's, given the parties `roles` the subject
 * is (other roles are ignored):
 *
 * - the committed fields of each of those parties;
 * - the committed request context (§5.1) when the subject is the actor;
 * - committed `/metadata/…` values: always for `erase` (Vigil cannot tell whose they are: when in
 *   doubt, erase); for `export` only when no other party has a committed id or e-mail, since
 *   another person's data must not reach this one (GDPR Art. 15(4)).
 *
 * Sorted, without repeats.
 */
export function subjectPathsOf(
  personal: readonly string[],
  roles: readonly string[],
  mode: 'erase' | 'export',
): string[] {
  const out = new Set<string>();
  let parties = 0;
  let others = false;
  for (const party of SUBJECT_PARTIES) {
    if (!roles.includes(party.role)) {
      if (committedParty(personal, party.base)) others = true;
      continue;
    }
    parties++;
    for (const p of personal) if (p.startsWith(`${party.base}/`)) out.add(p);
  }
  if (roles.includes('actor'))
    for (const p of ACTOR_CONTEXT_PATHS) if (personal.includes(p)) out.add(p);
  if (parties > 0 && (mode === 'erase' || !others))
    for (const p of personal) if (p.startsWith('/metadata/')) out.add(p);
  return [...out].sort();
}

/** What a verifier knows of the subject: the id and the normal forms of its addresses. */
export interface BundleSubjectForms {
  readonly id: string;
  readonly emails: ReadonlySet<string>;
}

/** Whether a disclosed value is the subject's id (an `id` field) or one of its addresses. */
function isSubjects(
  field: 'id' | 'email',
  value: JsonValue | undefined,
  subject: BundleSubjectForms,
): boolean {
  if (typeof value !== 'string') return false;
  return field === 'id' ? value === subject.id : subject.emails.has(normalEmail(value));
}

/** What the verifier keeps of an entry whose subject is a party: for corrections of it. */
export interface PartyEntry {
  /** The subject's paths in it (subjectPathsOf, export). */
  readonly paths: readonly string[];
}

export interface SubjectEntryCheck {
  /** Problems, in words, without the entry's location. */
  readonly problems: string[];
  /** Set when the subject is a proven party of the event: what a later correction may use. */
  readonly party?: PartyEntry;
}

/**
 * Checks that an entry's `roles` and `disclosures` are the subject's (PROTOCOL.md §16.5 step 5):
 * each party role is proven by a disclosure of the party's committed `id` that is the subject's
 * id, or of its committed `email` whose normal form (§17.2) is one of the subject's addresses;
 * a `correction` role by a record on an admin stream whose `corrects` names an earlier entry
 * with a proven party role (`earlier`, keyed by id 0x00 hash), or one of whose disclosed
 * values is the subject's; and every disclosed path is one the roles allow (subjectPathsOf for
 * the parties, the corrected values of the subject's paths or the values naming the subject for
 * a correction).
 */
export function subjectEntryProblems(
  record: { readonly stream?: unknown; readonly corrects?: unknown; readonly personal?: unknown },
  disclosures: Disclosures,
  roles: readonly string[],
  subject: BundleSubjectForms,
  earlier: ReadonlyMap<string, PartyEntry>,
): SubjectEntryCheck {
  const problems: string[] = [];
  const personal = Array.isArray(record.personal)
    ? record.personal.filter((p): p is string => typeof p === 'string')
    : [];
  const proven: string[] = [];
  for (const party of SUBJECT_PARTIES) {
    if (!roles.includes(party.role)) continue;
    const byId =
      personal.includes(`${party.base}/id`) &&
      isSubjects('id', disclosures[`${party.base}/id`]?.value, subject);
    const byEmail =
      personal.includes(`${party.base}/email`) &&
      isSubjects('email', disclosures[`${party.base}/email`]?.value, subject);
    if (byId || byEmail) proven.push(party.role);
    else
      problems.push(
        `roles says the subject is the ${party.role}, but neither ${party.base}/id nor ${party.base}/email is committed and disclosed as the subject's: the subject plays no such part`,
      );
  }
  const allowed = new Set(subjectPathsOf(personal, proven, 'export'));
  const party = proven.length > 0 ? { paths: [...allowed] } : undefined;
  // The corrected values of a correction are another event's fields, not this event's metadata:
  // the metadata rule never allows them, only the correction rule below (the subject's paths of
  // the corrected entry, or values that are the subject's id or address).
  if (
    typeof record.stream === 'string' &&
    record.stream.startsWith(ADMIN_STREAM_PREFIX) &&
    correctionRef(record)
  )
    for (const p of [...allowed]) if (p.startsWith(CORRECTED_PREFIX)) allowed.delete(p);
  if (roles.includes('correction')) {
    const ref = correctionRef(record);
    if (typeof record.stream !== 'string' || !record.stream.startsWith(ADMIN_STREAM_PREFIX) || !ref)
      problems.push(
        `roles says correction, but the record is not a correction on a ${ADMIN_STREAM_PREFIX} stream (corrects)`,
      );
    else {
      const original = earlier.get(`${ref.event}\u0000${ref.hash}`);
      const naming = personal.filter(
        (p) =>
          (isSubjects('id', disclosures[p]?.value, subject) ||
            isSubjects('email', disclosures[p]?.value, subject)) &&
          p.startsWith(CORRECTED_PREFIX),
      );
      if (original) {
        const wanted = new Set(original.paths.map(correctedValuePath));
        for (const p of personal) if (wanted.has(p)) allowed.add(p);
      }
      for (const p of naming) allowed.add(p);
      if (!original && naming.length === 0)
        problems.push(
          "roles says correction, but the event it corrects (by id and hash) is no earlier entry of this bundle in which the subject is a party, and none of its disclosed corrected values is the subject's",
        );
    }
  }
  for (const path of Object.keys(disclosures).sort())
    if (!allowed.has(path))
      problems.push(
        `discloses ${path}, which is not the subject's given the roles it proves (${roles.join(', ')}): another person's value or one whose owner is uncertain`,
      );
  return party ? { problems, party } : { problems };
}
