import { isUtf8 } from 'node:buffer';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { VigilError, type ErrorDetail } from '@vigil/protocol';
import { CollectorError, CollectorErrorCodes } from '@vigil/collector';

/** The one error body of every endpoint (PROTOCOL.md §9). */
export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly details: readonly ErrorDetail[];
  };
}

export function errorBody(
  code: string,
  message: string,
  details: readonly ErrorDetail[] = [],
): ErrorBody {
  return { error: { code, message, details } };
}

/** JSON schema of {@link ErrorBody}, shared by every route's error answers as `VigilError#`. */
export const errorSchema = {
  $id: 'VigilError',
  type: 'object',
  description: 'The one error body of every endpoint; codes are listed in ERRORS.md.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string', pattern: '^VIGIL_ERR_[A-Z_]+$' },
        message: { type: 'string' },
        details: {
          type: 'array',
          items: {
            type: 'object',
            // Open: a detail may say more than these three (and a schema must not drop it).
            additionalProperties: true,
            properties: {
              index: { type: 'integer', description: 'the event, in a batch' },
              path: { type: 'string', description: 'JSON pointer of the field' },
              message: { type: 'string' },
            },
          },
        },
      },
    },
  },
} as const;

const errorRef = { $ref: 'VigilError#' } as const;

function fastifyValidationDetails(error: FastifyError): ErrorDetail[] {
  return (error.validation ?? []).map((v) => {
    const missing = (v.params as { missingProperty?: string } | undefined)?.missingProperty;
    const extra = (v.params as { additionalProperty?: string } | undefined)?.additionalProperty;
    const base = `/${error.validationContext ?? ''}${v.instancePath}`;
    return {
      path: missing ? `${base}/${missing}` : extra ? `${base}/${extra}` : base,
      message: extra ? 'is not a known parameter' : (v.message ?? 'is invalid'),
    };
  });
}

/**
 * Maps every failure to the one error shape: our own errors keep their code and status;
 * fastify's request errors become 4xx with a code of ours; anything else is a bug, logged
 * with its stack and answered 500 without internals.
 */
export function installErrorHandling(app: FastifyInstance): void {
  // Every described route answers its errors in the one shape, and the API description says
  // so. A route that declares no query parameters takes none: an unknown one is refused as on
  // every other route (a typo must not pass unnoticed); health, readiness and metrics excepted,
  // for probes and scrapers.
  app.addSchema(errorSchema);
  app.addHook('onRoute', (route) => {
    const schema = route.schema as
      | {
          hide?: boolean;
          tags?: string[];
          querystring?: unknown;
          response?: Record<string, unknown>;
        }
      | undefined;
    if (!schema || schema.hide) return;
    const response = { ...schema.response };
    response['4xx'] ??= { ...errorRef, description: 'refused: see error.code (ERRORS.md)' };
    response['5xx'] ??= { ...errorRef, description: 'failed or unavailable: see error.code' };
    const operations = schema.tags?.includes('operations') === true;
    route.schema = {
      ...route.schema,
      response,
      ...(schema.querystring === undefined && !operations
        ? { querystring: { type: 'object', properties: {}, additionalProperties: false } }
        : {}),
    };
  });
  // JSON bodies must be UTF-8 (RFC 8259 §8.1): fastify's parser would decode bad bytes to
  // U+FFFD and store that. Other media types (text/plain among fastify's defaults) are refused
  // with 415; POST /v1/events has parsers of its own (collector ingest/routes.ts).
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    (
      request: FastifyRequest,
      body: Buffer,
      done: (error: Error | null, value?: unknown) => void,
    ) => {
      if (!isUtf8(body)) {
        done(
          new CollectorError(CollectorErrorCodes.BAD_REQUEST, 'the body is not valid UTF-8', {
            status: 400,
          }),
        );
        return;
      }
      void parseJson(request, body.toString('utf8'), done);
    },
  );
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof VigilError) {
      if (error.status >= 500) request.log.error({ err: error }, error.message);
      // A rate limiter sets its own Retry-After (the end of the key's window); keep it.
      if (
        error.retriable &&
        (error.status === 503 || error.status === 429) &&
        !reply.hasHeader('retry-after')
      )
        void reply.header('retry-after', '1');
      return reply.status(error.status).send(errorBody(error.code, error.message, error.details));
    }
    if (error.validation) {
      return reply
        .status(400)
        .send(
          errorBody(
            CollectorErrorCodes.BAD_REQUEST,
            'invalid request',
            fastifyValidationDetails(error),
          ),
        );
    }
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply
          .status(413)
          .send(
            errorBody(
              CollectorErrorCodes.BODY_TOO_LARGE,
              `the request body is larger than the limit: ${error.message}`,
            ),
          );
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply
          .status(415)
          .send(
            errorBody(
              CollectorErrorCodes.UNSUPPORTED_MEDIA_TYPE,
              'send Content-Type: application/vnd.vigil.sealed.v2 (sealed events, PROTOCOL.md §9), application/json or application/x-ndjson (Content-Encoding: gzip is accepted)',
            ),
          );
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return reply
          .status(400)
          .send(
            errorBody(CollectorErrorCodes.BAD_REQUEST, `the body is not JSON: ${error.message}`),
          );
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply.status(400).send(errorBody(CollectorErrorCodes.BAD_REQUEST, error.message));
      default:
        break;
    }
    if (error instanceof SyntaxError && error.statusCode === 400) {
      // fastify's JSON body parser.
      return reply
        .status(400)
        .send(errorBody(CollectorErrorCodes.BAD_REQUEST, `the body is not JSON: ${error.message}`));
    }
    if (typeof error.code === 'string' && error.code.startsWith('Z_')) {
      // zlib failed on a Content-Encoding: gzip body.
      return reply
        .status(400)
        .send(
          errorBody(
            CollectorErrorCodes.BAD_REQUEST,
            `the body is not valid gzip: ${error.message}`,
          ),
        );
    }
    if (error.statusCode === 429) {
      return reply.status(429).send(errorBody(CollectorErrorCodes.RATE_LIMITED, error.message));
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply
        .status(error.statusCode)
        .send(errorBody(CollectorErrorCodes.BAD_REQUEST, error.message));
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply
      .status(500)
      .send(errorBody(CollectorErrorCodes.INTERNAL, 'internal error; see the server log'));
  });
  app.setNotFoundHandler((request, reply) => {
    return reply
      .status(404)
      .send(
        errorBody(
          CollectorErrorCodes.NOT_FOUND,
          `no route ${request.method} ${request.url.split('?')[0] ?? ''}`,
        ),
      );
  });
}

/**
 * Errors fastify's router raises before any route or hook runs (a path that does not
 * percent-decode, a path parameter over `maxParamLength`): without this they are answered in
 * fastify's own shape (`FST_ERR_BAD_URL`, `FST_ERR_MAX_PARAM_LENGTH`).
 */
export function frameworkErrors(
  error: FastifyError,
  _request: FastifyRequest,
  reply: FastifyReply,
): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void reply
      .status(414)
      .send(
        errorBody(
          CollectorErrorCodes.URI_TOO_LONG,
          'a path parameter is longer than 100 characters: no id is that long',
        ),
      );
    return;
  }
  void reply
    .status(400)
    .send(
      errorBody(
        CollectorErrorCodes.BAD_REQUEST,
        error.code === 'FST_ERR_BAD_URL'
          ? 'the URL path does not decode: a % must be followed by two hex digits of UTF-8'
          : error.message,
      ),
    );
}

/**
 * Errors of Node's HTTP parser, before fastify sees a request (request line and headers over
 * `maxHeaderSize`, 16 KiB; a request that is not HTTP; a request not received in time): written
 * on the socket in Vigil's error shape, as fastify's default handler does in its own shape. The
 * request timeout is http.requestTimeoutSeconds: a client trickling its body. Like Node's own
 * handler, it writes nothing when an answer was already sent on this connection (a 401 given
 * before the body was read) and only closes it.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let status: number;
  let body: ErrorBody;
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    body = errorBody(
      CollectorErrorCodes.HEADERS_TOO_LARGE,
      'the request line and headers are larger than 16 KiB',
    );
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    body = errorBody(
      CollectorErrorCodes.REQUEST_TIMEOUT,
      'the request did not arrive in time (http.requestTimeoutSeconds); the connection is closed',
    );
  } else {
    status = 400;
    body = errorBody(CollectorErrorCodes.BAD_REQUEST, 'the request is not valid HTTP/1.1');
  }
  const sent = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
    ?.headersSent;
  if (socket.writable && sent !== true) {
    const text = JSON.stringify(body);
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
        `Cache-Control: no-store\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy(error);
}
