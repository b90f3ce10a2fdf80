// `npm run bench [-- name ...]`: runs the benchmarks one after another (all of them, or the ones
// named), each as its own process, printing what each prints. See bench/README.md for the
// question, method and caveats of each; none of them is part of the test suite.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const here = new URL('.', import.meta.url).pathname;
const all = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
  .map((f) => f.slice(0, -4))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; there are: ${all.join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length > 0 ? wanted : all) {
  console.log(`\n=== ${name} ===`);
  const run = spawnSync(process.execPath, [`${here}${name}.mjs`], { stdio: 'inherit' });
  if (run.status !== 0) console.error(`${name} exited with ${run.status}`);
}
