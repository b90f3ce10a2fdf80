import type { BatchCheck } from './batch-check.js';

/** A check request from the pool to a worker (check-worker.ts). */
export interface CheckTask {
  readonly id: number;
  readonly body: Uint8Array;
  readonly contentType: string;
  readonly tenantId: string;
  readonly keyId: string;
  readonly receivedAt: number;
}

export interface CheckReply {
  readonly id: number;
  readonly result: BatchCheck;
}

/** A buffer that owns its whole ArrayBuffer, so it can be transferred (small Buffers share a pool). */
export function owned(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes;
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}
