import express from 'express';
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import type { EventInput } from '@vigil/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuditClient, type AuditClient } from '../client.js';
import type { AuditTransport, OutgoingBatch, TransportResult } from '../deliver/transport.js';
import { vigilExpress } from './express.js';
import { vigilFastify } from './fastify.js';

/** An in-process transport keeping the decoded records: what an embedded collector would get. */
class MemoryTransport implements AuditTransport {
  readonly records: (EventInput & { seq: number })[] = [];
  send(batch: OutgoingBatch): Promise<TransportResult> {
    for (const e of batch.events)
      this.records.push(JSON.parse(e.record) as EventInput & { seq: number });
    return Promise.resolve({ kind: 'accepted', accepted: batch.size, duplicates: 0 });
  }
  requests(): (EventInput & { seq: number })[] {
    return this.records.filter((r) => r.action === 'api.request');
  }
}

let transport: MemoryTransport;
let audit: AuditClient;

beforeEach(() => {
  transport = new MemoryTransport();
  audit = createAuditClient({ service: 'web', transport, logger: false, batch: { maxDelayMs: 1 } });
});

afterEach(async () => {
  await audit.close({ deadlineMs: 200 });
});

describe('fastify plugin', () => {
  it('records api.request with the route pattern, status, latency, ids and actor, for the whole app', async () => {
    const app = Fastify();
    await app.register(
      vigilFastify(audit, {
        actor: (req) => {
          const user = req.headers['x-user'];
          return typeof user === 'string' ? { type: 'user', id: user } : undefined;
        },
        exclude: ['/health'],
      }),
    );
    // Routes in a child context: skip-override makes the hook apply to them too.
    await app.register(
      (child, _opts, done) => {
        child.get('/users/:id', () => ({ ok: true }));
        child.post('/users', (_req, reply) => reply.code(403).send({ no: true }));
        done();
      },
      { prefix: '/api' },
    );
    app.get('/health', () => 'ok');
    await app.inject({
      method: 'GET',
      url: '/api/users/42?x=1',
      headers: { 'x-user': 'u-7', 'user-agent': 'curl/8' },
    });
    await app.inject({ method: 'POST', url: '/api/users', payload: {} });
    await app.inject({ method: 'GET', url: '/health' });
    await app.inject({ method: 'GET', url: '/nope' });
    expect(await audit.flush()).toBe(true);
    const got = transport.requests();
    expect(
      got.map((r) => [
        r.metadata?.['method'],
        r.metadata?.['route'],
        r.metadata?.['status'],
        r.outcome,
      ]),
    ).toEqual([
      ['GET', '/api/users/:id', 200, 'success'],
      ['POST', '/api/users', 403, 'denied'],
      ['GET', '(unmatched)', 404, 'failure'],
    ]);
    const first = got[0] as EventInput;
    // The actor id and the user agent are personal: the record holds commitments.
    expect(first.actor.type).toBe('user');
    expect(first.actor.id).toMatch(/^[0-9a-f]{64}$/);
    expect(first.context?.requestId).toBeTypeOf('string');
    expect(first.context?.userAgent).toMatch(/^[0-9a-f]{64}$/);
    expect(first.metadata?.['latencyMs']).toBeTypeOf('number');
    expect((got[1] as EventInput).actor).toEqual(expect.objectContaining({ type: 'anonymous' }));
    await app.close();
  });

  it('samples', async () => {
    const app = Fastify();
    await app.register(vigilFastify(audit, { sampleRate: 0 }));
    app.get('/', () => 'ok');
    for (let i = 0; i < 5; i++) await app.inject({ method: 'GET', url: '/' });
    expect(await audit.flush()).toBe(true);
    expect(transport.requests()).toHaveLength(0);
    await app.close();
  });

  it('reports a throwing actor resolver without failing the request', async () => {
    const problems: string[] = [];
    audit.on('error', (e) => problems.push(e.code));
    const app = Fastify();
    await app.register(
      vigilFastify(audit, {
        actor: () => {
          throw new Error('resolver bug');
        },
      }),
    );
    app.get('/', () => 'ok');
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(problems).toEqual(['VIGIL_ERR_SDK_INTEGRATION']);
    await app.close();
  });
});

describe('express middleware', () => {
  it('records api.request with baseUrl + route pattern over real HTTP', async () => {
    const app = express();
    app.use(
      vigilExpress(audit, {
        actor: (req) => {
          const user = req.headers['x-user'];
          return typeof user === 'string' ? { type: 'user', id: user } : undefined;
        },
        exclude: [/^\/metrics/],
      }),
    );
    const router = express.Router();
    router.get('/orders/:orderId', (_req, res) => {
      res.status(201).json({ ok: true });
    });
    app.use('/api/v1', router);
    app.get('/metrics', (_req, res) => {
      res.send('m');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;
    await fetch(`${base}/api/v1/orders/77?debug=1`, {
      headers: { 'x-user': 'u-1', 'x-request-id': 'req-9' },
    });
    await fetch(`${base}/metrics`);
    await fetch(`${base}/missing`);
    expect(await audit.flush()).toBe(true);
    const got = transport.requests();
    expect(
      got.map((r) => [r.metadata?.['method'], r.metadata?.['route'], r.metadata?.['status']]),
    ).toEqual([
      ['GET', '/api/v1/orders/:orderId', 201],
      ['GET', '(unmatched)', 404],
    ]);
    const first = got[0] as EventInput;
    expect(first.context?.requestId).toBe('req-9');
    expect(first.context?.ip).toMatch(/^[0-9a-f]{64}$/);
    expect(first.actor.id).toMatch(/^[0-9a-f]{64}$/);
    await new Promise((r) => server.close(r));
  });
});
