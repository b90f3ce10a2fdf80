import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  role = await runRole(config, { logger: pino({ level: 'silent' }), print: () => undefined });
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
