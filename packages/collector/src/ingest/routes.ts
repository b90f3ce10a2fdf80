import { createGunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireScope, tenantOf, type AuthObserver, type KeyRegistry } from '@vigil/query';
import { CollectorError, CollectorErrorCodes } from '../errors.js';
import type { Ingestor } from './ingestor.js';
import type { Refusal } from './admission.js';
import { eventInputSchema, SEALED_MEDIA_TYPE, sealedEventSchema } from '@vigil/protocol';

export interface IngestRoutesOptions {
  readonly ingestor: Ingestor;
  readonly registry: KeyRegistry;
  readonly maxBodyBytes: number;
  readonly onAuthFailure?: AuthObserver;
  /** Admission control (ingest/admission.ts): refuses with 503 + Retry-After when it says so. */
  readonly admission?: { enter(): Refusal | undefined; leave(): void };
  /** A request refused by admission control, with the error code (for metrics). */
  readonly onRefused?: (code: string) => void;
}

interface CountingStream {
  receivedEncodedLength: number;
}

/** `POST /v1/events`: the ingest endpoint (PROTOCOL.md §9). */
export function registerIngestRoutes(app: FastifyInstance, options: IngestRoutesOptions): void {
  const { ingestor, registry, admission } = options;
  const authenticate = requireScope(registry, 'ingest', options.onAuthFailure);
  // After authentication and still before the body is read: a refused request costs no upload
  // and no parsing, and the client learns when to come back.
  const admit = (
    _request: FastifyRequest,
    reply: FastifyReply,
    done: (error?: Error) => void,
  ): void => {
    const refusal = admission?.enter();
    if (!refusal) {
      // Left when the answer is sent or the connection dies, whichever comes first.
      reply.raw.once('close', () => admission?.leave());
      done();
      return;
    }
    options.onRefused?.(refusal.error.code);
    void reply.header('retry-after', String(refusal.retryAfterSeconds));
    done(refusal.error);
  };
  app.register((scope, _opts, done) => {
    // Raw bytes for our own parser (the sealed framing, JSON or NDJSON), in this scope only; any
    // other media type is refused with 415.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      [SEALED_MEDIA_TYPE, 'application/json', 'application/x-ndjson', 'application/jsonl'],
      { parseAs: 'buffer', bodyLimit: options.maxBodyBytes },
      // The body stays raw: parsing and checking happen together, on a worker thread when the
      // collector has a check pool.
      (
        _request: FastifyRequest,
        body: Buffer,
        parsed: (error: Error | null, value?: unknown) => void,
      ) => {
        parsed(null, body);
      },
    );
    scope.post(
      '/v1/events',
      {
        bodyLimit: options.maxBodyBytes,
        // Authenticated (then admitted) before the body is read: a request without a valid key
        // costs no parsing.
        onRequest: admission ? [authenticate, admit] : authenticate,
        // Decompress before the body limit is counted, so a gzip bomb stops at the limit.
        preParsing: (request, _reply, payload, done) => {
          const encoding = (request.headers['content-encoding'] ?? 'identity').toLowerCase();
          if (encoding === 'identity') {
            done(null, payload);
            return;
          }
          if (encoding !== 'gzip' && encoding !== 'x-gzip') {
            done(
              new CollectorError(
                CollectorErrorCodes.UNSUPPORTED_MEDIA_TYPE,
                `Content-Encoding ${encoding} is not supported; send gzip or nothing`,
                { status: 415 },
              ),
            );
            return;
          }
          const gunzip = createGunzip();
          const counted = gunzip as typeof gunzip & CountingStream;
          // fastify compares the bytes received on the wire with Content-Length.
          counted.receivedEncodedLength = 0;
          payload.on('data', (chunk: Buffer) => {
            counted.receivedEncodedLength += chunk.length;
          });
          payload.on('error', (error) => gunzip.destroy(error));
          payload.pipe(gunzip);
          done(null, gunzip);
        },
        schema: {
          description:
            "Submit audit events of the key's tenant: sealed events (hash-chained by an SDK), as lines of the sealed framing (Content-Type: application/vnd.vigil.sealed.v2, PROTOCOL.md §9) or in JSON, and/or unchained events in JSON. Answers 202 once the batch is durable in the log.",
          tags: ['ingest'],
          security: [{ bearer: [] }],
          body: {
            type: 'object',
            properties: {
              events: { type: 'array', items: { anyOf: [sealedEventSchema, eventInputSchema] } },
            },
          },
          response: {
            202: {
              type: 'object',
              description:
                'the batch is durable in the log: events accepted, and replays already held',
              properties: { accepted: { type: 'integer' }, duplicates: { type: 'integer' } },
            },
          },
        },
        // The schema above documents the API; validation is done by the protocol checks, which
        // report every bad event with its index.
        validatorCompiler: () => () => true,
      },
      async (request, reply) => {
        if (!Buffer.isBuffer(request.body) || request.body.length === 0) {
          throw new CollectorError(
            CollectorErrorCodes.BAD_REQUEST,
            'send a body: framed sealed events, {"events":[…]} or NDJSON',
            {
              status: 400,
            },
          );
        }
        const key = request.vigilKey;
        const result = await ingestor.ingestBody(
          { tenantId: tenantOf(request), keyId: key?.keyId ?? '' },
          request.body,
          request.headers['content-type'] ?? 'application/json',
        );
        return reply.status(202).send(result);
      },
    );
    done();
  });
}
