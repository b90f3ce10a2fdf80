import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION_DAYS, loadConfig } from './config.js';
import { configMarkdownTable } from './markdown.js';
import { OPTIONS } from './options.js';
import { REVIEW_FLAGS } from '@vigil/query';

describe('loadConfig', () => {
  it('parses the access review options and names the entry that is wrong', () => {
    const c = loadConfig({
      role: 'start',
      env: {
        VIGIL_ACCESS_PERMISSION_ACTIONS: 'invoice.export=invoice.exported|report.*',
        VIGIL_ACCESS_SOD_PAIRS: 'payment.create|payment.approve',
        VIGIL_ACCESS_FLAGS: 'dormant,leaver',
      },
    });
    expect(c.access).toMatchObject({
      dormantDays: 90,
      permissionActions: { 'invoice.export': ['invoice.exported', 'report.*'] },
      sodPairs: [['payment.create', 'payment.approve']],
      flags: ['dormant', 'leaver'],
    });
    expect(loadConfig({ role: 'start' }).access.flags).toEqual(REVIEW_FLAGS);
    for (const [env, message] of [
      [{ VIGIL_ACCESS_SOD_PAIRS: 'payment.create' }, /access.sodPairs: "payment.create"/],
      [{ VIGIL_ACCESS_PERMISSION_ACTIONS: 'invoice.export' }, /access.permissionActions/],
      [{ VIGIL_ACCESS_FLAGS: 'dormnt' }, /access.flags: "dormnt" is not a flag/],
    ] as const) {
      let messages = '';
      try {
        loadConfig({ role: 'start', env });
      } catch (e) {
        messages = ((e as { details?: { message: string }[] }).details ?? [])
          .map((d) => d.message)
          .join('\n');
      }
      expect(messages, JSON.stringify(env)).toMatch(message);
    }
  });

  it('runs on embedded defaults with nothing given', () => {
    const c = loadConfig({ role: 'start' });
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      log: { kind: 'file', partitions: 4, fsync: 'always' },
      store: { kind: 'chdb', database: 'vigil' },
    });
    expect(c.retentionDays).toEqual(DEFAULT_RETENTION_DAYS);
    expect(Object.isFrozen(c) && Object.isFrozen(c.log)).toBe(true);
  });

  it('has bounds on lag, sink batches and slow clients by default, and refuses nonsense ones', () => {
    const c = loadConfig({ role: 'start' });
    expect(c.ingest.maxLagRecords).toBe(50_000);
    expect(c.sink.maxBatchBytes).toBe(2048 * 1024);
    expect(c.http).toEqual({
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 300_000,
      keepAliveTimeoutMs: 72_000,
    });
    const set = loadConfig({
      role: 'start',
      env: { VIGIL_INGEST_MAX_LAG_RECORDS: '0', VIGIL_HTTP_REQUEST_TIMEOUT_SECONDS: '5' },
      flags: { 'sink.maxBatchKiB': '512' },
    });
    expect(set.ingest.maxLagRecords).toBe(0);
    expect(set.http.requestTimeoutMs).toBe(5_000);
    expect(set.sink.maxBatchBytes).toBe(512 * 1024);
    expect(() =>
      loadConfig({ role: 'start', flags: { 'http.requestTimeoutSeconds': '0' } }),
    ).toThrow(/invalid configuration/);
    expect(() => loadConfig({ role: 'start', flags: { 'ingest.maxLagRecords': '-1' } })).toThrow(
      /invalid configuration/,
    );
  });

  it('takes flags over the environment over the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-config-'));
    const file = join(dir, 'vigil.json');
    writeFileSync(
      file,
      JSON.stringify({
        port: 1000,
        log: { partitions: 8 },
        ingest: { maxEvents: 10 },
        retention: { api: 30 },
      }),
    );
    const c = loadConfig({
      role: 'start',
      file,
      env: { VIGIL_PORT: '2000', VIGIL_INGEST_MAX_EVENTS: '20' },
      flags: { port: '3000' },
    });
    expect(c.port).toBe(3000);
    expect(c.ingest.maxEvents).toBe(20);
    expect(c.log.partitions).toBe(8);
    expect(c.retentionDays.api).toBe(30);
  });

  it('says what to change when the configuration cannot work', () => {
    expect(() => loadConfig({ role: 'start', env: { VIGIL_LOG: 'kafka' } })).toThrow(
      expect.objectContaining({
        details: [expect.objectContaining({ message: expect.stringContaining('kafka.brokers') })],
      }),
    );
    expect(() => loadConfig({ role: 'collector' })).toThrow(
      expect.objectContaining({
        details: [expect.objectContaining({ message: expect.stringContaining('VIGIL_LOG=kafka') })],
      }),
    );
    expect(() => loadConfig({ role: 'start', env: { VIGIL_PORT: 'eighty' } })).toThrow(
      expect.objectContaining({
        details: [expect.objectContaining({ path: 'port (VIGIL_PORT, --port)' })],
      }),
    );
    expect(() => loadConfig({ role: 'start', env: { VIGIL_KAFKA_SSL: 'maybe' } })).toThrow(
      /not a boolean/,
    );
  });

  it('takes the webhook allow-list and refuses entries that are not CIDRs, addresses or names', () => {
    const config = loadConfig({
      role: 'start',
      env: { VIGIL_WEBHOOKS_ALLOW_ADDRESSES: '127.0.0.1/32, fd00::/8,hooks.internal' },
    });
    expect(config.webhooks).toMatchObject({
      allowAddresses: ['127.0.0.1/32', 'fd00::/8', 'hooks.internal'],
      timeoutMs: 10_000,
      maxAttempts: 10,
      maxAgeMs: 86_400_000,
      maxQueue: 10_000,
    });
    expect(() =>
      loadConfig({ role: 'start', env: { VIGIL_WEBHOOKS_ALLOW_ADDRESSES: '10.0.0.0/40' } }),
    ).toThrow(
      expect.objectContaining({
        details: [expect.objectContaining({ message: expect.stringContaining('10.0.0.0/40') })],
      }),
    );
  });

  it('configures a scale-out collector on Kafka and a ClickHouse server', () => {
    const c = loadConfig({
      role: 'collector',
      env: {
        VIGIL_LOG: 'kafka',
        VIGIL_KAFKA_BROKERS: 'k1:9092, k2:9092',
        VIGIL_STORE: 'clickhouse',
        VIGIL_CLICKHOUSE_URL: 'https://ch:8443',
        VIGIL_CLICKHOUSE_CLUSTER: 'main',
      },
    });
    expect(c.log).toMatchObject({ kind: 'kafka', brokers: ['k1:9092', 'k2:9092'] });
    expect(c.store).toMatchObject({ kind: 'clickhouse', url: 'https://ch:8443', cluster: 'main' });
  });

  it('refuses unknown settings in a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-config-'));
    const file = join(dir, 'vigil.json');
    writeFileSync(file, JSON.stringify({ prot: 1 }));
    expect(() => loadConfig({ role: 'start', file })).toThrow(/unknown setting "prot"/);
  });

  it('documents every setting once in the generated table', () => {
    const table = configMarkdownTable();
    for (const o of OPTIONS) expect(table).toContain(`\`${o.env}\``);
    expect(new Set(OPTIONS.map((o) => o.env)).size).toBe(OPTIONS.length);
    expect(new Set(OPTIONS.map((o) => o.flag)).size).toBe(OPTIONS.length);
  });

  it('lets a collector load keys from another node instead of a store, and says what is missing', () => {
    const c = loadConfig({
      role: 'collector',
      env: {
        VIGIL_LOG: 'kafka',
        VIGIL_KAFKA_BROKERS: 'k:9092',
        VIGIL_KEYS_URL: 'http://query:8082',
        VIGIL_KEYS_TOKEN: 'vgl_x',
      },
    });
    expect(c.keysFrom).toEqual({ url: 'http://query:8082', token: 'vgl_x' });
    expect(() =>
      loadConfig({
        role: 'collector',
        env: { VIGIL_LOG: 'kafka', VIGIL_KAFKA_BROKERS: 'k:9092', VIGIL_KEYS_URL: 'http://q' },
      }),
    ).toThrow(
      expect.objectContaining({
        details: [expect.objectContaining({ message: expect.stringContaining('keys.token') })],
      }),
    );
    expect(() =>
      loadConfig({ role: 'start', env: { VIGIL_KEYS_URL: 'http://q', VIGIL_KEYS_TOKEN: 't' } }),
    ).toThrow(
      expect.objectContaining({
        details: [
          expect.objectContaining({ message: expect.stringContaining('collector role only') }),
        ],
      }),
    );
  });
});
