import { createHash } from 'node:crypto';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { WebhookEventType } from './payload.js';

/**
 * The durable outbox of webhook deliveries, in the store's `webhook_deliveries` table (migration
 * 12), so queued deliveries survive a restart and any process with the store can re-drive dead
 * letters. A delivery is one (webhook, alert version); its id is derived from both, so a
 * detector that replays updates after a restart writes the same delivery again (the version
 * column keeps the furthest state: a delivered one stays delivered).
 *
 * Each state change writes the delivery again with version + 1 (ReplacingMergeTree; FINAL reads
 * the newest). The store is a modest queue: alerts are rare next to events, and the pending set
 * is bounded (maxPending).
 */

export const DELIVERY_STATES = ['pending', 'delivered', 'dead', 'cancelled'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export interface Delivery {
  readonly tenant: string;
  readonly id: string;
  readonly webhookId: string;
  readonly eventId: string;
  readonly eventType: WebhookEventType;
  readonly body: string;
  readonly state: DeliveryState;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  /** HTTP status of the last attempt (0: no answer). */
  readonly lastStatus: number;
  readonly lastError: string;
  readonly createdAt: number;
  /** When it was queued, or last re-driven: the age limit of retries counts from here. */
  readonly queuedAt: number;
  readonly updatedAt: number;
  readonly version: number;
}

export type NewDelivery = Pick<Delivery, 'tenant' | 'webhookId' | 'eventId' | 'eventType' | 'body'>;

export interface OutboxOptions {
  /** Pending deliveries beyond which new ones are dead-lettered at once (counted, re-drivable). */
  readonly maxPending: number;
  /** How long a delivery (its body names the alert's entity) is kept, in days. */
  readonly retentionDays?: number;
  readonly clock?: () => number;
}

interface DeliveryRow {
  tenant_id: string;
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  body: string;
  state: string;
  attempts: number;
  next_attempt_at: string;
  last_status: number;
  last_error: string;
  created_at: string;
  queued_at: string;
  updated_at: string;
  expires_at: number | string;
  version: number | string;
}

const chTime = (ms: number): string => toChTime(new Date(ms).toISOString());
const DAY_MS = 86_400_000;
const COLUMNS = `tenant_id, id, webhook_id, event_id, event_type, body, state, attempts,
  next_attempt_at, last_status, last_error, created_at, queued_at, updated_at, toUnixTimestamp(expires_at) AS expires_at, version`;

/** The delivery id of an event to a webhook: `whd_` and 24 hex digits of SHA-256. */
export function deliveryIdOf(webhookId: string, eventId: string): string {
  return `whd_${createHash('sha256').update(`${webhookId}\u0000${eventId}`).digest('hex').slice(0, 24)}`;
}

export class DeliveryOutbox {
  private readonly clock: () => number;
  private readonly retentionMs: number;

  constructor(
    private readonly store: Store,
    private readonly options: OutboxOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.retentionMs = (options.retentionDays ?? 30) * DAY_MS;
  }

  /**
   * Queues deliveries. While the outbox holds maxPending pending deliveries, the excess goes
   * straight to the dead-letter list (reason "outbox full"), so none is lost unseen; returns
   * how many were queued and how many were dead-lettered that way.
   */
  async enqueue(items: readonly NewDelivery[]): Promise<{ queued: number; overflow: number }> {
    if (items.length === 0) return { queued: 0, overflow: 0 };
    const now = this.clock();
    const room = Math.max(0, this.options.maxPending - (await this.depth()).pending);
    const rows = items.map((item, i) => {
      const full = i >= room;
      return {
        tenant_id: item.tenant,
        id: deliveryIdOf(item.webhookId, item.eventId),
        webhook_id: item.webhookId,
        event_id: item.eventId,
        event_type: item.eventType,
        body: item.body,
        state: full ? 'dead' : 'pending',
        attempts: 0,
        next_attempt_at: chTime(now),
        last_status: 0,
        last_error: full ? 'outbox full (webhooks.maxQueue): not attempted' : '',
        created_at: chTime(now),
        queued_at: chTime(now),
        updated_at: chTime(now),
        expires_at: Math.floor((now + this.retentionMs) / 1000),
        version: 0,
      };
    });
    await this.store.insert(this.store.table('webhook_deliveries'), rows);
    const overflow = Math.max(0, items.length - room);
    return { queued: items.length - overflow, overflow };
  }

  /**
   * Pending deliveries due at `now`, earliest first, at most `perWebhook` of each webhook: a
   * receiver with a backlog (or one that times out) takes only its share of a round, so other
   * webhooks' deliveries, of its tenant and of others, still go out (ClickHouse `LIMIT n BY`).
   */
  async due(now: number, limit: number, perWebhook = limit): Promise<Delivery[]> {
    const rows = await this.store.query<DeliveryRow>(
      `SELECT ${COLUMNS} FROM ${this.store.table('webhook_deliveries')} FINAL
       WHERE state = 'pending' AND next_attempt_at <= {now:DateTime64(3, 'UTC')}
       ORDER BY next_attempt_at, id
       LIMIT {per:UInt32} BY tenant_id, webhook_id
       LIMIT {limit:UInt32}`,
      { now: chTime(now), limit, per: perWebhook },
    );
    return rows.map(deliveryOf);
  }

  /** Writes the next state of a delivery (its version + 1). */
  async update(
    delivery: Delivery,
    change: Partial<
      Pick<
        Delivery,
        'state' | 'attempts' | 'nextAttemptAt' | 'lastStatus' | 'lastError' | 'queuedAt'
      >
    >,
  ): Promise<Delivery> {
    const next: Delivery = {
      ...delivery,
      ...change,
      updatedAt: this.clock(),
      version: delivery.version + 1,
    };
    await this.store.insert(this.store.table('webhook_deliveries'), [
      {
        tenant_id: next.tenant,
        id: next.id,
        webhook_id: next.webhookId,
        event_id: next.eventId,
        event_type: next.eventType,
        body: next.body,
        state: next.state,
        attempts: next.attempts,
        next_attempt_at: chTime(next.nextAttemptAt),
        last_status: next.lastStatus,
        last_error: next.lastError.slice(0, 1000),
        created_at: chTime(next.createdAt),
        queued_at: chTime(next.queuedAt),
        updated_at: chTime(next.updatedAt),
        // Every version expires with the first: no older version outlives a newer one.
        expires_at: Math.floor((next.createdAt + this.retentionMs) / 1000),
        version: next.version,
      },
    ]);
    return next;
  }

  /** Pending and dead deliveries over all tenants (queue depth and dead letters). */
  async depth(): Promise<{ pending: number; dead: number }> {
    const [row] = await this.store.query<{ pending: string | number; dead: string | number }>(
      `SELECT countIf(state = 'pending') AS pending, countIf(state = 'dead') AS dead
       FROM ${this.store.table('webhook_deliveries')} FINAL`,
    );
    return { pending: Number(row?.pending ?? 0), dead: Number(row?.dead ?? 0) };
  }

  /** A tenant's deliveries in one state, newest first. */
  async list(
    tenant: string,
    state: DeliveryState,
    filter: { webhookId?: string; limit?: number } = {},
  ): Promise<Delivery[]> {
    const rows = await this.store.query<DeliveryRow>(
      `SELECT ${COLUMNS} FROM ${this.store.table('webhook_deliveries')} FINAL
       WHERE tenant_id = {tenant:String} AND state = {state:String}
         AND ({webhook:String} = '' OR webhook_id = {webhook:String})
       ORDER BY updated_at DESC, id LIMIT {limit:UInt32}`,
      { tenant, state, webhook: filter.webhookId ?? '', limit: filter.limit ?? 100 },
    );
    return rows.map(deliveryOf);
  }

  /** One delivery of the tenant, or undefined. */
  async get(tenant: string, id: string): Promise<Delivery | undefined> {
    const [row] = await this.store.query<DeliveryRow>(
      `SELECT ${COLUMNS} FROM ${this.store.table('webhook_deliveries')} FINAL
       WHERE tenant_id = {tenant:String} AND id = {id:String}`,
      { tenant, id },
    );
    return row ? deliveryOf(row) : undefined;
  }

  /** The dead letters `ids` of the tenant; 404 naming the first that is not one. */
  async deadLetters(tenant: string, ids: readonly string[]): Promise<Delivery[]> {
    const out: Delivery[] = [];
    for (const id of ids) {
      const found = await this.get(tenant, id);
      if (!found || found.state !== 'dead')
        throw new QueryError(
          QueryErrorCodes.DELIVERY_NOT_FOUND,
          `no dead-lettered delivery ${id} in this tenant`,
          { status: 404 },
        );
      out.push(found);
    }
    return out;
  }

  /**
   * Puts dead letters back in the queue with a fresh count of attempts, due now. `ids`: those
   * of the tenant (404 for one that is not a dead letter of it); 'all': every dead letter of the
   * tenant (of one webhook with `webhookId`).
   */
  async redrive(
    tenant: string,
    ids: readonly string[] | 'all',
    webhookId?: string,
  ): Promise<Delivery[]> {
    let dead: Delivery[];
    if (ids === 'all') {
      dead = await this.list(tenant, 'dead', {
        limit: this.options.maxPending,
        ...(webhookId !== undefined ? { webhookId } : {}),
      });
    } else {
      dead = await this.deadLetters(tenant, ids);
    }
    const now = this.clock();
    const out: Delivery[] = [];
    for (const d of dead)
      out.push(
        await this.update(d, {
          state: 'pending',
          attempts: 0,
          nextAttemptAt: now,
          queuedAt: now,
          lastError: `re-driven after: ${d.lastError}`,
        }),
      );
    return out;
  }
}

function deliveryOf(row: DeliveryRow): Delivery {
  return {
    tenant: row.tenant_id,
    id: row.id,
    webhookId: row.webhook_id,
    eventId: row.event_id,
    eventType: row.event_type as WebhookEventType,
    body: row.body,
    state: row.state as DeliveryState,
    attempts: Number(row.attempts),
    nextAttemptAt: fromChTime(row.next_attempt_at),
    lastStatus: Number(row.last_status),
    lastError: row.last_error,
    createdAt: fromChTime(row.created_at),
    queuedAt: fromChTime(row.queued_at),
    updatedAt: fromChTime(row.updated_at),
    version: Number(row.version),
  };
}
