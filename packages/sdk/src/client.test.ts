import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidEventError, STREAM_CLOSED, STREAM_OPENED, type EventInput } from '@vigil/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuditClient, type AuditClient } from './client.js';
import type { AuditClientOptions } from './options.js';
import { SEALED_CONTENT_TYPE } from './deliver/framing.js';
import { ClientClosedError, QueueFullError, SdkErrorCodes, type SdkError } from './errors.js';
import {
  chainProblems,
  FakeCollector,
  hashIndex,
  quietLogger,
} from './testing/fake-collector.testkit.js';

function event(n: number, extra: Partial<EventInput> = {}): EventInput {
  return {
    action: 'document.viewed',
    category: 'data_access',
    outcome: 'success',
    actor: { type: 'user', id: `u-${n % 17}`, email: `user${n % 17}@example.eu` },
    target: { type: 'document', id: `doc-${n}` },
    context: { ip: '203.0.113.7', userAgent: 'test-agent/1.0', requestId: `req-${n}` },
    metadata: { n },
    ...extra,
  };
}

let collector: FakeCollector;
let dirs: string[] = [];
const clients: AuditClient[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vigil-sdk-'));
  dirs.push(dir);
  return dir;
}

function client(options: Partial<AuditClientOptions> = {}): AuditClient {
  const c = createAuditClient({
    endpoint: collector.url,
    apiKey: collector.apiKey,
    service: 'billing-api',
    hostname: 'test-host',
    logger: quietLogger,
    batch: { maxEvents: 50, maxDelayMs: 5 },
    retry: { initialDelayMs: 5, maxDelayMs: 50, refusedDelayMs: 50 },
    ...options,
  });
  clients.push(c);
  return c;
}

function numbers(records: readonly { metadata?: unknown }[]): number[] {
  return records
    .map((r) => (r.metadata as { n?: number } | undefined)?.n)
    .filter((n): n is number => n !== undefined);
}

beforeEach(async () => {
  collector = await FakeCollector.start();
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close({ deadlineMs: 100 });
  await collector.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

/** The lines of the bodies the collector accepted, LF included, in order. */
function acceptedLines(): string[] {
  return collector.requests
    .filter((r) => r.status === 202)
    .flatMap((r) => r.body.toString('utf8').split(/(?<=\n)/));
}

describe('the sealed line framing on the wire (PROTOCOL.md §9)', () => {
  it('sends v2 records unescaped, each with its hash and disclosures, one line per event', async () => {
    const audit = client({ batch: { maxEvents: 10, maxDelayMs: 1 } });
    for (let i = 0; i < 25; i++) void audit.record(event(i));
    expect(await audit.flush({ deadlineMs: 5000 })).toBe(true);
    const sent = collector.requests.filter((r) => r.status === 202);
    expect(sent.length).toBeGreaterThan(1);
    for (const request of sent) {
      expect(request.contentType).toBe(SEALED_CONTENT_TYPE);
      const lines = request.body.toString('utf8').split('\n');
      expect(lines.pop()).toBe(''); // every line ends with LF
      expect(lines).toHaveLength(request.events);
      for (const line of lines) {
        const [record = '', hash, disclosures, ...rest] = line.split('\t');
        expect(rest).toEqual([]);
        // The record is the hashed bytes themselves, not a JSON string holding them.
        expect(createHash('sha256').update(record, 'utf8').digest('hex')).toBe(hash);
        const parsed = JSON.parse(record) as { v: number; personal?: string[] };
        expect(parsed.v).toBe(2);
        if (parsed.personal === undefined) expect(disclosures).toBe('');
        else expect(Object.keys(JSON.parse(disclosures ?? '') as object)).toEqual(parsed.personal);
      }
    }
    expect(numbers(collector.streamRecords(audit.stream))).toHaveLength(25);
  });

  it('spools the very bytes it later sends', async () => {
    const dir = tempDir();
    let down = true;
    collector.intercept = () => (down ? { status: 503, body: {} } : undefined);
    const audit = client({ spool: { dir, fsync: 'always' } });
    for (let i = 0; i < 20; i++) await audit.record(event(i));
    const spooled = readdirSync(dir)
      .filter((name) => name.startsWith('seg-'))
      .sort()
      .flatMap((name) =>
        readFileSync(join(dir, name), 'utf8')
          .split(/(?<=\n)/)
          .slice(1),
      )
      .map((line) => line.slice(line.indexOf('\t') + 1));
    expect(spooled).toHaveLength(21); // stream.opened and the 20 events
    down = false;
    expect(await audit.flush({ deadlineMs: 5000 })).toBe(true);
    expect(acceptedLines().slice(0, 21)).toEqual(spooled);
  });
});

describe('delivery', () => {
  it('delivers every event once, in order, with the chain intact across batches', async () => {
    const audit = client({ batch: { maxEvents: 7, maxDelayMs: 1 } });
    for (let i = 0; i < 100; i++) void audit.record(event(i));
    expect(await audit.flush({ deadlineMs: 5000 })).toBe(true);
    const closed = await audit.close();
    expect(closed).toEqual({ delivered: true, pending: 0 });
    const records = collector.streamRecords(audit.stream);
    expect(records[0]?.action).toBe(STREAM_OPENED);
    expect(records[0]?.seq).toBe(0);
    expect(records[0]?.actor).toEqual({ type: 'service', id: 'billing-api' });
    expect(records.at(-1)?.action).toBe(STREAM_CLOSED);
    expect(numbers(records)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(chainProblems(records, hashIndex(collector))).toEqual([]);
    expect(collector.protocolViolations).toEqual([]);
    expect(Math.max(...collector.requests.map((r) => r.events))).toBeLessThanOrEqual(7);
    expect(audit.stream).toMatch(/^billing-api\/test-host\/[0-9a-f-]{36}$/);
    const stats = audit.stats();
    expect(stats.sent).toBe(102);
    expect(stats.recorded).toBe(102);
    expect(stats.queued).toBe(0);
  });

  it('gives each client its own stream', () => {
    const a = client();
    const b = client();
    expect(a.stream).not.toBe(b.stream);
  });

  it('sends gzip bodies when asked', async () => {
    const audit = client({ gzip: true });
    for (let i = 0; i < 20; i++) void audit.record(event(i));
    expect(await audit.flush()).toBe(true);
    expect(collector.requests.length).toBeGreaterThan(0);
    expect(collector.requests.every((r) => r.gzip && r.status === 202)).toBe(true);
    expect(numbers(collector.streamRecords(audit.stream))).toHaveLength(20);
  });

  it('waits at least Retry-After after a 503, then delivers', async () => {
    let refusedAt = 0;
    let acceptedAt = 0;
    collector.intercept = () => {
      if (refusedAt === 0) {
        refusedAt = Date.now();
        return {
          status: 503,
          headers: { 'retry-after': '1' },
          body: { error: { code: 'VIGIL_ERR_OVERLOADED', message: 'busy' } },
        };
      }
      acceptedAt ||= Date.now();
      return undefined;
    };
    const audit = client();
    const retries: number[] = [];
    audit.on('retry', (info) => retries.push(info.delayMs));
    void audit.record(event(1));
    expect(await audit.flush({ deadlineMs: 5000 })).toBe(true);
    expect(acceptedAt - refusedAt).toBeGreaterThanOrEqual(1000);
    expect(retries[0]).toBeGreaterThanOrEqual(1000);
    expect(audit.stats().retried).toBe(1);
    expect(numbers(collector.streamRecords(audit.stream))).toEqual([1]);
  });

  it('dead-letters an event the collector names and resends the rest in contiguous requests', async () => {
    const dir = tempDir();
    collector.intercept = ({ records }) => {
      const bad = records.findIndex(
        (r) => (r.metadata as { poison?: boolean } | undefined)?.poison === true,
      );
      if (bad < 0) return undefined;
      return {
        status: 400,
        body: {
          error: {
            code: 'VIGIL_ERR_INVALID_BATCH',
            message: 'invalid events',
            details: [
              { index: bad, path: '/record/metadata/poison', message: 'is refused by policy' },
            ],
          },
        },
      };
    };
    const audit = client({ spool: { dir }, batch: { maxEvents: 20, maxDelayMs: 5 } });
    const errors: SdkError[] = [];
    audit.on('error', (e) => errors.push(e));
    for (let i = 0; i < 10; i++)
      void audit.record(event(i, i === 4 ? { metadata: { n: i, poison: true } } : {}));
    expect(await audit.flush()).toBe(true);
    const records = collector.streamRecords(audit.stream);
    expect(numbers(records)).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9]);
    // Every accepted request was a contiguous chain piece (the fake collector checks links).
    expect(
      collector.requests.filter((r) => r.status === 202).every((r) => r.spans.length === 1),
    ).toBe(true);
    expect(collector.protocolViolations).toEqual([]);
    const dead = errors.find((e) => e.code === SdkErrorCodes.DEAD_LETTERED);
    expect(dead?.eventIds).toHaveLength(1);
    expect(audit.stats().deadLettered).toBe(1);
    await audit.close();
    const lines = readFileSync(join(dir, 'dead-letter.ndjson'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    const letter = JSON.parse(lines[0] as string) as {
      status: number;
      code: string;
      details: { path: string }[];
      event: { record: string };
      seq: number;
    };
    expect(letter.status).toBe(400);
    expect(letter.code).toBe('VIGIL_ERR_INVALID_BATCH');
    expect(letter.details[0]?.path).toBe('/record/metadata/poison');
    expect(JSON.parse(letter.event.record).metadata).toEqual({ n: 4, poison: true });
  });

  it('counts duplicates when a response was lost and the batch is resent', async () => {
    let lost = false;
    collector.intercept = ({ store }) => {
      if (lost) return undefined;
      lost = true;
      store(); // stored, but the answer never arrives as a 202
      return { status: 503, body: { error: { code: 'VIGIL_ERR_OVERLOADED', message: 'lost' } } };
    };
    const audit = client({ batch: { maxEvents: 100, maxDelayMs: 20 } });
    for (let i = 0; i < 10; i++) void audit.record(event(i));
    expect(await audit.flush()).toBe(true);
    expect(audit.stats().duplicates).toBe(11); // stream.opened + 10
    expect(numbers(collector.streamRecords(audit.stream))).toEqual(
      Array.from({ length: 10 }, (_, i) => i),
    );
  });

  it('halves a batch the collector finds too large', async () => {
    collector.intercept = ({ events }) =>
      events.length > 4
        ? {
            status: 413,
            body: { error: { code: 'VIGIL_ERR_TOO_MANY_EVENTS', message: 'at most 4' } },
          }
        : undefined;
    const audit = client({ batch: { maxEvents: 16, maxDelayMs: 50 } });
    for (let i = 0; i < 15; i++) void audit.record(event(i));
    expect(await audit.flush()).toBe(true);
    expect(numbers(collector.streamRecords(audit.stream))).toEqual(
      Array.from({ length: 15 }, (_, i) => i),
    );
    expect(chainProblems(collector.streamRecords(audit.stream), hashIndex(collector))).toEqual([]);
  });

  it('reports a refused key loudly, keeps the events and delivers once the key works', async () => {
    collector.apiKey = 'rotated';
    const audit = client({ apiKey: 'test-key' });
    const errors: SdkError[] = [];
    audit.on('error', (e) => errors.push(e));
    void audit.record(event(1));
    await collector.waitFor(() => errors.some((e) => e.code === SdkErrorCodes.UNAUTHORIZED));
    expect(collector.stored).toHaveLength(0);
    collector.apiKey = 'test-key';
    expect(await audit.flush()).toBe(true);
    expect(numbers(collector.streamRecords(audit.stream))).toEqual([1]);
  });
});

describe('misuse is a synchronous typed error', () => {
  it('throws InvalidEventError naming the problems, before any promise exists', () => {
    const audit = client();
    const bad = { ...event(1), action: 'Login' } as EventInput;
    expect(() => audit.record(bad)).toThrow(InvalidEventError);
    const noActor = { ...event(1) } as Partial<EventInput>;
    delete noActor.actor;
    try {
      void audit.record(noActor as EventInput);
      expect.unreachable();
    } catch (error) {
      expect((error as InvalidEventError).details).toContainEqual({
        path: '/actor',
        message: 'is required',
      });
    }
  });

  it('refuses reserved actions and NaN', () => {
    const audit = client();
    expect(() => audit.record(event(1, { action: 'stream.opened' }))).toThrow(
      expect.objectContaining({ code: SdkErrorCodes.RESERVED_ACTION }) as Error,
    );
    expect(() => audit.record(event(1, { metadata: { n: Number.NaN } }))).toThrow(
      expect.objectContaining({ code: 'VIGIL_ERR_NOT_CANONICAL' }) as Error,
    );
  });

  it('throws ClientClosedError after close', async () => {
    const audit = client();
    await audit.close();
    expect(() => audit.record(event(1))).toThrow(ClientClosedError);
  });

  it('throws QueueFullError under the throw policy, and records nothing for it', async () => {
    collector.intercept = () => ({ status: 503, body: {} });
    const audit = client({ queue: { maxEvents: 5, onFull: 'throw' } });
    for (let i = 0; i < 4; i++) void audit.record(event(i)); // + stream.opened = 5
    expect(() => audit.record(event(9))).toThrow(QueueFullError);
    expect(audit.stats().recorded).toBe(5);
    collector.intercept = undefined;
    expect(await audit.flush()).toBe(true);
    const records = collector.streamRecords(audit.stream);
    expect(chainProblems(records, hashIndex(collector))).toEqual([]);
  });

  it('rejects bad options with every problem listed', () => {
    expect(() =>
      createAuditClient({ service: 'vigil', endpoint: 'ftp://x', batch: { maxEvents: 0 } }),
    ).toThrow(/\/service.*\/endpoint.*\/apiKey.*\/batch\/maxEvents/);
  });
});

describe('memory queue policies (no spool)', () => {
  it('drop-oldest drops and counts, and the gap shows in the chain', async () => {
    let down = true;
    collector.intercept = () => (down ? { status: 503, body: {} } : undefined);
    const audit = client({
      queue: { maxEvents: 10, onFull: 'drop-oldest' },
      batch: { maxEvents: 5, maxDelayMs: 1 },
    });
    const dropped: number[] = [];
    audit.on('dropped', (d) => dropped.push(d.count));
    for (let i = 0; i < 30; i++) void audit.record(event(i));
    expect(audit.stats().dropped).toBeGreaterThan(0);
    down = false;
    expect(await audit.flush()).toBe(true);
    const records = collector.streamRecords(audit.stream);
    expect(numbers(records).at(-1)).toBe(29);
    // 30 events + stream.opened: each was either delivered or counted as dropped.
    expect(records.length + audit.stats().dropped).toBe(31);
    expect(dropped.reduce((a, b) => a + b, 0)).toBe(audit.stats().dropped);
    // One hole, where the dropped events were.
    expect(chainProblems(records, hashIndex(collector))).toHaveLength(1);
  });

  it('block keeps record() pending until there is room', async () => {
    let down = true;
    collector.intercept = () => (down ? { status: 503, body: {} } : undefined);
    const audit = client({
      queue: { maxEvents: 5, onFull: 'block' },
      batch: { maxEvents: 5, maxDelayMs: 1 },
    });
    const results: number[] = [];
    for (let i = 0; i < 8; i++) void audit.record(event(i)).then(() => results.push(i));
    await new Promise((r) => setTimeout(r, 50));
    expect(results).toEqual([0, 1, 2, 3]);
    expect(audit.stats().blocked).toBe(4);
    down = false;
    expect(await audit.flush()).toBe(true);
    expect(results).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(numbers(collector.streamRecords(audit.stream))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('spool', () => {
  it('resolves record() after the event is on disk, and replays it after a restart', async () => {
    const dir = tempDir();
    collector.intercept = () => ({ status: 503, body: {} });
    const first = client({ spool: { dir } });
    for (let i = 0; i < 25; i++) await first.record(event(i));
    const closed = await first.close({ deadlineMs: 100 });
    expect(closed.delivered).toBe(false);
    expect(closed.pending).toBeGreaterThan(0);
    expect(collector.stored).toHaveLength(0);

    collector.intercept = undefined;
    const second = client({ spool: { dir } });
    expect(second.stream).not.toBe(first.stream); // the first stream was closed cleanly
    void second.record(event(100));
    expect(await second.flush()).toBe(true);
    const old = collector.streamRecords(first.stream);
    expect(old[0]?.action).toBe(STREAM_OPENED);
    expect(old.at(-1)?.action).toBe(STREAM_CLOSED);
    expect(numbers(old)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(chainProblems(old, hashIndex(collector))).toEqual([]);
    expect(numbers(collector.streamRecords(second.stream))).toEqual([100]);
    // The old stream arrived before the new one: one spool, one order.
    expect(collector.streams()).toEqual([first.stream, second.stream]);
  });

  it('continues the same stream after a crash', async () => {
    const dir = tempDir();
    collector.intercept = () => ({ status: 503, body: {} });
    const first = client({ spool: { dir, fsync: 'none' } });
    for (let i = 0; i < 10; i++) await first.record(event(i));
    first.abandonForTesting(); // as if the process had died here

    collector.intercept = undefined;
    const second = client({ spool: { dir } });
    expect(second.stream).toBe(first.stream);
    for (let i = 10; i < 15; i++) void second.record(event(i));
    expect(await second.flush()).toBe(true);
    const records = collector.streamRecords(first.stream);
    expect(records.filter((r) => r.action === STREAM_OPENED)).toHaveLength(1);
    expect(numbers(records)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(chainProblems(records, hashIndex(collector))).toEqual([]);
  });

  it('keeps later events on disk when memory is full, and sends them in order', async () => {
    const dir = tempDir();
    let down = true;
    collector.intercept = () => (down ? { status: 503, body: {} } : undefined);
    const audit = client({
      spool: { dir, fsync: 'none' },
      queue: { maxEvents: 20 },
      batch: { maxEvents: 10, maxDelayMs: 1 },
    });
    for (let i = 0; i < 200; i++) await audit.record(event(i));
    expect(audit.stats().queued).toBeLessThanOrEqual(20);
    down = false;
    expect(await audit.flush()).toBe(true);
    const records = collector.streamRecords(audit.stream);
    expect(numbers(records)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(chainProblems(records, hashIndex(collector))).toEqual([]);
    expect(audit.stats().dropped).toBe(0);
  });

  it('throw: record() throws SPOOL_FULL once the spool is full', async () => {
    const dir = tempDir();
    collector.intercept = () => ({ status: 503, body: {} });
    const audit = client({
      spool: { dir, maxBytes: 64 * 1024, segmentBytes: 16 * 1024, onFull: 'throw', fsync: 'none' },
    });
    let thrown: unknown;
    for (let i = 0; i < 500 && thrown === undefined; i++) {
      try {
        await audit.record(event(i));
      } catch (error) {
        thrown = error;
      }
    }
    expect(thrown).toBeInstanceOf(QueueFullError);
    expect((thrown as QueueFullError).code).toBe(SdkErrorCodes.SPOOL_FULL);
    expect(audit.stats().spoolBytes).toBeLessThanOrEqual(64 * 1024 + 2048);
  });

  it('drop-oldest: drops whole old files, counts them, and delivers the rest', async () => {
    const dir = tempDir();
    let down = true;
    collector.intercept = () => (down ? { status: 503, body: {} } : undefined);
    const audit = client({
      spool: {
        dir,
        maxBytes: 64 * 1024,
        segmentBytes: 16 * 1024,
        onFull: 'drop-oldest',
        fsync: 'none',
      },
      queue: { maxEvents: 10 },
    });
    for (let i = 0; i < 300; i++) await audit.record(event(i));
    const stats = audit.stats();
    expect(stats.dropped).toBeGreaterThan(0);
    expect(stats.spoolBytes).toBeLessThanOrEqual(64 * 1024 + 2048);
    down = false;
    expect(await audit.flush()).toBe(true);
    const got = numbers(collector.streamRecords(audit.stream));
    expect(got.at(-1)).toBe(299);
    // What arrived is the newest part, in order; the dropped events are the gap.
    expect(got).toEqual([...got].sort((a, b) => a - b));
    expect(got.length + stats.dropped).toBeGreaterThanOrEqual(300);
  });

  it('block: record() waits for room and resolves once the collector takes events', async () => {
    const dir = tempDir();
    let down = true;
    collector.intercept = () => (down ? { status: 503, body: {} } : undefined);
    const audit = client({
      spool: { dir, maxBytes: 64 * 1024, segmentBytes: 16 * 1024, onFull: 'block', fsync: 'none' },
      queue: { maxEvents: 1000 },
    });
    let resolved = 0;
    for (let i = 0; i < 200; i++) void audit.record(event(i)).then(() => resolved++);
    await new Promise((r) => setTimeout(r, 100));
    expect(resolved).toBeLessThan(200);
    expect(audit.stats().blocked).toBeGreaterThan(0);
    down = false;
    expect(await audit.flush({ deadlineMs: 10_000 })).toBe(true);
    expect(resolved).toBe(200);
    expect(numbers(collector.streamRecords(audit.stream))).toEqual(
      Array.from({ length: 200 }, (_, i) => i),
    );
  });

  it('removes a spool file of protocol v1 events at start, saying so, and starts a new stream', async () => {
    const dir = tempDir();
    const v1 = join(dir, 'seg-0000000001.log');
    writeFileSync(
      v1,
      `${JSON.stringify({ vigilSpool: 1, stream: 'billing-api/old/x', firstSeq: 0 })}\n0\t{"record":"{}","hash":"00"}\n`,
    );
    const errors: SdkError[] = [];
    const audit = client({ spool: { dir } });
    audit.on('error', (e) => errors.push(e));
    await new Promise((r) => setImmediate(r));
    expect(existsSync(v1)).toBe(false);
    expect(errors.map((e) => [e.code, e.message.includes('protocol v1')])).toEqual([
      [SdkErrorCodes.SPOOL_CORRUPT, true],
    ]);
    expect(audit.stream).not.toBe('billing-api/old/x');
    expect(await audit.flush({ deadlineMs: 5000 })).toBe(true);
  });

  it('refuses a second client on the same directory', () => {
    const dir = tempDir();
    client({ spool: { dir } });
    expect(() => client({ spool: { dir } })).toThrow(
      expect.objectContaining({ code: SdkErrorCodes.SPOOL_LOCKED }) as Error,
    );
  });
});

describe('close and process safety', () => {
  it('close() returns within its deadline while the collector is down', async () => {
    collector.intercept = () => ({ status: 503, body: {} });
    const audit = client();
    for (let i = 0; i < 10; i++) void audit.record(event(i));
    const started = Date.now();
    const result = await audit.close({ deadlineMs: 300 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(result.delivered).toBe(false);
    expect(result.pending).toBeGreaterThan(0);
  });

  it('installs exit hooks only when asked, and removes them on close', async () => {
    const before = process.listenerCount('SIGTERM');
    const plain = client();
    expect(process.listenerCount('SIGTERM')).toBe(before);
    expect(process.listenerCount('beforeExit')).toBe(process.listenerCount('beforeExit'));
    const hooked = client({ handleExitSignals: { deadlineMs: 100 } });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    expect(process.listenerCount('SIGINT')).toBeGreaterThan(0);
    await hooked.close();
    await plain.close();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });

  it('never produces an unhandled rejection or an uncaught exception when the collector is unreachable', async () => {
    const problems: unknown[] = [];
    const onRejection = (reason: unknown): void => void problems.push(reason);
    const onException = (error: unknown): void => void problems.push(error);
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    try {
      const unreachable = await FakeCollector.start();
      const url = unreachable.url;
      await unreachable.close(); // nothing listens on that port any more
      // No 'error' listener and no logger: the SDK must stay silent rather than throw.
      const audit = createAuditClient({
        endpoint: url,
        apiKey: 'k',
        service: 'svc',
        logger: false,
        batch: { maxEvents: 10, maxDelayMs: 1 },
        retry: { initialDelayMs: 1, maxDelayMs: 5 },
      });
      for (let i = 0; i < 100; i++) void audit.record(event(i));
      expect(await audit.flush({ deadlineMs: 300 })).toBe(false);
      expect(audit.stats().retried).toBeGreaterThan(0);
      await audit.close({ deadlineMs: 100 });
      await new Promise((r) => setTimeout(r, 50));
      expect(problems).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    }
  });

  it('survives a transport that throws or returns garbage', async () => {
    let calls = 0;
    const audit = createAuditClient({
      service: 'svc',
      logger: false,
      batch: { maxDelayMs: 1 },
      retry: { initialDelayMs: 1, maxDelayMs: 2 },
      transport: {
        send: (batch) => {
          calls++;
          if (calls === 1) throw new Error('boom');
          if (calls === 2) return Promise.resolve(undefined as never);
          return Promise.resolve({ kind: 'accepted', accepted: batch.size, duplicates: 0 });
        },
      },
    });
    clients.push(audit);
    void audit.record(event(1));
    expect(await audit.flush()).toBe(true);
    expect(audit.stats().retried).toBe(2);
  });
});
