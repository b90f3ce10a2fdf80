// Two builds of the detection engine on the same events, alternating in one process: CPU time
// per event of each (decode excluded), their minimum and median over the rounds. For a change
// meant to make the engine faster; bench/detect-fingerprint.mjs checks it changed no alert.
//   npx tsc -b packages/detect && node bench/detect-ab.mjs OTHER/packages/detect/dist/index.js [events=100000] [rounds=8]
import { pathToFileURL } from 'node:url';
import * as B from '@vigil/detect';
import { detectMix } from './detect-mix.mjs';

const other = process.argv[2];
if (other === undefined) {
  console.error(
    'usage: node bench/detect-ab.mjs OTHER/packages/detect/dist/index.js [events] [rounds]',
  );
  process.exit(2);
}
const A = await import(pathToFileURL(other).href);
const N = Number(process.argv[3] ?? 100_000);
const rounds = Number(process.argv[4] ?? 8);
const mix = detectMix(N);

function run(M) {
  const engine = new M.DetectionEngine({
    rules: M.builtinRules(),
    baseline: mix.baseline,
    overrides: mix.overrides,
  });
  const cpu = process.cpuUsage();
  for (let i = 0; i < mix.events.length; i++) {
    const e = mix.events[i];
    engine.process(e);
    if (i % 1_000 === 999) engine.advanceWatermark(e.time - 60_000);
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / mix.events.length; // µs of CPU per event
}

run(A);
run(B); // warm-up
const a = [];
const b = [];
for (let k = 0; k < rounds; k++) {
  a.push(run(A));
  b.push(run(B));
}
const median = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
const min = (x) => Math.min(...x);
console.log(`${mix.events.length} events, ${rounds} rounds, µs of CPU per event (decode excluded)`);
console.log(`other (${other}): min ${min(a).toFixed(2)}, median ${median(a).toFixed(2)}`);
console.log(`this build:  min ${min(b).toFixed(2)}, median ${median(b).toFixed(2)}`);
console.log(
  `speed-up: ${(min(a) / min(b)).toFixed(2)}× (min), ${(median(a) / median(b)).toFixed(2)}× (median)`,
);
