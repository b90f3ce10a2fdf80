import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Alert, AlertUpdate } from '@vigil/detect';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { DeliveryOutbox } from './outbox.js';
import { WebhookDispatcher, WebhookOutput, backoffMs, type RetryPolicy } from './dispatcher.js';
import { WebhookSender } from './sender.js';
import { newWebhookSecret } from './signature.js';
import { AddressGuard, type Resolver } from './ssrf.js';
import { masterKeySecretBox } from './secrets.js';
import { WebhookStore, type NewWebhook } from './store.js';
import { readmeVerifier, type VerifyVigilSignature as Verify } from './readme-snippet.testkit.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A real receiver on 127.0.0.1 answering with the statuses of `script`, then 204. */
class Receiver {
  readonly received: Received[] = [];
  script: number[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body: Buffer.concat(chunks) });
        const status = this.script.shift() ?? 204;
        if (status === 302) res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end();
        else res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function alert(tenant: string, version: number, severity = 'high'): Alert {
  return {
    id: 'a'.repeat(32),
    key: `brute-force|${tenant}|alice|1`,
    ruleId: 'vigil.brute_force',
    title: 'Brute force on one account',
    severity,
    attack: ['T1110.001'],
    tenant,
    entity: { 'actor.id': 'alice' },
    firstEventTime: 1_700_000_000_000,
    lastEventTime: 1_700_000_060_000,
    eventIds: ['e1', 'e2'],
    eventCount: 12,
    evidence: { failures: 12 },
    version,
  };
}
const update = (a: Alert): AlertUpdate => ({
  status: a.version === 1 ? 'new' : 'updated',
  alert: a,
});

const RETRY: RetryPolicy = {
  maxAttempts: 4,
  maxAgeMs: 86_400_000,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
};

describe('webhook delivery on chDB with a local receiver', () => {
  let ts: TestStore;
  let receiver: Receiver;
  let verify: Verify;
  let now: number;
  const clock = (): number => now;
  const allowLocal = new AddressGuard({ allow: ['127.0.0.1/32'] });

  beforeAll(async () => {
    verify = await readmeVerifier();
  });
  beforeEach(async () => {
    ts = await openTestStore();
    receiver = new Receiver();
    await receiver.start();
    now = 1_800_000_000_000;
  });
  afterEach(async () => {
    await receiver.close();
    await ts.cleanup();
  });
  afterAll(() => undefined);

  function setup(
    options: { guard?: AddressGuard; maxPending?: number; random?: () => number } = {},
  ) {
    const webhooks = new WebhookStore(ts.store, clock);
    const outbox = new DeliveryOutbox(ts.store, { maxPending: options.maxPending ?? 100, clock });
    const outcomes: string[] = [];
    const observer = {
      outcome: (kind: string, count = 1) => {
        for (let i = 0; i < count; i++) outcomes.push(kind);
      },
      depth: () => undefined,
    };
    const sender = new WebhookSender({
      guard: options.guard ?? allowLocal,
      timeoutMs: 5000,
      clock,
    });
    const dispatcher = new WebhookDispatcher({
      outbox,
      webhooks,
      sender,
      retry: RETRY,
      clock,
      random: options.random ?? (() => 0.5),
      observer,
    });
    const output = new WebhookOutput({ webhooks, outbox, observer, clock });
    return { webhooks, outbox, dispatcher, output, outcomes };
  }

  const hook = (url: string, extra: Partial<NewWebhook> = {}): NewWebhook => ({
    url,
    secret: newWebhookSecret(),
    format: 'vigil',
    minSeverity: 'low',
    enabled: true,
    description: '',
    ...extra,
  });

  it('delivers a signed alert whose signature the README check accepts, and rejects tampering and stale timestamps', async () => {
    const { webhooks, dispatcher, output, outcomes } = setup();
    const spec = hook(receiver.url);
    const created = await webhooks.create('acme', spec, 'key1');
    await output.publish([update(alert('acme', 1))]);
    expect(await dispatcher.runOnce()).toBe(1);
    expect(outcomes).toEqual(['delivered']);
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0] as Received;
    const signature = got.headers['vigil-signature'];
    expect(signature).toMatch(/^t=1800000000,v1=[0-9a-f]{64}$/);
    expect(got.headers['vigil-event-id']).toBe(`${'a'.repeat(32)}.1`);
    expect(got.headers['vigil-delivery-id']).toMatch(/^whd_[0-9a-f]{24}$/);
    expect(verify(spec.secret, signature, got.body, now)).toBe(true);
    const event = JSON.parse(got.body.toString('utf8')) as Record<string, unknown>;
    expect(event).toMatchObject({
      id: `${'a'.repeat(32)}.1`,
      type: 'alert.new',
      tenant: 'acme',
      alert: { ruleId: 'vigil.brute_force', severity: 'high', entity: { 'actor.id': 'alice' } },
    });
    // Tampered body, other secret, stale or future timestamp: the same check refuses.
    const tampered = Buffer.from(got.body.toString('utf8').replace('"high"', '"low"'));
    expect(verify(spec.secret, signature, tampered, now)).toBe(false);
    expect(verify(newWebhookSecret(), signature, got.body, now)).toBe(false);
    expect(verify(spec.secret, signature, got.body, now + 301_000)).toBe(false);
    expect(verify(spec.secret, signature, got.body, now - 301_000)).toBe(false);
    expect(verify(spec.secret, signature, got.body, now + 299_000)).toBe(true);
    expect(verify(spec.secret, undefined, got.body, now)).toBe(false);
    // Delivered once: a second round sends nothing, a replay of the same update is not resent.
    expect(await dispatcher.runOnce()).toBe(0);
    await output.publish([update(alert('acme', 1))]);
    expect(await dispatcher.runOnce()).toBe(0);
    expect(receiver.received).toHaveLength(1);
    expect(created.enabled).toBe(true);
  });

  it('retries with exponential backoff and jitter, then delivers (fails twice, then succeeds)', async () => {
    const { webhooks, outbox, dispatcher, output, outcomes } = setup();
    await webhooks.create('acme', hook(receiver.url), 'key1');
    receiver.script = [500, 503];
    await output.publish([update(alert('acme', 1))]);
    expect(await dispatcher.runOnce()).toBe(1); // attempt 1: 500
    const wait1 = backoffMs(RETRY, 1, () => 0.5); // 750 ms: half of 1 s fixed, half jitter
    expect(wait1).toBe(750);
    now += wait1 - 1;
    expect(await dispatcher.runOnce()).toBe(0); // not yet due
    now += 1;
    expect(await dispatcher.runOnce()).toBe(1); // attempt 2: 503
    const wait2 = backoffMs(RETRY, 2, () => 0.5); // 1500 ms: doubled
    expect(wait2).toBe(1500);
    now += wait2 - 1;
    expect(await dispatcher.runOnce()).toBe(0);
    now += 1;
    expect(await dispatcher.runOnce()).toBe(1); // attempt 3: 204
    expect(outcomes).toEqual(['retry', 'retry', 'delivered']);
    expect(receiver.received).toHaveLength(3);
    // Each attempt signs afresh with its own timestamp; the event and delivery ids stay.
    const ids = new Set(receiver.received.map((r) => r.headers['vigil-delivery-id']));
    expect(ids.size).toBe(1);
    expect(await outbox.depth()).toEqual({ pending: 0, dead: 0 });
    // Jitter spreads the wait between half and all of the exponential delay.
    expect(backoffMs(RETRY, 3, () => 0)).toBe(2000);
    expect(backoffMs(RETRY, 3, () => 1)).toBe(4000);
    expect(backoffMs(RETRY, 30, () => 1)).toBe(60_000);
  });

  it('dead-letters after the attempt limit, survives a restart, and delivers once re-driven', async () => {
    const first = setup();
    const created = await first.webhooks.create('acme', hook(receiver.url), 'key1');
    receiver.script = [500, 500, 302, 500];
    await first.output.publish([update(alert('acme', 1))]);
    // A new outbox and dispatcher over the same store: the queue lives in the store.
    const { outbox, dispatcher, outcomes } = setup();
    for (let i = 0; i < RETRY.maxAttempts; i++) {
      expect(await dispatcher.runOnce()).toBe(1);
      now += RETRY.maxDelayMs;
    }
    expect(outcomes).toEqual(['retry', 'retry', 'retry', 'dead']);
    expect(await dispatcher.runOnce()).toBe(0);
    const [dead] = await outbox.list('acme', 'dead');
    expect(dead).toMatchObject({ webhookId: created.id, attempts: 4, lastStatus: 500 });
    expect(dead?.lastError).toMatch(/gave up after 4/);
    expect(await outbox.list('other', 'dead')).toEqual([]);
    await expect(outbox.redrive('other', [dead?.id ?? ''])).rejects.toMatchObject({ status: 404 });
    // The 302 was not followed: nothing reached 127.0.0.1:1.
    expect(receiver.received).toHaveLength(4);
    await outbox.redrive('acme', [dead?.id ?? '']);
    expect(await dispatcher.runOnce()).toBe(1);
    expect(outcomes.at(-1)).toBe('delivered');
    expect(await outbox.depth()).toEqual({ pending: 0, dead: 0 });
  });

  it('dead-letters beyond the outbox bound instead of queueing without limit', async () => {
    const { webhooks, outbox, output, outcomes } = setup({ maxPending: 1 });
    await webhooks.create('acme', hook(receiver.url), 'key1');
    await output.publish([update(alert('acme', 1)), update(alert('acme', 2))]);
    expect(await outbox.depth()).toEqual({ pending: 1, dead: 1 });
    expect(outcomes).toEqual(['overflow']);
    expect((await outbox.list('acme', 'dead'))[0]?.lastError).toMatch(/outbox full/);
  });

  it('sends each tenant only its own alerts, at or above each webhook minimum severity', async () => {
    const { webhooks, outbox, output } = setup();
    const high = await webhooks.create('acme', hook(receiver.url, { minSeverity: 'high' }), 'k');
    const low = await webhooks.create('acme', hook(receiver.url, { minSeverity: 'low' }), 'k');
    await webhooks.create('other', hook(receiver.url), 'k');
    await webhooks.create('acme', hook(receiver.url, { enabled: false }), 'k');
    await output.publish([update(alert('acme', 1, 'medium'))]);
    const due = await outbox.due(now, 10);
    expect(due.map((d) => d.webhookId)).toEqual([low.id]);
    expect(due.every((d) => d.tenant === 'acme')).toBe(true);
    await output.publish([update(alert('acme', 2, 'critical'))]);
    const second = (await outbox.due(now, 10)).filter((d) => d.eventId.endsWith('.2'));
    expect(second.map((d) => d.webhookId).sort()).toEqual([high.id, low.id].sort());
  });

  it('refuses at connect time what is not allow-listed: a literal loopback, a name resolving to 127.0.0.1, DNS rebinding', async () => {
    const strict = new AddressGuard();
    const { webhooks, outbox, dispatcher, output } = setup({ guard: strict });
    const port = new URL(receiver.url).port;
    // Configured through a guard that allowed it (the operator's list changed since, say).
    await webhooks.create('acme', hook(receiver.url), 'k');
    await webhooks.create('acme', hook(`http://localhost:${port}/hook`), 'k');
    await output.publish([update(alert('acme', 1))]);
    await dispatcher.runOnce();
    expect(receiver.received).toHaveLength(0);
    const errors = (await outbox.due(now + 3_600_000, 10)).map((d) => d.lastError).sort();
    expect(errors[0]).toMatch(/refused: 127\.0\.0\.1 is a loopback address/);
    expect(errors[1]).toMatch(/refused: localhost resolves to (127\.0\.0\.1|::1) is a loopback/);

    // DNS rebinding: public when configured, 127.0.0.1 when connecting.
    let calls = 0;
    const rebinding: Resolver = () =>
      Promise.resolve([{ address: calls++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }]);
    const guard = new AddressGuard({ resolver: rebinding });
    const url = `http://rebind.example:${port}/hook`;
    await expect(guard.checkUrl(url)).resolves.toBeInstanceOf(URL);
    const result = await new WebhookSender({ guard, timeoutMs: 2000 }).send({
      url,
      secret: 's',
      body: '{}',
      eventId: 'e',
      deliveryId: 'd',
    });
    expect(result).toMatchObject({ ok: false, status: 0 });
    expect(!result.ok && result.error).toMatch(/refused: rebind\.example resolves to 127\.0\.0\.1/);
    expect(receiver.received).toHaveLength(0);
  });

  it('keeps signing secrets sealed under the master key in the store', async () => {
    const master = Buffer.alloc(32, 7);
    const webhooks = new WebhookStore(ts.store, clock, masterKeySecretBox(master));
    const spec = hook(receiver.url);
    const created = await webhooks.create('acme', spec, 'k');
    const rows = await ts.store.query<{ secret: string }>(
      `SELECT secret FROM ${ts.store.table('webhooks')}`,
    );
    expect(rows[0]?.secret).toMatch(/^aesgcm1:/);
    expect(JSON.stringify(rows)).not.toContain(spec.secret);
    expect((await webhooks.get('acme', created.id)).secret).toBe(spec.secret);
    // Another master key, or the sealed secret moved to another webhook's row: refused.
    const other = new WebhookStore(ts.store, clock, masterKeySecretBox(Buffer.alloc(32, 8)));
    await expect(other.get('acme', created.id)).rejects.toThrow(/privacy\.keyFile/);
    const box = masterKeySecretBox(master);
    const sealed = rows[0]?.secret ?? '';
    expect(() => box.open('acme', 'wh_other', sealed)).toThrow();
    expect(() => box.open('other', created.id, sealed)).toThrow();
  });

  it('takes a bounded share of each webhook per round, so one backlog does not hold up others', async () => {
    const { webhooks, outbox } = setup();
    const busy = await webhooks.create('acme', hook(receiver.url), 'k');
    const quiet = await webhooks.create('other', hook(receiver.url), 'k');
    await outbox.enqueue(
      [1, 2, 3, 4, 5].map((v) => ({
        tenant: 'acme',
        webhookId: busy.id,
        eventId: `x.${v}`,
        eventType: 'alert.new' as const,
        body: '{}',
      })),
    );
    now += 1;
    await outbox.enqueue([
      { tenant: 'other', webhookId: quiet.id, eventId: 'y.1', eventType: 'alert.new', body: '{}' },
    ]);
    const due = await outbox.due(now, 3, 2);
    expect(due.map((d) => d.webhookId)).toEqual([busy.id, busy.id, quiet.id]);
  });

  it('times out a receiver that does not answer', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    const sender = new WebhookSender({ guard: allowLocal, timeoutMs: 200 });
    const result = await sender.send({
      url: `http://127.0.0.1:${port}/`,
      secret: 's',
      body: '{}',
      eventId: 'e',
      deliveryId: 'd',
    });
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
    expect(result).toMatchObject({ ok: false, status: 0 });
    expect(!result.ok && result.error).toMatch(/no answer within 200 ms/);
  });
});
