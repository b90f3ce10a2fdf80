// Baseline: a bare fastify endpoint that only JSON.parses the body and answers 202.
import Fastify from 'fastify';

const app = Fastify({ bodyLimit: 5 * 1024 * 1024 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
  try {
    done(null, JSON.parse(body.toString('utf8')));
  } catch (error) {
    done(error);
  }
});
app.post('/v1/events', async (request, reply) =>
  reply.status(202).send({ accepted: request.body.events.length, duplicates: 0 }),
);
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`READY ${url}\n`);
process.once('SIGTERM', () => void app.close().finally(() => process.exit(0)));
