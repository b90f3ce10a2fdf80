import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { ErrorDetail } from '@vigil/protocol';
import { parseRetryAfter } from './backoff.js';
import type { AuditTransport, OutgoingBatch, TransportResult } from './transport.js';

const gzip = promisify(gzipCallback);

export interface HttpTransportOptions {
  /** Collector base URL; events go to `POST {endpoint}/v1/events`. */
  readonly endpoint: string;
  readonly apiKey: string;
  /** gzip bodies (Content-Encoding: gzip). Default false. */
  readonly gzip?: boolean;
  /** Largest response body read, in bytes. Default 1 MiB. */
  readonly maxResponseBytes?: number;
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown; details?: unknown };
  accepted?: unknown;
  duplicates?: unknown;
}

/**
 * The default transport: one keep-alive connection (node:http), because the SDK sends one batch
 * at a time per client; it cost about half the CPU per request of the global fetch on Node 20
 * (bench/README.md). Bodies are
 * the batch's wire lines in the sealed framing (PROTOCOL.md §9), sent as they are; gzip runs on
 * libuv's thread pool.
 */
export class HttpTransport implements AuditTransport {
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly request: typeof httpRequest;
  private readonly authorization: string;
  private readonly gzip: boolean;
  private readonly maxResponseBytes: number;

  constructor(options: HttpTransportOptions) {
    const base = options.endpoint.endsWith('/') ? options.endpoint : `${options.endpoint}/`;
    this.url = new URL('v1/events', base);
    const https = this.url.protocol === 'https:';
    this.agent = https
      ? new HttpsAgent({ keepAlive: true, maxSockets: 4 })
      : new HttpAgent({ keepAlive: true, maxSockets: 4 });
    this.request = https ? httpsRequest : httpRequest;
    this.authorization = `Bearer ${options.apiKey}`;
    this.gzip = options.gzip ?? false;
    this.maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
  }

  async send(batch: OutgoingBatch, signal: AbortSignal): Promise<TransportResult> {
    let body: Buffer = batch.body;
    const headers: Record<string, string | number> = {
      authorization: this.authorization,
      'content-type': batch.contentType,
    };
    if (this.gzip) {
      body = await gzip(body, { level: 1 });
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = body.length;
    let response: { status: number; text: string; retryAfter: string | undefined };
    try {
      response = await this.post(body, headers, signal);
    } catch (error) {
      return { kind: 'retry', reason: `request failed: ${(error as Error).message}` };
    }
    return interpret(response.status, response.text, response.retryAfter);
  }

  private post(
    body: Buffer,
    headers: Record<string, string | number>,
    signal: AbortSignal,
  ): Promise<{ status: number; text: string; retryAfter: string | undefined }> {
    return new Promise((resolve, reject) => {
      const req = this.request(this.url, { method: 'POST', headers, agent: this.agent, signal });
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= this.maxResponseBytes) chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const retryAfter: string | string[] | undefined = res.headers['retry-after'];
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            retryAfter: typeof retryAfter === 'string' ? retryAfter : retryAfter?.[0],
          });
        });
      });
      req.end(body);
    });
  }

  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}

function parseBody(text: string): ErrorBody {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

function details(value: unknown): ErrorDetail[] {
  if (!Array.isArray(value)) return [];
  const out: ErrorDetail[] = [];
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const d = item as { index?: unknown; path?: unknown; message?: unknown };
    const detail = {
      path: typeof d.path === 'string' ? d.path : '',
      message: typeof d.message === 'string' ? d.message : 'is invalid',
    };
    out.push(Number.isSafeInteger(d.index) ? { index: d.index as number, ...detail } : detail);
  }
  return out;
}

/** Maps the collector's HTTP answer to a transport result (the contract in transport.ts). */
export function interpret(
  status: number,
  text: string,
  retryAfter: string | undefined,
): TransportResult {
  const body = parseBody(text);
  if (status >= 200 && status < 300) {
    const accepted = typeof body.accepted === 'number' ? body.accepted : 0;
    const duplicates = typeof body.duplicates === 'number' ? body.duplicates : 0;
    return { kind: 'accepted', accepted, duplicates };
  }
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(retryAfter);
    const reason = `collector answered ${status}${typeof body.error?.code === 'string' ? ` ${body.error.code}` : ''}`;
    return retryAfterMs === undefined
      ? { kind: 'retry', reason, status }
      : { kind: 'retry', reason, status, retryAfterMs };
  }
  return {
    kind: 'rejected',
    status,
    code: typeof body.error?.code === 'string' ? body.error.code : `HTTP_${status}`,
    message:
      typeof body.error?.message === 'string' ? body.error.message : `collector answered ${status}`,
    details: details(body.error?.details),
  };
}
