import type { FileOps } from './file-ops.js';

/**
 * Reads a file sequentially in chunks with positional reads, so scanning a segment never holds
 * more than one chunk (or one record, if larger) in memory. A view returned by `bytes` is only
 * valid until the next call: callers copy what they keep.
 */
export class ChunkReader {
  private buffer: Buffer;
  private start = 0;
  private end = 0;

  constructor(
    private readonly ops: FileOps,
    private readonly fd: number,
    private readonly chunkBytes: number,
  ) {
    this.buffer = Buffer.allocUnsafe(0);
  }

  /**
   * Bytes `[position, position + length)`, or undefined when they do not all lie before
   * `limit` (the end of the readable part of the file) or the file is shorter.
   */
  async bytes(position: number, length: number, limit: number): Promise<Buffer | undefined> {
    if (position + length > limit) return undefined;
    if (position < this.start || position + length > this.end) {
      await this.fill(position, Math.min(Math.max(length, this.chunkBytes), limit - position));
      if (position + length > this.end) return undefined;
    }
    const at = position - this.start;
    return this.buffer.subarray(at, at + length);
  }

  private async fill(position: number, want: number): Promise<void> {
    if (this.buffer.length < want) this.buffer = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const n = await this.ops.read(this.fd, this.buffer, got, want - got, position + got);
      if (n === 0) break;
      got += n;
    }
    this.start = position;
    this.end = position + got;
  }
}
