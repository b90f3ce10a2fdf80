import { request } from 'node:http';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incompleteOnError } from './streaming.js';

/** What an HTTP client receives: the body bytes, and whether the response ended properly. */
function fetchRaw(url: string): Promise<{ status: number; body: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, body, complete: false }));
    })
      .on('error', reject)
      .end();
  });
}

describe('a streamed export that fails after its head', () => {
  const app = Fastify({ logger: false });
  let url = '';

  beforeAll(async () => {
    async function* failing(): AsyncGenerator<string> {
      yield '{"format":"vigil.subject-export","items":[';
      await Promise.resolve();
      throw new RangeError('Maximum call stack size exceeded');
    }
    async function* fine(): AsyncGenerator<string> {
      yield '{"items":[';
      await Promise.resolve();
      yield ']}';
    }
    app.get('/failing', (request, reply) =>
      reply.type('application/json').send(Readable.from(incompleteOnError(failing(), request.log))),
    );
    app.get('/fine', (request, reply) =>
      reply.type('application/json').send(Readable.from(incompleteOnError(fine(), request.log))),
    );
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app.close();
  });

  it('ends with an error line and a response the client sees as incomplete', async () => {
    const res = await fetchRaw(`${url}/failing`);
    expect(res.status).toBe(200);
    expect(res.complete).toBe(false);
    const last = res.body.trimEnd().split('\n').at(-1) ?? '';
    expect(JSON.parse(last)).toEqual({
      error: {
        code: 'VIGIL_ERR_EXPORT_INCOMPLETE',
        message: 'the export is incomplete: Maximum call stack size exceeded',
      },
    });
    // A fetch client rejects instead of handing over a cut body as if it were whole.
    await expect((await fetch(`${url}/failing`)).text()).rejects.toThrow();
  });

  it('leaves a stream that does not fail as it is', async () => {
    expect(await fetchRaw(`${url}/fine`)).toEqual({
      status: 200,
      body: '{"items":[]}',
      complete: true,
    });
  });
});
