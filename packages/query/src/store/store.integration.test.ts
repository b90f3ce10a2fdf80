import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestStore, type TestStore } from './store.testkit.js';

describe('Store', () => {
  let t: TestStore;
  beforeEach(async () => {
    t = await openTestStore({ migrate: false });
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('streams the raw bytes of a statement that names its own format', async () => {
    const chunks: Buffer[] = [];
    const bytes = await t.store.stream('SELECT {n:UInt8} AS n, {s:String} AS s FORMAT RowBinary', {
      n: 7,
      s: 'ab',
    });
    for await (const chunk of bytes) chunks.push(chunk);
    // RowBinary: UInt8 7, then the string as LEB128 length 2 and its bytes.
    expect(Buffer.concat(chunks)).toEqual(Buffer.from([7, 2, 0x61, 0x62]));
  });

  it('reports a statement the engine refuses as an error of the call, not of the stream', async () => {
    await expect(t.store.stream('SELECT * FROM no_such_table FORMAT RowBinary')).rejects.toThrow(
      /no_such_table/,
    );
  });
});
