import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeLogContract } from '../contract.testkit.js';
import { FileLog } from './file-log.js';

describeLogContract(
  'FileLog',
  async ({ topic, partitions }) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-file-log-contract-'));
    const openLog = () => FileLog.open({ dir, topic, partitions });
    let log = await openLog();
    return {
      log,
      async reopen() {
        await log.close();
        log = await openLog();
        return log;
      },
      async cleanup() {
        await log.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  // In-process delivery is immediate; a short settle keeps the suite fast.
  { settleMs: 100, timeoutMs: 5_000 },
);
