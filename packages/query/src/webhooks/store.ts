import { randomBytes } from 'node:crypto';
import { SEVERITIES, type Severity } from '@vigil/detect';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { PLAIN_SECRETS, type SecretBox } from './secrets.js';

/**
 * A tenant's webhooks, in the store's `webhooks` table (migration 12). Each change writes the
 * webhook again with its next version; a deletion writes it with `deleted = 1`. Every read is
 * scoped by tenant: a webhook id of another tenant answers as unknown.
 */

export const WEBHOOK_FORMATS = ['vigil', 'slack'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** A webhook as listed: never its secret. */
export interface Webhook {
  readonly tenant: string;
  readonly id: string;
  readonly url: string;
  readonly format: WebhookFormat;
  /** Alerts below this severity are not sent. */
  readonly minSeverity: Severity;
  readonly enabled: boolean;
  readonly description: string;
  readonly createdAt: number;
  /** The API key that created it. */
  readonly createdBy: string;
}

/** A webhook with the secret that signs its deliveries (the dispatcher's view). */
export interface SigningWebhook extends Webhook {
  readonly secret: string;
}

export interface NewWebhook {
  readonly url: string;
  readonly secret: string;
  readonly format: WebhookFormat;
  readonly minSeverity: Severity;
  readonly enabled: boolean;
  readonly description: string;
}

interface WebhookRow {
  tenant_id: string;
  id: string;
  url: string;
  secret: string;
  format: string;
  min_severity: string;
  enabled: number;
  description: string;
  created_at: string;
  created_by: string;
  deleted: number;
  version: string | number;
}

/** A new webhook id: `wh_` and 16 hex digits. */
export function newWebhookId(): string {
  return `wh_${randomBytes(8).toString('hex')}`;
}

/** The rank of a severity (informational 0 … critical 4); unknown severities rank lowest. */
export function severityRank(severity: string): number {
  return Math.max(0, SEVERITIES.indexOf(severity as Severity));
}

export class WebhookStore {
  constructor(
    private readonly store: Store,
    private readonly clock: () => number = Date.now,
    /** Seals secrets at rest (masterKeySecretBox); plain without one. */
    private readonly secrets: SecretBox = PLAIN_SECRETS,
  ) {}

  async create(
    tenant: string,
    spec: NewWebhook,
    createdBy: string,
    id = newWebhookId(),
  ): Promise<Webhook> {
    const row: WebhookRow = {
      tenant_id: tenant,
      id,
      url: spec.url,
      secret: this.secrets.seal(tenant, id, spec.secret),
      format: spec.format,
      min_severity: spec.minSeverity,
      enabled: spec.enabled ? 1 : 0,
      description: spec.description,
      created_at: toChTime(new Date(this.clock()).toISOString()),
      created_by: createdBy,
      deleted: 0,
      version: 1,
    };
    await this.store.insert(this.store.table('webhooks'), [row]);
    return webhookOf(row);
  }

  /** The tenant's webhooks, oldest first. */
  async list(tenant: string): Promise<Webhook[]> {
    return (await this.rows([tenant])).map(webhookOf);
  }

  /** One webhook of the tenant with its secret; 404 when the tenant has none with that id. */
  async get(tenant: string, id: string): Promise<SigningWebhook> {
    const [row] = await this.rows([tenant], id);
    if (!row)
      throw new QueryError(QueryErrorCodes.WEBHOOK_NOT_FOUND, `no webhook ${id} in this tenant`, {
        status: 404,
      });
    return { ...webhookOf(row), secret: this.secretOf(row) };
  }

  /** The enabled webhooks of these tenants, with their secrets (the delivery side). */
  async enabled(tenants: readonly string[]): Promise<SigningWebhook[]> {
    if (tenants.length === 0) return [];
    return (await this.rows(tenants))
      .filter((r) => Number(r.enabled) === 1)
      .map((r) => ({ ...webhookOf(r), secret: this.secretOf(r) }));
  }

  /** Changes a webhook's settings (404 when the tenant has none with that id). */
  async update(
    tenant: string,
    id: string,
    change: Partial<Pick<NewWebhook, 'format' | 'minSeverity' | 'enabled' | 'description'>>,
  ): Promise<Webhook> {
    const [row] = await this.rows([tenant], id);
    if (!row)
      throw new QueryError(QueryErrorCodes.WEBHOOK_NOT_FOUND, `no webhook ${id} in this tenant`, {
        status: 404,
      });
    const next: WebhookRow = {
      ...row,
      ...(change.format !== undefined ? { format: change.format } : {}),
      ...(change.minSeverity !== undefined ? { min_severity: change.minSeverity } : {}),
      ...(change.enabled !== undefined ? { enabled: change.enabled ? 1 : 0 } : {}),
      ...(change.description !== undefined ? { description: change.description } : {}),
      version: Number(row.version) + 1,
    };
    await this.store.insert(this.store.table('webhooks'), [next]);
    return webhookOf(next);
  }

  /** Deletes a webhook (404 when the tenant has none with that id). */
  async delete(tenant: string, id: string): Promise<Webhook> {
    const [row] = await this.rows([tenant], id);
    if (!row)
      throw new QueryError(QueryErrorCodes.WEBHOOK_NOT_FOUND, `no webhook ${id} in this tenant`, {
        status: 404,
      });
    // The secret is blanked in the deleted version: nothing signs with it any more.
    await this.store.insert(this.store.table('webhooks'), [
      { ...row, secret: '', deleted: 1, version: Number(row.version) + 1 },
    ]);
    return webhookOf(row);
  }

  private secretOf(row: WebhookRow): string {
    try {
      return this.secrets.open(row.tenant_id, row.id, row.secret);
    } catch (error) {
      throw new Error(
        `the secret of webhook ${row.id} cannot be opened: is privacy.keyFile the key it was sealed with?`,
        { cause: error },
      );
    }
  }

  private rows(tenants: readonly string[], id?: string): Promise<WebhookRow[]> {
    return this.store.query<WebhookRow>(
      `SELECT tenant_id, id, url, secret, format, min_severity, enabled, description,
              created_at, created_by, deleted, version
       FROM ${this.store.table('webhooks')} FINAL
       WHERE tenant_id IN {tenants:Array(String)} AND ({id:String} = '' OR id = {id:String})
         AND deleted = 0
       ORDER BY created_at, id`,
      { tenants, id: id ?? '' },
    );
  }
}

function webhookOf(row: WebhookRow): Webhook {
  return {
    tenant: row.tenant_id,
    id: row.id,
    url: row.url,
    format: row.format as WebhookFormat,
    minSeverity: row.min_severity as Severity,
    enabled: Number(row.enabled) === 1,
    description: row.description,
    createdAt: fromChTime(row.created_at),
    createdBy: row.created_by,
  };
}
