import { parentPort, workerData } from 'node:worker_threads';
import { checkBody, type BatchCheck, type CheckLimits } from './batch-check.js';
import { owned, type CheckReply, type CheckTask } from './check-messages.js';
import { CollectorErrorCodes } from '../errors.js';

/**
 * A worker thread of the ingest check pool: parses request bodies and runs the stateless checks
 * (hashes, commitments, schema, links) off the main thread, which keeps only HTTP, dedupe and
 * the durable append. Bodies arrive and encoded log messages leave as transferred buffers.
 */
const limits = (workerData as { limits?: CheckLimits } | null)?.limits;
const port = parentPort;
if (port && limits) {
  port.on('message', (task: CheckTask) => {
    let result: BatchCheck;
    try {
      result = checkBody(task.body, task.contentType, {
        tenantId: task.tenantId,
        keyId: task.keyId,
        receivedAt: task.receivedAt,
        limits,
      });
    } catch (error) {
      result = {
        ok: false,
        code: CollectorErrorCodes.INTERNAL,
        status: 500,
        message: (error as Error).message,
        details: [],
      };
    }
    if (!result.ok) {
      port.postMessage({ id: task.id, result } satisfies CheckReply);
      return;
    }
    const messages = result.messages.map((m) => ({ ...m, value: owned(m.value) }));
    port.postMessage(
      { id: task.id, result: { ...result, messages } } satisfies CheckReply,
      messages.map((m) => m.value.buffer as ArrayBuffer),
    );
  });
}
