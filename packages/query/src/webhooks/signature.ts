import { createHmac, randomBytes } from 'node:crypto';

/**
 * Webhook signatures: HMAC-SHA256 (RFC 2104) with the webhook's secret over
 * `<unix seconds>.<body bytes>`, sent as `Vigil-Signature: t=<unix seconds>,v1=<hex>` (the
 * scheme Stripe and Slack use). Binding the timestamp makes a captured request useless after
 * the receiver's tolerance (README: reject timestamps older than 5 minutes); `v1` names the
 * scheme so a later one can be sent beside it during a change. Receivers verify with the
 * snippet in README.md ("Webhooks"), which the tests run.
 */

export const SIGNATURE_HEADER = 'vigil-signature';
export const EVENT_ID_HEADER = 'vigil-event-id';
export const DELIVERY_ID_HEADER = 'vigil-delivery-id';

/** A new secret: `whsec_` and 32 random bytes in base64url (256 bits, the HMAC block's half). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export function signatureOf(secret: string, timestamp: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The Vigil-Signature header value for `body` sent at `timestamp` (unix seconds). */
export function signatureHeader(secret: string, timestamp: number, body: string | Buffer): string {
  return `t=${timestamp},v1=${signatureOf(secret, timestamp, body)}`;
}
