import { describe, expect, it } from 'vitest';
import type { EventRow } from '@vigil/query';
import { EnrichmentPlugin, openEnrichment } from './enrich.js';
import type { GeoIp } from './geoip.js';
import { UserAgentParser } from './user-agent.js';

const CHROME =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

function row(ip: string | null, userAgent = ''): EventRow {
  return { ip, user_agent: userAgent } as unknown as EventRow;
}

function capture(): { warnings: string[]; logger: { warn(o: object, m: string): void } } {
  const warnings: string[] = [];
  return { warnings, logger: { warn: (_o, m) => warnings.push(m) } };
}

const config = (geo: boolean, ua: boolean, cityDb: string[] = []) => ({
  geoip: { enabled: geo, cityDb, asnDb: [] },
  userAgent: { enabled: ua },
});

describe('EnrichmentPlugin', () => {
  it('adds geo and user agent columns from the plain IP and user agent', async () => {
    const { logger } = capture();
    const plugin = await openEnrichment(config(true, true), logger);
    const r = row('::ffff:8.8.8.8', CHROME);
    plugin.decorate(r);
    expect(r).toMatchObject({
      geo_country: 'US',
      geo_asn: null,
      ua_browser: 'Chrome',
      ua_os: 'Mac OS',
      ua_device: 'desktop',
    });
  });

  it('leaves unknown values empty, with every column present', async () => {
    const { logger } = capture();
    const plugin = await openEnrichment(config(true, true), logger);
    for (const r of [row(null), row('::ffff:10.0.0.1', 'curl/8.0')]) {
      plugin.decorate(r);
      expect(r).toMatchObject({
        geo_country: '',
        geo_region: '',
        geo_city: '',
        geo_latitude: null,
        geo_longitude: null,
        geo_asn: null,
        geo_as_org: '',
        ua_browser: '',
        ua_device: '',
      });
    }
  });

  it('adds nothing for an enrichment that is off', async () => {
    const { logger } = capture();
    const plugin = await openEnrichment(config(false, false), logger);
    const r = row('::ffff:8.8.8.8', CHROME);
    plugin.decorate(r);
    expect(Object.keys(r)).toEqual(['ip', 'user_agent']);
  });

  it('turns geo off with one warning when its database is missing, and keeps parsing user agents', async () => {
    const { logger, warnings } = capture();
    const plugin = await openEnrichment(
      config(true, true, ['/nonexistent/GeoLite2-City.mmdb']),
      logger,
    );
    expect(plugin.enabled).toEqual({ geo: false, asn: false, userAgent: true });
    expect(warnings).toHaveLength(2); // the file, then "geo enrichment is off"
    const r = row('::ffff:8.8.8.8', CHROME);
    plugin.decorate(r);
    expect(r.geo_country).toBeUndefined();
    expect(r.ua_browser).toBe('Chrome');
  });

  it('never fails an event: a failing lookup turns that enrichment off once', () => {
    const { logger, warnings } = capture();
    const failing = {
      lookup() {
        throw new Error('decoder exploded');
      },
    } as unknown as GeoIp;
    const plugin = new EnrichmentPlugin({
      geo: failing,
      userAgent: new UserAgentParser(),
      logger,
    });
    const a = row('::ffff:8.8.8.8', CHROME);
    const b = row('::ffff:8.8.4.4', CHROME);
    expect(() => plugin.decorate(a)).not.toThrow();
    plugin.decorate(b);
    expect(warnings).toEqual(['GeoIP lookup failed; geo enrichment is off']);
    expect(a).toMatchObject({ geo_country: '', ua_browser: 'Chrome' });
    expect(b.ua_browser).toBe('Chrome');
  });

  it('takes AS numbers from the bundled table when geoip.asn is bundled and asnDb is empty', async () => {
    const { logger, warnings } = capture();
    const plugin = await openEnrichment(
      {
        geoip: { enabled: true, cityDb: [], asnDb: [], asn: 'bundled' },
        userAgent: { enabled: false },
      },
      logger,
    );
    expect(warnings).toEqual([]);
    expect(plugin.enabled).toMatchObject({ geo: true, asn: true });
    const r = row('::ffff:8.8.8.8');
    plugin.decorate(r);
    expect(r).toMatchObject({ geo_country: 'US', geo_asn: 15169, geo_as_org: 'Google LLC' });
    const v6 = row('2001:4860:4860::8888');
    plugin.decorate(v6);
    expect(v6.geo_asn).toBe(15169);
    const off = await openEnrichment(config(true, false), logger);
    expect(off.enabled.asn).toBe(false);
  }, 60_000);
});
