// Helpers shared by the benchmarks: child-process servers and autocannon runs.
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';

/** Starts `node <script> ...args`, waits for its `READY <url> [extra]` line. */
export async function startServer(script, args = [], env = {}, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  let out = '';
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start:\n${out}`)), 60_000);
    child.stdout.on('data', (chunk) => {
      out += chunk.toString();
      const match = /READY (\S+)(?: (\S+))?/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1], extra: match[2] });
      }
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}:\n${out}`)));
  });
  return {
    ...ready,
    pid: child.pid,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

/** Loads POST /v1/events with the bodies in turn; returns autocannon's result. */
export function load({ url, key, bodies, seconds, connections = 16, rate }) {
  let next = 0;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${url}/v1/events`,
        method: 'POST',
        connections,
        duration: seconds,
        ...(rate ? { overallRate: rate } : {}),
        headers: {
          'content-type': 'application/json',
          ...(key ? { authorization: `Bearer ${key}` } : {}),
        },
        requests: [
          {
            setupRequest: (request) => {
              request.body = bodies[next++ % bodies.length];
              return request;
            },
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    instance.on('error', reject);
  });
}

export function describeResult(result, eventsPerRequest) {
  return {
    requestsPerSecond: Math.round(result.requests.average),
    eventsPerSecond: Math.round(result.requests.average * eventsPerRequest),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}
