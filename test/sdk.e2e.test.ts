import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZERO_HASH } from '@vigil/protocol';
import { createAuditClient } from '@vigil/sdk';
import { startVigil, tempDataDir, waitFor, type VigilProcess } from './helpers/vigil.js';

/**
 * The SDK against a real `vigil start` process: outages, crashes of the application and of the
 * collector, and a refused event. Each test checks what a user would: every event arrives once,
 * in order, on one unbroken chain.
 */

interface StoredEvent {
  id: string;
  seq: number;
  prev: string;
  hash: string;
  action: string;
  flags: string[];
  metadata?: Record<string, unknown>;
  stream: string;
}

/** A search item (PROTOCOL.md §20): the event apart from the server's fields. */
interface Item {
  hash: string;
  event: Omit<StoredEvent, 'hash' | 'flags'>;
  server: { flags: string[] };
}

/** The event with the hash and flags the checks below read beside it. */
const storedOf = (item: Item): StoredEvent => ({
  ...item.event,
  hash: item.hash,
  flags: item.server.flags,
});

async function streamEvents(v: VigilProcess, key: string, stream: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let cursor: string | undefined;
  do {
    const q = new URLSearchParams({
      stream,
      limit: '1000',
      order: 'asc',
      ...(cursor ? { cursor } : {}),
    });
    const res = await fetch(`${v.url}/v1/events?${q.toString()}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const body = (await res.json()) as { events: Item[]; nextCursor?: string };
    out.push(...body.events.map(storedOf));
    cursor = body.nextCursor;
  } while (cursor);
  return out.sort((a, b) => a.seq - b.seq);
}

/** The chain of a stream is whole: seq 0..n-1, each prev the hash of the one before. */
function expectIntactChain(events: StoredEvent[]): void {
  events.forEach((e, i) => {
    expect(e.seq, `seq at position ${i}`).toBe(i);
    expect(e.prev, `prev of seq ${i}`).toBe(i === 0 ? ZERO_HASH : events[i - 1]!.hash);
    expect(e.flags, `flags of seq ${i}`).toEqual([]);
  });
  expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
}

function ns(events: StoredEvent[]): number[] {
  return events.filter((e) => e.action === 'document.viewed').map((e) => Number(e.metadata?.['n']));
}

describe('SDK with a real collector', () => {
  const data = tempDataDir('sdk');
  let vigil: VigilProcess;
  let ingestKey = '';
  let queryKey = '';

  beforeAll(async () => {
    vigil = await startVigil({ dataDir: data.dir });
    ({ ingestKey, queryKey } = vigil.credentials());
  });
  afterAll(async () => {
    await vigil?.stop();
    data.remove();
  });

  it('delivers every event once and in order while the collector is down for 30 s and restarts', async () => {
    const audit = createAuditClient({
      endpoint: vigil.url,
      apiKey: ingestKey,
      service: 'outage-test',
      batch: { maxEvents: 50, maxDelayMs: 20 },
      retry: { initialDelayMs: 100, maxDelayMs: 1000 },
      logger: false,
    });
    let n = 0;
    const recordSome = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        await audit.record({
          action: 'document.viewed',
          category: 'data_access',
          outcome: 'success',
          actor: { type: 'user', id: `u-${n % 7}` },
          target: { type: 'document', id: `doc-${n}` },
          metadata: { n: n++ },
        });
      }
    };
    await recordSome(100);
    expect(await audit.flush({ deadlineMs: 10_000 })).toBe(true);
    const port = vigil.port;
    await vigil.stop();
    // The application keeps recording through a 30 s outage.
    const outageEnds = Date.now() + 30_000;
    while (Date.now() < outageEnds) {
      await recordSome(20);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(audit.stats().sent).toBeLessThan(n + 1);
    vigil = await startVigil({ dataDir: data.dir, port });
    await recordSome(50);
    expect(await audit.flush({ deadlineMs: 30_000 })).toBe(true);
    const total = n;
    const events = await waitFor(
      () => streamEvents(vigil, queryKey, audit.stream),
      (e) => e.length >= total + 1,
      30_000,
      `all ${total} events of the stream`,
    );
    expect(events[0]?.action).toBe('stream.opened');
    expect(ns(events)).toEqual(Array.from({ length: total }, (_, i) => i));
    expectIntactChain(events);
    await audit.close({ deadlineMs: 5000 });
  }, 120_000);

  it('delivers, after a restart, every event whose record() resolved before a kill -9 of the app', async () => {
    const spoolDir = join(data.dir, 'app-spool');
    const child = spawn(
      process.execPath,
      [
        resolve(import.meta.dirname, '../packages/sdk/scripts/record-child.mjs'),
        JSON.stringify({
          endpoint: vigil.url,
          apiKey: ingestKey,
          service: 'crash-test',
          spoolDir,
          count: 100_000,
          fsync: 'always',
          batchEvents: 50,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(
      () => Promise.resolve(out),
      (o) => (o.match(/^ok /gm) ?? []).length >= 2000,
      30_000,
      '2000 recorded events',
    );
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const stream = /^stream (\S+)$/m.exec(out)?.[1] as string;
    const promised = [...out.matchAll(/^ok (\d+)$/gm)].map((m) => Number(m[1]));
    // The restarted application delivers what the dead one spooled (and records nothing new).
    const again = spawn(
      process.execPath,
      [
        resolve(import.meta.dirname, '../packages/sdk/scripts/record-child.mjs'),
        JSON.stringify({
          endpoint: vigil.url,
          apiKey: ingestKey,
          service: 'crash-test',
          spoolDir,
          count: 0,
          close: true,
          closeMs: 20_000,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let againOut = '';
    again.stdout.on('data', (c: Buffer) => (againOut += c.toString()));
    await new Promise((r) => again.once('exit', r));
    expect(againOut).toContain(`stream ${stream}`);
    // The restarted application closed its stream once every event was accepted (202); the
    // sink stores them in its own time, the closing event last.
    const events = await waitFor(
      () => streamEvents(vigil, queryKey, stream),
      (e) => ns(e).length >= promised.length && e.at(-1)?.action === 'stream.closed',
      30_000,
      'every promised event, then the closing one',
    );
    const delivered = new Set(ns(events));
    expect(promised.filter((n) => !delivered.has(n))).toEqual([]);
    expect(ns(events)).toEqual([...ns(events)].sort((a, b) => a - b));
    // The stream continued after the crash; it closed cleanly at the end.
    const body = events.filter((e) => e.action !== 'stream.closed');
    expectIntactChain(body);
    expect(events.at(-1)?.action).toBe('stream.closed');
  }, 120_000);

  it('dead-letters the one event the collector refuses, stores the rest and records the gap', async () => {
    const spoolDir = join(data.dir, 'dl-spool');
    const audit = createAuditClient({
      endpoint: vigil.url,
      apiKey: ingestKey,
      service: 'dead-letter-test',
      spool: { dir: spoolDir },
      batch: { maxEvents: 10, maxDelayMs: 1000 },
      logger: false,
    });
    const errors: string[] = [];
    audit.on('error', (e: { code: string }) => errors.push(e.code));
    for (let i = 0; i < 5; i++) {
      // The collector refuses events timed more than its clock-skew bound (5 min) ahead.
      const time = i === 2 ? new Date(Date.now() + 3_600_000).toISOString() : undefined;
      await audit.record({
        action: 'document.viewed',
        category: 'data_access',
        outcome: 'success',
        actor: { type: 'service', id: 'batch-job' },
        target: { type: 'document', id: `doc-${i}` },
        metadata: { n: i },
        ...(time ? { time } : {}),
      });
    }
    expect(await audit.flush({ deadlineMs: 10_000 })).toBe(true);
    await audit.close({ deadlineMs: 5000 });
    expect(errors).toContain('VIGIL_ERR_SDK_DEAD_LETTERED');
    const deadLetters = readFileSync(join(spoolDir, 'dead-letter.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { details: { path: string }[]; event: { record: string } });
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]!.details[0]!.path).toBe('/record/time');
    expect(JSON.parse(deadLetters[0]!.event.record)).toMatchObject({ metadata: { n: 2 } });
    const events = await waitFor(
      () => streamEvents(vigil, queryKey, audit.stream),
      (e) => e.some((x) => x.action === 'stream.closed'),
      20_000,
      'the closed stream',
    );
    expect(ns(events)).toEqual([0, 1, 3, 4]);
    const gapAt = events.find((e) => Number(e.metadata?.['n']) === 3);
    expect(gapAt?.flags).toEqual(['gap']);
    const alerts = await waitFor(
      async () => {
        const res = await fetch(`${vigil.url}/v1/events?action=integrity.chain_gap&limit=100`, {
          headers: { authorization: `Bearer ${queryKey}` },
        });
        return (
          (await res.json()) as { events: { event: { metadata: { eventId: string } } }[] }
        ).events.map((i) => i.event);
      },
      (a) => a.some((x) => x.metadata.eventId === gapAt?.id),
      10_000,
      'the integrity.chain_gap event',
    );
    expect(alerts.length).toBeGreaterThan(0);
  }, 60_000);
});
