import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import {
  newEventId,
  randomSaltSource,
  sealEvent,
  sha256Hex,
  ZERO_HASH,
  type SealedEvent,
} from '@vigil/protocol';
import type { Metrics } from './metrics.js';
import { startTestApp, type TestApp } from './test-app.testkit.js';

const salts = randomSaltSource();

function sealedChain(count: number, stream: string): SealedEvent[] {
  let prev = ZERO_HASH;
  const out: SealedEvent[] = [];
  for (let seq = 0; seq < count; seq++) {
    const e = sealEvent(
      {
        id: newEventId(),
        time: new Date().toISOString(),
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'alice', email: 'alice@example.eu' },
      },
      { stream, seq, prev },
      salts,
    ).event;
    out.push(e);
    prev = e.hash;
  }
  return out;
}

describe('HTTP API (ingest + query) on a memory log and chDB', () => {
  let t: TestApp;
  let app: FastifyInstance;
  let metrics: Metrics;
  const keys = { ingestA: '', queryA: '', ingestB: '', queryB: '' };

  beforeAll(async () => {
    t = await startTestApp();
    ({ app, metrics } = t);
    for (const tenant of ['a', 'b']) {
      await t.directory.createTenant(tenant);
      const ingest = await t.directory.createKey({ tenantId: tenant, scopes: ['ingest'] });
      const query = await t.directory.createKey({ tenantId: tenant, scopes: ['query'] });
      if (tenant === 'a') Object.assign(keys, { ingestA: ingest.secret, queryA: query.secret });
      else Object.assign(keys, { ingestB: ingest.secret, queryB: query.secret });
    }
    await t.registry.refresh();
  });
  afterAll(async () => {
    await t.close();
  });

  const post = (
    key: string | undefined,
    payload: string | Buffer,
    headers: Record<string, string> = {},
  ) =>
    app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: {
        'content-type': 'application/json',
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...headers,
      },
      payload,
    });
  const get = (key: string | undefined, query = '') =>
    app.inject({
      method: 'GET',
      url: `/v1/events${query}`,
      headers: key ? { authorization: `Bearer ${key}` } : {},
    });

  async function waitForEvents(
    key: string,
    query: string,
    count: number,
  ): Promise<Record<string, unknown>[]> {
    return expect
      .poll(
        async () => (await get(key, query)).json<{ events: Record<string, unknown>[] }>().events,
        { timeout: 10_000 },
      )
      .toHaveLength(count)
      .then(
        async () => (await get(key, query)).json<{ events: Record<string, unknown>[] }>().events,
      );
  }

  it('accepts unchained events from curl, stores them once even when posted again', async () => {
    const ids = [newEventId(), newEventId(), newEventId()];
    const body = JSON.stringify({
      events: ids.map((id, i) => ({
        id,
        action: 'user.login',
        category: 'authentication',
        outcome: i === 2 ? 'failure' : 'success',
        actor: { type: 'user', id: `bob-${i}` },
        context: { ip: '203.0.113.5' },
      })),
    });
    const first = await post(keys.ingestA, body);
    expect(first.statusCode).toBe(202);
    expect(first.json()).toEqual({ accepted: 3, duplicates: 0 });
    expect((await post(keys.ingestA, body)).json()).toEqual({ accepted: 0, duplicates: 3 });
    const events = await waitForEvents(keys.queryA, '?actor=bob-2', 1);
    expect(events[0]?.['event']).toMatchObject({
      id: ids[2],
      outcome: 'failure',
      actor: { id: 'bob-2' },
      context: { ip: '203.0.113.5' },
      stream: expect.stringMatching(/^key\//),
    });
  });

  it('accepts sealed events as gzip and as NDJSON', async () => {
    const gz = gzipSync(JSON.stringify({ events: sealedChain(3, 'svc/gz/1') }));
    const a = await post(keys.ingestA, gz, { 'content-encoding': 'gzip' });
    expect(a.statusCode, a.body).toBe(202);
    const nd =
      sealedChain(2, 'svc/nd/1')
        .map((e) => JSON.stringify(e))
        .join('\n') + '\n';
    const b = await post(keys.ingestA, nd, { 'content-type': 'application/x-ndjson' });
    expect(b.json()).toEqual({ accepted: 2, duplicates: 0 });
    await waitForEvents(keys.queryA, '?stream=svc/gz/1', 3);
  });

  it('refuses a tampered batch whole with the one error shape', async () => {
    const batch = sealedChain(3, 'svc/t/1');
    const tampered = { ...batch[1]!, record: batch[1]!.record.replace('success', 'failure') };
    const res = await post(
      keys.ingestA,
      JSON.stringify({ events: [batch[0], tampered, batch[2]] }),
    );
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      error: {
        code: 'VIGIL_ERR_INVALID_BATCH',
        message: expect.stringContaining('1 of 3 events are invalid'),
        details: [{ index: 1, path: '/hash', message: expect.any(String) }],
      },
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(
      (await get(keys.queryA, '?stream=svc/t/1')).json<{ events: unknown[] }>().events,
    ).toHaveLength(0);
  });

  it('refuses values nested too deep (PROTOCOL.md §3.5) with 400 naming the path, sealed and unchained', async () => {
    // ~14 KB of brackets: under the record limit, far over the depth limit, and deeper than
    // any recursive serialiser survives.
    const deep = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);
    const [good] = sealedChain(1, 'svc/deep/1');
    const record = good!.record.replace('"outcome":', `"metadata":{"a":${deep(7000)}},"outcome":`);
    const sealed = { record, hash: sha256Hex(record) };
    const unchained = `{"action":"user.login","category":"authentication","outcome":"success","actor":{"type":"service","id":"s"},"metadata":{"b":${deep(5000)}}}`;
    for (const [body, path] of [
      [`{"events":[${JSON.stringify(sealed)}]}`, `/record/metadata/a${'/0'.repeat(30)}`],
      [`{"events":[${unchained}]}`, `/metadata/b${'/0'.repeat(30)}`],
      [`${unchained}\n`, `/metadata/b${'/0'.repeat(30)}`],
    ] as const) {
      const res = await post(keys.ingestA, body, {
        'content-type': body.startsWith('{"events"') ? 'application/json' : 'application/x-ndjson',
      });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({
        error: {
          code: 'VIGIL_ERR_INVALID_BATCH',
          message: expect.any(String),
          details: [{ index: 0, path, message: expect.stringContaining('deeper than 32') }],
        },
      });
    }
  });

  it('authenticates: 401 without a key, 403 with the wrong scope', async () => {
    const body = JSON.stringify({ events: sealedChain(1, 'svc/x/1') });
    expect((await post(undefined, body)).statusCode).toBe(401);
    expect((await post('vgl_000000000000_nope', body)).json()).toMatchObject({
      error: { code: 'VIGIL_ERR_UNAUTHENTICATED' },
    });
    expect((await post(keys.queryA, body)).statusCode).toBe(403);
    expect((await get(keys.ingestA)).statusCode).toBe(403);
    expect((await get(undefined)).statusCode).toBe(401);
    const refused = await metrics.registry.getSingleMetricAsString('vigil_requests_refused_total');
    expect(refused).toMatch(/status="401"/);
    expect(refused).toMatch(/status="403"/);
  });

  it('keeps tenants apart: the tenant comes from the key only', async () => {
    const body = JSON.stringify({
      events: [
        {
          action: 'secret.read',
          category: 'data_access',
          outcome: 'success',
          actor: { type: 'service', id: 'b-only' },
          tenant: 'a',
        },
      ],
    });
    expect((await post(keys.ingestB, body)).statusCode).toBe(202);
    await waitForEvents(keys.queryB, '?actor=b-only', 1);
    expect(
      (await get(keys.queryA, '?actor=b-only&tenant=b')).json<{ error?: unknown }>().error,
    ).toBeDefined();
    expect(
      (await get(keys.queryA, '?actor=b-only')).json<{ events: unknown[] }>().events,
    ).toHaveLength(0);
  });

  it('answers 413 for large bodies and many events, 415 for other media types, 400 for bad JSON and gzip', async () => {
    const huge = JSON.stringify({
      events: [
        {
          action: 'a.b',
          category: 'system',
          outcome: 'success',
          actor: { type: 'service', id: 'x' },
          metadata: { pad: 'x'.repeat(70_000) },
        },
      ],
    });
    expect((await post(keys.ingestA, huge)).json()).toMatchObject({
      error: { code: 'VIGIL_ERR_BODY_TOO_LARGE' },
    });
    const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
    expect((await post(keys.ingestA, bomb, { 'content-encoding': 'gzip' })).statusCode).toBe(413);
    const many = JSON.stringify({
      events: Array.from({ length: 51 }, () => ({
        action: 'a.b',
        category: 'system',
        outcome: 'success',
        actor: { type: 'service', id: 'x' },
      })),
    });
    expect((await post(keys.ingestA, many)).json()).toMatchObject({
      error: { code: 'VIGIL_ERR_TOO_MANY_EVENTS' },
    });
    expect((await post(keys.ingestA, 'x', { 'content-type': 'text/plain' })).statusCode).toBe(415);
    expect((await post(keys.ingestA, '{"events": [')).json()).toMatchObject({
      error: { code: 'VIGIL_ERR_BAD_REQUEST' },
    });
    expect(
      (await post(keys.ingestA, Buffer.from('not gzip'), { 'content-encoding': 'gzip' }))
        .statusCode,
    ).toBe(400);
    expect((await post(keys.ingestA, '{}', { 'content-encoding': 'br' })).statusCode).toBe(415);
  });

  it('serves health, readiness, metrics and the OpenAPI description', async () => {
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    const m = await app.inject({ url: '/metrics' });
    expect(m.body).toContain('vigil_events_accepted_total');
    const spec = (await app.inject({ url: '/docs/json' })).json<{
      paths: Record<string, unknown>;
    }>();
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining(['/v1/events', '/healthz', '/readyz', '/metrics']),
    );
    expect((await app.inject({ url: '/nope' })).json()).toMatchObject({
      error: { code: 'VIGIL_ERR_NOT_FOUND' },
    });
  });
});
