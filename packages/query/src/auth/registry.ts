import { BlockList, isIP } from 'node:net';
import type { ApiKeyInfo, Scope, StoredKey, Tenant } from './keys.js';
import { OPERATOR_TENANT, digestOfKey } from './keys.js';
import { QueryErrorCodes, type QueryErrorCode } from '../errors.js';

export type AuthResult =
  | { readonly ok: true; readonly key: ApiKeyInfo }
  | {
      readonly ok: false;
      readonly status: 401 | 403;
      readonly code: QueryErrorCode;
      readonly reason: string;
    };

const refuse = (status: 401 | 403, reason: string, code?: QueryErrorCode): AuthResult => ({
  ok: false,
  status,
  code: code ?? (status === 401 ? QueryErrorCodes.UNAUTHENTICATED : QueryErrorCodes.FORBIDDEN),
  reason,
});

interface Entry {
  readonly key: ApiKeyInfo;
  readonly allow: BlockList | undefined;
}

function allowList(ips: readonly string[]): BlockList | undefined {
  if (ips.length === 0) return undefined;
  // node:net BlockList matches addresses and CIDR ranges of both families; used as an allow-list.
  const list = new BlockList();
  for (const entry of ips) {
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return list;
}

function normaliseIp(ip: string): { address: string; family: 'ipv4' | 'ipv6' } {
  // IPv4 clients on a dual-stack socket show up as ::ffff:a.b.c.d.
  if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4)
    return { address: ip.slice(7), family: 'ipv4' };
  return { address: ip, family: isIP(ip) === 6 ? 'ipv6' : 'ipv4' };
}

/**
 * In-memory view of the keys, looked up by digest on every request (no store round trip on
 * the hot path). Refreshed from the store on a timer in multi-process deployments and at once
 * after a local change.
 */
/**
 * Where the registry loads keys from: the store (TenantDirectory), or, for a collector that has
 * no database credentials, another Vigil node's key directory over HTTP (HttpKeySource).
 */
export interface KeySource {
  listTenants(): Promise<Tenant[]>;
  listKeys(): Promise<StoredKey[]>;
}

export class KeyRegistry {
  private byDigest = new Map<string, Entry>();
  private suspended: ReadonlySet<string> = new Set();
  private loadedAt = 0;

  constructor(private readonly directory: KeySource) {}

  /** When the keys were last loaded (epoch ms; 0 before the first load). */
  get lastRefresh(): number {
    return this.loadedAt;
  }

  async refresh(): Promise<void> {
    const tenants = await this.directory.listTenants();
    const keys = await this.directory.listKeys();
    const next = new Map<string, Entry>();
    for (const k of keys) {
      const { digest, ...key } = k;
      next.set(digest, { key, allow: allowList(key.allowedIps) });
    }
    this.byDigest = next;
    this.suspended = new Set(tenants.filter((t) => t.status === 'suspended').map((t) => t.id));
    this.loadedAt = Date.now();
  }

  get size(): number {
    return this.byDigest.size;
  }

  /**
   * Whether key `keyId` of `tenantId` is still usable with `scope` (not revoked, not expired,
   * tenant not suspended): what a signed link asked for by that key needs at each use.
   */
  usable(keyId: string, tenantId: string, scope: Scope, now = Date.now()): boolean {
    if (this.suspended.has(tenantId)) return false;
    for (const { key } of this.byDigest.values()) {
      if (key.keyId !== keyId || key.tenantId !== tenantId) continue;
      return (
        (key.revokedAt === null || key.revokedAt > now) &&
        (key.expiresAt === null || key.expiresAt > now) &&
        key.scopes.includes(scope)
      );
    }
    return false;
  }

  /**
   * Checks `Authorization: Bearer <key>`: the key exists, is neither expired nor revoked, the
   * client address is allowed, its tenant is not suspended, and the key has `scope` (`operator`
   * only for keys of the operator tenant). 401 when the key is not usable at all, 403 when it is
   * but may not do this.
   */
  authenticate(
    header: string | undefined,
    scope: Scope,
    clientIp: string,
    now = Date.now(),
  ): AuthResult {
    if (!header)
      return refuse(401, 'missing Authorization header: send Authorization: Bearer <api key>');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return refuse(401, 'Authorization must be "Bearer <api key>"');
    const entry = this.byDigest.get(digestOfKey(match[1] as string));
    if (!entry) return refuse(401, 'unknown API key');
    const { key } = entry;
    if (key.revokedAt !== null && key.revokedAt <= now)
      return refuse(401, `API key ${key.keyId} was revoked`);
    if (key.expiresAt !== null && key.expiresAt <= now)
      return refuse(401, `API key ${key.keyId} has expired`);
    if (this.suspended.has(key.tenantId)) {
      return refuse(
        403,
        `tenant ${key.tenantId} is suspended: its API keys are refused until an operator resumes it`,
        QueryErrorCodes.TENANT_SUSPENDED,
      );
    }
    if (entry.allow) {
      const { address, family } = normaliseIp(clientIp);
      if (!entry.allow.check(address, family))
        return refuse(403, `API key ${key.keyId} may not be used from ${address}`);
    }
    // Defence in depth: the directory gives `operator` only to operator keys, but a key row
    // written by other means must not turn a tenant's key into one that manages all tenants.
    const allowed =
      key.scopes.includes(scope) && (scope !== 'operator' || key.tenantId === OPERATOR_TENANT);
    if (!allowed) {
      return refuse(
        403,
        `API key ${key.keyId} lacks the ${scope} scope (it has: ${key.scopes.join(', ') || 'none'})`,
      );
    }
    return { ok: true, key };
  }
}
