import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Alert } from '@vigil/detect';
import { alertEvent, renderBody, slackMessage, testEvent } from './payload.js';
import { newWebhookSecret, signatureHeader } from './signature.js';

const alert: Alert = {
  id: 'f'.repeat(32),
  key: 'k',
  ruleId: 'vigil.impossible_travel',
  title: 'Impossible travel <script>&',
  severity: 'critical',
  attack: ['T1078'],
  tenant: 'acme',
  entity: { 'actor.id': 'bob' },
  firstEventTime: Date.UTC(2026, 0, 5, 9, 0, 0),
  lastEventTime: Date.UTC(2026, 0, 5, 9, 30, 0),
  eventIds: ['e1'],
  eventCount: 2,
  evidence: { speedKmh: 4100 },
  version: 3,
};

describe('webhook payloads', () => {
  it('gives Slack a {text, blocks} message with escaped text and Block Kit limits', () => {
    const event = alertEvent({ status: 'updated', alert }, Date.UTC(2026, 0, 5, 9, 31));
    const body = JSON.parse(renderBody('slack', event)) as ReturnType<typeof slackMessage>;
    expect(Object.keys(body).sort()).toEqual(['blocks', 'text']);
    expect(body.text).toBe(
      '[CRITICAL] Impossible travel &lt;script&gt;&amp; — actor.id=bob (tenant acme, alert updated (version 3))',
    );
    expect(body.blocks.map((b) => b['type'])).toEqual(['header', 'section', 'context']);
    const header = body.blocks[0] as { text: { type: string; text: string } };
    expect(header.text.type).toBe('plain_text'); // plain text: no escaping needed, none done
    expect(header.text.text).toBe('Impossible travel <script>&');
    const fields = (body.blocks[1] as { fields: { type: string; text: string }[] }).fields;
    expect(fields.length).toBeLessThanOrEqual(10);
    expect(fields.map((f) => f.text)).toContain('*Severity*\ncritical');
    expect(fields.map((f) => f.text)).toContain(
      '*Window*\n2026-01-05T09:00:00.000Z → 2026-01-05T09:30:00.000Z',
    );
    const long = slackMessage(
      alertEvent({ status: 'new', alert: { ...alert, title: 'x'.repeat(400) } }, 0),
    );
    expect((long.blocks[0] as { text: { text: string } }).text.text.length).toBe(150);
    expect(slackMessage(testEvent('acme', 'wh_1', 0)).text).toMatch(/test message/);
  });

  it('gives the vigil format the alert with an event id of alert id and version', () => {
    const event = alertEvent({ status: 'new', alert: { ...alert, version: 1 } }, 0);
    expect(JSON.parse(renderBody('vigil', event))).toMatchObject({
      id: `${'f'.repeat(32)}.1`,
      type: 'alert.new',
      alert: {
        version: 1,
        firstEventTime: '2026-01-05T09:00:00.000Z',
        evidence: { speedKmh: 4100 },
      },
    });
  });

  it('signs HMAC-SHA256 over "<timestamp>.<body>"', () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    const expected = createHmac('sha256', secret).update('1700000000.{"a":1}').digest('hex');
    expect(signatureHeader(secret, 1_700_000_000, '{"a":1}')).toBe(`t=1700000000,v1=${expected}`);
  });
});
