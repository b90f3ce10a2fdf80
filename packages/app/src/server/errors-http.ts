import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { VigilError, type ErrorDetail } from '@vigil/protocol';
import { CollectorErrorCodes } from '@vigil/collector';

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
              'send Content-Type: application/json or application/x-ndjson (Content-Encoding: gzip is accepted)',
            ),
          );
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply.status(400).send(errorBody(CollectorErrorCodes.BAD_REQUEST, error.message));
      default:
        break;
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
 * fastify's `clientErrorHandler`: errors Node's HTTP server raises before a request reaches
 * fastify, above all the request timeout (the whole request did not arrive within
 * http.requestTimeoutSeconds: a client trickling its body). Answers in the one error shape, then
 * closes the connection. Like Node's own handler, it writes nothing when an answer was already
 * sent on this connection (a 401 given before the body was read) and only closes it.
 */
export function onClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const sent = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
    ?.headersSent;
  if (socket.writable && sent !== true) {
    const [status, code, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [
            408,
            CollectorErrorCodes.REQUEST_TIMEOUT,
            'the request did not arrive in time (http.requestTimeoutSeconds); send it at once',
          ]
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, CollectorErrorCodes.BAD_REQUEST, 'the request headers are too large']
          : [400, CollectorErrorCodes.BAD_REQUEST, 'malformed HTTP request'];
    const body = JSON.stringify(errorBody(code, message));
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\n` +
        `Content-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
