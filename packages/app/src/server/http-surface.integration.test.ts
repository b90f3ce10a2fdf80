import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { pino } from 'pino';
import { loadConfig } from '../config/config.js';
import { runRole, type RunningRole } from './roles.js';

/**
 * The HTTP surface of a real `vigil start` listening on a socket (not inject: some answers come
 * from Node's HTTP parser): every error is in Vigil's shape with a documented code, the OpenAPI
 * description tells the truth about every route, and answers carry the security headers.
 */

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

let role: RunningRole;
let url = '';
let admin = '';
let ingest = '';
const dir = mkdtempSync(join(tmpdir(), 'vigil-http-surface-'));

async function send(
  method: string,
  path: string,
  init: { key?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {},
): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(init.key ? { authorization: `Bearer ${init.key}` } : {}),
      ...init.headers,
    },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Writes raw bytes on a fresh connection and returns what the server wrote back. */
function raw(request: string): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let out = '';
    socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    socket.on('error', (e) => (out ? resolve(out) : reject(e)));
    socket.on('close', () => resolve(out));
    socket.write(request);
  });
}

function vigilError(text: string): { code: string; message: string; details: unknown[] } {
  const body = JSON.parse(text) as {
    error?: { code: string; message: string; details: unknown[] };
  };
  expect(Object.keys(body)).toEqual(['error']);
  const error = body.error!;
  expect(error.code).toMatch(/^VIGIL_ERR_[A-Z_]+$/);
  expect(typeof error.message).toBe('string');
  expect(Array.isArray(error.details)).toBe(true);
  return error;
}

beforeAll(async () => {
  const config = loadConfig({
    role: 'start',
    flags: { dataDir: dir, host: '127.0.0.1', port: '0', 'ingest.maxBodyKiB': '64' },
  });
  role = await runRole(config, {
    logger: pino({ level: process.env['DEBUG_LOG'] ? 'error' : 'silent' }),
    print: () => undefined,
  });
  url = role.url;
  const tenant = await role.directory!.createKey({ tenantId: 'default', scopes: ['admin'] });
  const ingestKey = await role.directory!.createKey({ tenantId: 'default', scopes: ['ingest'] });
  await role.registry.refresh();
  admin = tenant.secret;
  ingest = ingestKey.secret;
});
afterAll(async () => {
  await role?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('every error answer is in Vigil shape', () => {
  it('bad URL encoding, over-long ids, unknown routes and wrong methods', async () => {
    const cases: [string, string, number][] = [
      ['GET', '/v1/checkpoints/%ff', 400],
      ['GET', `/v1/checkpoints/${'a'.repeat(150)}`, 414],
      ['GET', '/v1/nothing-here', 404],
      ['DELETE', '/v1/events', 404],
    ];
    for (const [method, path, status] of cases) {
      const answer = await send(method, path, { key: admin });
      expect(answer.status, `${method} ${path}`).toBe(status);
      vigilError(answer.text);
    }
  });

  it('bodies: media type, size, encoding, JSON', async () => {
    const post = (headers: Record<string, string>, body: string | Uint8Array) =>
      send('POST', '/v1/events', { key: ingest, headers, body });
    const cases: [Answer, number, string][] = [
      [
        await post({ 'content-type': 'text/plain' }, 'hello'),
        415,
        'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE',
      ],
      [
        await post({ 'content-type': 'application/json' }, 'x'.repeat(2 * 1024 * 1024)),
        413,
        'VIGIL_ERR_BODY_TOO_LARGE',
      ],
      [
        await post({ 'content-type': 'application/json', 'content-encoding': 'br' }, '{}'),
        415,
        'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE',
      ],
      [
        await post({ 'content-type': 'application/json', 'content-encoding': 'gzip' }, 'not gzip'),
        400,
        'VIGIL_ERR_BAD_REQUEST',
      ],
      [
        await post({ 'content-type': 'application/json' }, '{"events":['),
        400,
        'VIGIL_ERR_BAD_REQUEST',
      ],
      [
        await send('POST', '/v1/admin/keys', {
          key: admin,
          headers: { 'content-type': 'application/json' },
          body: '{"scopes":',
        }),
        400,
        'VIGIL_ERR_BAD_REQUEST',
      ],
      [
        await send('POST', '/v1/admin/keys', {
          key: admin,
          headers: { 'content-type': 'text/plain' },
          body: 'x',
        }),
        415,
        'VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE',
      ],
    ];
    for (const [answer, status, code] of cases) {
      expect(answer.status, answer.text).toBe(status);
      expect(vigilError(answer.text).code).toBe(code);
    }
  });

  it('invalid UTF-8: refused with the event named, plain or gzip, JSON or NDJSON; admin bodies too', async () => {
    const event = (id: Buffer): Buffer =>
      Buffer.concat([
        Buffer.from(
          '{"action":"a.b","category":"system","outcome":"success","actor":{"type":"service","id":"',
        ),
        id,
        Buffer.from('"}}'),
      ]);
    const bad = Buffer.from([0x78, 0xff, 0xc0, 0x80, 0x79]);
    const json = Buffer.concat([
      Buffer.from('{"events":['),
      event(Buffer.from('ok')),
      Buffer.from(','),
      event(bad),
      Buffer.from(']}'),
    ]);
    const ndjson = Buffer.concat([
      event(Buffer.from('ok')),
      Buffer.from('\n'),
      event(bad),
      Buffer.from('\n'),
    ]);
    for (const [type, body] of [
      ['application/json', json],
      ['application/x-ndjson', ndjson],
    ] as const) {
      for (const gzip of [false, true]) {
        const answer = await send('POST', '/v1/events', {
          key: ingest,
          headers: { 'content-type': type, ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
          body: gzip ? gzipSync(body) : body,
        });
        expect(answer.status, `${type} gzip=${gzip}`).toBe(400);
        expect(vigilError(answer.text).details).toEqual([
          { index: 1, path: '/actor/id', message: expect.stringContaining('UTF-8') },
        ]);
      }
    }
    const adminBody = await send('POST', '/v1/admin/keys', {
      key: admin,
      headers: { 'content-type': 'application/json' },
      body: Buffer.concat([Buffer.from('{"scopes":["query"],"name":"'), bad, Buffer.from('"}')]),
    });
    expect(adminBody.status).toBe(400);
    expect(vigilError(adminBody.text).message).toContain('UTF-8');
  });

  it('a request line or headers over 16 KiB: 431 from the socket layer, in Vigil shape', async () => {
    const answer = await raw(
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 431 /);
    expect(head.toLowerCase()).toContain('content-type: application/json');
    expect(vigilError(body).code).toBe('VIGIL_ERR_HEADERS_TOO_LARGE');
    const long = await raw(`GET /v1/events?q=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(long).toMatch(/^HTTP\/1\.1 431 /);
    const garbage = await raw('NOT HTTP AT ALL\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(vigilError(garbage.split('\r\n\r\n')[1] ?? '').code).toBe('VIGIL_ERR_BAD_REQUEST');
  });
});

describe('the OpenAPI description (/docs/json)', () => {
  it('gives every route request and response schemas, the error shape, and no bogus parameters', async () => {
    const spec = JSON.parse((await send('GET', '/docs/json')).text) as {
      paths: Record<string, Record<string, Operation>>;
      components?: { schemas?: Record<string, unknown> };
    };
    const problems: string[] = [];
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const where = `${method.toUpperCase()} ${path}`;
        for (const p of op.parameters ?? []) {
          if (['type', 'additionalProperties', 'properties', 'required'].includes(p.name))
            problems.push(`${where}: bogus parameter ${p.in} ${p.name}`);
        }
        for (const name of path.match(/(?<=\{)[^}]+(?=\})/g) ?? []) {
          if (!(op.parameters ?? []).some((p) => p.in === 'path' && p.name === name))
            problems.push(`${where}: path parameter ${name} has no schema`);
        }
        if ((method === 'post' || method === 'put') && !op.requestBody)
          problems.push(`${where}: no request body schema`);
        const responses = op.responses ?? {};
        const ok = Object.entries(responses).filter(([s]) => /^2\d\d$/.test(s));
        if (ok.length === 0) problems.push(`${where}: no 2xx response`);
        for (const [status, r] of ok) {
          // @fastify/swagger writes "Default Response" where a route's answer has no schema or
          // a schema without a description: every success answer is described.
          if (r.description === undefined || r.description === 'Default Response')
            problems.push(`${where}: ${status} is not described`);
          if (!r.content) problems.push(`${where}: ${status} has no content schema`);
          for (const [media, c] of Object.entries(r.content ?? {})) {
            const schema = c.schema as { type?: string; properties?: object } | undefined;
            if (!schema?.type) problems.push(`${where}: ${status} ${media} has no typed schema`);
            if (media === 'application/json' && schema?.type === 'object' && !schema.properties)
              problems.push(`${where}: ${status} lists no member of its answer`);
          }
        }
        // Every error answer (4xx, and 5xx but for a documented status such as /readyz's 503) is
        // the shared error shape.
        const errors = Object.entries(responses).filter(([st]) => /^4(\d\d|XX)$|^5XX$/.test(st));
        if (errors.length === 0) problems.push(`${where}: no error response`);
        for (const [status, r] of errors) {
          const schema = r.content?.['application/json']?.schema;
          if (!schema || !JSON.stringify(schema).includes('#/components/schemas/'))
            problems.push(`${where}: ${status} is not the shared error schema`);
        }
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('answers match their OpenAPI schema', () => {
  /**
   * A validator of a schema of /docs/json, compiled by fastify's own JSON Schema validator (the
   * one that checks every request), so the test needs no validator of its own: a throwaway
   * route takes the schema as its body schema, and a value that does not match is refused.
   */
  async function validatorOf(schema: unknown): Promise<(value: unknown) => Promise<string>> {
    const checker = Fastify({
      ajv: {
        customOptions: {
          removeAdditional: false,
          coerceTypes: false,
          allErrors: true,
          strict: false,
        },
      },
    });
    checker.post('/', { schema: { body: schema as object } }, () => ({}));
    await checker.ready();
    closers.push(() => checker.close());
    return async (value) => {
      const answer = await checker.inject({ method: 'POST', url: '/', payload: value as object });
      return answer.statusCode === 200 ? '' : answer.json<{ message: string }>().message;
    };
  }
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  it('live answers of search (with record and disclosures), keys, tenant and health', async () => {
    const spec = JSON.parse((await send('GET', '/docs/json')).text) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const schemaOf = (path: string, method: string, status: string): unknown =>
      spec.paths[path]?.[method]?.responses?.[status]?.content?.['application/json']?.schema;
    const query = await role.directory!.createKey({ tenantId: 'default', scopes: ['query'] });
    await role.registry.refresh();

    const posted = await send('POST', '/v1/events', {
      key: ingest,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        events: [
          {
            action: 'document.viewed',
            category: 'data_access',
            outcome: 'success',
            actor: { type: 'user', id: 'schema-user', email: 'schema@example.eu' },
            context: { ip: '198.51.100.9' },
            metadata: { hash: 'a member of the producer', phone: '+33 1 00 00 00 00' },
            personal: ['/metadata/phone'],
          },
        ],
      }),
    });
    expect(posted.status, posted.text).toBe(202);
    let search: Answer | undefined;
    for (let i = 0; i < 100; i++) {
      search = await send('GET', '/v1/events?actor=schema-user&include=record,disclosures', {
        key: query.secret,
      });
      if ((JSON.parse(search.text) as { events?: unknown[] }).events?.length === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const page = JSON.parse(search!.text) as {
      events: { record?: string; disclosures?: object; event: { metadata?: object } }[];
    };
    expect(page.events).toHaveLength(1);
    expect(page.events[0]?.record).toBeDefined();
    expect(Object.keys(page.events[0]?.disclosures ?? {}).length).toBeGreaterThan(0);
    expect(page.events[0]?.event.metadata).toMatchObject({ hash: 'a member of the producer' });

    const checks: [string, string, string, string, Answer][] = [
      ['/v1/events', 'get', '200', 'search', search!],
      ['/v1/events', 'post', '202', 'ingest', posted],
      ['/v1/admin/keys', 'get', '200', 'keys', await send('GET', '/v1/admin/keys', { key: admin })],
      [
        '/v1/admin/tenant',
        'get',
        '200',
        'tenant',
        await send('GET', '/v1/admin/tenant', { key: admin }),
      ],
      ['/healthz', 'get', '200', 'health', await send('GET', '/healthz')],
    ];
    for (const [path, method, status, name, answer] of checks) {
      expect(answer.status, name).toBe(Number(status));
      const schema = schemaOf(path, method, status);
      expect(schema, name).toBeDefined();
      const validate = await validatorOf(schema);
      expect(await validate(JSON.parse(answer.text)), name).toBe('');
    }
    // The validator does refuse: an item whose server field was put back into the record.
    const bad = structuredClone(page) as { events: Record<string, unknown>[] };
    (bad.events[0] as Record<string, unknown>)['flags'] = [];
    expect(await (await validatorOf(schemaOf('/v1/events', 'get', '200')))(bad)).toContain(
      'must NOT have additional properties',
    );
  });
});

interface Operation {
  parameters?: { name: string; in: string }[];
  requestBody?: unknown;
  responses?: Record<
    string,
    { description?: string; content?: Record<string, { schema?: unknown }> }
  >;
}

describe('query parameters', () => {
  it('a route that declares none refuses an unknown one, naming it', async () => {
    const query = await role.directory!.createKey({ tenantId: 'default', scopes: ['query'] });
    await role.registry.refresh();
    const answers = [
      await send('GET', '/v1/checkpoints/latest?bogus=1', { key: query.secret }),
      await send('POST', '/v1/admin/subjects/digest?bogus=1', {
        key: admin,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ subject: 'alice' }),
      }),
    ];
    for (const answer of answers) {
      expect(answer.status, answer.text).toBe(400);
      expect(vigilError(answer.text).details).toEqual([
        { path: '/querystring/bogus', message: 'is not a known parameter' },
      ]);
    }
    expect((await send('GET', '/healthz?probe=1')).status).toBe(200);
  });
});

describe('headers', () => {
  it('an answer carrying a secret, and every authenticated answer, is not to be stored', async () => {
    const created = await send('POST', '/v1/admin/keys', {
      key: admin,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scopes: ['query'] }),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const { key } = JSON.parse(created.text) as { key: { keyId: string } };
    const rotated = await send('POST', `/v1/admin/keys/${key.keyId}/rotate`, {
      key: admin,
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(rotated.status).toBe(201);
    expect(rotated.headers.get('cache-control')).toBe('no-store');
    for (const path of ['/v1/admin/keys', '/v1/admin/tenant', '/v1/events?limit=1']) {
      const answer = await send('GET', path, { key: admin });
      expect(answer.headers.get('cache-control'), path).toBe('no-store');
    }
    const refused = await send('GET', '/v1/admin/keys', { key: 'vgl_nope_nope' });
    expect(refused.headers.get('cache-control')).toBe('no-store');
  });

  it('security headers on every answer; /docs still loads its assets under its CSP', async () => {
    for (const path of ['/healthz', '/v1/nothing', '/docs/json']) {
      const answer = await send('GET', path);
      expect(answer.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(answer.headers.get('x-frame-options'), path).toBe('SAMEORIGIN');
      expect(answer.headers.get('strict-transport-security'), path).toMatch(/max-age=/);
      expect(answer.headers.get('content-security-policy'), path).toContain("default-src 'self'");
    }
    const res = await fetch(`${url}/docs`);
    expect(res.status).toBe(200);
    const page = await res.text();
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self'/);
    expect(csp).not.toContain('upgrade-insecure-requests');
    // No inline script (the CSP would block it): every script and stylesheet is a file of ours.
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const assets = [...page.matchAll(/(?:src|href)="([^"]+\.(?:js|css|png))"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(4);
    for (const asset of assets) {
      const at = new URL(asset, res.url);
      expect(at.origin).toBe(new URL(url).origin);
      const loaded = await fetch(at);
      expect(loaded.status, asset).toBe(200);
      expect((await loaded.arrayBuffer()).byteLength, asset).toBeGreaterThan(0);
    }
    const initializerAt = assets.find((a) => a.endsWith('swagger-initializer.js'));
    expect(initializerAt).toBeDefined();
    const initializer = await (await fetch(new URL(initializerAt!, res.url))).text();
    expect(initializer).toContain('json');
  });
});
