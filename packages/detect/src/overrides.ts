import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { DetectError, DetectErrorCodes } from './errors.js';
import { isTimeZone, type DetectionEvent } from './event.js';

/**
 * Per-tenant overrides of the rule pack (README "Overrides"): thresholds, disabled rules,
 * allow-lists, the tenant's time zone, and the mapping of the application's own action names to
 * the SDK's event catalogue. `defaults` applies to every tenant; a tenant's entry adds to it
 * (lists are joined, maps merged, the tenant's scalar wins).
 */

const allowSchema = z.strictObject({
  ips: z
    .array(z.string().refine((s) => isIP(s) !== 0, 'an IP address'))
    .max(10_000)
    .optional(),
  cidrs: z.array(z.string()).max(10_000).optional(),
  asns: z.array(z.number().int().min(0)).max(10_000).optional(),
  /** Actor ids no rule counts. */
  actors: z.array(z.string().min(1)).max(10_000).optional(),
  /** Actor ids of service accounts: rules marked skip_service_accounts do not count them. */
  serviceAccounts: z.array(z.string().min(1)).max(10_000).optional(),
});

const actionMapping = z.union([
  z.string().min(1),
  z.strictObject({
    action: z.string().min(1),
    outcome: z.enum(['success', 'failure', 'denied', 'error']).optional(),
  }),
]);

const tenantSchema = z.strictObject({
  /** IANA time zone for time.hour / time.weekday; default UTC. */
  timeZone: z.string().refine(isTimeZone, 'an IANA time zone such as Europe/Paris').optional(),
  disable: z.array(z.string()).optional(),
  /** Rule id → the rule's main threshold (count, distinct count, first counted step, or km/h). */
  thresholds: z.record(z.string(), z.number().positive()).optional(),
  allow: allowSchema.optional(),
  /** Rule id → allow-lists for that rule only. */
  rules: z.record(z.string(), z.strictObject({ allow: allowSchema })).optional(),
  /** The application's action name → the catalogue's (and the outcome it implies). */
  actions: z.record(z.string(), actionMapping).optional(),
  /**
   * API key id → the addresses and networks it may be used from (the key's allow-list as the
   * application configured it). Events whose actor is such a key get `apikey.allowlist`.
   */
  apiKeys: z
    .record(
      z.string().min(1),
      z.strictObject({
        ips: allowSchema.shape.ips,
        cidrs: allowSchema.shape.cidrs,
        asns: allowSchema.shape.asns,
      }),
    )
    .optional(),
});

export const overridesSchema = z.strictObject({
  defaults: tenantSchema.optional(),
  tenants: z.record(z.string().min(1), tenantSchema).optional(),
});
export type DetectOverrides = z.input<typeof overridesSchema>;
type TenantInput = z.infer<typeof tenantSchema>;
type AllowInput = z.infer<typeof allowSchema>;

/** An allow-list, compiled. */
export interface AllowList {
  readonly ips: ReadonlySet<string>;
  readonly cidrs: BlockList | undefined;
  readonly asns: ReadonlySet<number>;
  readonly actors: ReadonlySet<string>;
  readonly serviceAccounts: ReadonlySet<string>;
}

export interface TenantSettings {
  readonly timeZone: string;
  readonly disabled: ReadonlySet<string>;
  readonly thresholds: ReadonlyMap<string, number>;
  readonly allow: AllowList;
  readonly ruleAllow: ReadonlyMap<string, AllowList>;
  readonly actions: ReadonlyMap<string, { action: string; outcome?: string }>;
  /** API key id → where it may be used from. */
  readonly apiKeys: ReadonlyMap<string, AllowList>;
}

function compileAllow(
  a: AllowInput | undefined,
  b: AllowInput | undefined,
  at: string,
  problems: { path: string; message: string }[],
): AllowList {
  const cidrs = [...(a?.cidrs ?? []), ...(b?.cidrs ?? [])];
  let list: BlockList | undefined;
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    const family = isIP(addr ?? '');
    const prefix = Number(bits);
    if (
      family === 0 ||
      !Number.isInteger(prefix) ||
      prefix < 0 ||
      prefix > (family === 4 ? 32 : 128)
    ) {
      problems.push({ path: `${at}/cidrs`, message: `not a CIDR block: ${c}` });
      continue;
    }
    (list ??= new BlockList()).addSubnet(addr as string, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return {
    ips: new Set([...(a?.ips ?? []), ...(b?.ips ?? [])]),
    cidrs: list,
    asns: new Set([...(a?.asns ?? []), ...(b?.asns ?? [])]),
    actors: new Set([...(a?.actors ?? []), ...(b?.actors ?? [])]),
    serviceAccounts: new Set([...(a?.serviceAccounts ?? []), ...(b?.serviceAccounts ?? [])]),
  };
}

/**
 * Where an API key was used, against its allow-list: `inside` when the address or network is
 * listed, `outside` when the address is known and neither it nor its network is, undefined when
 * the key has no allow-list or the address is undisclosed (absent is never "outside").
 */
export function keyVerdict(
  list: AllowList,
  event: DetectionEvent,
): 'inside' | 'outside' | undefined {
  const ip = event.context?.ip;
  if (ip === undefined) return undefined;
  const asn = event.enrichment?.asn?.number;
  if (asn !== undefined && list.asns.has(asn)) return 'inside';
  if (list.ips.has(ip)) return 'inside';
  if (list.cidrs !== undefined) {
    const f = isIP(ip);
    if (f !== 0 && list.cidrs.check(ip, f === 4 ? 'ipv4' : 'ipv6')) return 'inside';
  }
  return 'outside';
}

/** Whether the allow-list covers the event (its address, network or actor). */
export function allowed(list: AllowList, event: DetectionEvent, serviceAccounts: boolean): boolean {
  const actor = event.actor.id;
  if (actor !== undefined) {
    if (list.actors.has(actor)) return true;
    if (serviceAccounts && list.serviceAccounts.has(actor)) return true;
  }
  const asn = event.enrichment?.asn?.number;
  if (asn !== undefined && list.asns.has(asn)) return true;
  const ip = event.context?.ip;
  if (ip !== undefined) {
    if (list.ips.has(ip)) return true;
    if (list.cidrs !== undefined) {
      const f = isIP(ip);
      if (f !== 0 && list.cidrs.check(ip, f === 4 ? 'ipv4' : 'ipv6')) return true;
    }
  }
  return false;
}

export function isEmptyAllow(list: AllowList): boolean {
  return (
    list.ips.size === 0 &&
    list.cidrs === undefined &&
    list.asns.size === 0 &&
    list.actors.size === 0 &&
    list.serviceAccounts.size === 0
  );
}

/** Validates overrides against the loaded rule ids; throws naming every bad setting. */
export function compileOverrides(
  input: unknown,
  ruleIds: ReadonlySet<string>,
): { defaults: TenantSettings; tenants: ReadonlyMap<string, TenantSettings> } {
  const parsed = overridesSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new DetectError(
      DetectErrorCodes.DETECT_CONFIG_INVALID,
      'invalid detection overrides',
      parsed.error.issues.map((i) => ({ path: `/${i.path.join('/')}`, message: i.message })),
    );
  }
  const problems: { path: string; message: string }[] = [];
  const build = (t: TenantInput | undefined, at: string, base?: TenantInput): TenantSettings => {
    const checkIds = (ids: readonly string[], where: string): void => {
      for (const id of ids) {
        if (!ruleIds.has(id)) problems.push({ path: `${at}/${where}`, message: `no rule "${id}"` });
      }
    };
    checkIds(t?.disable ?? [], 'disable');
    checkIds(Object.keys(t?.thresholds ?? {}), 'thresholds');
    checkIds(Object.keys(t?.rules ?? {}), 'rules');
    const ruleAllow = new Map<string, AllowList>();
    for (const id of new Set([...Object.keys(base?.rules ?? {}), ...Object.keys(t?.rules ?? {})])) {
      ruleAllow.set(
        id,
        compileAllow(
          base?.rules?.[id]?.allow,
          t?.rules?.[id]?.allow,
          `${at}/rules/${id}/allow`,
          problems,
        ),
      );
    }
    const actions = new Map<string, { action: string; outcome?: string }>();
    for (const [from, to] of Object.entries({ ...base?.actions, ...t?.actions })) {
      actions.set(
        from,
        typeof to === 'string'
          ? { action: to }
          : to.outcome === undefined
            ? { action: to.action }
            : { action: to.action, outcome: to.outcome },
      );
    }
    const apiKeys = new Map<string, AllowList>();
    for (const id of new Set([
      ...Object.keys(base?.apiKeys ?? {}),
      ...Object.keys(t?.apiKeys ?? {}),
    ])) {
      apiKeys.set(
        id,
        compileAllow(base?.apiKeys?.[id], t?.apiKeys?.[id], `${at}/apiKeys/${id}`, problems),
      );
    }
    return {
      timeZone: t?.timeZone ?? base?.timeZone ?? 'UTC',
      apiKeys,
      disabled: new Set([...(base?.disable ?? []), ...(t?.disable ?? [])]),
      thresholds: new Map(Object.entries({ ...base?.thresholds, ...t?.thresholds })),
      allow: compileAllow(base?.allow, t?.allow, `${at}/allow`, problems),
      ruleAllow,
      actions,
    };
  };
  const d = parsed.data.defaults;
  const defaults = build(d, '/defaults');
  const tenants = new Map<string, TenantSettings>();
  for (const [tenant, t] of Object.entries(parsed.data.tenants ?? {})) {
    tenants.set(tenant, build(t, `/tenants/${tenant}`, d));
  }
  if (problems.length > 0) {
    throw new DetectError(
      DetectErrorCodes.DETECT_CONFIG_INVALID,
      'invalid detection overrides',
      problems,
    );
  }
  return { defaults, tenants };
}
