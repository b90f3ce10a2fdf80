import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { CollectorErrorCodes } from '@vigil/collector';
import { loadConfig } from '../config/config.js';
import { runRole, type RunningRole } from './roles.js';

/**
 * Slow and keyless clients against `vigil start` listening on 127.0.0.1 (embedded log, chDB):
 * every route authenticates before it reads a body, and a request that does not arrive within
 * http.requestTimeoutSeconds is cut off with a clean answer.
 */

const dir = mkdtempSync(join(tmpdir(), 'vigil-slow-clients-'));
let role: RunningRole;
let port = 0;

beforeAll(async () => {
  const config = loadConfig({
    role: 'start',
    flags: {
      dataDir: dir,
      port: 0,
      'log.fsync': 'never',
      'geoip.enabled': false,
      'ingest.workers': 0,
      'http.requestTimeoutSeconds': 1,
    },
  });
  role = await runRole(config, { logger: pino({ level: 'silent' }), print: () => {} });
  port = Number(new URL(role.url).port);
});
afterAll(async () => {
  await role.close();
  rmSync(dir, { recursive: true, force: true });
});

interface RawExchange {
  /** Everything the server sent. */
  readonly text: string;
  /** Milliseconds from the first byte sent until the server closed the connection. */
  readonly closedAfterMs: number;
}

/**
 * Sends `head` (request line and headers), then the body one byte every `everyMs` for as long as
 * the connection stays open; resolves when the server closes it, or after `giveUpMs`.
 */
function trickle(head: string, everyMs: number, giveUpMs: number): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const started = Date.now();
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ text, closedAfterMs: Date.now() - started });
    };
    const giveUp = setTimeout(finish, giveUpMs);
    socket.on('data', (chunk) => (text += chunk.toString('utf8')));
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (!socket.destroyed) socket.write('{');
      }, everyMs);
    });
  });
}

function postHead(path: string, key?: string): string {
  return (
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: 100000\r\n${key ? `Authorization: Bearer ${key}\r\n` : ''}\r\n`
  );
}

describe('slow clients', () => {
  it('cuts off a keyed client that trickles its body within http.requestTimeoutSeconds, with 408 in the error shape', async () => {
    const admin = role.credentials?.adminKey ?? '';
    const res = await trickle(postHead('/v1/admin/keys', admin), 200, 10_000);
    expect(res.closedAfterMs).toBeLessThan(6_000); // 1 s timeout, slack for a loaded machine; no timeout: 10 s
    expect(res.text).toMatch(/^HTTP\/1\.1 408 /);
    const body = JSON.parse(res.text.slice(res.text.indexOf('\r\n\r\n') + 4)) as {
      error: { code: string; message: string; details: unknown[] };
    };
    expect(body.error.code).toBe(CollectorErrorCodes.REQUEST_TIMEOUT);
    expect(body.error.details).toEqual([]);
  });

  it('answers a keyless client 401 before reading its body, and closes the connection within the timeout', async () => {
    for (const path of ['/v1/admin/keys', '/v1/events', '/v1/operator/tenants']) {
      const res = await trickle(postHead(path), 200, 10_000);
      expect(res.text, path).toMatch(/^HTTP\/1\.1 401 /);
      expect(res.closedAfterMs, path).toBeLessThan(6_000);
    }
  });

  it('answers 401, not 400, to broken JSON without a key on every route that takes a body', async () => {
    const docs = await role.app.inject({ method: 'GET', url: '/docs/json' });
    const paths = docs.json<{ paths: Record<string, Record<string, unknown>> }>().paths;
    const routes: string[] = [];
    for (const [path, methods] of Object.entries(paths)) {
      for (const method of Object.keys(methods)) {
        if (!['post', 'put', 'patch', 'delete'].includes(method)) continue;
        const url = path.replace(/\{[^}]+\}/g, 'x');
        routes.push(`${method.toUpperCase()} ${url}`);
        const res = await role.app.inject({
          method: method.toUpperCase() as 'POST',
          url,
          headers: { 'content-type': 'application/json' },
          payload: '{"broken',
        });
        expect(res.statusCode, `${method} ${path}`).toBe(401);
        expect(res.json<{ error: { code: string } }>().error.code, path).toMatch(/^VIGIL_ERR_/);
      }
    }
    // The API has routes with bodies in every area; a wrong document would test nothing.
    expect(routes.length).toBeGreaterThan(15);
    expect(routes).toContain('POST /v1/events');
    expect(routes).toContain('POST /v1/admin/keys');
    expect(routes).toContain('POST /v1/admin/subjects/erase');
  });
});
