// Starts librdkafka's mock cluster for a benchmark: compiles test/kafka/mock-cluster.c with gcc
// when needed (needs librdkafka-dev), waits for its BOOTSTRAP/READY lines.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';

const root = new URL('../../', import.meta.url).pathname;
const source = `${root}test/kafka/mock-cluster.c`;
const binary = `${root}test/.tmp/mock-cluster`;

export async function startMockBroker(topics) {
  if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(`${root}test/.tmp`, { recursive: true });
    execFileSync('gcc', ['-O2', '-Wall', '-o', binary, source, '-lrdkafka'], { stdio: 'inherit' });
  }
  const child = spawn(binary, ['1', ...topics.map((t) => `${t.name}:${t.partitions}:1`)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  const brokers = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      out += chunk.toString();
      const bootstrap = /BOOTSTRAP (\S+)/.exec(out);
      if (bootstrap && out.includes('READY')) resolve(bootstrap[1]);
    });
    child.once('exit', (code) => reject(new Error(`mock broker exited ${code}: ${out}`)));
  });
  return {
    brokers,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.stdin.end();
        child.kill('SIGTERM');
      }),
  };
}
