import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { UrlRefused, hostOf, parseUrl, type AddressGuard } from './ssrf.js';
import {
  DELIVERY_ID_HEADER,
  EVENT_ID_HEADER,
  SIGNATURE_HEADER,
  signatureHeader,
} from './signature.js';

/** The outcome of one POST: a value, never an exception (STYLE: outcomes are values). */
export type SendResult =
  | { readonly ok: true; readonly status: number }
  | { readonly ok: false; readonly status: number; readonly error: string };

export interface SendRequest {
  readonly url: string;
  readonly secret: string;
  readonly body: string;
  readonly eventId: string;
  readonly deliveryId: string;
}

export interface SenderOptions {
  readonly guard: AddressGuard;
  /** Whole request, connect to last byte of the answer. */
  readonly timeoutMs: number;
  /** Unix seconds of the signature's timestamp; Date.now by default. */
  readonly clock?: () => number;
  readonly userAgent?: string;
}

/** The most of a receiver's answer read (and discarded): a receiver cannot make Vigil buffer. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * POSTs signed webhook bodies. Node's http client rather than fetch: its `lookup` option lets
 * the connection go to the address the guard checked (DNS rebinding), and it never follows a
 * redirect (a 3xx is a failed delivery: following one would let a receiver point Vigil at an
 * address the guard refuses).
 */
export class WebhookSender {
  private readonly clock: () => number;

  constructor(private readonly options: SenderOptions) {
    this.clock = options.clock ?? Date.now;
  }

  async send(req: SendRequest): Promise<SendResult> {
    let url: URL;
    try {
      url = parseUrl(req.url);
      // A literal address never goes through `lookup`: it is checked here.
      const host = hostOf(url);
      if (isIP(host) !== 0) {
        const refused = this.options.guard.refusal(host, host);
        if (refused) throw new UrlRefused(refused, 'address');
      }
    } catch (error) {
      return { ok: false, status: 0, error: `refused: ${(error as Error).message}` };
    }
    const timestamp = Math.floor(this.clock() / 1000);
    const headers = {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(req.body)),
      'user-agent': this.options.userAgent ?? 'Vigil-Webhooks/1',
      [SIGNATURE_HEADER]: signatureHeader(req.secret, timestamp, req.body),
      [EVENT_ID_HEADER]: req.eventId,
      [DELIVERY_ID_HEADER]: req.deliveryId,
    };
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const finish = (result: SendResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const outgoing = request(
        url,
        {
          method: 'POST',
          headers,
          // One connection per delivery: no pooled socket outlives the check that opened it.
          agent: false,
          lookup: this.options.guard.lookup(),
        },
        (answer: IncomingMessage) => {
          let read = 0;
          answer.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > MAX_ANSWER_BYTES) answer.destroy();
          });
          const status = answer.statusCode ?? 0;
          const done = (): void =>
            finish(
              status >= 200 && status < 300
                ? { ok: true, status }
                : {
                    ok: false,
                    status,
                    error:
                      status >= 300 && status < 400
                        ? `answered ${status} (redirects are not followed)`
                        : `answered ${status}`,
                  },
            );
          answer.on('end', done);
          answer.on('close', done);
          answer.on('error', done);
        },
      );
      const timer = setTimeout(() => {
        outgoing.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      outgoing.on('error', (error: Error) => {
        finish({
          ok: false,
          status: 0,
          error: error instanceof UrlRefused ? `refused: ${error.message}` : error.message,
        });
      });
      outgoing.end(req.body);
    });
  }
}
