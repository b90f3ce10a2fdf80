import { randomUUID } from 'node:crypto';
import { normalEmail, subjectDigests, type Disclosures, type SubjectRef } from '@vigil/protocol';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { TenantKeys, type TenantKey } from './keys.js';
import {
  openDisclosures,
  pseudonymOf,
  PSEUDONYM_FIELDS,
  type PseudonymField,
  type RowPrivacy,
} from './pseudonyms.js';

/**
 * The privacy settings of tenants and what follows from them: which kinds of fields a tenant
 * pseudonymises (`privacy_settings`, append-only: every change is kept with who, when and why),
 * the tenant's current key, the forms a person's id takes in stored rows (plain, or the
 * pseudonym), and the plain disclosures of a stored row.
 */

export interface PrivacySettingChange {
  readonly tenant: string;
  readonly fields: readonly PseudonymField[];
  readonly changedAt: number;
  readonly actorKeyId: string;
  readonly reason: string;
}

/** The values a subject's id and e-mail addresses may have in stored rows. */
export interface SubjectForms {
  /** The plain id and its pseudonym under the current key. */
  readonly ids: readonly string[];
  /** Lower-cased addresses and their pseudonyms. */
  readonly emails: readonly string[];
}

interface Cached<T> {
  readonly value: T;
  readonly at: number;
}

export class PrivacyService {
  readonly keys: TenantKeys;
  private readonly refreshMs: number;
  private readonly privacy = new Map<string, Cached<RowPrivacy | undefined>>();

  constructor(
    private readonly store: Store,
    master: Buffer,
    options: { readonly refreshMs?: number } = {},
  ) {
    this.keys = new TenantKeys(store, master);
    this.refreshMs = options.refreshMs ?? 10_000;
  }

  /** The key of the tenant's subject digests (see TenantKeys.subjectKey). */
  subjectKey(tenant: string): Buffer {
    return this.keys.subjectKey(tenant);
  }

  /** Keyed digests of a subject's id and addresses (PROTOCOL.md §17.2). */
  digests(tenant: string, subject: SubjectRef): string[] {
    return subjectDigests(this.subjectKey(tenant), subject);
  }

  /** The kinds of fields each tenant pseudonymises now (none for tenants never set). */
  async fields(tenants: readonly string[]): Promise<Map<string, PseudonymField[]>> {
    const out = new Map<string, PseudonymField[]>(tenants.map((t) => [t, []]));
    if (tenants.length === 0) return out;
    const rows = await this.store.query<{ tn: string; f: string[] }>(
      `SELECT tenant_id AS tn, argMax(fields, (changed_at, change_id)) AS f
       FROM ${this.store.table('privacy_settings')}
       WHERE tenant_id IN {tenants:Array(String)}
       GROUP BY tenant_id`,
      { tenants },
    );
    for (const r of rows)
      out.set(
        r.tn,
        r.f.filter((x): x is PseudonymField => (PSEUDONYM_FIELDS as readonly string[]).includes(x)),
      );
    return out;
  }

  /** Every change of the tenant's setting, newest first. */
  async history(tenant: string): Promise<PrivacySettingChange[]> {
    const rows = await this.store.query<{ f: string[]; at: string; k: string; r: string }>(
      `SELECT fields AS f, toString(changed_at) AS at, actor_key_id AS k, reason AS r
       FROM ${this.store.table('privacy_settings')}
       WHERE tenant_id = {tenant:String}
       ORDER BY changed_at DESC, change_id DESC`,
      { tenant },
    );
    return rows.map((r) => ({
      tenant,
      fields: r.f as PseudonymField[],
      changedAt: fromChTime(r.at),
      actorKeyId: r.k,
      reason: r.r,
    }));
  }

  /** Sets the kinds of fields the tenant pseudonymises; makes its key on first use. */
  async setFields(
    tenant: string,
    fields: readonly PseudonymField[],
    actorKeyId: string,
    reason: string,
  ): Promise<{ readonly fields: PseudonymField[]; readonly key: TenantKey | undefined }> {
    const sorted = [...new Set(fields)].sort();
    await this.store.insert(this.store.table('privacy_settings'), [
      {
        tenant_id: tenant,
        fields: sorted,
        changed_at: toChTime(new Date().toISOString()),
        change_id: randomUUID(),
        actor_key_id: actorKeyId,
        reason,
      },
    ]);
    const key =
      sorted.length > 0
        ? ((await this.keys.current(tenant)) ?? (await this.keys.create(tenant)))
        : await this.keys.current(tenant);
    this.privacy.delete(tenant);
    return { fields: sorted, key };
  }

  /**
   * Destroys the tenant's current key and, while fields are still chosen, makes a new one:
   * events stored from then on get pseudonyms that cannot be linked to the earlier ones.
   */
  async destroyKey(
    tenant: string,
  ): Promise<{ destroyed: string | undefined; purged: boolean; next: string | undefined }> {
    const current = await this.keys.current(tenant);
    let purged = true;
    if (current) purged = (await this.keys.destroy(tenant, current.keyId)).purged;
    const fields = (await this.fields([tenant])).get(tenant) ?? [];
    const next = fields.length > 0 ? await this.keys.create(tenant) : undefined;
    this.privacy.delete(tenant);
    return { destroyed: current?.keyId, purged, next: next?.keyId };
  }

  /** How new rows of the tenant are pseudonymised, or undefined when they are not (cached). */
  async rowPrivacy(tenant: string, now = Date.now()): Promise<RowPrivacy | undefined> {
    const cached = this.privacy.get(tenant);
    if (cached && now - cached.at < this.refreshMs) return cached.value;
    await this.load([tenant], now);
    return this.privacy.get(tenant)?.value;
  }

  /** Loads the settings of several tenants at once (the sink's batch). */
  async load(tenants: readonly string[], now = Date.now()): Promise<void> {
    const stale = tenants.filter((t) => {
      const c = this.privacy.get(t);
      return !c || now - c.at >= this.refreshMs;
    });
    if (stale.length === 0) return;
    const fields = await this.fields(stale);
    for (const tenant of stale) {
      const chosen = fields.get(tenant) ?? [];
      const key = chosen.length > 0 ? await this.keys.current(tenant) : undefined;
      this.privacy.set(tenant, {
        at: now,
        value: key
          ? { tenant, keyId: key.keyId, ...keyParts(key), fields: new Set(chosen) }
          : undefined,
      });
    }
  }

  /** The privacy in force for rows of the tenant as last loaded (synchronous, for the sink). */
  loaded(tenant: string): RowPrivacy | undefined {
    return this.privacy.get(tenant)?.value;
  }

  /** Forget cached settings (after a change made elsewhere, or a rebalance). */
  reset(): void {
    this.privacy.clear();
  }

  /** The forms a subject takes in stored rows of the tenant. */
  async subjectForms(tenant: string, subject: SubjectRef): Promise<SubjectForms> {
    const key = await this.keys.current(tenant);
    const emails = (subject.emails ?? []).map(normalEmail);
    const ids = [subject.id];
    const mailForms = [...emails];
    if (key) {
      ids.push(pseudonymOf(key.pseudonymKey, 'id', subject.id));
      for (const e of emails) mailForms.push(pseudonymOf(key.pseudonymKey, 'email', e));
    }
    return { ids, emails: mailForms };
  }

  /**
   * All plain disclosures of a stored row: `disclosures` and, when its key still exists, the
   * decrypted `protected_disclosures`. `readable` is false when protected values could not be
   * opened (the key was destroyed: those values are gone for good).
   */
  async plainDisclosures(row: {
    readonly tenant_id: string;
    readonly id: string;
    readonly hash: string;
    readonly disclosures: string;
    readonly protected_disclosures?: string;
    readonly pseudonym_key?: string;
  }): Promise<{ disclosures: Disclosures; readable: boolean }> {
    const plain = row.disclosures === '' ? {} : (JSON.parse(row.disclosures) as Disclosures);
    if (!row.protected_disclosures || !row.pseudonym_key)
      return { disclosures: plain, readable: true };
    const key = await this.keys.get(row.tenant_id, row.pseudonym_key);
    if (!key) return { disclosures: plain, readable: false };
    const opened = openDisclosures(row.protected_disclosures, key.encryptionKey, {
      tenant: row.tenant_id,
      id: row.id,
      hash: row.hash,
    });
    return { disclosures: { ...plain, ...opened }, readable: true };
  }
}

function keyParts(key: TenantKey): { pseudonymKey: Buffer; encryptionKey: Buffer } {
  return { pseudonymKey: key.pseudonymKey, encryptionKey: key.encryptionKey };
}
