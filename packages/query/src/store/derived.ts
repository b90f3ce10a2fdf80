/**
 * Columns of `events` that Vigil derives from an event after it is sealed (enrichment): where an
 * address is (GeoIP) and what software sent the request (user agent). They are not part of the
 * hashed record, which was fixed before they existed, and the sink fills them from the plain
 * values it holds: the disclosed `/context/ip` and `/context/userAgent`.
 *
 * Both sources are personal fields (PROTOCOL.md §5.1), so everything derived from them is
 * personal data too and is erased with them (§5.4). DERIVED_PERSONAL_COLUMNS is the one list an
 * erasure reads to know which columns to blank besides the disclosures: keep every new derived
 * column in it, under the path of the field it comes from.
 */

/** Geolocation of `/context/ip`; unknown parts are '' (text) or null (numbers). */
export interface GeoColumns {
  /** ISO 3166-1 alpha-2 country code, `FR`. */
  geo_country: string;
  /** First-level subdivision (state, region) name, `Île-de-France`. */
  geo_region: string;
  geo_city: string;
  geo_latitude: number | null;
  geo_longitude: number | null;
  /** Autonomous system number of the network the address belongs to. */
  geo_asn: number | null;
  geo_as_org: string;
}

/** What a parsed `/context/userAgent` says; unknown parts are ''. */
export interface UserAgentColumns {
  ua_browser: string;
  ua_browser_version: string;
  ua_os: string;
  ua_os_version: string;
  /** desktop, mobile, tablet, smarttv, wearable, console, embedded, xr, or '' when unknown. */
  ua_device: string;
}

export type DerivedColumns = GeoColumns & UserAgentColumns;
export type DerivedColumn = keyof DerivedColumns;

export const GEO_COLUMNS = [
  'geo_country',
  'geo_region',
  'geo_city',
  'geo_latitude',
  'geo_longitude',
  'geo_asn',
  'geo_as_org',
] as const satisfies readonly (keyof GeoColumns)[];

export const USER_AGENT_COLUMNS = [
  'ua_browser',
  'ua_browser_version',
  'ua_os',
  'ua_os_version',
  'ua_device',
] as const satisfies readonly (keyof UserAgentColumns)[];

/**
 * Derived columns by the personal field they come from. Erasing that field (its disclosure)
 * must set these columns to their erased value too (ERASED_VALUES).
 */
export const DERIVED_PERSONAL_COLUMNS: Readonly<Record<string, readonly DerivedColumn[]>> = {
  '/context/ip': GEO_COLUMNS,
  '/context/userAgent': USER_AGENT_COLUMNS,
};

/** The value of each derived column once erased (or never known): its column DEFAULT. */
export const ERASED_VALUES: { readonly [K in DerivedColumn]: DerivedColumns[K] } = {
  geo_country: '',
  geo_region: '',
  geo_city: '',
  geo_latitude: null,
  geo_longitude: null,
  geo_asn: null,
  geo_as_org: '',
  ua_browser: '',
  ua_browser_version: '',
  ua_os: '',
  ua_os_version: '',
  ua_device: '',
};

/** ClickHouse types of the derived columns, as migration 2 added them (derived.test.ts checks). */
export const DERIVED_COLUMN_TYPES: { readonly [K in DerivedColumn]: string } = {
  geo_country: 'LowCardinality(String)',
  geo_region: 'String',
  geo_city: 'String',
  geo_latitude: 'Nullable(Float32)',
  geo_longitude: 'Nullable(Float32)',
  geo_asn: 'Nullable(UInt32)',
  geo_as_org: 'String',
  ua_browser: 'LowCardinality(String)',
  ua_browser_version: 'String',
  ua_os: 'LowCardinality(String)',
  ua_os_version: 'String',
  ua_device: 'LowCardinality(String)',
};

/** The derived columns for a SELECT list. */
export const DERIVED_SELECT = [...GEO_COLUMNS, ...USER_AGENT_COLUMNS].join(', ');

/** Derived columns as a query returns them (JSONEachRow may quote numbers). */
export type DerivedColumnsOut = {
  [K in DerivedColumn]?: DerivedColumns[K] extends number | null ? number | string | null : string;
};

export interface GeoView {
  readonly country?: string;
  readonly region?: string;
  readonly city?: string;
  readonly latitude?: number;
  readonly longitude?: number;
  readonly asn?: number;
  readonly asOrganization?: string;
}

export interface UserAgentView {
  readonly browser?: string;
  readonly browserVersion?: string;
  readonly os?: string;
  readonly osVersion?: string;
  readonly device?: string;
}

/**
 * `geo` and `ua` of an event as search shows them: only what is known, and no object at all
 * when nothing is (never enriched, no address, or erased).
 */
export function derivedView(row: DerivedColumnsOut): { geo?: GeoView; ua?: UserAgentView } {
  const geo = compact<GeoView>({
    country: text(row.geo_country),
    region: text(row.geo_region),
    city: text(row.geo_city),
    latitude: num(row.geo_latitude),
    longitude: num(row.geo_longitude),
    asn: num(row.geo_asn),
    asOrganization: text(row.geo_as_org),
  });
  const ua = compact<UserAgentView>({
    browser: text(row.ua_browser),
    browserVersion: text(row.ua_browser_version),
    os: text(row.ua_os),
    osVersion: text(row.ua_os_version),
    device: text(row.ua_device),
  });
  return { ...(geo ? { geo } : {}), ...(ua ? { ua } : {}) };
}

function text(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function num(value: number | string | null | undefined): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** The members of `value` that are defined; undefined when none is. */
function compact<T extends object>(value: { [K in keyof T]-?: T[K] | undefined }): T | undefined {
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) {
      out[k] = v;
      any = true;
    }
  }
  return any ? (out as T) : undefined;
}
