// The Vigil collector on embedded defaults, as `vigil start` runs it minus the sink: full
// validation (schema, sizes, each event's hash and disclosures, links inside the batch), and a
// durable append (fsync before the 202) to the embedded file log.
//   node bench/servers/collector.mjs <dataDir> [fsync=always]
import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { pino } from 'pino';
import { CheckPool, FileLog, Ingestor } from '@vigil/collector';
import { Metrics, buildApp } from '@vigil/app';
import { KeyRegistry, TenantDirectory, migrate, openStore } from '@vigil/query';

const [dir, fsync = 'always', workersArg] = process.argv.slice(2);
const workers =
  workersArg === undefined ? Math.max(1, Math.min(4, availableParallelism())) : Number(workersArg);
mkdirSync(dir, { recursive: true });
const store = await openStore({ kind: 'chdb', path: `${dir}/store`, database: 'vigil' });
await migrate(store);
const directory = new TenantDirectory(store);
await directory.createTenant('bench');
const key = await directory.createKey({ tenantId: 'bench', scopes: ['ingest'] });
const registry = new KeyRegistry(directory);
await registry.refresh();
const log = await FileLog.open({ dir: `${dir}/log`, topic: 'vigil.events', partitions: 4, fsync });
const metrics = new Metrics();
// The pool of benchmark batches repeats; a dedupe window of 1 makes every repeat do the full
// work (checks and append) instead of being answered as a duplicate.
const limits = {
  maxBodyBytes: 5 << 20,
  maxEvents: 1000,
  maxRecordBytes: 32 << 10,
  clockSkewMs: 300_000,
  backfillAfterMs: 86_400_000 * 365,
  dedupeWindow: 1,
  workers,
};
const pool = workers > 0 ? new CheckPool(workers, limits, 64) : undefined;
const ingestor = new Ingestor(log, limits, {
  observer: metrics.ingestObserver(),
  ...(pool ? { pool } : {}),
});
const app = await buildApp({
  logger: pino({ level: 'warn' }),
  metrics,
  registry,
  readiness: async () => ({ ready: true, checks: {} }),
  ingest: { ingestor, maxBodyBytes: 5 << 20 },
  version: 'bench',
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`READY ${url} ${key.secret}\n`);
console.error(`collector: ${workers} check worker(s), fsync ${fsync}`);
process.once('SIGTERM', () => {
  void app
    .close()
    .then(() => log.close())
    .then(() => store.close())
    .finally(() => process.exit(0));
});
