import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSignedCheckpoint, verifyCheckpoint } from '@vigil/protocol';
import { generateKeyPairSync } from 'node:crypto';
import { MemorySigner } from './signer.js';
import {
  DirectoryWitness,
  WebhookWitness,
  WitnessDispatcher,
  WitnessQueue,
  type CheckpointWitness,
  type WitnessedCheckpoint,
  type WitnessObserver,
} from './witness.js';

const { privateKey } = generateKeyPairSync('ed25519');
const signer = new MemorySigner(privateKey);

function checkpoint(
  size: number,
  time = `2026-11-23T10:00:0${size % 10}.000Z`,
): WitnessedCheckpoint {
  const signed = createSignedCheckpoint(
    {
      v: 1,
      tenant: 'acme',
      time,
      keyId: signer.keyId,
      partitions: [{ partition: 0, size, root: size.toString(16).padStart(64, '0') }],
    },
    privateKey,
  );
  return {
    type: 'vigil.checkpoint',
    ...signed,
    tenant: 'acme',
    time,
    keyId: signer.keyId,
    publicKey: signer.publicKey().toString('base64url'),
  };
}

class Counting implements WitnessObserver {
  delivered_ = 0;
  failed_ = 0;
  dropped_ = 0;
  delivered(): void {
    this.delivered_++;
  }
  failed(): void {
    this.failed_++;
  }
  dropped(): void {
    this.dropped_++;
  }
  depth(): void {}
}

describe('directory witness', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-witness-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes one file per checkpoint, in time order, that verifies on its own', async () => {
    const w = new DirectoryWitness(dir);
    for (const n of [1, 2, 3]) await w.submit(checkpoint(n));
    const files = readdirSync(join(dir, 'acme'));
    expect(files).toHaveLength(3);
    expect([...files].sort()).toEqual(files.sort());
    const doc = JSON.parse(
      readFileSync(join(dir, 'acme', files[0]!), 'utf8'),
    ) as WitnessedCheckpoint;
    expect(doc.type).toBe('vigil.checkpoint');
    expect(verifyCheckpoint(doc, [doc.publicKey]).ok).toBe(true);
  });

  it('is append-only: takes the same checkpoint again, never overwrites another', async () => {
    const w = new DirectoryWitness(dir);
    const c = checkpoint(4);
    await w.submit(c);
    await w.submit(c);
    const path = w.pathOf(c);
    writeFileSync(path, '{"forged":true}\n');
    await expect(w.submit(c)).rejects.toThrow(/never overwrites/);
    expect(readFileSync(path, 'utf8')).toBe('{"forged":true}\n');
  });

  it('reports a directory it cannot write, and its queue delivers once it can', async () => {
    const w = new DirectoryWitness(dir);
    // A file where the tenant's directory belongs: even root cannot write there.
    writeFileSync(join(dir, 'acme'), 'in the way');
    const observer = new Counting();
    const q = new WitnessQueue(w, { baseDelayMs: 20, maxDelayMs: 40, observer });
    q.enqueue(checkpoint(5));
    await new Promise((r) => setTimeout(r, 120));
    expect(observer.failed_).toBeGreaterThan(1);
    expect(observer.delivered_).toBe(0);
    rmSync(join(dir, 'acme'));
    expect(await q.drain(2000)).toBe(true);
    expect(observer.delivered_).toBe(1);
    q.stop();
  });
});

describe('webhook witness', () => {
  let server: Server;
  let url: string;
  let answers: number[];
  let received: { body: string; auth: string | undefined }[];

  beforeEach(async () => {
    answers = [];
    received = [];
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ body, auth: req.headers.authorization });
        res.statusCode = answers.shift() ?? 200;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/witness`;
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
  });

  it('retries with backoff until the webhook takes the checkpoint, in order', async () => {
    answers = [500, 503];
    const observer = new Counting();
    const q = new WitnessQueue(new WebhookWitness({ url, token: 't0k' }), {
      baseDelayMs: 20,
      maxDelayMs: 100,
      observer,
    });
    const started = Date.now();
    q.enqueue(checkpoint(1));
    q.enqueue(checkpoint(2));
    expect(await q.drain(5000)).toBe(true);
    // Two failures waited 20 + 40 ms before the third attempt of the first checkpoint.
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    expect(observer).toMatchObject({ failed_: 2, delivered_: 2, dropped_: 0 });
    expect(received).toHaveLength(4);
    expect(received.every((r) => r.auth === 'Bearer t0k')).toBe(true);
    const bodies = received.map((r) => JSON.parse(r.body) as WitnessedCheckpoint);
    expect(bodies.map((b) => b.id)).toEqual([
      checkpoint(1).id,
      checkpoint(1).id,
      checkpoint(1).id,
      checkpoint(2).id,
    ]);
    expect(verifyCheckpoint(bodies[3]!, [bodies[3]!.publicKey]).ok).toBe(true);
    q.stop();
  });

  it('keeps its queue bounded while the webhook is down, dropping the oldest waiting', async () => {
    answers = Array.from({ length: 1000 }, () => 500);
    const observer = new Counting();
    const q = new WitnessQueue(new WebhookWitness({ url }), {
      capacity: 3,
      baseDelayMs: 5,
      maxDelayMs: 10,
      observer,
    });
    for (let n = 1; n <= 6; n++) q.enqueue(checkpoint(n));
    expect(q.size).toBe(3);
    expect(observer.dropped_).toBe(3);
    answers = [];
    expect(await q.drain(5000)).toBe(true);
    const ids = received.map((r) => (JSON.parse(r.body) as WitnessedCheckpoint).id);
    // The head (1) was being delivered; 2, 3 and 4 were dropped, 5 and 6 kept.
    expect([...new Set(ids)]).toEqual([1, 5, 6].map((n) => checkpoint(n).id));
    q.stop();
  });

  it('never blocks the caller, and one failing witness does not hold up another', async () => {
    const stuck: CheckpointWitness = {
      name: 'stuck',
      submit: () => new Promise(() => undefined),
    };
    const d = new WitnessDispatcher([stuck, new WebhookWitness({ url })], { baseDelayMs: 5 });
    d.submit(checkpoint(7));
    expect(await d.queues[1]!.drain(2000)).toBe(true);
    expect(received).toHaveLength(1);
    await d.close(50);
  });
});
