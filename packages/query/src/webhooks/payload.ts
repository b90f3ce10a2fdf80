import type { Alert, AlertUpdate } from '@vigil/detect';
import type { WebhookFormat } from './store.js';

/**
 * What a webhook receives. `vigil`: the alert as JSON (`WebhookEvent`). `slack`: a message in the
 * shape of Slack's incoming webhooks (`{text, blocks}`, Slack docs "Sending messages using
 * incoming webhooks" and the Block Kit reference), which Mattermost and Rocket.Chat accept too.
 */

export type WebhookEventType = 'alert.new' | 'alert.updated' | 'webhook.test';

export interface WebhookEvent {
  /** `<alert id>.<alert version>`: the same alert version always has the same event id. */
  readonly id: string;
  readonly type: WebhookEventType;
  /** When Vigil queued it (RFC 3339 UTC). */
  readonly createdAt: string;
  readonly tenant: string;
  readonly alert: AlertBody | null;
}

export interface AlertBody {
  readonly id: string;
  readonly version: number;
  readonly ruleId: string;
  readonly title: string;
  readonly severity: string;
  readonly attack: readonly string[];
  readonly entity: Readonly<Record<string, string>>;
  readonly firstEventTime: string;
  readonly lastEventTime: string;
  readonly eventIds: readonly string[];
  readonly eventCount: number;
  readonly evidence: Readonly<Record<string, unknown>>;
}

export function eventIdOf(alert: Pick<Alert, 'id' | 'version'>): string {
  return `${alert.id}.${alert.version}`;
}

export function alertEvent(update: AlertUpdate, now: number): WebhookEvent {
  const a = update.alert;
  return {
    id: eventIdOf(a),
    type: update.status === 'new' ? 'alert.new' : 'alert.updated',
    createdAt: new Date(now).toISOString(),
    tenant: a.tenant,
    alert: {
      id: a.id,
      version: a.version,
      ruleId: a.ruleId,
      title: a.title,
      severity: a.severity,
      attack: a.attack,
      entity: a.entity,
      firstEventTime: new Date(a.firstEventTime).toISOString(),
      lastEventTime: new Date(a.lastEventTime).toISOString(),
      eventIds: a.eventIds,
      eventCount: a.eventCount,
      evidence: a.evidence,
    },
  };
}

/** The event a test-send delivers: no alert, so receivers can tell it apart. */
export function testEvent(tenant: string, webhookId: string, now: number): WebhookEvent {
  return {
    id: `test.${webhookId}.${now}`,
    type: 'webhook.test',
    createdAt: new Date(now).toISOString(),
    tenant,
    alert: null,
  };
}

/** The body bytes for a webhook's format (signed as they are). */
export function renderBody(format: WebhookFormat, event: WebhookEvent): string {
  return JSON.stringify(format === 'slack' ? slackMessage(event) : event);
}

/** Slack's mrkdwn needs &, < and > escaped (Slack docs, "Formatting text for app surfaces"). */
function escapeSlack(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export interface SlackMessage {
  readonly text: string;
  readonly blocks: readonly Record<string, unknown>[];
}

/** Block Kit limits: header text ≤ 150 characters, a section field ≤ 2000, ≤ 10 fields. */
export function slackMessage(event: WebhookEvent): SlackMessage {
  const a = event.alert;
  if (!a) {
    const text = `Vigil test message for tenant ${event.tenant}: this webhook works.`;
    return {
      text,
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: escapeSlack(text) } }],
    };
  }
  const entity = Object.entries(a.entity)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const change = event.type === 'alert.new' ? 'new alert' : `alert updated (version ${a.version})`;
  const text = `[${a.severity.toUpperCase()}] ${a.title}${entity ? ` — ${entity}` : ''} (tenant ${event.tenant}, ${change})`;
  const field = (name: string, value: string) => ({
    type: 'mrkdwn',
    text: clip(`*${name}*\n${escapeSlack(value)}`, 2000),
  });
  return {
    text: escapeSlack(text),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(a.title, 150), emoji: false } },
      {
        type: 'section',
        fields: [
          field('Severity', a.severity),
          field('Rule', a.ruleId),
          field('Entity', entity || '(tenant)'),
          field('Events', String(a.eventCount)),
          field('Window', `${a.firstEventTime} → ${a.lastEventTime}`),
          field('ATT&CK', a.attack.join(', ') || '-'),
        ],
      },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: escapeSlack(`Vigil ${change} · alert ${a.id} · tenant ${event.tenant}`),
          },
        ],
      },
    ],
  };
}
