import type { AlertUpdate } from '@vigil/detect';
import type { Delivery, DeliveryOutbox, NewDelivery } from './outbox.js';
import { alertEvent, renderBody } from './payload.js';
import type { SendResult, WebhookSender } from './sender.js';
import { severityRank, type SigningWebhook, type WebhookStore } from './store.js';

/** Counts what happens to deliveries (metrics.ts turns it into Prometheus series). */
export interface DeliveryObserver {
  /** delivered; retry (an attempt failed, another is scheduled); dead; cancelled; overflow. */
  outcome(kind: 'delivered' | 'retry' | 'dead' | 'cancelled' | 'overflow', count?: number): void;
  /** Pending deliveries and dead letters, as last counted. */
  depth(pending: number, dead: number): void;
}

export interface RetryPolicy {
  /** Attempts before a delivery is dead-lettered. */
  readonly maxAttempts: number;
  /** A delivery older than this is dead-lettered after its next failure. */
  readonly maxAgeMs: number;
  /** Delay before the 2nd attempt; doubled for each later one. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 10,
  maxAgeMs: 24 * 3_600_000,
  baseDelayMs: 5_000,
  maxDelayMs: 3_600_000,
};

/**
 * The wait after failed attempt number `attempt` (1-based): exponential, capped, with "equal
 * jitter" (half fixed, half random: AWS Architecture Blog, "Exponential Backoff And Jitter"),
 * so receivers that fail together are not retried together yet each wait stays predictable.
 */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/**
 * The alert output of webhooks: the detector calls `publish` with each batch's alert updates
 * (before it checkpoints; the AlertOutput interface of the detector), and each update is queued
 * in the durable outbox once per enabled webhook of its tenant whose minimum severity it
 * reaches. Nothing is sent here: the dispatcher sends, so a slow receiver never holds up
 * detection. A replay after a restart queues the same delivery ids again (at least once).
 */
export class WebhookOutput {
  private readonly clock: () => number;

  constructor(
    private readonly options: {
      readonly webhooks: WebhookStore;
      readonly outbox: DeliveryOutbox;
      readonly observer?: DeliveryObserver;
      /** Called after deliveries were queued (wakes the dispatcher). */
      readonly queued?: () => void;
      readonly clock?: () => number;
    },
  ) {
    this.clock = options.clock ?? Date.now;
  }

  async publish(updates: readonly AlertUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    const tenants = [...new Set(updates.map((u) => u.alert.tenant))];
    const hooks = await this.options.webhooks.enabled(tenants);
    if (hooks.length === 0) return;
    const now = this.clock();
    const items: NewDelivery[] = [];
    for (const update of updates) {
      const event = alertEvent(update, now);
      const rank = severityRank(update.alert.severity);
      for (const hook of hooks) {
        if (hook.tenant !== update.alert.tenant || rank < severityRank(hook.minSeverity)) continue;
        items.push({
          tenant: hook.tenant,
          webhookId: hook.id,
          eventId: event.id,
          eventType: event.type,
          body: renderBody(hook.format, event),
        });
      }
    }
    const { overflow } = await this.options.outbox.enqueue(items);
    if (overflow > 0) this.options.observer?.outcome('overflow', overflow);
    if (items.length > overflow) this.options.queued?.();
  }
}

export interface DispatcherOptions {
  readonly outbox: DeliveryOutbox;
  readonly webhooks: WebhookStore;
  readonly sender: Pick<WebhookSender, 'send'>;
  readonly retry?: RetryPolicy;
  /** Deliveries taken per round. */
  readonly batch?: number;
  /** Deliveries in flight at once. */
  readonly concurrency?: number;
  /** Deliveries of one webhook taken per round (fairness between receivers). */
  readonly perWebhook?: number;
  /** Time between rounds while idle. */
  readonly pollMs?: number;
  readonly observer?: DeliveryObserver;
  readonly clock?: () => number;
  readonly random?: () => number;
  readonly onError?: (error: unknown) => void;
}

/**
 * Sends due deliveries from the outbox: POST (signed by the sender), then delivered, or
 * retried after a backoff, or dead-lettered after maxAttempts or maxAgeMs. Several dispatchers
 * on one store may send a delivery twice (at least once); receivers dedupe by Vigil-Event-Id.
 */
export class WebhookDispatcher {
  private readonly retry: RetryPolicy;
  private readonly clock: () => number;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private again = false;
  private countedAt = -Infinity;

  constructor(private readonly options: DispatcherOptions) {
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops polling and waits for the round in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Run a round soon (new deliveries were queued). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.round().finally(() => {
        this.running = undefined;
        const more = this.again;
        this.again = false;
        this.schedule(more ? 0 : (this.options.pollMs ?? 1000));
      });
    }, ms);
    this.timer.unref();
  }

  private async round(): Promise<void> {
    try {
      // Until nothing is due: a failed attempt is due again only after its backoff.
      while ((await this.runOnce()) > 0 && !this.stopped);
    } catch (error) {
      this.options.onError?.(error);
    }
  }

  /** One round: sends the deliveries due now; returns how many it attempted. */
  async runOnce(): Promise<number> {
    const now = this.clock();
    const due = await this.options.outbox.due(
      now,
      this.options.batch ?? 50,
      this.options.perWebhook ?? 10,
    );
    if (due.length > 0) {
      const hooks = new Map<string, SigningWebhook | undefined>();
      const tenants = [...new Set(due.map((d) => d.tenant))];
      for (const hook of await this.options.webhooks.enabled(tenants))
        hooks.set(`${hook.tenant}\u0000${hook.id}`, hook);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < due.length) {
          const delivery = due[next++] as Delivery;
          await this.attempt(delivery, hooks.get(`${delivery.tenant}\u0000${delivery.webhookId}`));
        }
      };
      await Promise.all(
        Array.from({ length: Math.min(due.length, this.options.concurrency ?? 4) }, worker),
      );
    }
    // Counted after each round that sent something, and every 10 s while idle (a FINAL count).
    if (this.options.observer && (due.length > 0 || now - this.countedAt >= 10_000)) {
      this.countedAt = now;
      const depth = await this.options.outbox.depth();
      this.options.observer.depth(depth.pending, depth.dead);
    }
    return due.length;
  }

  private async attempt(delivery: Delivery, hook: SigningWebhook | undefined): Promise<void> {
    const { outbox, observer } = this.options;
    if (!hook) {
      // Deleted or disabled since it was queued: kept as a dead letter to re-drive once the
      // webhook is back (a deleted webhook's letters stay until they expire).
      await outbox.update(delivery, {
        state: 'dead',
        lastError: 'webhook deleted or disabled before delivery',
      });
      observer?.outcome('cancelled');
      return;
    }
    const result: SendResult = await this.options.sender.send({
      url: hook.url,
      secret: hook.secret,
      body: delivery.body,
      eventId: delivery.eventId,
      deliveryId: delivery.id,
    });
    const attempts = delivery.attempts + 1;
    if (result.ok) {
      await outbox.update(delivery, {
        state: 'delivered',
        attempts,
        lastStatus: result.status,
        lastError: '',
      });
      observer?.outcome('delivered');
      return;
    }
    const now = this.clock();
    const wait = backoffMs(this.retry, attempts, this.random);
    const tooOld = now + wait - delivery.queuedAt > this.retry.maxAgeMs;
    if (attempts >= this.retry.maxAttempts || tooOld) {
      await outbox.update(delivery, {
        state: 'dead',
        attempts,
        lastStatus: result.status,
        lastError: `${result.error} (gave up after ${attempts} attempt(s))`,
      });
      observer?.outcome('dead');
      return;
    }
    await outbox.update(delivery, {
      attempts,
      nextAttemptAt: now + wait,
      lastStatus: result.status,
      lastError: result.error,
    });
    observer?.outcome('retry');
  }
}
