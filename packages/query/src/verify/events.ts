import {
  checkSealedEvent,
  columnDigestHex,
  eventLeafHash,
  isCanonicalRecord,
  sha256Hex,
  type Disclosures,
  type EventRecord,
  type SealedEvent,
} from '@vigil/protocol';
import { openDisclosures, rowPrivacyOf, type RowPrivacy } from '../privacy/pseudonyms.js';
import { PERSONAL_COLUMNS, type EventRow } from '../store/event-columns.js';
import { eventRow, type EventSource } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { TEXT_COLUMNS } from './event-sql.js';
import type { Category } from './findings.js';

/**
 * The reference checks of one stored event, in JavaScript (PROTOCOL.md §8.1, §19): used for
 * every row the engine's checks (event-sql.ts) did not pass, so that each failure is named
 * precisely, and for rows the engine cannot decide. They call the protocol's own functions —
 * checkSealedEvent, isCanonicalRecord — and the store's own derivation of typed columns,
 * store/rows.ts eventRow, with the tenant's pseudonymisation when its key is at hand.
 */

/** A tenant key as the pseudonymisation needs it (privacy/keys.ts TenantKey). */
export interface VerifierTenantKey {
  readonly keyId: string;
  readonly pseudonymKey: Buffer;
  readonly encryptionKey: Buffer;
}

/** Gives the verifier a tenant key, when it runs where the privacy master key is. */
export type TenantKeyLookup = (
  tenant: string,
  keyId: string,
) => Promise<VerifierTenantKey | undefined>;

export interface StoredEventRow {
  readonly eid: string;
  readonly h: string;
  readonly rec: string;
  readonly disc: string;
  readonly fl: readonly string[];
  readonly tm: string;
  readonly sq: string;
  readonly ipt: string | null;
  readonly personal: readonly string[];
  readonly leaf_hash: string;
  readonly log_partition: number | string;
  readonly leaf_index: number | string;
  readonly source: string;
  readonly erased_paths?: readonly string[];
  readonly pseudonyms?: string;
  readonly pseudonym_key?: string;
  readonly protected_disclosures?: string;
  readonly [column: string]: unknown;
}

export interface EventProblem {
  readonly category: Category;
  readonly message: string;
  readonly paths?: readonly string[];
}

export interface EventVerdict {
  readonly eventId: string;
  readonly eventHash: string;
  readonly stream?: string;
  readonly seq?: number;
  readonly partition: number;
  readonly leafIndex?: number;
  readonly problems: readonly EventProblem[];
  /** The record is not canonical and the consumer flagged it so (needs a signed integrity event). */
  readonly flaggedNoncanonical: boolean;
}

/** The columns a JavaScript check reads; aliases differ from column names (ClickHouse resolves them in WHERE). */
export function storedEventColumns(privacyColumns: boolean): string {
  const text = TEXT_COLUMNS.map(([column]) => column).join(', ');
  const privacy = privacyColumns
    ? ', erased_paths, pseudonyms, pseudonym_key, protected_disclosures, corrects_id'
    : '';
  return `toString(id) AS eid, hash AS h, record AS rec, disclosures AS disc, flags AS fl,
    toString(time) AS tm, toString(seq) AS sq, if(isNull(ip), NULL, toString(ip)) AS ipt, personal,
    leaf_hash, log_partition, leaf_index, source, ${text}${privacy}`;
}

/** Reads the stored rows of the given events (by id; every stored copy of each). */
export async function fetchEvents(
  store: Store,
  tenant: string,
  ids: readonly string[],
  privacyColumns: boolean,
): Promise<StoredEventRow[]> {
  const out: StoredEventRow[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await store.query<StoredEventRow>(
      `SELECT ${storedEventColumns(privacyColumns)}
       FROM ${store.table('events')} FINAL
       WHERE tenant_id = {tenant:String} AND id IN {ids:Array(UUID)}`,
      { tenant, ids: ids.slice(i, i + 500) },
    );
    out.push(...rows);
  }
  return out;
}

/** An address as one comparable text (WHATWG URL host serialisation), or undefined. */
function normalIp(text: string | null | undefined): string | undefined {
  if (text === null || text === undefined || text === '') return undefined;
  try {
    return new URL(`http://[${text}]/`).hostname;
  } catch {
    return `invalid:${text}`;
  }
}

const META = {
  receivedAt: 0,
  keyId: '',
  submittedDigest: '',
  logPartition: 0,
  logOffset: 0,
  logIndex: 0,
  expiresAt: 0,
  flags: [],
} as const;

/** Typed columns that differ between the stored row and the derivation. */
function differingColumns(expected: EventRow, stored: StoredEventRow): string[] {
  const out: string[] = [];
  if (expected.id !== stored.eid) out.push('id');
  if (expected.time !== stored.tm) out.push('time');
  if (String(expected.seq) !== stored.sq) out.push('seq');
  const e = expected as unknown as Record<string, unknown>;
  for (const [column] of TEXT_COLUMNS) if (e[column] !== stored[column]) out.push(column);
  if (normalIp(expected.ip) !== normalIp(stored.ipt)) out.push('ip');
  if (JSON.stringify(expected.personal) !== JSON.stringify(stored.personal)) out.push('personal');
  if (stored['corrects_id'] !== undefined && expected.corrects_id !== stored['corrects_id'])
    out.push('corrects_id');
  return out;
}

function describeDetail(path: string, message: string): EventProblem {
  if (path === '/hash')
    return { category: 'edited', message: 'the record bytes do not hash to the stored event hash' };
  if (path.startsWith('/disclosures/')) {
    const pointer = path.slice('/disclosures/'.length).split('/')[0] ?? '';
    const field = pointer.replaceAll('~1', '/').replaceAll('~0', '~');
    return {
      category: 'edited',
      message: `the disclosure of ${field} ${message}`,
      paths: [field],
    };
  }
  return { category: 'edited', message: `the record fails ${path}: ${message}` };
}

/**
 * Checks one stored row with the reference code. `key`, when the row is pseudonymised and the
 * tenant key is available, lets the pseudonyms and the encrypted disclosures be recomputed.
 */
export function checkStoredEvent(
  tenant: string,
  stored: StoredEventRow,
  key: VerifierTenantKey | undefined,
): EventVerdict {
  const problems: EventProblem[] = [];
  const partition = Number(stored.log_partition);
  const base = {
    eventId: stored.eid,
    eventHash: stored.h,
    partition,
    ...(stored.leaf_hash === '' ? {} : { leafIndex: Number(stored.leaf_index) }),
  };
  let parsed: EventRecord;
  try {
    parsed = JSON.parse(stored.rec) as EventRecord;
  } catch {
    if (sha256Hex(stored.rec) !== stored.h)
      problems.push({
        category: 'edited',
        message: 'the record bytes do not hash to the stored event hash',
      });
    problems.push({ category: 'edited', message: 'the stored record is not JSON' });
    return { ...base, problems, flaggedNoncanonical: false };
  }
  let disclosures: Disclosures = {};
  try {
    disclosures = stored.disc === '' ? {} : (JSON.parse(stored.disc) as Disclosures);
  } catch {
    problems.push({ category: 'edited', message: 'the stored disclosures are not JSON' });
  }
  // Pseudonymised paths (privacy/pseudonyms.ts): their disclosures are encrypted apart.
  const pseudonyms: Record<string, string> =
    stored.pseudonyms !== undefined && stored.pseudonyms !== ''
      ? (JSON.parse(stored.pseudonyms) as Record<string, string>)
      : {};
  const pseudonymised = Object.keys(pseudonyms);
  let privacy: RowPrivacy | undefined;
  let all = disclosures;
  if (pseudonymised.length > 0 && key) {
    try {
      const opened = openDisclosures(stored.protected_disclosures ?? '', key.encryptionKey, {
        tenant,
        id: stored.eid,
        hash: stored.h,
      });
      all = { ...disclosures, ...opened };
      privacy = rowPrivacyOf({ tenant_id: tenant, pseudonyms: stored.pseudonyms ?? '' }, key);
    } catch {
      problems.push({
        category: 'edited',
        message: 'the encrypted disclosures do not open with the tenant key (altered or moved)',
        paths: pseudonymised,
      });
    }
  } else if (pseudonymised.length > 0) {
    problems.push({
      category: 'pseudonymised',
      message: 'pseudonymised values not checked: the tenant key is not available here',
      paths: pseudonymised,
    });
  }
  const wire: SealedEvent =
    Object.keys(all).length > 0
      ? { record: stored.rec, hash: stored.h, disclosures: all }
      : { record: stored.rec, hash: stored.h };
  const checked = checkSealedEvent(wire);
  if (!checked.ok) {
    for (const d of checked.details) {
      // Streams Vigil writes itself (key/…, vigil/…) are reserved for producers, not for it.
      if (d.path === '/record/stream') continue;
      problems.push(describeDetail(d.path, d.message));
    }
  }
  const flagged = stored.fl.includes('noncanonical');
  const canonical = isCanonicalRecord(stored.rec, parsed);
  if (!canonical && !flagged)
    problems.push({
      category: 'edited',
      message:
        'the record is not in RFC 8785 canonical form, and its row lacks the noncanonical flag the consumer sets',
    });
  if (canonical && flagged)
    problems.push({
      category: 'edited',
      message: 'the row is flagged noncanonical but its record is canonical',
    });
  if (typeof parsed.stream === 'string' && Number.isSafeInteger(parsed.seq)) {
    const expected = eventRow(
      { record: stored.rec, hash: stored.h },
      parsed,
      privacy ? all : disclosures,
      { ...META, tenantId: tenant, source: stored.source as EventSource },
      privacy,
    );
    if (!privacy && pseudonymised.length > 0) {
      // Without the key, a pseudonymised column must at least hold the pseudonym the row lists.
      const columns = PERSONAL_COLUMNS as Readonly<Record<string, string>>;
      const e = expected as unknown as Record<string, unknown>;
      for (const path of pseudonymised) {
        const column = columns[path];
        if (column !== undefined) e[column] = pseudonyms[path];
      }
    }
    const differing = differingColumns(expected, stored);
    if (differing.length > 0)
      problems.push({
        category: 'edited',
        message: `typed columns differ from the record and its disclosures: ${differing.join(', ')}`,
        paths: differing,
      });
    if (privacy && (expected.pseudonyms ?? '') !== (stored.pseudonyms ?? ''))
      problems.push({
        category: 'edited',
        message: 'the stored pseudonyms are not those of the disclosed values',
        paths: pseudonymised,
      });
    if (stored.leaf_hash !== '') {
      let columns = '';
      try {
        columns = columnDigestHex(parsed);
      } catch {
        // An invalid record has no column digest; checkSealedEvent named what is wrong.
      }
      const leaf =
        /^[0-9a-f]{64}$/.test(stored.h) && columns !== ''
          ? eventLeafHash({
              tenant,
              stream: parsed.stream,
              seq: parsed.seq,
              eventHash: stored.h,
              columns,
            }).toString('hex')
          : '';
      if (leaf !== stored.leaf_hash)
        problems.push({
          category: 'edited',
          message:
            "the row's leaf hash does not bind its tenant, stream, seq, event hash and the column digest of its record",
        });
    }
  }
  return {
    ...base,
    ...(typeof parsed.stream === 'string' ? { stream: parsed.stream } : {}),
    ...(Number.isSafeInteger(parsed.seq) ? { seq: parsed.seq } : {}),
    problems,
    flaggedNoncanonical: flagged && !canonical,
  };
}

/** Checks stored rows with the reference code, fetching tenant keys as needed. */
export async function checkStoredEvents(
  tenant: string,
  rows: readonly StoredEventRow[],
  keys: TenantKeyLookup | undefined,
): Promise<EventVerdict[]> {
  const cache = new Map<string, VerifierTenantKey | undefined>();
  const out: EventVerdict[] = [];
  for (const row of rows) {
    let key: VerifierTenantKey | undefined;
    const keyId = row.pseudonym_key ?? '';
    if (keyId !== '' && keys) {
      if (!cache.has(keyId)) cache.set(keyId, await keys(tenant, keyId));
      key = cache.get(keyId);
    }
    try {
      out.push(checkStoredEvent(tenant, row, key));
    } catch (error) {
      // A row the reference code cannot even read (one stored before the depth limit of
      // PROTOCOL.md §3.5, say) is a finding about that row, never the end of the verification.
      out.push({
        eventId: row.eid,
        eventHash: row.h,
        partition: Number(row.log_partition),
        ...(row.leaf_hash === '' ? {} : { leafIndex: Number(row.leaf_index) }),
        problems: [
          {
            category: 'edited',
            message: `the stored row cannot be checked: ${(error as Error).message}`,
          },
        ],
        flaggedNoncanonical: false,
      });
    }
  }
  return out;
}
