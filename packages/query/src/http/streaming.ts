import { QueryErrorCodes } from '../errors.js';

/**
 * An export streams: once its first bytes are out the status (200) is sent, so an error after
 * that must still show. It ends the stream with one line that says so (an NDJSON bundle reader
 * sees an error line; a JSON or CSV reader a last line that is not data), lets that line reach
 * the socket, and then fails the stream, on which fastify destroys the connection: the chunked
 * response never ends, which every HTTP client reports as an incomplete body.
 */
export async function* incompleteOnError(
  source: AsyncGenerator<string>,
  log: { error(obj: object, msg: string): void },
): AsyncGenerator<string> {
  try {
    yield* source;
  } catch (error) {
    log.error({ err: error }, 'export failed after its head was sent; closing the connection');
    const message = `the export is incomplete: ${(error as Error).message}`;
    yield (
      '\n' + JSON.stringify({ error: { code: QueryErrorCodes.EXPORT_INCOMPLETE, message } }) + '\n'
    );
    await new Promise((resolve) => setImmediate(resolve));
    throw error;
  }
}
