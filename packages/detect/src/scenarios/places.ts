/**
 * The small built-in table of places and networks the scenario generator draws enrichment from
 * (no GeoIP database: the generator writes `DetectionEvent.enrichment` directly). Offsets are
 * the winter ones: scenarios start on 2026-01-05 and last at most eight weeks, before any
 * daylight saving change of these zones (Europe 29 March, United States 8 March 2026).
 *
 * Relay, VPN and satellite networks are in the mix: Apple iCloud Private Relay egress (AS36183,
 * geolocated to the egress, often another country than the user's) and in-flight satellite
 * Wi-Fi (AS22351, geolocated at the ground station), both on the impossible-travel rule's
 * skip list, and a commercial VPN (AS9009, M247) that is not.
 */

export interface Network {
  readonly asn: number;
  readonly org: string;
  /** First two octets of the addresses handed out (IPv4). */
  readonly prefix: string;
}

export interface City {
  readonly name: string;
  readonly country: string;
  readonly lat: number;
  readonly lon: number;
  /** UTC offset in hours in January–February. */
  readonly offset: number;
  /** IANA zone (for tenants at home in this city). */
  readonly zone: string;
  /** Residential broadband networks. */
  readonly isps: readonly Network[];
  readonly mobile: Network;
  /** A business network for office NAT addresses. */
  readonly office: Network;
}

export const CITIES: Readonly<Record<string, City>> = {
  paris: {
    name: 'Paris',
    country: 'FR',
    lat: 48.8566,
    lon: 2.3522,
    offset: 1,
    zone: 'Europe/Paris',
    isps: [
      { asn: 3215, org: 'Orange', prefix: '90.12' },
      { asn: 12322, org: 'Free', prefix: '82.64' },
    ],
    mobile: { asn: 15557, org: 'SFR', prefix: '176.128' },
    office: { asn: 5511, org: 'Orange Business', prefix: '193.252' },
  },
  lyon: {
    name: 'Lyon',
    country: 'FR',
    lat: 45.764,
    lon: 4.8357,
    offset: 1,
    zone: 'Europe/Paris',
    isps: [
      { asn: 3215, org: 'Orange', prefix: '90.20' },
      { asn: 5410, org: 'Bouygues Telecom', prefix: '89.80' },
    ],
    mobile: { asn: 15557, org: 'SFR', prefix: '176.140' },
    office: { asn: 5511, org: 'Orange Business', prefix: '193.253' },
  },
  berlin: {
    name: 'Berlin',
    country: 'DE',
    lat: 52.52,
    lon: 13.405,
    offset: 1,
    zone: 'Europe/Berlin',
    isps: [{ asn: 3320, org: 'Deutsche Telekom', prefix: '84.128' }],
    mobile: { asn: 3209, org: 'Vodafone', prefix: '88.64' },
    office: { asn: 3320, org: 'Deutsche Telekom', prefix: '80.150' },
  },
  london: {
    name: 'London',
    country: 'GB',
    lat: 51.5074,
    lon: -0.1278,
    offset: 0,
    zone: 'Europe/London',
    isps: [{ asn: 2856, org: 'BT', prefix: '86.128' }],
    mobile: { asn: 12576, org: 'EE', prefix: '31.94' },
    office: { asn: 5400, org: 'BT Business', prefix: '194.72' },
  },
  newyork: {
    name: 'New York',
    country: 'US',
    lat: 40.7128,
    lon: -74.006,
    offset: -5,
    zone: 'America/New_York',
    isps: [
      { asn: 7922, org: 'Comcast', prefix: '73.10' },
      { asn: 12271, org: 'Charter', prefix: '72.229' },
    ],
    mobile: { asn: 22394, org: 'Verizon Wireless', prefix: '174.192' },
    office: { asn: 6461, org: 'Zayo', prefix: '64.125' },
  },
  chicago: {
    name: 'Chicago',
    country: 'US',
    lat: 41.8781,
    lon: -87.6298,
    offset: -6,
    zone: 'America/Chicago',
    isps: [{ asn: 7922, org: 'Comcast', prefix: '73.50' }],
    mobile: { asn: 20057, org: 'AT&T Mobility', prefix: '166.137' },
    office: { asn: 6461, org: 'Zayo', prefix: '64.126' },
  },
  tokyo: {
    name: 'Tokyo',
    country: 'JP',
    lat: 35.6762,
    lon: 139.6503,
    offset: 9,
    zone: 'Asia/Tokyo',
    isps: [{ asn: 4713, org: 'NTT OCN', prefix: '153.240' }],
    mobile: { asn: 9605, org: 'NTT Docomo', prefix: '1.66' },
    office: { asn: 2516, org: 'KDDI', prefix: '106.128' },
  },
  singapore: {
    name: 'Singapore',
    country: 'SG',
    lat: 1.3521,
    lon: 103.8198,
    offset: 8,
    zone: 'Asia/Singapore',
    isps: [{ asn: 7473, org: 'Singtel', prefix: '118.200' }],
    mobile: { asn: 4773, org: 'Singtel Mobile', prefix: '101.127' },
    office: { asn: 7473, org: 'Singtel', prefix: '203.116' },
  },
};

/** Where each tenant's office is; users live there or in the other cities listed. */
export const TENANT_HOMES: readonly { city: string; remote: readonly string[] }[] = [
  { city: 'paris', remote: ['lyon', 'berlin'] },
  { city: 'newyork', remote: ['chicago'] },
  { city: 'tokyo', remote: ['singapore'] },
];

/** Routes frequent travellers fly, with the flight time in hours (slower than 900 km/h). */
export const ROUTES: Readonly<Record<string, { to: string; hours: number }>> = {
  paris: { to: 'newyork', hours: 8 },
  lyon: { to: 'london', hours: 2 },
  berlin: { to: 'newyork', hours: 9 },
  newyork: { to: 'london', hours: 7 },
  chicago: { to: 'london', hours: 8 },
  tokyo: { to: 'singapore', hours: 7 },
  singapore: { to: 'tokyo', hours: 7 },
  london: { to: 'newyork', hours: 8 },
};

/** Apple iCloud Private Relay: the egress is not where the user is. */
export const RELAY: Network = {
  asn: 36183,
  org: 'Akamai (iCloud Private Relay)',
  prefix: '172.224',
};
/** Relay egress places (another country than the user's, for some). */
export const RELAY_EGRESS: readonly { country: string; city: string; lat: number; lon: number }[] =
  [
    { country: 'DE', city: 'Frankfurt', lat: 50.1109, lon: 8.6821 },
    { country: 'NL', city: 'Amsterdam', lat: 52.3676, lon: 4.9041 },
    { country: 'US', city: 'Ashburn', lat: 39.0438, lon: -77.4874 },
    { country: 'JP', city: 'Osaka', lat: 34.6937, lon: 135.5023 },
  ];
/** In-flight satellite Wi-Fi, geolocated at the operator's ground station. */
export const SATELLITE: Network = { asn: 22351, org: 'Intelsat', prefix: '165.225' };
export const SATELLITE_GEO = { country: 'US', city: 'McLean', lat: 38.9339, lon: -77.1773 };
/** A commercial VPN (not on any skip list). */
export const VPN: Network = { asn: 9009, org: 'M247', prefix: '185.94' };

/** Cloud networks where service accounts and CI run. */
export const CLOUD: Network = { asn: 16509, org: 'Amazon', prefix: '52.94' };
export const CLOUD_GEO = { country: 'US', city: 'Ashburn', lat: 39.0438, lon: -77.4874 };

/** Hosting and proxy networks attackers use, in countries no scenario user lives in or visits. */
export const HOSTILE: readonly (Network & {
  country: string;
  city: string;
  lat: number;
  lon: number;
})[] = [
  {
    asn: 49505,
    org: 'Selectel',
    prefix: '5.188',
    country: 'RU',
    city: 'Moscow',
    lat: 55.7558,
    lon: 37.6173,
  },
  {
    asn: 27715,
    org: 'Locaweb',
    prefix: '186.202',
    country: 'BR',
    city: 'Sao Paulo',
    lat: -23.5505,
    lon: -46.6333,
  },
  {
    asn: 7552,
    org: 'Viettel',
    prefix: '27.72',
    country: 'VN',
    city: 'Hanoi',
    lat: 21.0278,
    lon: 105.8342,
  },
  {
    asn: 29465,
    org: 'MTN Nigeria',
    prefix: '102.88',
    country: 'NG',
    city: 'Lagos',
    lat: 6.5244,
    lon: 3.3792,
  },
];

export const USER_AGENTS: readonly { ua: string; family: string; os: string; device: string }[] = [
  {
    ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0',
    family: 'Chrome',
    os: 'Windows',
    device: 'desktop',
  },
  {
    ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1.15',
    family: 'Safari',
    os: 'macOS',
    device: 'desktop',
  },
  {
    ua: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0',
    family: 'Firefox',
    os: 'Linux',
    device: 'desktop',
  },
  {
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1) Mobile/15E148',
    family: 'Mobile Safari',
    os: 'iOS',
    device: 'mobile',
  },
  {
    ua: 'Mozilla/5.0 (Linux; Android 15; Pixel 9) Chrome/131.0 Mobile',
    family: 'Chrome Mobile',
    os: 'Android',
    device: 'mobile',
  },
];
export const SERVICE_UA = {
  ua: 'etl-runner/4.2 (python-requests/2.32)',
  family: 'Python Requests',
  os: 'Linux',
  device: 'server',
};
export const ATTACKER_UA = {
  ua: 'python-httpx/0.27',
  family: 'Python httpx',
  os: 'Other',
  device: 'other',
};
