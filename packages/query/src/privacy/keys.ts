import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  type BinaryLike,
} from 'node:crypto';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';

/**
 * Keys of the privacy features. Two levels, so that the store never holds a usable key:
 *
 * - the **master key** (32 bytes, `privacy.keyFile`, outside the store: GDPR Art. 4(5) asks that
 *   the information that re-identifies be "kept separately") wraps tenant keys and derives each
 *   tenant's subject-digest key;
 * - a **tenant key** per tenant that pseudonymises, kept in `tenant_keys` wrapped with
 *   AES-256-GCM under the master key. Its pseudonym and encryption keys are derived with HKDF
 *   (RFC 5869). Destroying it (`destroy`) deletes its wrapped copy from every part of the table,
 *   which is what makes the tenant's pseudonymised events anonymous.
 */

export interface TenantKey {
  readonly tenant: string;
  /** `tk_` and 16 hex digits. */
  readonly keyId: string;
  readonly createdAt: number;
  readonly pseudonymKey: Buffer;
  readonly encryptionKey: Buffer;
}

export interface TenantKeyInfo {
  readonly tenant: string;
  readonly keyId: string;
  readonly createdAt: number;
  /** Set once destroyed. */
  readonly destroyedAt: number | null;
}

function derive(secret: BinaryLike, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), info, 32));
}

function wrapAad(tenant: string, keyId: string): Buffer {
  return Buffer.from(`vigil.tenant-key.v1\u0000${tenant}\u0000${keyId}`, 'utf8');
}

/** Time-ordered versions for ReplacingMergeTree: later writes win, even within one millisecond. */
let lastVersion = 0;
function nextVersion(): number {
  lastVersion = Math.max(Date.now() * 1000, lastVersion + 1);
  return lastVersion;
}

/**
 * How long a key read from the store is used before it is read again: a key destroyed by
 * another process stops being usable here within this time.
 */
const KEY_CACHE_MS = 10_000;

export class TenantKeys {
  /** Keys by tenant and id; null: destroyed, for good. */
  private readonly cache = new Map<string, { key: TenantKey | null; at: number }>();

  constructor(
    private readonly store: Store,
    private readonly master: Buffer,
  ) {
    if (master.length !== 32) throw new TypeError('the privacy master key has 32 bytes');
  }

  /**
   * The key of a tenant's keyed subject digests (erasure markers, receipts, restrictions):
   * HMAC-SHA-256(master, "vigil.subject-key.v1" 0x00 tenant). Derived, not stored, so it
   * survives the destruction of the tenant key: a receipt can always be matched to a person.
   */
  subjectKey(tenant: string): Buffer {
    return createHmac('sha256', this.master)
      .update(`vigil.subject-key.v1\u0000${tenant}`, 'utf8')
      .digest();
  }

  /** The tenant's current key (newest not destroyed), if any. */
  async current(tenant: string): Promise<TenantKey | undefined> {
    const info = (await this.list(tenant)).filter((k) => k.destroyedAt === null).at(-1);
    return info ? this.get(tenant, info.keyId) : undefined;
  }

  /** A key by id; undefined once destroyed (or never made). */
  async get(tenant: string, keyId: string): Promise<TenantKey | undefined> {
    const cacheKey = `${tenant}\u0000${keyId}`;
    const cached = this.cache.get(cacheKey);
    if (cached && (cached.key === null || Date.now() - cached.at < KEY_CACHE_MS))
      return cached.key ?? undefined;
    const rows = await this.store.query<{ wrapped: string; created: string }>(
      `SELECT wrapped_key AS wrapped, toString(created_at) AS created
       FROM ${this.store.table('tenant_keys')} FINAL
       WHERE tenant_id = {tenant:String} AND key_id = {keyId:String}`,
      { tenant, keyId },
    );
    const row = rows[0];
    const key = row && row.wrapped !== '' ? this.unwrap(tenant, keyId, row) : undefined;
    // A destroyed key stays unknown for good; a key not found yet may be written by another process.
    if (key || (row && row.wrapped === ''))
      this.cache.set(cacheKey, { key: key ?? null, at: Date.now() });
    else this.cache.delete(cacheKey);
    return key;
  }

  /** Every key the tenant had, oldest first. */
  async list(tenant: string): Promise<TenantKeyInfo[]> {
    const rows = await this.store.query<{
      kid: string;
      created: string;
      destroyed: string | null;
    }>(
      `SELECT key_id AS kid, toString(created_at) AS created,
              if(isNull(destroyed_at), NULL, toString(destroyed_at)) AS destroyed
       FROM ${this.store.table('tenant_keys')} FINAL
       WHERE tenant_id = {tenant:String}
       ORDER BY created_at, key_id`,
      { tenant },
    );
    return rows.map((r) => ({
      tenant,
      keyId: r.kid,
      createdAt: fromChTime(r.created),
      destroyedAt: r.destroyed === null ? null : fromChTime(r.destroyed),
    }));
  }

  /** Makes a new key for the tenant; it becomes the current one. */
  async create(tenant: string): Promise<TenantKey> {
    const keyId = `tk_${randomBytes(8).toString('hex')}`;
    const secret = randomBytes(32);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.master, iv);
    cipher.setAAD(wrapAad(tenant, keyId));
    const body = Buffer.concat([cipher.update(secret), cipher.final()]);
    const createdAt = Date.now();
    await this.store.insert(this.store.table('tenant_keys'), [
      {
        tenant_id: tenant,
        key_id: keyId,
        wrapped_key: Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url'),
        created_at: toChTime(new Date(createdAt).toISOString()),
        destroyed_at: null,
        version: nextVersion(),
      },
    ]);
    const key = this.keyOf(tenant, keyId, secret, createdAt);
    this.cache.set(`${tenant}\u0000${keyId}`, { key, at: Date.now() });
    return key;
  }

  /**
   * Destroys a key: writes a version without the key material, deletes every row that still
   * holds it (a mutation, waited for on every replica), and merges the table so no data part
   * keeps a copy; then checks that none does. Backups taken before hold the wrapped key, which
   * the master key still opens: rotate the master key, or let those backups expire.
   */
  async destroy(tenant: string, keyId: string): Promise<{ readonly purged: boolean }> {
    const existing = (await this.list(tenant)).find((k) => k.keyId === keyId);
    if (!existing)
      throw new QueryError(QueryErrorCodes.PRIVACY_KEY_NOT_FOUND, `no tenant key ${keyId}`, {
        status: 404,
      });
    const table = this.store.table('tenant_keys');
    await this.store.insert(table, [
      {
        tenant_id: tenant,
        key_id: keyId,
        wrapped_key: '',
        created_at: toChTime(new Date(existing.createdAt).toISOString()),
        destroyed_at: toChTime(new Date().toISOString()),
        version: nextVersion(),
      },
    ]);
    this.cache.set(`${tenant}\u0000${keyId}`, { key: null, at: Date.now() });
    await this.store.command(
      `ALTER TABLE ${table} DELETE WHERE tenant_id = {tenant:String} AND key_id = {keyId:String} AND wrapped_key != ''`,
      { tenant, keyId },
      { mutations_sync: '2' },
    );
    await this.store.command(`OPTIMIZE TABLE ${table} FINAL`);
    const left = await this.store.query<{ n: number | string }>(
      `SELECT count() AS n FROM ${table}
       WHERE tenant_id = {tenant:String} AND key_id = {keyId:String} AND wrapped_key != ''`,
      { tenant, keyId },
    );
    return { purged: Number(left[0]?.n ?? 0) === 0 };
  }

  private unwrap(
    tenant: string,
    keyId: string,
    row: { readonly wrapped: string; readonly created: string },
  ): TenantKey {
    const bytes = Buffer.from(row.wrapped, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.master, bytes.subarray(0, 12));
    decipher.setAAD(wrapAad(tenant, keyId));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    let secret: Buffer;
    try {
      secret = Buffer.concat([
        decipher.update(bytes.subarray(12, bytes.length - 16)),
        decipher.final(),
      ]);
    } catch (error) {
      throw new QueryError(
        QueryErrorCodes.PRIVACY_KEY_NOT_FOUND,
        `tenant key ${keyId} cannot be opened with this privacy master key (privacy.keyFile): every process must use the same one`,
        { status: 500, cause: error },
      );
    }
    return this.keyOf(tenant, keyId, secret, fromChTime(row.created));
  }

  private keyOf(tenant: string, keyId: string, secret: Buffer, createdAt: number): TenantKey {
    return {
      tenant,
      keyId,
      createdAt,
      pseudonymKey: derive(secret, 'vigil.pseudonym.v1'),
      encryptionKey: derive(secret, 'vigil.disclosure-encryption.v1'),
    };
  }
}
