import { describe, expect, it } from 'vitest';
import {
  commitmentOf,
  decodeSalt,
  sha256Hex,
  ZERO_HASH,
  type EventRecord,
  type JsonValue,
  type SealedEvent,
} from '@vigil/protocol';
import { LogUnavailableError } from '../errors.js';
import { decodeEventMessage, messageKey, type EventMessage } from '../log/event-message.js';
import { MemoryLog } from '../log/memory-log.testkit.js';
import { ADMIN_STREAM_PREFIX, SystemRecorder, streamHost } from './recorder.js';

const BOOT = '01a2085a-7e23-75cc-b637-dceac2a42247';

function messages(log: MemoryLog): EventMessage[] {
  return log
    .all()
    .sort((a, b) => a.timestamp - b.timestamp || a.offset - b.offset)
    .map((r) => decodeEventMessage(r.value));
}

/** Every event of a tenant in log order, with its parsed record. */
function chainOf(log: MemoryLog, tenant: string): { event: SealedEvent; record: EventRecord }[] {
  // One stream per tenant keys one partition: log order within it is append order.
  const partition = log.partitionFor(messageKey(tenant, `${ADMIN_STREAM_PREFIX}host-1/${BOOT}`));
  return (log.records[partition] ?? [])
    .map((r) => decodeEventMessage(r.value))
    .filter((m) => m.tenant === tenant && m.kind === 'sealed')
    .flatMap((m) =>
      (m.kind === 'sealed' ? m.events : []).map((event) => ({
        event,
        record: JSON.parse(event.record) as EventRecord,
      })),
    );
}

describe('SystemRecorder', () => {
  it('refuses a change nested beyond the limits before sealing anything, and its chain goes on unbroken', async () => {
    const log = new MemoryLog('events', 4);
    const recorder = new SystemRecorder(log, { host: 'host-1', bootId: BOOT });
    let deep: JsonValue = { value: 'x' };
    for (let i = 0; i < 40; i++) deep = { nested: deep };
    await expect(
      recorder.record('acme', '0123456789ab', {
        action: 'event.corrected',
        metadata: { corrected: { '/metadata/note': deep } },
      }),
    ).rejects.toMatchObject({
      status: 400,
      details: [{ path: expect.stringMatching(/^\/metadata\/corrected\//) }],
    });
    expect(log.all()).toHaveLength(0);
    const recorded = await recorder.record('acme', '0123456789ab', { action: 'tenant.suspended' });
    expect(recorded.seq).toBe(1);
    expect(chainOf(log, 'acme').map((e) => e.record.seq)).toEqual([0, 1]);
  });

  it('opens a per-tenant chain on vigil/admin/<host>/<boot id> and appends sealed events to the log', async () => {
    const log = new MemoryLog('events', 4);
    const recorder = new SystemRecorder(log, {
      host: 'host-1',
      bootId: BOOT,
      clock: () => 1_800_000_000_000,
    });
    const recorded = await recorder.record('acme', '0123456789ab', {
      action: 'tenant.suspended',
      target: { type: 'tenant', id: 'acme' },
      metadata: { name: 'Acme' },
    });
    const stream = `vigil/admin/host-1/${BOOT}`;
    expect(recorded).toMatchObject({ stream, seq: 1 });
    const [message] = messages(log);
    expect(message).toMatchObject({
      kind: 'sealed',
      tenant: 'acme',
      keyId: '0123456789ab',
      receivedAt: 1_800_000_000_000,
      stream,
    });
    const record = log.all()[0]!;
    expect(record.key).toBe(messageKey('acme', stream));
    const events = chainOf(log, 'acme');
    expect(events.map((e) => e.record.action)).toEqual(['stream.opened', 'tenant.suspended']);
    expect(events[0]!.record).toMatchObject({
      seq: 0,
      prev: ZERO_HASH,
      category: 'system',
      stream,
    });
    expect(events[1]!.record).toMatchObject({
      seq: 1,
      prev: events[0]!.event.hash,
      category: 'admin',
      outcome: 'success',
      actor: { type: 'api_key', id: '0123456789ab' },
      target: { type: 'tenant', id: 'acme' },
      metadata: { name: 'Acme' },
      time: '2027-01-15T08:00:00.000Z',
    });
    for (const { event } of events) expect(sha256Hex(event.record)).toBe(event.hash);
    expect(recorded.hash).toBe(events[1]!.event.hash);
    expect(recorded.id).toBe(events[1]!.record.id);
  });

  it('continues each tenant chain in order, also for concurrent records, and keeps tenants apart', async () => {
    const log = new MemoryLog('events', 4);
    const recorder = new SystemRecorder(log, { host: 'host-1', bootId: BOOT });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        recorder.record(i % 2 === 0 ? 'acme' : 'globex', 'key', {
          action: 'api_key.created',
          target: { type: 'api_key', id: `k${i}` },
        }),
      ),
    );
    for (const tenant of ['acme', 'globex']) {
      const events = chainOf(log, tenant);
      expect(events).toHaveLength(11);
      events.forEach(({ record }, i) => {
        expect(record.seq).toBe(i);
        expect(record.prev).toBe(i === 0 ? ZERO_HASH : events[i - 1]!.event.hash);
      });
      // Records of one tenant append in the order they were asked for.
      const targets = events.slice(1).map((e) => (e.record.target as { id: string }).id);
      const expected = Array.from({ length: 20 }, (_, i) => i)
        .filter((i) => (i % 2 === 0) === (tenant === 'acme'))
        .map((i) => `k${i}`);
      expect(targets).toEqual(expected);
    }
  });

  it('commits personal metadata and never puts its plain value in the hashed bytes', async () => {
    const log = new MemoryLog();
    const recorder = new SystemRecorder(log, { host: 'host-1', bootId: BOOT });
    await recorder.record('acme', 'key', {
      action: 'api_key.revoked',
      target: { type: 'api_key', id: 'k1' },
      metadata: { reason: 'Kim Lee left', allowedIps: ['192.0.2.7'] },
      personal: ['/metadata/reason', '/metadata/allowedIps'],
    });
    const [, revoked] = chainOf(log, 'acme');
    expect(revoked!.event.record).not.toContain('Kim Lee');
    expect(revoked!.event.record).not.toContain('192.0.2.7');
    expect(revoked!.record.personal).toEqual(['/metadata/allowedIps', '/metadata/reason']);
    const disclosure = revoked!.event.disclosures?.['/metadata/reason'];
    expect(disclosure?.value).toBe('Kim Lee left');
    const commitment = (revoked!.record.metadata as Record<string, string>)['reason'];
    expect(commitmentOf('/metadata/reason', 'Kim Lee left', decodeSalt(disclosure!.salt))).toBe(
      commitment,
    );
  });

  it('records Vigil itself as a system actor, and takes a full event input with its own actor replaced', async () => {
    const log = new MemoryLog();
    const recorder = new SystemRecorder(log, { host: 'host-1', bootId: BOOT });
    await recorder.record(
      'acme',
      { system: 'vigil-bootstrap' },
      {
        action: 'tenant.created',
        target: { type: 'tenant', id: 'acme' },
      },
    );
    await recorder.record('acme', 'abcabcabcabc', {
      action: 'retention.policy_changed',
      category: 'admin',
      outcome: 'success',
      actor: { type: 'user', id: 'someone-else' },
      id: 'not-an-id',
      time: 'not-a-time',
      target: { type: 'tenant', id: 'acme' },
      metadata: { category: 'api', days: 30 },
    } as never);
    const events = chainOf(log, 'acme').map((e) => e.record);
    expect(events[1]).toMatchObject({ actor: { type: 'system', id: 'vigil-bootstrap' } });
    expect(messages(log)[0]).toMatchObject({ keyId: '' });
    expect(events[2]).toMatchObject({
      action: 'retention.policy_changed',
      actor: { type: 'api_key', id: 'abcabcabcabc' },
      metadata: { category: 'api', days: 30 },
    });
    expect(events[2]!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(events[2]!.time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('after a failed append, refuses the record and opens a new stream for the next one', async () => {
    const log = new MemoryLog();
    const recorder = new SystemRecorder(log, { host: 'host-1', bootId: BOOT });
    const change = { action: 'api_key.created', target: { type: 'api_key', id: 'k' } };
    await recorder.record('acme', 'key', change);
    log.failAppends = new LogUnavailableError('broker down');
    await expect(recorder.record('acme', 'key', change)).rejects.toMatchObject({
      code: 'VIGIL_ERR_LOG_UNAVAILABLE',
    });
    log.failAppends = undefined;
    const next = await recorder.record('acme', 'key', change);
    expect(next.stream).not.toBe(`vigil/admin/host-1/${BOOT}`);
    expect(next.stream.startsWith('vigil/admin/host-1/')).toBe(true);
    expect(next.seq).toBe(1);
    const last = messages(log).find((m) => m.stream === next.stream)!;
    expect(
      last.kind === 'sealed' && last.events.map((e) => JSON.parse(e.record) as EventRecord),
    ).toMatchObject([{ action: 'stream.opened', seq: 0 }, { seq: 1 }]);
  });

  it('turns a host name into a valid stream segment', () => {
    expect(streamHost('web-1.example.com')).toBe('web-1.example.com');
    expect(streamHost('_weird host/name')).toBe('weird-host-name');
    expect(streamHost('')).toBe('host');
  });
});
