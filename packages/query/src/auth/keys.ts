import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { sha256Hex } from '@vigil/protocol';
import { QueryError, QueryErrorCodes } from '../errors.js';
import type { Store } from '../store/store.js';

/**
 * Tenants and API keys. A key is shown once, at creation; the store keeps only its SHA-256
 * digest, so a copy of the database yields no usable key. The tenant of every request comes
 * from its key, never from the request.
 */

export const SCOPES = ['ingest', 'query', 'admin', 'operator', 'triage'] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * The tenant of operator keys (which manage tenants). Tenant ids cannot start with `_`, so no
 * tenant can take this id, and no tenant's data is ever stored under it.
 */
export const OPERATOR_TENANT = '_operator';
/** Scopes a key of a tenant may hold. */
export const TENANT_SCOPES = ['ingest', 'query', 'admin', 'triage'] as const;
/** Scopes a key of OPERATOR_TENANT may hold (query reads the operator tenant's own audit trail). */
export const OPERATOR_SCOPES = ['operator', 'query'] as const;

export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly status: 'active' | 'suspended';
  readonly createdAt: number;
}

export interface ApiKeyInfo {
  readonly keyId: string;
  readonly tenantId: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly allowedIps: readonly string[];
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
  /** Requests per minute this key may make (per scope); null: the server's limit for the scope. */
  readonly rateLimitPerMinute: number | null;
}

/** A key with its digest, as stored; never sent to a client. */
export type StoredKey = ApiKeyInfo & { readonly digest: string };

/** A key generated and checked but not yet stored (see TenantDirectory.prepareKey). */
export interface PreparedKey {
  readonly info: ApiKeyInfo;
  readonly secret: string;
  readonly digest: string;
}

export interface KeyOptions {
  readonly tenantId: string;
  readonly scopes: readonly Scope[];
  readonly name?: string;
  readonly allowedIps?: readonly string[];
  readonly expiresAt?: number | null;
  readonly rateLimitPerMinute?: number | null;
}

export interface CreatedKey {
  readonly info: ApiKeyInfo;
  /** The key itself; it cannot be recovered later. */
  readonly secret: string;
}

const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const KEY_PREFIX = 'vgl_';

export function validTenantId(id: string): boolean {
  return TENANT_ID.test(id);
}

/** `vgl_<key id>_<secret>`: the key id is public (logs, CLI), the secret is 32 random bytes. */
export function generateKey(): { keyId: string; secret: string; digest: string } {
  const keyId = randomBytes(6).toString('hex');
  const secret = `${KEY_PREFIX}${keyId}_${randomBytes(32).toString('base64url')}`;
  return { keyId, secret, digest: sha256Hex(secret) };
}

export function digestOfKey(secret: string): string {
  return sha256Hex(secret);
}

interface KeyRow {
  key_id: string;
  tenant_id: string;
  digest: string;
  name: string;
  scopes: string[];
  allowed_ips: string[];
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  rate_limit_per_minute: number | null;
}

interface TenantRow {
  id: string;
  name: string;
  status: string;
  created_at: string;
}

const chTime = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 23);
const fromChTime = (text: string): number => Date.parse(text.replace(' ', 'T') + 'Z');

function keyFromRow(row: KeyRow): StoredKey {
  return {
    keyId: row.key_id,
    tenantId: row.tenant_id,
    digest: row.digest,
    name: row.name,
    scopes: row.scopes.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)),
    allowedIps: row.allowed_ips,
    createdAt: fromChTime(row.created_at),
    expiresAt: row.expires_at === null ? null : fromChTime(row.expires_at),
    revokedAt: row.revoked_at === null ? null : fromChTime(row.revoked_at),
    rateLimitPerMinute:
      row.rate_limit_per_minute === null ? null : Number(row.rate_limit_per_minute),
  };
}

const KEY_COLUMNS =
  'key_id, tenant_id, digest, name, scopes, allowed_ips, created_at, expires_at, revoked_at, rate_limit_per_minute';

/** Why `scopes` cannot be given to a key of `tenantId`, or undefined when they can. */
export function scopesProblem(tenantId: string, scopes: readonly string[]): string | undefined {
  if (scopes.length === 0) return 'a key needs at least one scope';
  const allowed: readonly string[] = tenantId === OPERATOR_TENANT ? OPERATOR_SCOPES : TENANT_SCOPES;
  const wrong = scopes.filter((s) => !allowed.includes(s));
  if (wrong.length === 0) return undefined;
  return tenantId === OPERATOR_TENANT
    ? `operator keys may hold ${OPERATOR_SCOPES.join(', ')}; not ${wrong.join(', ')}`
    : `keys of a tenant may hold ${TENANT_SCOPES.join(', ')}; not ${wrong.join(', ')} (operator keys belong to ${OPERATOR_TENANT})`;
}

/** Tenants and keys as stored; every write bumps a version so ReplacingMergeTree keeps the last. */
export class TenantDirectory {
  /** Last version written by this process: two writes in one millisecond still order. */
  private lastVersion = 0;

  constructor(private readonly store: Store) {}

  private nextVersion(): number {
    this.lastVersion = Math.max(Date.now(), this.lastVersion + 1);
    return this.lastVersion;
  }

  async listTenants(): Promise<Tenant[]> {
    const rows = await this.store.query<TenantRow>(
      `SELECT id, name, status, created_at FROM ${this.store.table('tenants')} FINAL ORDER BY id`,
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      status: r.status === 'suspended' ? 'suspended' : 'active',
      createdAt: fromChTime(r.created_at),
    }));
  }

  async getTenant(id: string): Promise<Tenant | undefined> {
    return (await this.listTenants()).find((t) => t.id === id);
  }

  /** Throws unless `id` is a valid tenant id that no tenant has yet. */
  async checkNewTenant(id: string): Promise<void> {
    if (!validTenantId(id)) {
      throw new QueryError(
        QueryErrorCodes.INVALID_QUERY,
        `tenant id "${id}" must match ${TENANT_ID.source}`,
        { status: 400, details: [{ path: '/id', message: `must match ${TENANT_ID.source}` }] },
      );
    }
    if (await this.getTenant(id)) {
      throw new QueryError(QueryErrorCodes.TENANT_EXISTS, `tenant ${id} already exists`, {
        status: 409,
      });
    }
  }

  async createTenant(id: string, name = id): Promise<Tenant> {
    await this.checkNewTenant(id);
    const now = Date.now();
    const tenant: Tenant = { id, name, status: 'active', createdAt: now };
    await this.writeTenant(tenant, now);
    return tenant;
  }

  /** Suspends or resumes a tenant; returns it as it now is. */
  async setTenantStatus(id: string, status: Tenant['status']): Promise<Tenant> {
    const tenant = await this.getTenant(id);
    if (!tenant)
      throw new QueryError(QueryErrorCodes.TENANT_NOT_FOUND, `no tenant ${id}`, { status: 404 });
    if (tenant.status === status) return tenant;
    const next: Tenant = { ...tenant, status };
    await this.writeTenant(next, Date.now());
    return next;
  }

  private async writeTenant(tenant: Tenant, updatedAt: number): Promise<void> {
    await this.store.insert(this.store.table('tenants'), [
      {
        id: tenant.id,
        name: tenant.name,
        status: tenant.status,
        created_at: chTime(tenant.createdAt),
        updated_at: chTime(updatedAt),
        version: this.nextVersion(),
      },
    ]);
  }

  async listKeys(tenantId?: string): Promise<StoredKey[]> {
    const rows = await this.store.query<KeyRow>(
      `SELECT ${KEY_COLUMNS}
       FROM ${this.store.table('api_keys')} FINAL
       WHERE {all:UInt8} = 1 OR tenant_id = {tenant:String}
       ORDER BY created_at`,
      { all: tenantId === undefined ? 1 : 0, tenant: tenantId ?? '' },
    );
    return rows.map(keyFromRow);
  }

  /**
   * One key by id. With `tenantId`, a key of another tenant is not found, exactly like a key
   * that does not exist: a tenant learns nothing of others' keys.
   */
  async getKey(keyId: string, tenantId?: string): Promise<StoredKey | undefined> {
    const rows = await this.store.query<KeyRow>(
      `SELECT ${KEY_COLUMNS}
       FROM ${this.store.table('api_keys')} FINAL
       WHERE key_id = {key:String} AND ({any:UInt8} = 1 OR tenant_id = {tenant:String})`,
      { key: keyId, any: tenantId === undefined ? 1 : 0, tenant: tenantId ?? '' },
    );
    const row = rows[0];
    return row === undefined ? undefined : keyFromRow(row);
  }

  /** Like getKey, but throws the one 404 for a key that is missing or belongs to another tenant. */
  async requireKey(keyId: string, tenantId?: string): Promise<StoredKey> {
    const key = await this.getKey(keyId, tenantId);
    if (!key)
      throw new QueryError(QueryErrorCodes.KEY_NOT_FOUND, `no API key ${keyId}`, { status: 404 });
    return key;
  }

  /**
   * Generates and checks a key without storing it, so that the change can be recorded before
   * it takes effect (see saveKey).
   */
  prepareKey(options: KeyOptions, now = Date.now()): PreparedKey {
    const problems: { path: string; message: string }[] = [];
    const scopeProblem = scopesProblem(options.tenantId, options.scopes);
    if (scopeProblem) problems.push({ path: '/scopes', message: scopeProblem });
    (options.allowedIps ?? []).forEach((ip, i) => {
      if (!isCidrOrIp(ip))
        problems.push({
          path: `/allowedIps/${i}`,
          message: `"${ip}" is neither an IP address nor a CIDR range`,
        });
    });
    const rate = options.rateLimitPerMinute;
    if (rate != null && (!Number.isInteger(rate) || rate < 1))
      problems.push({ path: '/rateLimitPerMinute', message: 'must be a whole number from 1' });
    if (problems.length > 0) {
      throw new QueryError(
        QueryErrorCodes.INVALID_QUERY,
        problems.map((p) => `${p.path}: ${p.message}`).join('; '),
        { status: 400, details: problems },
      );
    }
    const { keyId, secret, digest } = generateKey();
    const info: ApiKeyInfo = {
      keyId,
      tenantId: options.tenantId,
      name: options.name ?? options.scopes.join('+'),
      scopes: [...options.scopes],
      allowedIps: [...(options.allowedIps ?? [])],
      createdAt: now,
      expiresAt: options.expiresAt ?? null,
      revokedAt: null,
      rateLimitPerMinute: rate ?? null,
    };
    return { info, secret, digest };
  }

  async saveKey(prepared: PreparedKey): Promise<void> {
    await this.writeKey(prepared.info, prepared.digest);
  }

  async createKey(options: KeyOptions): Promise<CreatedKey> {
    const prepared = this.prepareKey(options);
    await this.saveKey(prepared);
    return { info: prepared.info, secret: prepared.secret };
  }

  async revokeKey(keyId: string, at = Date.now(), tenantId?: string): Promise<ApiKeyInfo> {
    const key = await this.requireKey(keyId, tenantId);
    if (key.revokedAt !== null) return key;
    return this.updateKey(key, { revokedAt: at });
  }

  /** Writes a new version of a stored key with some of its times changed. */
  async updateKey(
    key: StoredKey,
    change: { readonly expiresAt?: number | null; readonly revokedAt?: number | null },
  ): Promise<StoredKey> {
    const next: StoredKey = { ...key, ...change };
    await this.writeKey(next, key.digest);
    return next;
  }

  private async writeKey(info: ApiKeyInfo, digest: string): Promise<void> {
    await this.store.insert(this.store.table('api_keys'), [
      {
        key_id: info.keyId,
        tenant_id: info.tenantId,
        digest,
        name: info.name,
        scopes: info.scopes,
        allowed_ips: info.allowedIps,
        created_at: chTime(info.createdAt),
        expires_at: info.expiresAt === null ? null : chTime(info.expiresAt),
        revoked_at: info.revokedAt === null ? null : chTime(info.revokedAt),
        rate_limit_per_minute: info.rateLimitPerMinute,
        version: this.nextVersion(),
      },
    ]);
  }
}

export function isCidrOrIp(text: string): boolean {
  const [address, bits, extra] = text.split('/');
  if (extra !== undefined || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return Number.isInteger(n) && n >= 0 && n <= (family === 4 ? 32 : 128) && /^\d+$/.test(bits);
}
