import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cityFields, emptyGeo, GeoIp } from './geoip.js';
import { writeMmdb } from './mmdb.testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-geoip-'));
const path = (name: string): string => join(dir, name);

/** A database in MaxMind's GeoIP2 City layout (what a user's GeoLite2-City.mmdb holds). */
const GEOIP2_CITY = writeMmdb({
  databaseType: 'GeoLite2-City',
  networks: [
    {
      network: '81.2.69.0/24',
      data: {
        city: { geoname_id: 2643743, names: { en: 'London', fr: 'Londres' } },
        country: { iso_code: 'GB', names: { en: 'United Kingdom' } },
        location: { latitude: 51.5142, longitude: -0.0931, accuracy_radius: 10 },
        subdivisions: [{ iso_code: 'ENG', names: { en: 'England' } }],
      },
    },
    {
      network: '2a02:ec0::/29',
      data: {
        country: { iso_code: 'DE', names: { de: 'Deutschland' } },
        subdivisions: [{ iso_code: 'BE', names: { de: 'Berlin' } }],
        location: { latitude: 52.52, longitude: 13.4 },
      },
    },
  ],
});

const GEOLITE2_ASN = writeMmdb({
  databaseType: 'GeoLite2-ASN',
  networks: [
    {
      network: '81.2.64.0/18',
      data: { autonomous_system_number: 20712, autonomous_system_organization: 'Andrews & Arnold' },
    },
  ],
});

describe('GeoIp', () => {
  const warnings: string[] = [];
  const warn = (_obj: object, msg: string): void => {
    warnings.push(msg);
  };

  beforeAll(() => {
    writeFileSync(path('city.mmdb'), GEOIP2_CITY);
    writeFileSync(path('asn.mmdb'), GEOLITE2_ASN);
    writeFileSync(path('broken.mmdb'), Buffer.from('this is not a MaxMind database'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the bundled DB-IP City database (flat layout) for IPv4, IPv6 and mapped IPv4', async () => {
    const geo = await GeoIp.open({ cityDbs: [], asnDbs: [], warn });
    expect(geo).toBeDefined();
    const v4 = geo!.lookup('8.8.8.8');
    expect(v4).toMatchObject({ geo_country: 'US', geo_asn: null, geo_as_org: '' });
    expect(v4!.geo_city).not.toBe('');
    expect(v4!.geo_latitude).toEqual(expect.any(Number));
    // The store keeps IPv4 as IPv4-mapped IPv6.
    expect(geo!.lookup('::ffff:8.8.8.8')).toEqual(v4);
    // IPv6 goes to the IPv6 file only (the IPv4 tree would answer with an unrelated network).
    expect(geo!.lookup('2a00:1450:4007:80a::200e')).toMatchObject({ geo_country: 'GB' });
    // Private and documentation ranges are unknown, not an error.
    expect(geo!.lookup('10.1.2.3')).toBeUndefined();
    expect(geo!.lookup('192.0.2.1')).toBeUndefined();
    expect(geo!.lookup('not an ip')).toBeUndefined();
  });

  it("reads a user's GeoIP2-layout city file and an ASN file", async () => {
    const geo = await GeoIp.open({
      cityDbs: [path('city.mmdb')],
      asnDbs: [path('asn.mmdb')],
      warn,
    });
    expect(geo!.lookup('81.2.69.160')).toEqual({
      geo_country: 'GB',
      geo_region: 'England',
      geo_city: 'London',
      geo_latitude: 51.5142,
      geo_longitude: -0.0931,
      geo_asn: 20712,
      geo_as_org: 'Andrews & Arnold',
    });
    // Names fall back to another language when there is no English one.
    expect(geo!.lookup('2a02:ec0:1::1')).toMatchObject({
      geo_country: 'DE',
      geo_region: 'Berlin',
      geo_city: '',
      geo_asn: null,
    });
    // Only the ASN file knows this one.
    expect(geo!.lookup('81.2.100.1')).toEqual({
      ...emptyGeo(),
      geo_asn: 20712,
      geo_as_org: 'Andrews & Arnold',
    });
    expect(geo!.lookup('1.1.1.1')).toBeUndefined();
  });

  it('reports a missing or broken database once and goes on without it', async () => {
    warnings.length = 0;
    const geo = await GeoIp.open({
      cityDbs: [path('missing.mmdb'), path('broken.mmdb'), path('city.mmdb')],
      asnDbs: [],
      warn,
    });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/city database cannot be read/);
    expect(geo!.lookup('81.2.69.1')?.geo_city).toBe('London');

    warnings.length = 0;
    const none = await GeoIp.open({ cityDbs: [path('broken.mmdb')], asnDbs: [], warn });
    expect(none).toBeUndefined();
    expect(warnings).toEqual([
      expect.stringMatching(/cannot be read/),
      expect.stringMatching(/geo enrichment is off/),
    ]);
  });

  it('maps both record layouts', () => {
    expect(
      cityFields({
        city: 'Lyon',
        country_code: 'FR',
        state1: 'Auvergne-Rhône-Alpes',
        latitude: 45.75,
        longitude: 4.85,
      }),
    ).toEqual({
      ...emptyGeo(),
      geo_country: 'FR',
      geo_region: 'Auvergne-Rhône-Alpes',
      geo_city: 'Lyon',
      geo_latitude: 45.75,
      geo_longitude: 4.85,
    });
    expect(
      cityFields({
        country: { iso_code: 'US' },
        traits: { autonomous_system_number: 15169, autonomous_system_organization: 'GOOGLE' },
      }),
    ).toEqual({ ...emptyGeo(), geo_country: 'US', geo_asn: 15169, geo_as_org: 'GOOGLE' });
    expect(cityFields({})).toEqual(emptyGeo());
  });
});
