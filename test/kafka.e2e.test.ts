import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEventId, ZERO_HASH } from '@vigil/protocol';
import { createAuditClient } from '@vigil/sdk';
import { startKafkaMock, uniqueKafkaName, type KafkaMock } from './helpers/kafka.js';
import {
  startVigil,
  tempDataDir,
  waitFor,
  type Credentials,
  type VigilProcess,
} from './helpers/vigil.js';

/**
 * The scale-out shape on a real Kafka-protocol broker (librdkafka's mock cluster): process A runs
 * collector + sink + query on its store; process B is a second collector with no store at all,
 * authenticating with key digests from A (keys.url). Both append to the same topic; A's sink
 * consumes it. The scenarios of the embedded end-to-end tests, plus a sink crash and a broker
 * outage.
 */

interface Stored {
  id: string;
  seq: number;
  prev: string;
  hash: string;
  action: string;
  flags: string[];
  metadata?: Record<string, unknown>;
}

/** A search item (PROTOCOL.md §20): the event apart from the server's fields. */
interface Item {
  hash: string;
  event: Omit<Stored, 'hash' | 'flags'>;
  server: { flags: string[] };
}

/** The event with the hash and flags the checks below read beside it. */
const storedOf = (item: Item): Stored => ({
  ...item.event,
  hash: item.hash,
  flags: item.server.flags,
});

const PARTITIONS = 4;

describe('Vigil on Kafka with two collectors', () => {
  const topic = uniqueKafkaName('vigil-events');
  const dataA = tempDataDir('kafka-a');
  const dataB = tempDataDir('kafka-b');
  let kafka: KafkaMock;
  let a: VigilProcess;
  let b: VigilProcess;
  let creds: Credentials;
  const env = (): Record<string, string> => ({
    VIGIL_LOG: 'kafka',
    VIGIL_KAFKA_BROKERS: kafka.brokers.join(','),
    VIGIL_LOG_TOPIC: topic,
    VIGIL_LOG_PARTITIONS: String(PARTITIONS),
    VIGIL_SINK_GROUP: `${topic}-sink`,
    VIGIL_RATE_LIMIT_INGEST_PER_MINUTE: '0',
    VIGIL_RATE_LIMIT_QUERY_PER_MINUTE: '0',
    VIGIL_KEYS_REFRESH_SECONDS: '1',
    // A killed sink's partitions move to its successor after the session timeout.
    VIGIL_KAFKA_SESSION_TIMEOUT_SECONDS: '6',
  });

  const startA = (port?: number): Promise<VigilProcess> =>
    startVigil({ dataDir: dataA.dir, env: env(), ...(port ? { port } : {}), timeoutMs: 30_000 });

  beforeAll(async () => {
    kafka = await startKafkaMock({
      topics: [
        { name: topic, partitions: PARTITIONS },
        // The detector's re-key topic (detect.mode auto is rekey on Kafka).
        { name: `${topic}.detect`, partitions: PARTITIONS },
      ],
    });
    a = await startA();
    creds = a.credentials();
    b = await startVigil({
      dataDir: dataB.dir,
      command: 'collector',
      env: { ...env(), VIGIL_KEYS_URL: a.url, VIGIL_KEYS_TOKEN: creds.operatorKey },
      timeoutMs: 30_000,
    });
  }, 90_000);

  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await kafka?.stop();
    dataA.remove();
    dataB.remove();
  });

  async function post(v: VigilProcess, events: unknown[]): Promise<Response> {
    return fetch(`${v.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${creds.ingestKey}` },
      body: JSON.stringify({ events }),
    });
  }

  async function search(query: string): Promise<Stored[]> {
    const out: Stored[] = [];
    let cursor: string | undefined;
    do {
      const q = new URLSearchParams(query);
      q.set('limit', '1000');
      if (cursor) q.set('cursor', cursor);
      const res = await fetch(`${a.url}/v1/events?${q.toString()}`, {
        headers: { authorization: `Bearer ${creds.queryKey}` },
      });
      const body = (await res.json()) as { events: Item[]; nextCursor?: string };
      out.push(...body.events.map(storedOf));
      cursor = body.nextCursor;
    } while (cursor);
    return out;
  }

  function expectIntactChain(events: Stored[]): void {
    const sorted = [...events].sort((x, y) => x.seq - y.seq);
    sorted.forEach((e, i) => {
      expect(e.seq).toBe(i);
      expect(e.prev).toBe(i === 0 ? ZERO_HASH : sorted[i - 1]!.hash);
      expect(e.flags).toEqual([]);
    });
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  }

  it('the store-less collector authenticates with key digests from the other node', async () => {
    const ready = (await (await fetch(`${b.url}/readyz`)).json()) as {
      ready: boolean;
      checks: Record<string, string>;
    };
    expect(ready).toMatchObject({ ready: true, checks: { log: 'ok', keys: 'ok' } });
    expect(ready.checks['store']).toBeUndefined();
    const refused = await fetch(`${b.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"events":[]}',
    });
    expect(refused.status).toBe(401);
  });

  it('stores curl events posted to both collectors once each, also when posted to both', async () => {
    const events = Array.from({ length: 3 }, (_, i) => ({
      id: newEventId(),
      action: 'user.login',
      category: 'authentication',
      outcome: 'success',
      actor: { type: 'user', id: `kafka-curl-${i}` },
    }));
    for (const v of [a, b, a, b]) expect((await post(v, events)).status).toBe(202);
    const found = await waitFor(
      () => search('action=user.login'),
      (e) => e.filter((x) => x.id.length > 0).length >= 3,
      30_000,
      'three events',
    );
    await new Promise((r) => setTimeout(r, 1500));
    const ids = (await search('action=user.login'))
      .map((e) => e.id)
      .filter((id) => events.some((x) => x.id === id));
    expect(ids.sort()).toEqual(events.map((e) => e.id).sort());
    expect(found.length).toBeGreaterThanOrEqual(3);
  });

  it('detects through the re-key topic: a brute force posted to the other collector is one alert', async () => {
    await waitFor(
      async () =>
        (await (await fetch(`${a.url}/readyz`)).json()) as { checks: Record<string, string> },
      (r) => r.checks['detector'] === 'ok',
      20_000,
      'the detector in /readyz',
    );
    const audit = createAuditClient({
      endpoint: b.url,
      apiKey: creds.ingestKey,
      service: 'kafka-login',
      batch: { maxEvents: 4, maxDelayMs: 10 },
      logger: false,
    });
    for (let i = 0; i < 12; i++)
      await audit.record({
        action: 'user.login',
        category: 'authentication',
        outcome: 'failure',
        actor: { type: 'user', id: 'kafka-alice' },
        context: { ip: '81.2.69.10' },
      });
    expect(await audit.flush({ deadlineMs: 10_000 })).toBe(true);
    await audit.close({ deadlineMs: 5000 });
    const raised = async (): Promise<number> => {
      const text = await (await fetch(`${a.url}/metrics`)).text();
      const m = /^vigil_detect_alerts_total\{status="new"\} (\d+)/m.exec(text);
      return m ? Number(m[1]) : 0;
    };
    expect(await waitFor(raised, (n) => n >= 1, 20_000, 'an alert raised')).toBe(1);
    // Through the re-key topic: one message per group-by set that counts a failed login.
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    expect(Number(/^vigil_detect_rekey_messages_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(
      0,
    );
  });

  it('survives a sink killed mid-stream: nothing lost, nothing stored twice', async () => {
    const audit = createAuditClient({
      endpoint: b.url,
      apiKey: creds.ingestKey,
      service: 'kafka-e2e',
      batch: { maxEvents: 50, maxDelayMs: 20 },
      retry: { initialDelayMs: 100, maxDelayMs: 1000 },
      logger: false,
    });
    const record = async (from: number, count: number): Promise<void> => {
      for (let n = from; n < from + count; n++) {
        await audit.record({
          action: 'document.viewed',
          category: 'data_access',
          outcome: 'success',
          actor: { type: 'service', id: 'batch' },
          metadata: { n },
        });
      }
    };
    await record(0, 500);
    const port = a.port;
    await a.kill9(); // the sink dies; collector B keeps appending to Kafka
    await record(500, 500);
    expect(await audit.flush({ deadlineMs: 20_000 })).toBe(true);
    a = await startA(port);
    await record(1000, 200);
    expect(await audit.flush({ deadlineMs: 20_000 })).toBe(true);
    const events = await waitFor(
      () => search(`stream=${audit.stream}`),
      (e) => e.length >= 1201,
      60_000,
      'all 1201 events',
    );
    expect(events).toHaveLength(1201);
    expectIntactChain(events);
    const ns = events
      .filter((e) => e.action === 'document.viewed')
      .map((e) => Number(e.metadata?.['n']))
      .sort((x, y) => x - y);
    expect(ns).toEqual(Array.from({ length: 1200 }, (_, i) => i));
    await audit.close({ deadlineMs: 5000 });
  }, 120_000);

  it('answers 503 while the broker is down; the SDK retries and nothing is lost once it is back', async () => {
    await kafka.down(1);
    const refused = await waitFor(
      async () =>
        (
          await post(b, [
            {
              action: 'user.logout',
              category: 'authentication',
              outcome: 'success',
              actor: { type: 'user', id: 'x' },
            },
          ])
        ).status,
      (status) => status === 503,
      30_000,
      'a 503 from the collector',
    );
    expect(refused).toBe(503);
    const audit = createAuditClient({
      endpoint: b.url,
      apiKey: creds.ingestKey,
      service: 'kafka-outage',
      batch: { maxEvents: 20, maxDelayMs: 20 },
      retry: { initialDelayMs: 200, maxDelayMs: 1000 },
      logger: false,
    });
    for (let n = 0; n < 100; n++) {
      await audit.record({
        action: 'document.viewed',
        category: 'data_access',
        outcome: 'success',
        actor: { type: 'service', id: 'outage' },
        metadata: { n },
      });
    }
    await new Promise((r) => setTimeout(r, 3000));
    expect(audit.stats().retried).toBeGreaterThan(0);
    await kafka.up(1);
    expect(await audit.flush({ deadlineMs: 60_000 })).toBe(true);
    const events = await waitFor(
      () => search(`stream=${audit.stream}`),
      (e) => e.length >= 101,
      60_000,
      'all 101 events',
    );
    expectIntactChain(events);
    await audit.close({ deadlineMs: 5000 });
  }, 150_000);
});
