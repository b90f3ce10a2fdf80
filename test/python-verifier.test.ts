// The independent Python verifier (verifiers/python, written from PROTOCOL.md alone) must
// reproduce every vector file the protocol package ships, and refuse every refused case for its
// stated reason. It needs Debian's python3 and python3-cryptography (.ci/run installs both):
// without them this test fails, it never skips.
import { spawnSync } from 'node:child_process';
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
import { afterAll, describe, expect, it } from 'vitest';

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
    timeout: 120_000,
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
    const refused = JSON.parse(readFileSync(join(vectorsDir, 'refused-v1.json'), 'utf8')) as {
      cases: unknown[];
    };
    expect(run.results.filter((r) => r.name.startsWith('refused-v1: ')).length).toBe(
      refused.cases.length + 1,
    );
  }, 120_000);

  it('fails when a vector is changed', () => {
    const dir = copyOfVectors();
    const file = join(dir, 'v1.json');
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
    expect(failed).toContain('v1: event 3: SHA-256 of the record bytes');
    expect(failed).toContain('v1: event 3: passes §8.1');
  }, 120_000);

  it('fails when a refused case would verify', () => {
    const dir = copyOfVectors();
    const file = join(dir, 'refused-v1.json');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as {
      cases: { name: string; document?: Record<string, unknown> }[];
    };
    const merkle = JSON.parse(readFileSync(join(dir, 'merkle-v1.json'), 'utf8')) as {
      inclusionProof: Record<string, unknown>;
    };
    const renamed = doc.cases.find((c) => c.name === 'inclusion proof with record renamed recore')!;
    renamed.document = merkle.inclusionProof; // the valid proof in place of the refused one
    writeFileSync(file, JSON.stringify(doc));
    const run = runVectors(dir, '--no-flips');
    expect(run.status).toBe(1);
    const failed = run.results.filter((r) => !r.ok);
    expect(failed.map((r) => r.name)).toEqual([
      'refused-v1: inclusion proof with record renamed recore (§15.1)',
    ]);
    expect(failed[0]!.detail).toContain('verified, but must be refused');
  }, 120_000);

  it('passes its own tests of hostile and edge inputs', () => {
    const run = spawnSync(python, ['-m', 'unittest', 'discover', '-s', dirname(verifier)], {
      encoding: 'utf8',
      env,
      timeout: 120_000,
    });
    expect(run.error).toBeUndefined();
    expect(run.stderr).toMatch(/\nOK\s*$/);
    expect(run.status, run.stderr).toBe(0);
  }, 120_000);
});
