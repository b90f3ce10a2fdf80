// A stand-in application for crash and outage tests: records `count` events (metadata.n from
// `start`) with the built SDK, printing `ok <n>` once each record() has resolved, so a test
// knows exactly which events the SDK promised to keep before it kills this process.
//
//   node packages/sdk/scripts/record-child.mjs '{"endpoint":"http://127.0.0.1:4318","apiKey":"k",
//     "service":"crash-test","spoolDir":"/tmp/spool","count":1000,"start":0,"fsync":"always",
//     "close":false}'
//
// With "close": true it closes the client (deadline "closeMs", default 10 s) and prints
// `closed <json>`; otherwise it stays alive, delivering, until killed.
import { createAuditClient } from '@vigil/sdk';

const config = JSON.parse(process.argv[2] ?? '{}');
const audit = createAuditClient({
  endpoint: config.endpoint,
  apiKey: config.apiKey,
  service: config.service ?? 'crash-test',
  ...(config.spoolDir ? { spool: { dir: config.spoolDir, fsync: config.fsync ?? 'always' } } : {}),
  batch: { maxEvents: config.batchEvents ?? 100, maxDelayMs: config.batchDelayMs ?? 20 },
  retry: { initialDelayMs: 50, maxDelayMs: config.retryMaxMs ?? 2000 },
  logger: false,
});
process.stdout.write(`stream ${audit.stream}\n`);
const start = config.start ?? 0;
for (let n = start; n < start + (config.count ?? 100); n++) {
  await audit.record({
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'user', id: `u-${n % 10}` },
    target: { type: 'document', id: `doc-${n}` },
    metadata: { n },
  });
  process.stdout.write(`ok ${n}\n`);
}
process.stdout.write('done\n');
if (config.close) {
  const result = await audit.close({ deadlineMs: config.closeMs ?? 10_000 });
  process.stdout.write(`closed ${JSON.stringify(result)}\n`);
} else {
  setInterval(() => undefined, 60_000);
}
