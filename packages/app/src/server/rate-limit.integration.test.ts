import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from './test-app.testkit.js';

describe('per-key rate limits', () => {
  let t: TestApp;
  const secret = { q1: '', q2: '', q3: '', both: '', admin: '' };
  const event = {
    events: [
      {
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'service', id: 'svc' },
      },
    ],
  };

  beforeAll(async () => {
    t = await startTestApp({
      rateLimits: { ingestPerMinute: 3, queryPerMinute: 2, adminPerMinute: 4 },
      sink: false,
    });
    // Straight into the directory: the operator key has a budget of its own here.
    const create = async (options: {
      scopes: ('query' | 'ingest' | 'admin')[];
      rateLimitPerMinute?: number;
    }): Promise<string> =>
      (await t.directory.createKey({ tenantId: 'default', ...options })).secret;
    secret.q1 = await create({ scopes: ['query'] });
    secret.q2 = await create({ scopes: ['query'] });
    secret.q3 = await create({ scopes: ['query'], rateLimitPerMinute: 5 });
    secret.both = await create({ scopes: ['query', 'ingest'] });
    secret.admin = await create({ scopes: ['admin'] });
    await t.registry.refresh();
  });
  afterAll(async () => {
    await t?.close();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const statuses = async (n: number, send: () => Promise<{ statusCode: number }>) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await send()).statusCode);
    return out;
  };

  it('answers 429 with Retry-After and the one error body once a key is over its limit', async () => {
    expect(await statuses(2, () => t.call('GET', '/v1/events', secret.q1))).toEqual([200, 200]);
    const refused = await t.call('GET', '/v1/events', secret.q1);
    expect(refused.statusCode).toBe(429);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.json()).toEqual({
      error: {
        code: 'VIGIL_ERR_RATE_LIMITED',
        message: expect.stringContaining('over its limit of 2 query requests a minute'),
        details: [],
      },
    });
    const metrics = await t.metrics.registry.getSingleMetricAsString(
      'vigil_requests_refused_total',
    );
    expect(metrics).toContain('vigil_requests_refused_total{status="429",scope="query"} 1');
  });

  it('keeps one bucket per key: another key of the same tenant is not slowed down', async () => {
    expect(await statuses(2, () => t.call('GET', '/v1/events', secret.q2))).toEqual([200, 200]);
  });

  it("applies a key's own rateLimitPerMinute instead of the server's limit for the scope", async () => {
    expect(await statuses(6, () => t.call('GET', '/v1/events', secret.q3))).toEqual([
      200, 200, 200, 200, 200, 429,
    ]);
  });

  it('gives a key one budget per scope, with the limit of that scope', async () => {
    expect(await statuses(3, () => t.call('GET', '/v1/events', secret.both))).toEqual([
      200, 200, 429,
    ]);
    expect(await statuses(4, () => t.call('POST', '/v1/events', secret.both, event))).toEqual([
      202, 202, 202, 429,
    ]);
    expect(await statuses(5, () => t.call('GET', '/v1/admin/keys', secret.admin))).toEqual([
      200, 200, 200, 200, 429,
    ]);
  });

  it('does not count requests without a key, health checks or metrics', async () => {
    expect(await statuses(5, () => t.call('GET', '/healthz', undefined))).toEqual(
      Array(5).fill(200),
    );
    expect(await statuses(5, () => t.call('GET', '/v1/events', undefined))).toEqual(
      Array(5).fill(401),
    );
  });

  it('lets a key in again when its minute is over', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 61_000);
    expect((await t.call('GET', '/v1/events', secret.q1)).statusCode).toBe(200);
  });
});
