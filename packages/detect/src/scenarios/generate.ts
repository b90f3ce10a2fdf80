import type { DetectionEvent, DetectionParty } from '../event.js';
import type { DetectOverrides } from '../overrides.js';
import {
  ATTACKER_UA,
  CITIES,
  CLOUD,
  CLOUD_GEO,
  HOSTILE,
  RELAY,
  RELAY_EGRESS,
  ROUTES,
  SATELLITE,
  SATELLITE_GEO,
  SERVICE_UA,
  TENANT_HOMES,
  USER_AGENTS,
  VPN,
  type City,
  type Network,
} from './places.js';
import { Random } from './random.js';

/**
 * A labelled scenario: normal SaaS traffic of a few tenants over some weeks, with attacks
 * injected and labelled with the alerts they must raise. Deterministic: the same options give
 * the same events, byte for byte.
 *
 * Quotas, per tenant (checked by `scenarios.test.ts` through `Scenario.quotas`):
 * - users: 60 accounts by default: 4 day administrators, 2 night-shift administrators (22:00 to
 *   06:00, weekdays), 6 frequent travellers, 3 users back from a long leave, 3 dormant accounts,
 *   the rest regular users; users work 08:00–19:00 in their own city's time (a tenant's remote
 *   users live in another city, some in another country or time zone), Monday to Friday;
 * - one office NAT address shared by ≥ 30 users (each office user is there on about 3 days in 4);
 * - typos: about 6 % of logins are preceded by one or two failed attempts, 4 % of MFA challenges
 *   by one failure; up to one user a fortnight with a broken authenticator (3–5 denials, then
 *   success);
 * - travel: 3 trips a week but the last (each traveller flies every other week: Paris→New York
 *   in 8 h, Tokyo→Singapore in 7 h …), half with an in-flight satellite Wi-Fi login on the way
 *   (AS22351);
 *   travellers' destinations are in their history (a trip in the learning week): a first trip
 *   to a new country is what auth.new_country reports and is not generated as normal traffic;
 * - relays: ≈ 15 % of users sometimes log in through iCloud Private Relay (AS36183) geolocated
 *   in another city or country; ≈ 35 % have a phone session on their mobile carrier some days;
 * - service accounts: 2 per tenant (in the tenant's serviceAccounts list), an API request every
 *   ≈ 6 min around the clock and a nightly bulk export of 150–300 files; 2 API keys used by them
 *   every ≈ 30 min from the cloud (in the tenant's per-key allow-list);
 * - API keys: about 7 a week created by administrators, half used from the same network by a
 *   script, half by CI from the cloud (the tenant allow-lists the cloud ASN for
 *   api.key_new_source);
 * - leave: 3 users per tenant away 20–38 days (below the 45-day dormancy threshold);
 * - MFA replaced: up to one user a month disables MFA and enrols a new device;
 * - role grants by administrators (viewer, editor, billing, sysadmin_readonly: not an admin
 *   role) about one day in three each; no admin grant in normal traffic
 *   (access.privileged_grant alerts on every one by design);
 * - denials: ≈ 2 % of API requests are denied; 1 % of the service accounts' bulk exports carry
 *   the `backfill` flag (not a chain finding);
 * - arrival order: each event arrives up to 30 s late (events are sorted by arrival).
 *
 * Attacks: `attacksPerKind` (default 2) of each kind per tenant, at distinct times ≥ 3 h apart
 * in the tenant, after the learning period, each labelled with every rule it must raise and the
 * entity of each alert (see ATTACK_KINDS).
 */
export interface ScenarioOptions {
  readonly seed: number;
  /** Default 3 (one per entry of TENANT_HOMES, cycling). */
  readonly tenants?: number;
  /** Default 42 (six weeks). */
  readonly days?: number;
  /** Days at the start the baseline learns from; no attack in them. Default 7. */
  readonly learningDays?: number;
  /** Default 60. */
  readonly usersPerTenant?: number;
  /** Attacks of each kind per tenant. Default 2. */
  readonly attacksPerKind?: number;
}

export interface ExpectedAlert {
  readonly ruleId: string;
  readonly entity: Readonly<Record<string, string>>;
}

export interface LabelledAttack {
  readonly kind: AttackKind;
  readonly tenant: string;
  /** Time of the attack's first and last event. */
  readonly from: number;
  readonly to: number;
  readonly expect: readonly ExpectedAlert[];
}

export interface Scenario {
  readonly seed: number;
  readonly start: number;
  readonly end: number;
  /** Events before this time are the baseline's learning period. */
  readonly learningEnd: number;
  /** In arrival order (event time plus up to 30 s of delay). */
  readonly events: readonly DetectionEvent[];
  readonly attacks: readonly LabelledAttack[];
  /** The tenants' detection settings (time zone, service accounts, key allow-lists, …). */
  readonly overrides: DetectOverrides;
  /** Last activity before the scenario started, per tenant and actor. */
  readonly priorLastSeen: readonly { tenant: string; actor: string; time: number }[];
  /** What the generator produced of each trap (checked against the stated quotas). */
  readonly quotas: Readonly<Record<string, number>>;
}

export const ATTACK_KINDS = [
  'brute_force',
  'password_spraying',
  'credential_stuffing',
  'success_after_failures',
  'mfa_fatigue',
  'impossible_travel',
  'new_country',
  'new_asn',
  'concurrent_sessions',
  'privileged_grant',
  'self_grant',
  'mfa_disabled_then_sensitive',
  'api_key_new_source',
  'api_key_outside_allowlist',
  'mass_export',
  'dormant_account',
  'denied_burst',
  'admin_off_hours',
  'chain_integrity',
] as const;
export type AttackKind = (typeof ATTACK_KINDS)[number];

/** Monday 2026-01-05 00:00 UTC. */
export const SCENARIO_START = Date.UTC(2026, 0, 5);
const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

type Role = 'regular' | 'admin' | 'night_admin' | 'traveller' | 'leave' | 'dormant';

interface Source {
  readonly ip: string;
  readonly net: Network;
  readonly geo: { country: string; city: string; lat: number; lon: number };
  readonly ua: { ua: string; family: string; os: string; device: string };
}

interface User {
  readonly id: string;
  readonly role: Role;
  readonly city: City;
  readonly office: boolean;
  readonly home: Source;
  readonly officeSrc: Source | undefined;
  readonly mobile: boolean;
  readonly relay: boolean;
  readonly relayGeo: (typeof RELAY_EGRESS)[number];
  readonly phoneUa: (typeof USER_AGENTS)[number];
  readonly startHour: number;
  readonly endHour: number;
  leave?: { from: number; to: number };
  /** Trip days: [departure day, return day]. */
  trips: [number, number][];
  /** Used as an attack's victim already. */
  used: boolean;
}

interface Tenant {
  readonly id: string;
  readonly city: City;
  readonly users: User[];
  readonly officeIp: string;
  readonly services: { id: string; key: string; ip: string }[];
  /** Attack slots taken (ms), to keep attacks ≥ 3 h apart. */
  readonly slots: number[];
  /** Quiet windows: normal events of this actor in [from, to] are dropped. */
  readonly quiet: { actor: string; from: number; to: number }[];
  /** `user:day` an attack needs the user at work (never a day off). */
  readonly busy: Set<string>;
}

class Builder {
  readonly r: Random;
  readonly events: DetectionEvent[] = [];
  readonly attacks: LabelledAttack[] = [];
  readonly quotas: Record<string, number> = {};
  private seq = 0;
  private sessions = 0;
  private keys = 0;
  constructor(seed: number) {
    this.r = new Random(seed);
  }
  count(name: string, n = 1): void {
    this.quotas[name] = (this.quotas[name] ?? 0) + n;
  }
  session(): string {
    return `sess-${++this.sessions}`;
  }
  key(prefix: string): string {
    return `${prefix}-${++this.keys}`;
  }
  ip(net: Network): string {
    return `${net.prefix}.${this.r.int(0, 255)}.${this.r.int(1, 254)}`;
  }
  emit(
    tenant: string,
    time: number,
    action: string,
    category: string,
    outcome: string,
    actor: DetectionParty,
    src: Source,
    extra: {
      session?: string;
      target?: DetectionParty;
      access?: DetectionEvent['access'];
      metadata?: Record<string, unknown>;
      flags?: string[];
      stream?: string;
    } = {},
  ): DetectionEvent {
    const e: DetectionEvent = {
      tenant,
      id: `${tenant}.${String(++this.seq).padStart(8, '0')}`,
      time: Math.round(time),
      action,
      category,
      outcome,
      actor,
      ...(extra.target === undefined ? {} : { target: extra.target }),
      context: {
        ip: src.ip,
        userAgent: src.ua.ua,
        ...(extra.session === undefined ? {} : { sessionId: extra.session }),
      },
      ...(extra.access === undefined ? {} : { access: extra.access }),
      ...(extra.metadata === undefined ? {} : { metadata: extra.metadata }),
      enrichment: {
        geo: { ...src.geo },
        asn: { number: src.net.asn, org: src.net.org },
        ua: { family: src.ua.family, os: src.ua.os, device: src.ua.device },
      },
      stream: extra.stream ?? `${tenant}-app-${(actor.id ?? '').length % 4}`,
      ...(extra.flags === undefined ? {} : { flags: extra.flags }),
    };
    this.events.push(e);
    return e;
  }
}

function cityGeo(c: City) {
  return { country: c.country, city: c.name, lat: c.lat, lon: c.lon };
}

/** UTC ms of `hour` (fractional) local time on scenario day `day` at UTC offset `offset`. */
function at(day: number, hour: number, offset: number): number {
  return SCENARIO_START + day * DAY + (hour - offset) * HOUR;
}

const user = (id: string): DetectionParty => ({ type: 'user', id });

export function generateScenario(options: ScenarioOptions): Scenario {
  const days = options.days ?? 42;
  const learning = options.learningDays ?? 7;
  const perTenant = options.usersPerTenant ?? 60;
  const perKind = options.attacksPerKind ?? 2;
  const b = new Builder(options.seed);
  const r = b.r;
  const tenants: Tenant[] = [];
  const prior: { tenant: string; actor: string; time: number }[] = [];
  const overrides: { tenants: Record<string, NonNullable<DetectOverrides['tenants']>[string]> } = {
    tenants: {},
  };

  for (let t = 0; t < (options.tenants ?? 3); t++) {
    const home = TENANT_HOMES[t % TENANT_HOMES.length] as (typeof TENANT_HOMES)[number];
    const city = CITIES[home.city] as City;
    const id = `t${t + 1}`;
    const officeIp = b.ip(city.office);
    const tenant: Tenant = {
      id,
      city,
      users: [],
      officeIp,
      services: [],
      slots: [],
      quiet: [],
      busy: new Set(),
    };
    const roles: Role[] = [
      ...Array<Role>(4).fill('admin'),
      ...Array<Role>(2).fill('night_admin'),
      ...Array<Role>(6).fill('traveller'),
      ...Array<Role>(3).fill('leave'),
      ...Array<Role>(3).fill('dormant'),
    ];
    while (roles.length < perTenant) roles.push('regular');
    let officeUsers = 0;
    roles.forEach((role, i) => {
      const remote = role === 'regular' && i % 5 === 4;
      const uc = remote ? (CITIES[r.pick(home.remote)] as City) : city;
      const isp = r.pick(uc.isps);
      const ua = r.pick(USER_AGENTS.slice(0, 3));
      const office = !remote && role !== 'night_admin' && role !== 'dormant';
      if (office) officeUsers++;
      const u: User = {
        id: `u${String(i + 1).padStart(3, '0')}`,
        role,
        city: uc,
        office,
        home: { ip: b.ip(isp), net: isp, geo: cityGeo(uc), ua },
        officeSrc: office ? { ip: officeIp, net: city.office, geo: cityGeo(city), ua } : undefined,
        mobile: r.chance(0.35),
        // Travellers keep to their own networks (their learning week holds a trip).
        relay: role !== 'traveller' && r.chance(0.15),
        relayGeo: r.pick(RELAY_EGRESS),
        phoneUa: r.pick(USER_AGENTS.slice(3)),
        startHour: r.real(8, 9.5),
        endHour: r.real(16.5, 18.5),
        trips: [],
        used: false,
      };
      if (role === 'dormant') {
        prior.push({ tenant: id, actor: u.id, time: SCENARIO_START - r.int(60, 120) * DAY });
      } else {
        prior.push({ tenant: id, actor: u.id, time: SCENARIO_START - r.int(1, 3) * DAY });
      }
      if (role === 'leave') {
        const from = r.int(learning, learning + 3);
        const to = Math.min(days - 2, from + r.int(20, 38));
        u.leave = { from, to };
        b.count('leave_returners');
        b.quotas['leave_max_days'] = Math.max(b.quotas['leave_max_days'] ?? 0, to - from);
      }
      tenant.users.push(u);
    });
    b.quotas['office_nat_users_min'] = Math.min(
      b.quotas['office_nat_users_min'] ?? Infinity,
      officeUsers,
    );
    // Travellers: one trip every other week, alternating, plus one in the learning week.
    tenant.users
      .filter((u) => u.role === 'traveller')
      .forEach((u, i) => {
        u.trips.push([1, 3]);
        for (let w = 1; w * 7 < days - 7; w++) {
          if ((w + i) % 2 !== 0) continue;
          const dep = w * 7 + r.int(0, 2);
          u.trips.push([dep, dep + 2]);
        }
      });
    for (const name of ['svc-etl', 'svc-sync']) {
      tenant.services.push({ id: name, key: `k-${name.slice(4)}`, ip: b.ip(CLOUD) });
    }
    overrides.tenants[id] = {
      timeZone: city.zone,
      allow: { serviceAccounts: tenant.services.map((s) => s.id) },
      rules: { 'api.key_new_source': { allow: { asns: [CLOUD.asn] } } },
      apiKeys: Object.fromEntries(
        tenant.services.map((s) => [s.key, { cidrs: [`${CLOUD.prefix}.0.0/16`] }]),
      ),
    };
    tenants.push(tenant);
  }

  // Attacks first: they set quiet windows that normal traffic respects.
  for (const tenant of tenants) {
    for (const kind of ATTACK_KINDS) {
      for (let k = 0; k < perKind; k++) inject(b, tenant, kind, learning, days);
    }
  }
  for (const tenant of tenants) normalTraffic(b, tenant, days, learning);

  // Arrival order: up to 30 s of delay per event.
  const arrival = new Map<DetectionEvent, number>();
  for (const e of b.events) arrival.set(e, e.time + Math.floor(r.next() * 30_000));
  const events = [...b.events].sort(
    (x, y) => (arrival.get(x) as number) - (arrival.get(y) as number) || (x.id < y.id ? -1 : 1),
  );
  b.count('events', events.length);
  return {
    seed: options.seed,
    start: SCENARIO_START,
    end: SCENARIO_START + days * DAY,
    learningEnd: SCENARIO_START + learning * DAY,
    events,
    attacks: b.attacks,
    overrides,
    priorLastSeen: prior,
    quotas: b.quotas,
  };
}

function isQuiet(tenant: Tenant, actor: string, time: number): boolean {
  for (const q of tenant.quiet)
    if (q.actor === actor && time >= q.from && time <= q.to) return true;
  return false;
}

function onTrip(u: User, day: number): boolean {
  return u.trips.some(([a, z]) => day >= a - 1 && day <= z + 1);
}

/** One working day of a user at `src` between local hours `h0` and `h1` (offset of the place). */
function workDay(
  b: Builder,
  tenant: Tenant,
  u: User,
  day: number,
  offset: number,
  h0: number,
  h1: number,
  src: Source,
  away = false,
): void {
  const r = b.r;
  const actor = user(u.id);
  const emit = (
    time: number,
    action: string,
    category: string,
    outcome: string,
    extra: Parameters<Builder['emit']>[7] = {},
    from: Source = src,
  ) => {
    if (isQuiet(tenant, u.id, time)) return;
    b.emit(tenant.id, time, action, category, outcome, actor, from, extra);
  };
  const login = (time: number, from: Source): string => {
    const session = b.session();
    if (r.chance(0.06)) {
      const n = r.int(1, 2);
      for (let i = n; i > 0; i--) {
        emit(
          time - i * r.int(5, 40) * 1000,
          'user.login',
          'authentication',
          'failure',
          {
            metadata: { reason: 'bad_password' },
          },
          from,
        );
      }
      b.count('typos');
    }
    emit(time, 'user.login', 'authentication', 'success', { session }, from);
    if (r.chance(0.04)) {
      emit(
        time + 8_000,
        'mfa.challenge',
        'authentication',
        'failure',
        { session, metadata: { factor: 'totp' } },
        from,
      );
    }
    emit(
      time + 15_000,
      'mfa.challenge',
      'authentication',
      'success',
      { session, metadata: { factor: 'totp' } },
      from,
    );
    return session;
  };
  const start = at(day, h0, offset);
  const end = at(day, h1, offset);
  const session = login(start, src);
  const n = r.int(8, 25);
  for (let i = 0; i < n; i++) {
    const time = r.real(start + MIN, end);
    if (r.chance(0.55)) {
      emit(time, 'data.viewed', 'data_access', 'success', {
        session,
        target: { type: 'document', id: `d${r.int(1, 500)}` },
      });
    } else {
      emit(time, 'api.request', 'api', r.chance(0.02) ? 'denied' : 'success', { session });
    }
  }
  if (r.chance(0.3)) {
    for (let i = r.int(1, 2); i > 0; i--) {
      emit(r.real(start + MIN, end), 'data.exported', 'data_access', 'success', {
        session,
        target: { type: 'report', id: `r${r.int(1, 50)}` },
        metadata: { format: 'csv' },
      });
    }
  }
  // A second session: the phone on the carrier, or the laptop through Private Relay (in the
  // learning week on fixed days, so the baseline knows every network of the user).
  if (u.mobile && !away && (r.chance(0.3) || day === 0)) {
    const phone: Source = {
      ip: b.ip(u.city.mobile),
      net: u.city.mobile,
      geo: cityGeo(u.city),
      ua: u.phoneUa,
    };
    const t = r.real(start + HOUR, end);
    const s = login(t, phone);
    for (let i = r.int(1, 4); i > 0; i--)
      emit(t + r.int(1, 30) * MIN, 'data.viewed', 'data_access', 'success', { session: s }, phone);
    b.count('mobile_sessions');
  }
  if (u.relay && src === u.home && (r.chance(0.4) || day === 4)) {
    const relay: Source = {
      ip: b.ip(RELAY),
      net: RELAY,
      geo: { ...u.relayGeo },
      ua: USER_AGENTS[1] as Source['ua'],
    };
    const t = r.real(start + HOUR, end);
    const s = login(t, relay);
    for (let i = r.int(1, 4); i > 0; i--)
      emit(t + r.int(1, 30) * MIN, 'api.request', 'api', 'success', { session: s }, relay);
    b.count('relay_sessions');
  }
  if (u.role === 'admin' || u.role === 'night_admin') {
    for (let i = r.int(1, 3); i > 0; i--) {
      emit(r.real(start + MIN, end), 'config.changed', 'admin', 'success', {
        session,
        target: { type: 'setting', id: `cfg${r.int(1, 40)}` },
      });
    }
    if (r.chance(0.33)) {
      const subject = r.pick(tenant.users.filter((x) => x.id !== u.id && x.role !== 'dormant'));
      emit(r.real(start + MIN, end), 'role.assigned', 'access_change', 'success', {
        session,
        target: { type: 'user', id: subject.id },
        access: {
          change: 'grant',
          role: r.pick(['viewer', 'editor', 'billing', 'sysadmin_readonly']),
          subject: user(subject.id),
        },
      });
      b.count('role_grants');
    }
    if (r.chance(0.25)) {
      // A key for a script on the administrator's own network, or for CI in the cloud.
      const key = b.key('k-dev');
      const t = r.real(start + MIN, end - HOUR);
      emit(t, 'api_key.created', 'access_change', 'success', {
        session,
        target: { type: 'api_key', id: key },
      });
      const ci = r.chance(0.5);
      const from: Source = ci
        ? { ip: b.ip(CLOUD), net: CLOUD, geo: { ...CLOUD_GEO }, ua: SERVICE_UA }
        : { ...src, ua: SERVICE_UA };
      for (let i = r.int(1, 5); i > 0; i--) {
        b.emit(
          tenant.id,
          t + r.int(5, 300) * MIN,
          'api_key.used',
          'api',
          'success',
          { type: 'api_key', id: key },
          from,
        );
      }
      b.count(ci ? 'ci_keys' : 'script_keys');
    }
  }
  emit(end, 'user.logout', 'authentication', 'success', { session });
}

function normalTraffic(b: Builder, tenant: Tenant, days: number, learning: number): void {
  const r = b.r;
  const off = tenant.city.offset;
  let broken = 0;
  let mfaReplaced = 0;
  for (const u of tenant.users) {
    if (u.role === 'dormant') continue;
    for (let day = 0; day < days; day++) {
      const weekday = day % 7;
      if (u.leave !== undefined && day >= u.leave.from && day < u.leave.to) continue;
      if (u.role === 'night_admin') {
        if (weekday > 4) continue;
        workDay(b, tenant, u, day, u.city.offset, 22 + r.real(0, 0.8), 29 + r.real(0, 0.9), u.home);
        b.count('night_shifts');
        continue;
      }
      const trip = u.trips.find(([a, z]) => day >= a && day <= z);
      if (trip !== undefined) {
        travelDay(b, tenant, u, day, trip);
        continue;
      }
      const sick = day >= learning && r.chance(0.05) && !tenant.busy.has(`${u.id}:${day}`);
      if (weekday > 4 || sick) continue;
      // Learning week: every source of the user at least once (office Monday, home Tuesday and
      // Friday, the phone Monday, the relay Friday).
      let src = u.home;
      if (u.officeSrc !== undefined) src = r.chance(0.25) ? u.home : u.officeSrc;
      if (day === 0 && u.officeSrc !== undefined) src = u.officeSrc;
      if (day === 1 || day === 4) src = u.home;
      workDay(
        b,
        tenant,
        u,
        day,
        u.city.offset,
        u.startHour + r.real(0, 0.5),
        u.endHour + r.real(-0.3, 0.3),
        src,
      );
      if (u.role === 'regular' && day >= learning && weekday < 5) {
        if (broken < Math.ceil(days / 14) && r.chance(0.01)) {
          // A broken authenticator: 3–5 denials, then it works (below the fatigue threshold).
          const t = at(day, 13 + r.real(0, 2), u.city.offset);
          if (!isQuiet(tenant, u.id, t)) {
            const n = r.int(3, 5);
            for (let i = 0; i < n; i++)
              b.emit(
                tenant.id,
                t + i * 40_000,
                'mfa.challenge',
                'authentication',
                'denied',
                user(u.id),
                src,
                { metadata: { factor: 'push' } },
              );
            b.emit(
              tenant.id,
              t + n * 40_000,
              'mfa.challenge',
              'authentication',
              'success',
              user(u.id),
              src,
              { metadata: { factor: 'push' } },
            );
            broken++;
            b.count('broken_authenticators');
          }
        } else if (mfaReplaced < Math.ceil(days / 28) && r.chance(0.01)) {
          const t = at(day, 12 + r.real(0, 1), u.city.offset);
          if (!isQuiet(tenant, u.id, t)) {
            b.emit(tenant.id, t, 'mfa.disabled', 'authentication', 'success', user(u.id), src);
            b.emit(
              tenant.id,
              t + r.int(2, 10) * MIN,
              'mfa.enrolled',
              'authentication',
              'success',
              user(u.id),
              src,
            );
            mfaReplaced++;
            b.count('mfa_replaced');
          }
        }
      }
    }
  }
  // Service accounts and their keys, around the clock, from the cloud.
  for (const s of tenant.services) {
    const src: Source = { ip: s.ip, net: CLOUD, geo: { ...CLOUD_GEO }, ua: SERVICE_UA };
    const actor: DetectionParty = { type: 'service', id: s.id };
    for (
      let t = SCENARIO_START + r.int(0, 360) * 1000;
      t < SCENARIO_START + days * DAY;
      t += r.int(4, 8) * MIN
    ) {
      b.emit(tenant.id, t, 'api.request', 'api', 'success', actor, src);
    }
    for (
      let t = SCENARIO_START + r.int(0, 1800) * 1000;
      t < SCENARIO_START + days * DAY;
      t += r.int(20, 40) * MIN
    ) {
      b.emit(tenant.id, t, 'api_key.used', 'api', 'success', { type: 'api_key', id: s.key }, src);
    }
    for (let day = 0; day < days; day++) {
      const t0 = at(day, 2, off);
      const n = r.int(150, 300);
      for (let i = 0; i < n; i++) {
        const flags = r.chance(0.01) ? ['backfill'] : undefined;
        b.emit(tenant.id, t0 + i * 6_000, 'data.exported', 'data_access', 'success', actor, src, {
          target: { type: 'table', id: `tbl${i % 40}` },
          metadata: { format: 'parquet' },
          ...(flags === undefined ? {} : { flags }),
        });
      }
      b.count('service_bulk_exports', n);
    }
  }
}

function travelDay(b: Builder, tenant: Tenant, u: User, day: number, trip: [number, number]): void {
  const r = b.r;
  const route = ROUTES[
    Object.keys(CITIES).find((k) => CITIES[k] === u.city) as string
  ] as (typeof ROUTES)[string];
  const dest = CITIES[route.to] as City;
  const hotel: Source = {
    ip: `${(dest.isps[0] as Network).prefix}.7.${(day % 200) + 1}`,
    net: dest.isps[0] as Network,
    geo: cityGeo(dest),
    ua: u.home.ua,
  };
  const [dep, ret] = trip;
  if (day === dep || day === ret) {
    const fromCity = day === dep ? u.city : dest;
    const fromSrc = day === dep ? (u.officeSrc ?? u.home) : hotel;
    const toSrc = day === dep ? hotel : u.home;
    // A short morning where the traveller starts, the flight, then a login on arrival.
    workDay(
      b,
      tenant,
      u,
      day,
      fromCity.offset,
      7 + r.real(0, 0.5),
      8.5 + r.real(0, 0.5),
      fromSrc,
      day === ret,
    );
    const takeoff = at(day, 10.5, fromCity.offset);
    if (r.chance(0.5) || day === 1) {
      const sat: Source = {
        ip: b.ip(SATELLITE),
        net: SATELLITE,
        geo: { ...SATELLITE_GEO },
        ua: u.home.ua,
      };
      const t = takeoff + (route.hours / 2) * HOUR;
      b.emit(tenant.id, t, 'user.login', 'authentication', 'success', user(u.id), sat, {
        session: b.session(),
      });
      b.count('inflight_logins');
    }
    const landed = takeoff + (route.hours + 1 + r.real(0, 1)) * HOUR;
    b.emit(tenant.id, landed, 'user.login', 'authentication', 'success', user(u.id), toSrc, {
      session: b.session(),
    });
    if (day === dep) b.count('trips');
    return;
  }
  workDay(b, tenant, u, day, dest.offset, u.startHour, u.endHour, hotel, true);
}

/** A free attack time in the tenant: `pickTime` proposes, ≥ 3 h from every other attack. */
function slot(b: Builder, tenant: Tenant, pickTime: () => number): number {
  for (let i = 0; i < 500; i++) {
    const t = Math.round(pickTime());
    if (tenant.slots.every((s) => Math.abs(s - t) >= 3 * HOUR)) {
      tenant.slots.push(t);
      return t;
    }
  }
  throw new Error('no free attack slot: too many attacks for the scenario length');
}

function victim(b: Builder, tenant: Tenant, roles: readonly Role[] = ['regular']): User {
  const free = tenant.users.filter((u) => roles.includes(u.role) && !u.used);
  if (free.length === 0) throw new Error(`no free victim among ${roles.join(', ')}`);
  const u = b.r.pick(free);
  u.used = true;
  return u;
}

function hostileSrc(b: Builder, ua = ATTACKER_UA): Source {
  const h = b.r.pick(HOSTILE);
  return {
    ip: b.ip(h),
    net: h,
    geo: { country: h.country, city: h.city, lat: h.lat, lon: h.lon },
    ua,
  };
}

function inject(
  b: Builder,
  tenant: Tenant,
  kind: AttackKind,
  learning: number,
  days: number,
): void {
  const r = b.r;
  const off = tenant.city.offset;
  const evalDay = (weekdayOnly: boolean): number => {
    for (;;) {
      // From the day after the learning period: a night in Tokyo is the previous UTC day.
      const d = r.int(learning + 1, days - 2);
      if (!weekdayOnly || d % 7 < 5) return d;
    }
  };
  const working = () => at(evalDay(true), r.real(10, 15), off);
  const night = () => at(evalDay(true), r.real(1, 4), off);
  const sunday = () => {
    for (;;) {
      const d = evalDay(false);
      if (d % 7 === 6) return at(d, r.real(10, 16), off);
    }
  };
  const events: DetectionEvent[] = [];
  const emit = (...args: Parameters<Builder['emit']>) => {
    events.push(b.emit(...args));
  };
  const label = (expect: ExpectedAlert[]) => {
    const times = events.map((e) => e.time);
    b.attacks.push({
      kind,
      tenant: tenant.id,
      from: Math.min(...times),
      to: Math.max(...times),
      expect,
    });
    b.count(`attack:${kind}`);
  };
  const T = tenant.id;
  const quiet = (u: User, t: number, before: number, after: number) =>
    tenant.quiet.push({ actor: u.id, from: t - before, to: t + after });
  const proxyOnIsp = (u: User): Source => ({
    ip: b.ip(u.home.net),
    net: u.home.net,
    geo: { ...u.home.geo },
    ua: ATTACKER_UA,
  });

  switch (kind) {
    case 'brute_force': {
      const u = victim(b, tenant);
      const t = slot(b, tenant, night);
      const src = hostileSrc(b);
      const n = r.int(15, 40);
      for (let i = 0; i < n; i++)
        emit(
          T,
          t + i * r.int(4, 10) * 1000,
          'user.login',
          'authentication',
          'failure',
          user(u.id),
          src,
          { metadata: { reason: 'bad_password' } },
        );
      quiet(u, t, HOUR, 2 * HOUR);
      label([{ ruleId: 'auth.brute_force_account', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'password_spraying': {
      const t = slot(b, tenant, () => (r.chance(0.5) ? night() : working()));
      const src = hostileSrc(b);
      const real = tenant.users.filter((x) => x.role === 'regular').map((x) => x.id);
      const targets = [
        ...r.sample(real, r.int(8, 14)),
        ...Array.from({ length: r.int(4, 10) }, (_, i) => `guess${i}.${r.int(1, 999)}`),
      ];
      const span = r.int(10, 25) * MIN;
      targets.forEach((id, i) =>
        emit(
          T,
          t + (i * span) / targets.length,
          'user.login',
          'authentication',
          'failure',
          user(id),
          src,
          { metadata: { reason: 'bad_password' } },
        ),
      );
      label([{ ruleId: 'auth.password_spraying', entity: { 'context.ip': src.ip } }]);
      return;
    }
    case 'credential_stuffing': {
      const t = slot(b, tenant, night);
      const proxies = Array.from({ length: r.int(12, 20) }, () => hostileSrc(b));
      const real = tenant.users.filter((x) => x.role === 'regular').map((x) => x.id);
      const accounts = [
        ...r.sample(real, r.int(5, 10)),
        ...Array.from({ length: r.int(20, 40) }, (_, i) => `leak${i}.${r.int(1, 9999)}`),
      ];
      const span = r.int(5, 8) * MIN;
      accounts.forEach((id, i) =>
        emit(
          T,
          t + (i * span) / accounts.length,
          'user.login',
          'authentication',
          r.chance(0.8) ? 'failure' : 'denied',
          user(id),
          proxies[i % proxies.length] as Source,
        ),
      );
      label([{ ruleId: 'auth.credential_stuffing', entity: {} }]);
      return;
    }
    case 'success_after_failures': {
      const u = victim(b, tenant);
      const t = slot(b, tenant, night);
      const src = proxyOnIsp(u);
      const n = r.int(11, 16);
      for (let i = 0; i < n; i++)
        emit(
          T,
          t + i * r.int(100, 140) * 1000,
          'user.login',
          'authentication',
          'failure',
          user(u.id),
          src,
        );
      emit(T, t + n * 130_000 + MIN, 'user.login', 'authentication', 'success', user(u.id), src, {
        session: b.session(),
      });
      quiet(u, t, HOUR, 3 * HOUR);
      label([{ ruleId: 'auth.success_after_failures', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'mfa_fatigue': {
      const u = victim(b, tenant);
      const t = slot(b, tenant, night);
      const src = proxyOnIsp(u);
      const s = b.session();
      emit(T, t, 'user.login', 'authentication', 'success', user(u.id), src, { session: s });
      const n = r.int(6, 10);
      for (let i = 1; i <= n; i++)
        emit(T, t + i * 30_000, 'mfa.challenge', 'authentication', 'denied', user(u.id), src, {
          session: s,
          metadata: { factor: 'push' },
        });
      emit(T, t + (n + 1) * 30_000, 'mfa.challenge', 'authentication', 'success', user(u.id), src, {
        session: s,
        metadata: { factor: 'push' },
      });
      quiet(u, t, HOUR, 2 * HOUR);
      label([{ ruleId: 'auth.mfa_fatigue', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'impossible_travel': {
      // From the traveller's usual destination while they are at home: the country and network
      // are in the history, the speed is not.
      const u = victim(b, tenant, ['traveller']);
      const t = slot(b, tenant, () => {
        for (;;) {
          const d = evalDay(true);
          if (!onTrip(u, d)) return at(d, u.startHour + 2 + r.real(0, 1), u.city.offset);
        }
      });
      tenant.busy.add(`${u.id}:${Math.floor((t - SCENARIO_START) / DAY)}`);
      const route = ROUTES[
        Object.keys(CITIES).find((k) => CITIES[k] === u.city) as string
      ] as (typeof ROUTES)[string];
      const dest = CITIES[route.to] as City;
      const src: Source = {
        ip: b.ip(dest.isps[0] as Network),
        net: dest.isps[0] as Network,
        geo: cityGeo(dest),
        ua: ATTACKER_UA,
      };
      // The victim is quiet for 20 minutes around it: no concurrent activity to count.
      quiet(u, t, 20 * MIN, 20 * MIN);
      emit(T, t, 'user.login', 'authentication', 'success', user(u.id), src, {
        session: b.session(),
      });
      label([{ ruleId: 'auth.impossible_travel', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'new_country':
    case 'new_asn': {
      const u = victim(b, tenant);
      const t = slot(b, tenant, sunday);
      const src: Source =
        kind === 'new_country'
          ? hostileSrc(b, USER_AGENTS[0])
          : { ip: b.ip(VPN), net: VPN, geo: { ...u.home.geo }, ua: u.home.ua };
      quiet(u, t, 26 * HOUR, 26 * HOUR);
      const s = b.session();
      emit(T, t, 'user.login', 'authentication', 'success', user(u.id), src, { session: s });
      for (let i = r.int(1, 5); i > 0; i--)
        emit(T, t + i * 3 * MIN, 'data.viewed', 'data_access', 'success', user(u.id), src, {
          session: s,
        });
      label(
        kind === 'new_country'
          ? [
              { ruleId: 'auth.new_country', entity: { 'actor.id': u.id } },
              { ruleId: 'auth.new_asn', entity: { 'actor.id': u.id } },
            ]
          : [{ ruleId: 'auth.new_asn', entity: { 'actor.id': u.id } }],
      );
      return;
    }
    case 'concurrent_sessions': {
      // A stolen session cookie replayed from abroad while the victim works.
      const u = victim(b, tenant);
      const t = slot(b, tenant, working);
      const s = b.session();
      const own = u.officeSrc ?? u.home;
      const src = hostileSrc(b, u.home.ua);
      for (let i = 0; i < 6; i++)
        emit(T, t + i * 2 * MIN, 'data.viewed', 'data_access', 'success', user(u.id), own, {
          session: s,
        });
      for (let i = r.int(3, 10); i > 0; i--)
        emit(T, t + MIN + i * 50_000, 'data.viewed', 'data_access', 'success', user(u.id), src, {
          session: s,
        });
      label([{ ruleId: 'auth.concurrent_sessions', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'privileged_grant': {
      const admin = r.pick(tenant.users.filter((x) => x.role === 'admin'));
      const subject = victim(b, tenant);
      const t = slot(b, tenant, () =>
        at(evalDay(true), admin.startHour + 1 + r.real(0, 5), admin.city.offset),
      );
      emit(
        T,
        t,
        'role.assigned',
        'access_change',
        'success',
        user(admin.id),
        admin.officeSrc ?? admin.home,
        {
          target: { type: 'user', id: subject.id },
          access: {
            change: 'grant',
            role: r.pick(['admin', 'org_owner', 'superuser']),
            subject: user(subject.id),
          },
        },
      );
      label([{ ruleId: 'access.privileged_grant', entity: { 'access.subject.id': subject.id } }]);
      return;
    }
    case 'self_grant': {
      const u = victim(b, tenant);
      const t = slot(b, tenant, working);
      emit(T, t, 'access.granted', 'access_change', 'success', user(u.id), u.officeSrc ?? u.home, {
        access: {
          change: 'grant',
          permission: r.pick(['billing.write', 'reports.export', 'projects.delete']),
          subject: user(u.id),
        },
      });
      label([{ ruleId: 'access.self_granted', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'mfa_disabled_then_sensitive': {
      const u = victim(b, tenant);
      const t = slot(b, tenant, working);
      const src = u.officeSrc ?? u.home;
      emit(T, t, 'mfa.disabled', 'authentication', 'success', user(u.id), src);
      emit(
        T,
        t + r.int(5, 50) * MIN,
        r.pick(['data.exported', 'api_key.created', 'password.changed']),
        'data_access',
        'success',
        user(u.id),
        src,
        { target: { type: 'report', id: 'all-customers' } },
      );
      label([{ ruleId: 'auth.mfa_disabled_then_sensitive', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'api_key_new_source': {
      const u = victim(b, tenant);
      const t = slot(b, tenant, working);
      const key = b.key('k-stolen');
      emit(T, t, 'api_key.created', 'access_change', 'success', user(u.id), u.officeSrc ?? u.home, {
        target: { type: 'api_key', id: key },
      });
      const src = hostileSrc(b);
      const first = t + r.int(1, 20) * HOUR;
      for (let i = r.int(2, 8); i > 0; i--)
        emit(
          T,
          first + i * 7 * MIN,
          'api_key.used',
          'api',
          'success',
          { type: 'api_key', id: key },
          src,
        );
      label([{ ruleId: 'api.key_new_source', entity: { key } }]);
      return;
    }
    case 'api_key_outside_allowlist': {
      const free = tenant.services.filter(
        (s) => !tenant.quiet.some((q) => q.actor === `key:${s.key}`),
      );
      const s = r.pick(free);
      tenant.quiet.push({ actor: `key:${s.key}`, from: 0, to: 0 });
      const t = slot(b, tenant, () => (r.chance(0.5) ? night() : working()));
      const src = hostileSrc(b, SERVICE_UA);
      for (let i = r.int(1, 6); i > 0; i--)
        emit(
          T,
          t + i * 4 * MIN,
          'api_key.used',
          'api',
          'success',
          { type: 'api_key', id: s.key },
          src,
        );
      label([{ ruleId: 'api.key_outside_allowlist', entity: { 'actor.id': s.key } }]);
      return;
    }
    case 'mass_export': {
      const u = victim(b, tenant);
      const t = slot(b, tenant, working);
      const n = r.int(110, 180);
      const span = r.int(30, 50) * MIN;
      const s = b.session();
      for (let i = 0; i < n; i++)
        emit(
          T,
          t + (i * span) / n,
          'data.exported',
          'data_access',
          'success',
          user(u.id),
          u.officeSrc ?? u.home,
          { session: s, target: { type: 'report', id: `r${i}` }, metadata: { format: 'csv' } },
        );
      label([{ ruleId: 'data.mass_export', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'dormant_account': {
      const u = victim(b, tenant, ['dormant']);
      const t = slot(b, tenant, working);
      emit(T, t, 'user.login', 'authentication', 'success', user(u.id), u.home, {
        session: b.session(),
      });
      label([{ ruleId: 'auth.dormant_account', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'denied_burst': {
      const u = victim(b, tenant);
      const t = slot(b, tenant, working);
      const n = r.int(25, 40);
      const s = b.session();
      for (let i = 0; i < n; i++)
        emit(
          T,
          t + i * r.int(5, 12) * 1000,
          r.pick(['api.request', 'data.viewed', 'config.changed']),
          'api',
          'denied',
          user(u.id),
          u.officeSrc ?? u.home,
          { session: s },
        );
      label([{ ruleId: 'access.denied_burst', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'admin_off_hours': {
      const u = victim(b, tenant, ['admin']);
      const t = slot(b, tenant, () => at(evalDay(true), r.real(1, 4.5), u.city.offset));
      for (let i = r.int(1, 3); i > 0; i--)
        emit(T, t + i * 5 * MIN, 'config.changed', 'admin', 'success', user(u.id), u.home, {
          target: { type: 'setting', id: 'sso' },
        });
      label([{ ruleId: 'admin.off_hours', entity: { 'actor.id': u.id } }]);
      return;
    }
    case 'chain_integrity': {
      const t = slot(b, tenant, () => (r.chance(0.5) ? night() : working()));
      const stream = `${T}-mobile-${b.key('s')}`;
      const u = r.pick(tenant.users.filter((x) => x.role === 'regular'));
      emit(T, t, 'data.viewed', 'data_access', 'success', user(u.id), u.home, {
        stream,
        flags: ['gap'],
      });
      if (r.chance(0.5))
        emit(
          T,
          t + r.int(1, 20) * MIN,
          'data.viewed',
          'data_access',
          'success',
          user(u.id),
          u.home,
          { stream, flags: ['fork'] },
        );
      label([{ ruleId: 'integrity.chain_finding', entity: { stream } }]);
      return;
    }
  }
}
