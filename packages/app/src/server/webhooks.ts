import type { Logger } from 'pino';
import {
  AddressGuard,
  DeliveryOutbox,
  WebhookDispatcher,
  WebhookOutput,
  WebhookSender,
  WebhookStore,
  masterKeySecretBox,
  type ChangeRecorder,
  type Store,
  type WebhookRoutesOptions,
} from '@vigil/query';
import { VERSION, openMasterKey } from '@vigil/collector';
import type { WebhooksConfig } from '../config/config.js';
import type { Metrics } from './metrics.js';

/**
 * Delivery of alerts to tenants' webhooks in one process: the configuration API's parts, the
 * alert output a detector publishes to (`output`), and the dispatcher that sends from the
 * store's outbox. Every part shares one address guard built from webhooks.allowAddresses.
 */
export interface Webhooks {
  /** The detector's alert output for webhooks (AlertOutput: `publish(updates)`). */
  readonly output: WebhookOutput;
  readonly dispatcher: WebhookDispatcher;
  /** The options of registerWebhookRoutes, given the recorder of changes. */
  routes(recorder: ChangeRecorder): Omit<WebhookRoutesOptions, 'registry' | 'onAuthFailure'>;
}

export function openWebhooks(
  config: WebhooksConfig,
  /** privacy.keyFile: signing secrets are sealed under a key derived from it. */
  masterKeyFile: string,
  store: Store,
  metrics: Metrics,
  logger: Logger,
): Webhooks {
  const guard = new AddressGuard({ allow: config.allowAddresses });
  const webhooks = new WebhookStore(
    store,
    Date.now,
    masterKeySecretBox(openMasterKey(masterKeyFile)),
  );
  const outbox = new DeliveryOutbox(store, { maxPending: config.maxQueue });
  const sender = new WebhookSender({
    guard,
    timeoutMs: config.timeoutMs,
    userAgent: `Vigil-Webhooks/${VERSION}`,
  });
  const observer = metrics.webhookObserver();
  const dispatcher = new WebhookDispatcher({
    outbox,
    webhooks,
    sender,
    retry: {
      maxAttempts: config.maxAttempts,
      maxAgeMs: config.maxAgeMs,
      baseDelayMs: 5_000,
      maxDelayMs: 3_600_000,
    },
    observer,
    onError: (error) => logger.warn({ err: error }, 'webhook dispatch round failed; retrying'),
  });
  const queued = (): void => dispatcher.wake();
  return {
    output: new WebhookOutput({ webhooks, outbox, observer, queued }),
    dispatcher,
    routes: (recorder) => ({ webhooks, outbox, guard, sender, recorder, queued }),
  };
}
