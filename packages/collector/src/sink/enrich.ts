import type { EventRow } from '@vigil/query';
import type { EnrichConfig } from '../stage-config.js';
import { bundledAsnTable, type AsnTable } from './asn-table.js';
import { emptyGeo, GeoIp, type GeoFields } from './geoip.js';
import type { SinkPlugin } from './plugins.js';
import { UserAgentParser, type UserAgentFields } from './user-agent.js';

/**
 * Enrichment of stored events: where the request came from (GeoIP on `/context/ip`) and what
 * sent it (the parsed `/context/userAgent`), written to the derived columns of `events`
 * (packages/query/src/store/derived.ts). It reads the plain values the row already holds (the
 * disclosures), so a withheld field stays unenriched. The results are personal data like their
 * sources (PROTOCOL.md §5.1), erased with them.
 *
 * Enrichment never fails an event: unknown stays empty (or NULL), and a database that is
 * missing or breaks is reported once and that enrichment turned off.
 */

export interface EnrichmentLogger {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

export interface EnrichmentOptions {
  readonly geo?: GeoIp | undefined;
  readonly userAgent?: UserAgentParser | undefined;
  readonly logger: EnrichmentLogger;
}

const NO_GEO: GeoFields = Object.freeze(emptyGeo());

const NO_USER_AGENT: UserAgentFields = Object.freeze({
  ua_browser: '',
  ua_browser_version: '',
  ua_os: '',
  ua_os_version: '',
  ua_device: '',
});

export class EnrichmentPlugin implements SinkPlugin {
  readonly name = 'enrichment';
  private geo: GeoIp | undefined;
  private userAgent: UserAgentParser | undefined;
  private readonly logger: EnrichmentLogger;

  constructor(options: EnrichmentOptions) {
    this.geo = options.geo;
    this.userAgent = options.userAgent;
    this.logger = options.logger;
  }

  get enabled(): { geo: boolean; asn: boolean; userAgent: boolean } {
    return {
      geo: this.geo !== undefined,
      asn: this.geo?.hasAsn ?? false,
      userAgent: this.userAgent !== undefined,
    };
  }

  decorate(row: EventRow): void {
    // Every row gets every column of an enabled enrichment, known or not: one object shape.
    if (this.geo) {
      let geo: GeoFields | undefined;
      try {
        geo = row.ip === null ? undefined : this.geo.lookup(row.ip);
      } catch (error) {
        this.geo = undefined;
        this.logger.warn({ err: error }, 'GeoIP lookup failed; geo enrichment is off');
      }
      setGeo(row, geo ?? NO_GEO);
    }
    if (this.userAgent) {
      let ua: UserAgentFields | undefined;
      try {
        ua = row.user_agent === '' ? undefined : this.userAgent.parse(row.user_agent);
      } catch (error) {
        this.userAgent = undefined;
        this.logger.warn({ err: error }, 'user agent parsing failed; user agent enrichment is off');
      }
      setUserAgent(row, ua ?? NO_USER_AGENT);
    }
  }
}

// Plain assignments in a fixed order, so every row gets the same columns in the same order
// (one object shape for the insert's serialiser).
function setGeo(row: EventRow, g: GeoFields): void {
  row.geo_country = g.geo_country;
  row.geo_region = g.geo_region;
  row.geo_city = g.geo_city;
  row.geo_latitude = g.geo_latitude;
  row.geo_longitude = g.geo_longitude;
  row.geo_asn = g.geo_asn;
  row.geo_as_org = g.geo_as_org;
}

function setUserAgent(row: EventRow, u: UserAgentFields): void {
  row.ua_browser = u.ua_browser;
  row.ua_browser_version = u.ua_browser_version;
  row.ua_os = u.ua_os;
  row.ua_os_version = u.ua_os_version;
  row.ua_device = u.ua_device;
}

/** The enrichment plugin as the configuration asks for it (databases opened once, here). */
export async function openEnrichment(
  config: EnrichConfig,
  logger: EnrichmentLogger,
): Promise<EnrichmentPlugin> {
  let asnTable: AsnTable | undefined;
  // geoip.asnDb files take precedence over the bundled table.
  if (config.geoip.enabled && config.geoip.asnDb.length === 0 && config.geoip.asn === 'bundled') {
    try {
      asnTable = await bundledAsnTable();
    } catch (error) {
      logger.warn(
        { err: error },
        'the bundled ASN data (@ip-location-db/asn) cannot be read; continuing without AS numbers',
      );
    }
  }
  const geo = config.geoip.enabled
    ? await GeoIp.open({
        cityDbs: config.geoip.cityDb,
        asnDbs: config.geoip.asnDb,
        asnTable,
        warn: (obj, msg) => logger.warn(obj, msg),
      })
    : undefined;
  if (geo) logger.info?.(geo.paths, 'GeoIP enrichment on');
  const userAgent = config.userAgent.enabled ? new UserAgentParser() : undefined;
  return new EnrichmentPlugin({ geo, userAgent, logger });
}
