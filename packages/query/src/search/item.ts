import { parsePointer, type Disclosures } from '@vigil/protocol';
import {
  derivedView,
  type DerivedColumnsOut,
  type GeoView,
  type UserAgentView,
} from '../store/derived.js';
import { fromChTime, withinDepth } from '../store/rows.js';

/**
 * One item of a search (PROTOCOL.md §20): the event as analysts read it, kept apart from what
 * the server knows about it, so that a producer's own members are never hidden by the server's
 * (a record may carry unknown members named `hash` or `flags`, §3.4), and, on request, the
 * record bytes and disclosures a client needs to verify the item without asking for a proof.
 */

/**
 * What a search item shows of each committed field of the record (PROTOCOL.md §20.2):
 * - `disclosed`: its plain value, whose disclosure `include=disclosures` returns;
 * - `pseudonymised`: the tenant's pseudonym of the value; its disclosure is kept encrypted and
 *   never returned to searches;
 * - `erased`: the value and salt were deleted by an erasure (§5.4);
 * - `withheld`: no disclosure was ever stored for it (§5.3 allows a producer to withhold one).
 */
export type FieldState = 'disclosed' | 'pseudonymised' | 'erased' | 'withheld';

export const FIELD_STATES: readonly FieldState[] = [
  'disclosed',
  'pseudonymised',
  'erased',
  'withheld',
];

/** What the server adds to an event: never part of the hashed record. */
export interface ServerFields {
  /** When the collector received the event (RFC 3339 UTC with milliseconds). */
  readonly receivedAt: string;
  /** Verdicts of the chain and ingest checks (`gap`, `fork`, `backfill` …). */
  readonly flags: readonly string[];
  /** How the event arrived: `sealed` (SDK), `unchained` (chained by Vigil), `vigil` (its own). */
  readonly source: string;
  /** Where the event is in the log: the partition of its Merkle tree, and its offset. */
  readonly position: { readonly partition: number; readonly offset: number };
  /** Ids of the restrictions (GDPR Art. 18) covering the event; only with includeRestricted. */
  readonly restrictedBy?: readonly string[];
  /** Ids of the corrections applied to `event`, oldest first (§18.2). */
  readonly correctedBy?: readonly string[];
  /** Geolocation of `/context/ip` (personal data derived from it; erased with it). */
  readonly geo?: GeoView;
  /** What the parsed `/context/userAgent` says. */
  readonly ua?: UserAgentView;
}

export interface SearchItem {
  /** hex SHA-256 of the record bytes. */
  readonly hash: string;
  /**
   * The record opened: each committed field holds its disclosed value, its pseudonym, or `null`
   * (erased or withheld, told apart by `personal`); `personal` itself is left out. With
   * corrections applied unless the search asked for the original.
   */
  readonly event: Record<string, unknown>;
  /** The state of every path of the record's `personal` list; a path not listed is in the clear. */
  readonly personal: Record<string, FieldState>;
  readonly server: ServerFields;
  /** With `include=record`: the record bytes as stored (UTF-8), whose SHA-256 is `hash`. */
  readonly record?: string;
  /**
   * With `include=disclosures`: the disclosure (salt and value) of every `disclosed` field, to
   * check against its commitment in `record` (§5.2).
   */
  readonly disclosures?: Disclosures;
}

/** The columns of `events` an item is made of. */
export interface ItemRow extends DerivedColumnsOut {
  readonly received_at: string;
  readonly hash: string;
  readonly record: string;
  readonly disclosures: string;
  readonly pseudonyms: string;
  readonly erased_paths: readonly string[];
  readonly restricted_by: readonly string[];
  readonly flags: readonly string[];
  readonly source: string;
  readonly log_partition: number | string;
  readonly log_offset: number | string;
}

export const ITEM_COLUMNS =
  'received_at, hash, record, disclosures, pseudonyms, erased_paths, restricted_by, flags, source, log_partition, log_offset';

export interface ItemOptions {
  readonly record?: boolean;
  readonly disclosures?: boolean;
}

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The item of one stored row. The record is parsed once; the disclosures column holds only what
 * a search may show in the clear: pseudonymised disclosures live encrypted in another column
 * (privacy/pseudonyms.ts), and erased ones are gone, so a disclosure is returned exactly where
 * its plain value is shown.
 */
export function itemOf(row: ItemRow, options: ItemOptions = {}): SearchItem {
  // A row stored before the depth limit of §3.5 may nest deeper than serialisers survive:
  // withinDepth shows each part too deep as a note (the record bytes are unchanged).
  const event = withinDepth(JSON.parse(row.record), 0) as Obj;
  const stored = row.disclosures === '' ? {} : (JSON.parse(row.disclosures) as Disclosures);
  const pseudonyms =
    row.pseudonyms === '' ? {} : (JSON.parse(row.pseudonyms) as Record<string, string>);
  const erased = new Set(row.erased_paths);
  const personal: Record<string, FieldState> = {};
  const disclosures: Disclosures = {};
  const paths: unknown = event['personal'];
  for (const path of Array.isArray(paths) ? paths : []) {
    if (typeof path !== 'string') continue;
    const tokens = parsePointer(path);
    if (!tokens || tokens.length === 0) continue;
    const disclosure = Object.hasOwn(stored, path) ? stored[path] : undefined;
    const pseudonym = Object.hasOwn(pseudonyms, path) ? pseudonyms[path] : undefined;
    let state: FieldState;
    let value: unknown = null;
    if (disclosure !== undefined) {
      state = 'disclosed';
      value = withinDepth(disclosure.value, tokens.length);
      // A value too deep to serialise (see above) is shown as a note and not returned.
      if (value === disclosure.value) disclosures[path] = disclosure;
    } else if (pseudonym !== undefined) {
      state = 'pseudonymised';
      value = pseudonym;
    } else {
      state = erased.has(path) ? 'erased' : 'withheld';
    }
    personal[path] = state;
    let node: Obj | undefined = event;
    for (let i = 0; node !== undefined && i < tokens.length - 1; i++) {
      const next: unknown = node[tokens[i] as string];
      node = isObject(next) ? next : undefined;
    }
    // A path that does not resolve in the record has no commitment to replace.
    const leaf = tokens[tokens.length - 1] as string;
    if (node !== undefined && Object.hasOwn(node, leaf)) node[leaf] = value;
  }
  delete event['personal'];
  const server: ServerFields = {
    receivedAt: new Date(fromChTime(row.received_at)).toISOString(),
    flags: row.flags,
    source: row.source,
    position: { partition: Number(row.log_partition), offset: Number(row.log_offset) },
    ...(row.restricted_by.length > 0 ? { restrictedBy: row.restricted_by } : {}),
    // Enrichment (geo of the address, parsed user agent), beside the record it is not part of.
    ...derivedView(row),
  };
  return {
    hash: row.hash,
    event,
    personal,
    server,
    ...(options.record === true ? { record: row.record } : {}),
    ...(options.disclosures === true ? { disclosures } : {}),
  };
}
