import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { canonicalValue, normalEmail, type Disclosures, type JsonValue } from '@vigil/protocol';
import { ERASED_VALUES } from '../store/derived.js';
import { PERSONAL_COLUMNS, type EventRow } from '../store/event-columns.js';

/**
 * Pseudonymisation per tenant (GDPR Art. 4(5), Art. 25 and 32; seeds 000 §4.1, 004 §13.4). A
 * tenant chooses kinds of personal fields (e-mail, IP address …); for those, what analysts read
 * is a keyed pseudonym, never the value:
 *
 * - the typed columns and the search view hold HMAC-SHA-256 pseudonyms (RFC 2104) under the
 *   tenant's key: the same value gives the same pseudonym, so analysts can still count, group
 *   and follow one person, but cannot tell who it is;
 * - the plain values still have to be kept (they open the commitments, an export gives them to
 *   the person), so their disclosures move out of `disclosures` into `protected_disclosures`,
 *   encrypted with AES-256-GCM under a key derived from the same tenant key.
 *
 * Destroying the tenant key (privacy/keys.ts) therefore anonymises every event stored under it
 * at once: pseudonyms can no longer be linked to anyone and the encrypted values can no longer
 * be read, while the records, their commitments and every proof stay as they were.
 */

/** Kinds of personal fields a tenant can pseudonymise. */
export const PSEUDONYM_FIELDS = [
  'id',
  'name',
  'email',
  'ip',
  'userAgent',
  'sessionId',
  'requestId',
  'metadata',
] as const;
export type PseudonymField = (typeof PSEUDONYM_FIELDS)[number];

/** What the pseudonymisation of one tenant's rows needs (privacy/keys.ts makes it). */
export interface RowPrivacy {
  readonly tenant: string;
  /** The tenant key the pseudonyms and the encryption come from. */
  readonly keyId: string;
  readonly fields: ReadonlySet<PseudonymField>;
  readonly pseudonymKey: Buffer;
  readonly encryptionKey: Buffer;
}

const PARTY_FIELD = /^\/(?:actor|target|access\/subject|access\/grantedBy)\/(id|name|email)$/;
const CONTEXT_FIELDS: Readonly<Record<string, PseudonymField>> = {
  '/context/ip': 'ip',
  '/context/userAgent': 'userAgent',
  '/context/sessionId': 'sessionId',
  '/context/requestId': 'requestId',
};

/** The kind of a committed path, or undefined for a path no setting covers. */
export function fieldOfPath(path: string): PseudonymField | undefined {
  const party = PARTY_FIELD.exec(path);
  if (party) return party[1] as 'id' | 'name' | 'email';
  if (path.startsWith('/metadata/')) return 'metadata';
  return CONTEXT_FIELDS[path];
}

/** RFC 5952 text of eight 16-bit groups: lower-case, no leading zeros, `::` for the longest run. */
function ipv6Text(groups: readonly number[]): string {
  let best = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLength).join(':')}`;
}

/**
 * The pseudonym of a value: HMAC-SHA-256 under the tenant's pseudonym key over
 * "vigil.pseudonym.v1" 0x00 kind 0x00 value (a string as it is, other values in RFC 8785 form;
 * e-mail addresses lower-cased). Ids of any party share one kind, so a person reads the same as
 * actor and as target. Text columns get `ps_` and 22 base64url characters (128 bits); an address
 * gets an IPv6 address in 100::/64, the discard-only prefix of RFC 6666, so a pseudonym can
 * never be taken for a real address and still fits the `ip` column.
 */
export function pseudonymOf(key: Buffer, field: PseudonymField, value: JsonValue): string {
  let text = typeof value === 'string' ? value : canonicalValue(value);
  if (field === 'email' && typeof value === 'string') text = normalEmail(value);
  const mac = createHmac('sha256', key)
    .update(`vigil.pseudonym.v1\u0000${field}\u0000`, 'utf8')
    .update(text, 'utf8')
    .digest();
  if (field !== 'ip') return `ps_${mac.subarray(0, 16).toString('base64url')}`;
  const groups = [0x100, 0, 0, 0];
  for (let i = 0; i < 8; i += 2) groups.push(mac.readUInt16BE(i));
  return ipv6Text(groups);
}

/** Whether a text is a pseudonym this module makes (for views that must not show it as a value). */
export function isPseudonym(text: string): boolean {
  return /^ps_[A-Za-z0-9_-]{22}$/.test(text) || /^100::/.test(text);
}

const PROTECTED_PREFIX = 'v1.';

function aad(tenant: string, eventId: string, hash: string): Buffer {
  return Buffer.from(`vigil.protected.v1\u0000${tenant}\u0000${eventId}\u0000${hash}`, 'utf8');
}

/**
 * Encrypts disclosures with AES-256-GCM (NIST SP 800-38D; 96-bit random nonce), bound to the
 * row they belong to (tenant, event id and hash as additional data), so a ciphertext moved to
 * another row does not open. `v1.` + base64url(nonce ‖ ciphertext ‖ tag).
 */
export function sealDisclosures(
  disclosures: Disclosures,
  key: Buffer,
  row: { readonly tenant: string; readonly id: string; readonly hash: string },
): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(row.tenant, row.id, row.hash));
  const body = Buffer.concat([cipher.update(JSON.stringify(disclosures), 'utf8'), cipher.final()]);
  return PROTECTED_PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

/** Opens `protected_disclosures`; throws when the key is not the one it was sealed with. */
export function openDisclosures(
  text: string,
  key: Buffer,
  row: { readonly tenant: string; readonly id: string; readonly hash: string },
): Disclosures {
  if (text === '') return {};
  if (!text.startsWith(PROTECTED_PREFIX)) throw new Error('not a v1 protected disclosure');
  const bytes = Buffer.from(text.slice(PROTECTED_PREFIX.length), 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
  decipher.setAAD(aad(row.tenant, row.id, row.hash));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  const plain = Buffer.concat([
    decipher.update(bytes.subarray(12, bytes.length - 16)),
    decipher.final(),
  ]);
  return JSON.parse(plain.toString('utf8')) as Disclosures;
}

/** A column's pseudonym as it is stored (the `ip` column takes the address form). */
function columnValue(column: string, pseudonym: string): string {
  return column === 'ip' && isIPv4(pseudonym) ? `::ffff:${pseudonym}` : pseudonym;
}

/** Geolocation finer than the country and network is dropped with a pseudonymised address. */
const FINE_GEO = ['geo_region', 'geo_city', 'geo_latitude', 'geo_longitude'] as const;

/**
 * Pseudonymises a row built by eventRow from plain disclosures: for every disclosed path of a
 * chosen kind, the typed column and `pseudonyms` get its pseudonym, and its disclosure moves,
 * encrypted, to `protected_disclosures`. Part of the shared derivation (store/rows.ts eventRow),
 * so a verifier that holds the tenant key recomputes exactly these columns.
 */
export function protectRow(
  row: EventRow,
  parsed: { readonly id: string },
  disclosures: Disclosures | undefined,
  privacy: RowPrivacy,
): void {
  if (!disclosures || privacy.fields.size === 0) return;
  const kept: Disclosures = {};
  const moved: Disclosures = {};
  const pseudonyms: Record<string, string> = {};
  for (const [path, d] of Object.entries(disclosures)) {
    const field = fieldOfPath(path);
    if (field !== undefined && privacy.fields.has(field)) {
      moved[path] = d;
      pseudonyms[path] = pseudonymOf(privacy.pseudonymKey, field, d.value);
    } else {
      kept[path] = d;
    }
  }
  const paths = Object.keys(pseudonyms).sort();
  if (paths.length === 0) return;
  row.disclosures = JSON.stringify(kept);
  row.pseudonyms = JSON.stringify(Object.fromEntries(paths.map((p) => [p, pseudonyms[p]])));
  row.pseudonym_key = privacy.keyId;
  row.protected_disclosures = sealDisclosures(moved, privacy.encryptionKey, {
    tenant: privacy.tenant,
    id: parsed.id,
    hash: row.hash,
  });
  const columns = PERSONAL_COLUMNS as Readonly<Record<string, string>>;
  for (const path of paths) {
    const column = columns[path];
    if (column === undefined) continue;
    (row as unknown as Record<string, unknown>)[column] = columnValue(
      column,
      pseudonyms[path] as string,
    );
  }
  if (pseudonyms['/context/ip'] !== undefined && row.geo_city !== undefined) {
    for (const c of FINE_GEO) (row as unknown as Record<string, unknown>)[c] = ERASED_VALUES[c];
  }
}

/** The privacy a stored row was written with: its own pseudonymised kinds, under `key`. */
export function rowPrivacyOf(
  row: { readonly tenant_id: string; readonly pseudonyms?: string },
  key: { readonly keyId: string; readonly pseudonymKey: Buffer; readonly encryptionKey: Buffer },
): RowPrivacy {
  const paths = row.pseudonyms ? Object.keys(JSON.parse(row.pseudonyms) as object) : [];
  const fields = new Set<PseudonymField>();
  for (const p of paths) {
    const f = fieldOfPath(p);
    if (f) fields.add(f);
  }
  return { tenant: row.tenant_id, ...key, fields };
}
