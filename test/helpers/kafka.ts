/**
 * Starts a Kafka-protocol broker for integration tests: librdkafka's mock cluster, run by the
 * small C launcher test/kafka/mock-cluster.c (compiled into test/.tmp/ on first use).
 *
 * Tests FAIL when the broker cannot start: a missing broker is a broken environment, not a
 * reason to pass. `VIGIL_SKIP_KAFKA=1` skips them on a developer machine; it is ignored when
 * `CI` is set.
 *
 * Limits of the librdkafka 2.0.2 mock that tests must respect: no CreateTopics (topics are
 * created by the launcher), ~5 MiB kept per partition, a new consumer group waits 3 s before its
 * first assignment and later rebalances wait `sessionTimeout - 1 s`, and a Metadata request
 * for an unknown topic creates it (the mock ignores allowAutoTopicCreation).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';

const ROOT = resolve(import.meta.dirname, '../..');
const SOURCE = resolve(ROOT, 'test/kafka/mock-cluster.c');
const BINARY = resolve(ROOT, 'test/.tmp/mock-cluster');
const INSTALL_HINT =
  'The Kafka integration tests need gcc and librdkafka-dev (librdkafka >= 2.0, rdkafka_mock.h): ' +
  'apt-get install gcc libc6-dev librdkafka-dev';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;

export interface KafkaMockTopic {
  readonly name: string;
  readonly partitions: number;
  /** At most the number of brokers; 1 when absent. */
  readonly replication?: number;
}

export interface KafkaMockOptions {
  readonly topics: readonly KafkaMockTopic[];
  /** Number of mock brokers, with ids 1..n; 1 when absent. */
  readonly brokers?: number;
}

export interface KafkaMock {
  /** Bootstrap servers, `127.0.0.1:port` each. */
  readonly brokers: string[];
  /** Takes broker `id` down: it drops its connections and refuses new ones, keeping its port. */
  down(id: number): Promise<void>;
  /** Brings broker `id` back up on the same port. */
  up(id: number): Promise<void>;
  /** Stops the broker process and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/** Whether Kafka integration tests are skipped: only on explicit opt-out, never under CI. */
export function kafkaTestsSkipped(env: NodeJS.ProcessEnv = process.env): boolean {
  return env['VIGIL_SKIP_KAFKA'] === '1' && !env['CI'];
}

/** A topic or consumer-group name unique to this test run, e.g. `vigil-events-m3x1k2-9c1a2b`. */
export function uniqueKafkaName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

type MockProcess = ChildProcessByStdio<Writable, Readable, Readable>;

export async function startKafkaMock(options: KafkaMockOptions): Promise<KafkaMock> {
  const args = [String(options.brokers ?? 1)];
  for (const topic of options.topics) {
    args.push(`${topic.name}:${topic.partitions}:${topic.replication ?? 1}`);
  }
  await ensureLauncher();

  // The launcher exits when its stdin closes, so also when this process ends for any reason
  // (and on Linux when its parent dies: PR_SET_PDEATHSIG).
  const child: MockProcess = spawn(BINARY, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((done) => child.once('close', () => done()));
  child.stdin.on('error', () => {
    // EPIPE after the launcher exited; `exited` reports that.
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });

  const replies: { resolve: () => void; reject: (error: Error) => void }[] = [];
  let ready: { brokers?: string[]; resolve: (brokers: string[]) => void } | undefined;
  const started = new Promise<string[]>((resolveStarted, rejectStarted) => {
    const fail = (why: string, hint = true): void => {
      const output = stderr.trim();
      const text = `the Kafka mock broker did not start: ${why}${output ? `\n${output}` : ''}`;
      rejectStarted(new Error(hint ? `${text}\n${INSTALL_HINT}` : text));
    };
    const timer = setTimeout(
      () => fail(`no READY within ${START_TIMEOUT_MS} ms`),
      START_TIMEOUT_MS,
    );
    ready = {
      resolve: (brokers) => {
        clearTimeout(timer);
        resolveStarted(brokers);
      },
    };
    child.once('error', (error) => fail(error.message));
    void exited.then(() => {
      clearTimeout(timer);
      // Exit code 2: the launcher refused its arguments (a test bug, not the environment).
      const code = child.exitCode ?? child.signalCode;
      fail(`the launcher exited with code ${code}`, code !== 2);
      for (const reply of replies.splice(0)) reply.reject(new Error('the Kafka mock has exited'));
    });
  });

  let pending = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    pending += chunk;
    for (let eol = pending.indexOf('\n'); eol >= 0; eol = pending.indexOf('\n')) {
      const line = pending.slice(0, eol).trim();
      pending = pending.slice(eol + 1);
      if (ready !== undefined) {
        if (line.startsWith('BOOTSTRAP ')) ready.brokers = line.slice(10).split(',');
        else if (line === 'READY' && ready.brokers !== undefined) {
          ready.resolve(ready.brokers);
          ready = undefined;
        }
      } else if (line.startsWith('OK ')) replies.shift()?.resolve();
      else if (line.startsWith('ERR ')) replies.shift()?.reject(new Error(`mock: ${line}`));
    }
  });

  let brokers: string[];
  try {
    brokers = await started;
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }

  const command = (line: string): Promise<void> =>
    new Promise((resolveReply, rejectReply) => {
      replies.push({ resolve: resolveReply, reject: rejectReply });
      child.stdin.write(`${line}\n`);
    });

  let stopping: Promise<void> | undefined;
  return {
    brokers,
    down: (id) => command(`down ${id}`),
    up: (id) => command(`up ${id}`),
    stop() {
      stopping ??= (async () => {
        child.stdin.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** Compiles the launcher when the binary is missing or older than its source. */
async function ensureLauncher(): Promise<void> {
  const source = await stat(SOURCE);
  const binary = await stat(BINARY).catch(() => undefined);
  if (binary !== undefined && binary.mtimeMs >= source.mtimeMs) return;

  await mkdir(resolve(BINARY, '..'), { recursive: true });
  // Test files run in parallel workers: compile to a private name, then rename atomically.
  const scratch = `${BINARY}.${process.pid}.${randomBytes(3).toString('hex')}`;
  try {
    await run('gcc', ['-O2', '-Wall', '-o', scratch, SOURCE, '-lrdkafka']);
    await rename(scratch, BINARY);
  } finally {
    await rm(scratch, { force: true });
  }
}

function run(command: string, args: readonly string[]): Promise<void> {
  return new Promise((done, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', (error) => {
      reject(new Error(`cannot run ${command}: ${error.message}\n${INSTALL_HINT}`));
    });
    child.once('close', (code) => {
      if (code === 0) done();
      else
        reject(
          new Error(`${command} ${args.join(' ')} failed:\n${stderr.trim()}\n${INSTALL_HINT}`),
        );
    });
  });
}
