// The independent Python verifier (verifiers/python, written from PROTOCOL.md alone) must
// reproduce every vector file the protocol package ships, and refuse every refused case for its
// stated reason. It needs Debian's python3 and python3-cryptography (.ci/run installs both):
// without them this test fails, it never skips.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const verifier = join(root, 'verifiers', 'python', 'vigil_verify.py');
const vectorsDir = join(root, 'packages', 'protocol', 'vectors');
const python = process.env['VIGIL_PYTHON'] ?? 'python3';
const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };

interface Result {
  name: string;
  ok: boolean;
  detail: string;
}
interface Run {
  status: number | null;
  files: string[];
  results: Result[];
  stderr: string;
}

function runVectors(dir: string, ...flags: string[]): Run {
  const run = spawnSync(python, [verifier, 'vectors', dir, '--json', ...flags], {
    encoding: 'utf8',
    env,
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.error) {
    throw new Error(
      `cannot run ${python} (install Debian's python3 and python3-cryptography): ${run.error.message}`,
    );
  }
  if (run.status === 2 || !run.stdout.trim()) {
    throw new Error(`the Python verifier did not run: ${run.stderr || run.stdout}`);
  }
  const out = JSON.parse(run.stdout) as { files: string[]; results: Result[] };
  return { status: run.status, files: out.files, results: out.results, stderr: run.stderr };
}

// The vector files follow the protocol's version: the newest v<N>.json holds the event vectors.
const eventFile = readdirSync(vectorsDir)
  .filter((f) => /^v\d+\.json$/.test(f))
  .sort((a, b) => Number(a.slice(1, -5)) - Number(b.slice(1, -5)))
  .at(-1)!;

const leafFile = readdirSync(vectorsDir)
  .filter((f) => /^merkle-v\d+\.json$/.test(f))
  .sort((a, b) => Number(a.slice(8, -5)) - Number(b.slice(8, -5)))
  .at(-1)!;
// What this tree's server writes: the records and leaves of its newest vectors.
const versionArgs = ['--version', eventFile.slice(1, -5), '--leaf-version', leafFile.slice(8, -5)];

const temps: string[] = [];
function copyOfVectors(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-pyverify-'));
  temps.push(dir);
  for (const f of readdirSync(vectorsDir)) copyFileSync(join(vectorsDir, f), join(dir, f));
  return dir;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe('Python verifier written from PROTOCOL.md', () => {
  it('runs on Debian python3 with the cryptography module', () => {
    const run = spawnSync(python, ['-c', 'import cryptography, sys; print(sys.version_info[0])'], {
      encoding: 'utf8',
    });
    expect(run.error, `${python} is missing: install Debian's python3`).toBeUndefined();
    expect(run.status, `python3-cryptography is missing: ${run.stderr}`).toBe(0);
    expect(run.stdout.trim()).toBe('3');
  });

  it('reproduces every vector file and refuses every refused case for its reason', () => {
    const run = runVectors(vectorsDir);
    const failed = run.results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.detail}`);
    expect(failed).toEqual([]);
    expect(run.status).toBe(0);
    // Every file of the directory was read: a new vector file the verifier does not know fails.
    expect([...run.files].sort()).toEqual(readdirSync(vectorsDir).sort());
    // Every refused case was run, each refused for its stated reason.
    for (const file of readdirSync(vectorsDir).filter((f) => /^refused-v\d+\.json$/.test(f))) {
      const refused = JSON.parse(readFileSync(join(vectorsDir, file), 'utf8')) as {
        cases: { name: string; section: string }[];
      };
      const prefix = `${file.replace(/\.json$/, '')}: `;
      for (const c of refused.cases) {
        expect(run.results.map((r) => r.name)).toContain(`${prefix}${c.name} (${c.section})`);
      }
    }
  }, 300_000);

  it('fails when a vector is changed', () => {
    const dir = copyOfVectors();
    const file = join(dir, eventFile);
    const vec = JSON.parse(readFileSync(file, 'utf8')) as {
      stream: { events: { record: string }[] };
    };
    // One character of event 3's record: its hash no longer matches, nor does its Merkle leaf.
    const event3 = vec.stream.events[3]!;
    event3.record = event3.record.replace('INV-2026-0042', 'INV-2026-0043');
    writeFileSync(file, JSON.stringify(vec));
    const run = runVectors(dir, '--no-flips');
    expect(run.status).toBe(1);
    const failed = run.results.filter((r) => !r.ok).map((r) => r.name);
    const v = eventFile.slice(0, -5);
    expect(failed).toContain(`${v}: event 3: SHA-256 of the record bytes`);
    expect(failed).toContain(`${v}: event 3: passes §8.1`);
  }, 300_000);

  it('fails when a refused case would verify', () => {
    const dir = copyOfVectors();
    const refusedFile = readdirSync(dir).find((f) => /^refused-v\d+\.json$/.test(f))!;
    const merkleFile = readdirSync(dir).find((f) => /^merkle-v\d+\.json$/.test(f))!;
    const file = join(dir, refusedFile);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      cases: { name: string; section: string; document?: Record<string, unknown> }[];
    };
    const merkle = JSON.parse(readFileSync(join(dir, merkleFile), 'utf8')) as {
      inclusionProof: Record<string, unknown>;
    };
    const renamed = doc.cases.find((c) => c.name === 'inclusion proof with record renamed recore')!;
    renamed.document = merkle.inclusionProof; // the valid proof in place of the refused one
    writeFileSync(file, JSON.stringify(doc));
    const run = runVectors(dir, '--no-flips');
    expect(run.status).toBe(1);
    const failed = run.results.filter((r) => !r.ok);
    expect(failed.map((r) => r.name)).toEqual([
      `${refusedFile.slice(0, -5)}: ${renamed.name} (${renamed.section})`,
    ]);
    expect(failed[0]!.detail).toContain('verified, but must be refused');
  }, 300_000);

  it('writes RFC 8785 as ECMAScript does, on random doubles and objects', () => {
    // ECMAScript's Number::toString and JSON.stringify of sorted keys are the reference of
    // RFC 8785 (§2); the Python serialiser must agree byte for byte.
    const values: unknown[] = [];
    const bytes = randomBytes(8 * 20_000);
    for (let i = 0; i < 20_000; i++) {
      const x = bytes.readDoubleLE(8 * i);
      if (Number.isFinite(x)) values.push(x);
    }
    const text = (n: number): string =>
      String.fromCodePoint(
        ...Array.from({ length: n }, (_, i) => {
          const r = bytes.readUInt32LE((4 * i) % (bytes.length - 4));
          const cp = [r % 0x80, r % 0x800, 0xe000 + (r % 0x2000), 0x10000 + (r % 0x100000)][r % 4]!;
          return cp >= 0xd800 && cp <= 0xdfff ? 0x41 : cp;
        }),
      );
    for (let i = 0; i < 2_000; i++) {
      values.push({
        [text(i % 5)]: i / 7,
        [text((i + 1) % 6)]: [text(3), -i * 1e-9, null, true],
        z: { [text(2)]: 1e21 * i },
      });
    }
    const canon = (v: unknown): string =>
      v === null || typeof v !== 'object'
        ? JSON.stringify(v)
        : Array.isArray(v)
          ? `[${v.map(canon).join(',')}]`
          : `{${Object.keys(v)
              .sort()
              .map((k) => `${JSON.stringify(k)}:${canon((v as Record<string, unknown>)[k])}`)
              .join(',')}}`;
    const run = spawnSync(python, [verifier, 'canonical'], {
      input: values.map((v) => JSON.stringify(v)).join('\n') + '\n',
      encoding: 'utf8',
      env,
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(run.status, run.stderr).toBe(0);
    const got = run.stdout.split('\n').slice(0, -1);
    const want = values.map(canon);
    const differ = want.flatMap((w, i) => (got[i] === w ? [] : [`${w} != ${got[i]}`]));
    expect(differ.slice(0, 5)).toEqual([]);
    expect(got).toHaveLength(want.length);
  }, 300_000);

  it('passes its own tests of hostile and edge inputs', () => {
    const run = spawnSync(python, ['-m', 'unittest', 'discover', '-s', dirname(verifier)], {
      encoding: 'utf8',
      env,
      timeout: 300_000,
    });
    expect(run.error).toBeUndefined();
    expect(run.stderr).toMatch(/\nOK\s*$/);
    expect(run.status, run.stderr).toBe(0);
  }, 300_000);
});

// A live log: `vigil start` on embedded defaults, events sealed by the Python verifier itself (an
// independent producer) and posted unchained, then everything the server holds checked through
// its API with the pinned key alone: checkpoints, consistency proofs, every event's inclusion
// proof and record, the chains, a correction, a subject bundle, an erasure receipt and the copies
// a directory witness kept.
describe('Python verifier against a running vigil start', () => {
  const cli = join(root, 'packages', 'app', 'dist', 'cli', 'main.js');
  let server: ChildProcess | undefined;
  let url = '';
  let creds: { ingestKey: string; queryKey: string; adminKey: string };
  let pinned = '';
  let witnessDir = '';

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vigil-pyverify-live-'));
    temps.push(dataDir);
    witnessDir = join(dataDir, 'witness');
    const child = spawn(
      process.execPath,
      [
        cli,
        'start',
        '--data-dir',
        dataDir,
        '--port',
        '0',
        '--checkpoint-interval-seconds',
        '1',
        '--witness-dir',
        witnessDir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server = child;
    let output = '';
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`vigil start did not listen:\n${output}`)),
        90_000,
      );
      const onData = (chunk: Buffer): void => {
        output += chunk.toString('utf8');
        const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (code) => reject(new Error(`vigil start exited (${code}):\n${output}`)));
    });
    creds = JSON.parse(
      readFileSync(join(dataDir, 'bootstrap-credentials.json'), 'utf8'),
    ) as typeof creds;
    // Pinned at setup, as an operator copies it once; everything after trusts only this key.
    const keys = (await (await fetch(`${url}/v1/keys/checkpoint`)).json()) as {
      keys: { publicKey: string }[];
    };
    pinned = keys.keys[0]!.publicKey;
  }, 300_000);

  afterAll(async () => {
    if (server?.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
  }, 60_000);

  function live(key: string, ...extra: string[]): { status: number | null; report: LiveReport } {
    const run = spawnSync(
      python,
      [
        verifier,
        'live',
        url,
        // One form: a base64url key starts with '-' one time in 64, which argparse would take
        // for an option if it stood on its own.
        `--key=${key}`,
        '--query-key',
        creds.queryKey,
        '--json',
        ...versionArgs,
        ...extra,
      ],
      { encoding: 'utf8', env, timeout: 120_000 },
    );
    if (run.error || !run.stdout.trim()) {
      throw new Error(`the Python verifier did not run: ${run.error?.message ?? run.stderr}`);
    }
    return { status: run.status, report: JSON.parse(run.stdout) as LiveReport };
  }
  interface LiveReport {
    ok: boolean;
    failures: string[];
    information: string[];
  }
  const privacy = ['--subject', 'u-1042', '--email', 'zoe@example.eu'];

  // The Python verifier as a producer: seals the inputs as one new stream (§4).
  function seal(stream: string, inputs: unknown[]): unknown[] {
    const run = spawnSync(python, [verifier, 'seal', '--stream', stream, ...versionArgs], {
      input: inputs.map((i) => JSON.stringify(i)).join('\n') + '\n',
      encoding: 'utf8',
      env,
    });
    expect(run.status, run.stderr).toBe(0);
    return run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
  }

  // Proofs exist once a checkpoint covers an event (one a second here): the verifier waits for
  // those not covered yet, including the audit events its own admin reads add.
  function liveWhenCovered(...extra: string[]): LiveReport {
    const { status, report } = live(pinned, '--wait', '60', ...extra);
    expect(report.failures).toEqual([]);
    expect(report.information.some((i) => / 0 not covered by a checkpoint/.test(i))).toBe(true);
    expect(status).toBe(0);
    return report;
  }

  async function storedEvents(stream: string, count: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const res = await fetch(`${url}/v1/events?stream=${encodeURIComponent(stream)}`, {
        headers: { authorization: `Bearer ${creds.queryKey}` },
      });
      const page = (await res.json()) as { events?: unknown[] };
      if ((page.events?.length ?? 0) >= count) return;
      if (Date.now() > deadline) throw new Error(`stream ${stream} has not ${count} stored events`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  it('verifies Python-sealed and unchained events, a correction, a bundle and an erasure', async () => {
    const inputs = [
      {
        action: 'stream.opened',
        category: 'system',
        outcome: 'success',
        actor: { type: 'service', id: 'py' },
      },
      {
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'u-1042', name: 'Zoë Müller', email: 'Zoe@Example.eu' },
        context: { ip: '203.0.113.7', userAgent: 'Mozilla/5.0', requestId: 'req-1' },
        metadata: { phone: '+33 6 12 34 56 78', big: 1e21, note: '€ 𝄞 \u0007' },
        personal: ['/metadata/phone'],
      },
      {
        action: 'role.granted',
        category: 'access_change',
        outcome: 'success',
        actor: { type: 'user', id: 'u-1' },
        access: { change: 'grant', subject: { type: 'user', id: 'u-1042' }, role: 'admin' },
      },
    ];
    const events: unknown[] = seal(`py-verifier/host/${randomUUID()}`, inputs);
    events.push({
      action: 'user.logout',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: 'u-1042' },
    });
    // A stream with a hole (its seq 1 never sent) and a record that is not its own RFC 8785
    // form: the consumer stores both, flagged, each with its integrity event (§6.2), and the
    // verifier reports them as recorded at ingest, not as failures.
    const opened = {
      action: 'stream.opened',
      category: 'system',
      outcome: 'success',
      actor: { type: 'service', id: 'py' },
    };
    const gapStream = seal(`py-verifier/gap/${randomUUID()}`, [opened, opened, opened]);
    events.push(gapStream[0]);
    // A stream in which u-9 acts: restricted later, whose events search hides (GDPR Art. 18).
    const u9 = {
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: 'u-9' },
    };
    events.push(...seal(`py-verifier/u9/${randomUUID()}`, [opened, u9, opened]));
    const odd = seal(`py-verifier/odd/${randomUUID()}`, [opened])[0] as {
      record: string;
      hash: string;
    };
    odd.record = odd.record.replace('{"action"', '{ "action"');
    odd.hash = createHash('sha256').update(odd.record, 'utf8').digest('hex');
    events.push(odd);
    const posted = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${creds.ingestKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(posted.status, await posted.clone().text()).toBe(202);
    // From protocol v2 on, sealed events also travel in the sealed framing (§9): a stream sealed
    // and framed here, its record bytes unescaped in the body.
    if (Number(versionArgs[1]) >= 2) {
      const kim = {
        action: 'user.login',
        category: 'authentication',
        outcome: 'failure',
        actor: { type: 'user', id: 'u-7', email: 'kim@example.eu' },
        context: { ip: '2001:db8::1%eth0', userAgent: 'curl/8' },
      };
      const framed = spawnSync(
        python,
        [
          verifier,
          'seal',
          '--framed',
          '--stream',
          `py-verifier/framed/${randomUUID()}`,
          ...versionArgs,
        ],
        {
          input: [opened, kim].map((i) => JSON.stringify(i)).join('\n') + '\n',
          encoding: 'utf8',
          env,
        },
      );
      expect(framed.status, framed.stderr).toBe(0);
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${creds.ingestKey}`,
          'content-type': 'application/vnd.vigil.sealed.v2',
        },
        body: framed.stdout,
      });
      expect(res.status, await res.clone().text()).toBe(202);
    }
    // A later batch: within one batch the collector itself refuses a hole (§8.2).
    const late = await fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${creds.ingestKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: [gapStream[2]] }),
    });
    expect(late.status, await late.clone().text()).toBe(202);

    // 202 means durable in the log; the sink stores a moment later.
    await storedEvents(JSON.parse((gapStream[2] as { record: string }).record).stream as string, 2);
    await storedEvents(JSON.parse(odd.record).stream as string, 1);
    const before = liveWhenCovered('--admin-key', creds.adminKey, ...privacy);
    expect(before.information).toContain('the bundle of u-1042 verifies (3 events)');
    const recorded = before.information.filter((i) => i.includes('recorded at ingest'));
    expect(recorded).toHaveLength(2);
    expect(recorded.join('\n')).toMatch(
      /gap: seq 1 is missing .*flag gap and integrity\.chain_gap/,
    );
    expect(recorded.join('\n')).toMatch(
      /RFC 8785 .*flag noncanonical and integrity\.noncanonical_record/,
    );

    const login = JSON.parse((events[1] as { record: string }).record) as { id: string };
    const corrected = await fetch(`${url}/v1/admin/events/${login.id}/corrections`, {
      method: 'POST',
      headers: { authorization: `Bearer ${creds.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        fields: { '/actor/email': 'zoe.m@example.eu', '/outcome': 'failure' },
        reason: 'typo',
      }),
    });
    expect(corrected.status, await corrected.clone().text()).toBe(201);
    // The correction of the subject's event is in their bundle, as an entry with role correction.
    const mid = liveWhenCovered('--admin-key', creds.adminKey, ...privacy);
    expect(mid.information).toContain('the bundle of u-1042 verifies (4 events)');
    expect(mid.information).toContain('1 corrections checked against the corrected views');

    const erased = await fetch(`${url}/v1/admin/subjects/erase`, {
      method: 'POST',
      headers: { authorization: `Bearer ${creds.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        subject: 'u-1042',
        emails: ['zoe@example.eu'],
        reason: 'Art. 17 request',
      }),
    });
    expect(erased.status, await erased.clone().text()).toBe(200);

    const after = liveWhenCovered('--admin-key', creds.adminKey);
    expect(after.information).toContain('1 corrections checked against the corrected views');
    expect(after.information).toContain('1 erasure receipts checked');
    expect(after.information.some((i) => /^[1-9]\d* consistency proofs/.test(i))).toBe(true);

    // Restricting u-9 hides their event from search: through the query key alone the stream
    // shows a hole, which the verifier reports and explains; with the admin key it is whole.
    const restricted = await fetch(`${url}/v1/admin/subjects/restrict`, {
      method: 'POST',
      headers: { authorization: `Bearer ${creds.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subject: 'u-9', reason: 'accuracy contested' }),
    });
    expect(restricted.status, await restricted.clone().text()).toBe(201);
    const hidden = live(pinned);
    expect(hidden.status).toBe(1);
    expect(hidden.report.failures).toEqual([
      expect.stringMatching(
        /^py-verifier\/u9\/.* seq 2: gap: seq 1 is missing \(without --admin-key, a restricted/,
      ),
    ]);
    liveWhenCovered('--admin-key', creds.adminKey);

    // The directory witness kept every checkpoint: each verifies, and the trees agree.
    const witness = spawnSync(
      python,
      [verifier, 'witness', witnessDir, `--key=${pinned}`, ...versionArgs],
      {
        encoding: 'utf8',
        env,
      },
    );
    expect(witness.stdout).toMatch(/^[1-9]\d* checkpoints read\nverified\n$/);
    expect(witness.status).toBe(0);
  }, 300_000);

  it('fails every checkpoint against a key that is not the pinned one', () => {
    const { status, report } = live(randomBytes(32).toString('base64url'));
    expect(status).toBe(1);
    expect(report.failures.length).toBeGreaterThan(0);
    expect(report.failures.every((f) => f.includes('not among the trusted keys'))).toBe(true);
  }, 300_000);
});
