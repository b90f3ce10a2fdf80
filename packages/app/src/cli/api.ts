import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { QueryError, QueryErrorCodes, StoreLockedError } from '@vigil/query';
import type { Config } from '../config/config.js';
import { runRole, type RunningRole } from '../server/roles.js';

export interface ApiResponse<T> {
  readonly status: number;
  readonly body: T;
}

/**
 * The HTTP API as the CLI uses it. While a Vigil server runs, calls go to it (chDB lets one
 * process open the store); when none answers and the store is the embedded one, the CLI runs
 * the same API in its own process, without listening and without a sink, and calls it there.
 * Either way every command has one code path: the API.
 */
export interface Api {
  readonly via: 'server' | 'local';
  readonly url: string;
  call<T>(method: Method, path: string, key: string, body?: unknown): Promise<ApiResponse<T>>;
  /** The response as a byte stream (exports), with its status and content type. */
  stream(
    method: 'GET' | 'POST',
    path: string,
    key: string,
    body?: unknown,
  ): Promise<{
    status: number;
    contentType: string;
    body: Readable;
    /** A response header by lower-case name ('' when absent). */
    header(name: string): string;
  }>;
  close(): Promise<void>;
}

function isConnectionRefused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: string } }).cause;
  return cause?.code === 'ECONNREFUSED' || cause?.code === 'ECONNRESET';
}

export function defaultUrl(config: Config): string {
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The headers and body of a request with `key`, and `body` as JSON when there is one. */
/** A request body sent as it is, with its own media type (a CSV upload), instead of as JSON. */
export class RawBody {
  constructor(
    readonly contentType: string,
    readonly text: string,
  ) {}
}

function requestParts(
  key: string,
  body: unknown,
): { headers: Record<string, string>; payload?: string } {
  if (body instanceof RawBody)
    return {
      headers: { authorization: `Bearer ${key}`, 'content-type': body.contentType },
      payload: body.text,
    };
  return {
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  };
}

/** Where a running server that holds the embedded store tells the CLI its URL. */
function serverFile(config: Config): string {
  return join(config.dataDir, 'server.json');
}

/**
 * Records the URL of this process's server in the data directory, so that a CLI command that
 * finds the embedded store held can name the server to use. Returns a function that removes it.
 */
export function announceServer(config: Config, url: string): () => void {
  const file = serverFile(config);
  // Private like the rest of the data directory, though it holds no secret.
  writeFileSync(file, JSON.stringify({ pid: process.pid, url }) + '\n', { mode: 0o600 });
  return () => {
    try {
      if ((JSON.parse(readFileSync(file, 'utf8')) as { pid?: number }).pid === process.pid)
        rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
}

/** The URL the process `pid` announced, when it did. */
export function announcedUrl(config: Config, pid: number | undefined): string | undefined {
  if (pid === undefined) return undefined;
  try {
    const entry = JSON.parse(readFileSync(serverFile(config), 'utf8')) as {
      pid?: unknown;
      url?: unknown;
    };
    return entry.pid === pid && typeof entry.url === 'string' ? entry.url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A command that found no server at `tried` and then the embedded store held by another
 * process: most likely a server on another port or address. Says so, and how to reach it.
 */
export function explainLockedStore(error: unknown, config: Config, tried: string): unknown {
  if (!(error instanceof StoreLockedError)) return error;
  const url = announcedUrl(config, error.holderPid);
  const holder = error.holderPid === undefined ? 'another process' : `process ${error.holderPid}`;
  const where = url
    ? `the Vigil server there listens at ${url}: repeat the command with --url ${url}` +
      (new URL(url).hostname === new URL(tried).hostname
        ? ` (or --port ${new URL(url).port}, or VIGIL_PORT=${new URL(url).port})`
        : '')
    : 'if it is a Vigil server, point the command at it with --port PORT (or VIGIL_PORT) or --url http://HOST:PORT';
  return new QueryError(
    QueryErrorCodes.STORE_LOCKED,
    `no Vigil server answers at ${tried}, and the embedded store at ${error.path} is held by ${holder}, so it cannot be read directly (chDB lets one process open it); ${where}`,
    { status: 503, cause: error },
  );
}

export async function connectApi(config: Config, url = defaultUrl(config)): Promise<Api> {
  const base = url.replace(/\/$/, '');
  try {
    await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5000) });
    const send = (method: Method, path: string, key: string, body: unknown): Promise<Response> => {
      const { headers, payload } = requestParts(key, body);
      return fetch(`${base}${path}`, {
        method,
        headers,
        ...(payload === undefined ? {} : { body: payload }),
      });
    };
    return {
      via: 'server',
      url: base,
      async call<T>(method: Method, path: string, key: string, body?: unknown) {
        const response = await send(method, path, key, body);
        const text = await response.text();
        return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
      },
      async stream(method, path, key, body) {
        const response = await send(method, path, key, body);
        return {
          status: response.status,
          contentType: response.headers.get('content-type') ?? '',
          body: response.body ? Readable.fromWeb(response.body) : Readable.from([]),
          header: (name: string) => response.headers.get(name) ?? '',
        };
      },
      close: () => Promise.resolve(),
    };
  } catch (error) {
    if (!isConnectionRefused(error) || config.store.kind !== 'chdb') {
      throw new Error(`no Vigil server answers at ${base}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  let running: RunningRole;
  try {
    running = await runRole(
      { ...config, bootstrap: false },
      { logger: pino({ level: 'warn' }), listen: false, sink: false },
    );
  } catch (error) {
    throw explainLockedStore(error, config, base);
  }
  const send = (method: Method, path: string, key: string, body: unknown) =>
    running.app.inject({ method, url: path, ...requestParts(key, body) });
  return {
    via: 'local',
    url: 'local store',
    async call<T>(method: Method, path: string, key: string, body?: unknown) {
      const response = await send(method, path, key, body);
      return {
        status: response.statusCode,
        body: (response.body ? JSON.parse(response.body) : undefined) as T,
      };
    },
    async stream(method, path, key, body) {
      const response = await send(method, path, key, body);
      return {
        status: response.statusCode,
        contentType: String(response.headers['content-type'] ?? ''),
        body: Readable.from([response.rawPayload]),
        header: (name: string) => String(response.headers[name] ?? ''),
      };
    },
    close: () => running.close(),
  };
}

/** Throws the API's error body as a readable message. */
export function ensureOk<T>(response: ApiResponse<T>): T {
  if (response.status < 400) return response.body;
  const error = (
    response.body as
      | {
          error?: {
            code?: string;
            message?: string;
            details?: { path?: string; message?: string }[];
          };
        }
      | undefined
  )?.error;
  const details = (error?.details ?? [])
    .map((d) => `\n  - ${d.path ? `${d.path}: ` : ''}${d.message ?? ''}`)
    .join('');
  throw new Error(
    `${response.status} ${error?.code ?? ''}: ${error?.message ?? 'request failed'}${details}`,
  );
}
