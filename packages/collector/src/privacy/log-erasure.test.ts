import { describe, expect, it } from 'vitest';
import { randomSaltSource, sealEvent, ZERO_HASH } from '@vigil/protocol';
import { decodeEventMessage, encodeEventMessage, type EventMessage } from '../log/event-message.js';
import { readEventMessage } from '../sink/read-message.js';
import { subjectLogTransform } from './log-erasure.js';

const T0 = Date.parse('2026-11-23T10:00:00.000Z');
const head = { v: 2, keyId: 'k1', receivedAt: T0, backfillBefore: 0 } as const;

function sealedMessage(
  tenant: string,
  targetId = 'u-1042',
  seq = 0,
  prev = ZERO_HASH,
): EventMessage {
  const { event } = sealEvent(
    {
      id: `0193a4b2-6c1e-7000-8000-00000000000${seq + 1}`,
      time: '2026-11-23T10:00:00.000Z',
      action: 'document.shared',
      category: 'data_access',
      outcome: 'success',
      actor: { type: 'user', id: 'u-7', email: 'kim@example.eu' },
      target: { type: 'user', id: targetId, email: 'Zoe@Example.eu' },
      context: { ip: '198.51.100.7' },
    },
    { stream: 'app/1', seq, prev },
    randomSaltSource(),
  );
  return { ...head, tenant, stream: 'app/1', kind: 'sealed', events: [event] };
}

function unchainedMessage(tenant: string): EventMessage {
  return {
    ...head,
    tenant,
    stream: 'key/k1',
    kind: 'unchained',
    events: [
      {
        input: {
          id: '0193a4b2-6c1e-7000-8000-000000000002',
          time: '2026-11-23T10:00:00.000Z',
          action: 'user.login',
          category: 'authentication',
          outcome: 'failure',
          actor: { type: 'user', id: 'u-1042', name: 'Zoë' },
          context: { ip: '203.0.113.9', requestId: 'r-1' },
        },
        digest: 'd'.repeat(64),
      },
    ],
  };
}

const record = (message: EventMessage) => ({
  partition: 0,
  offset: 7,
  key: `${message.tenant}/${message.stream}`,
  timestamp: T0,
  value: encodeEventMessage(message),
});

describe('erasing a subject from log records', () => {
  const { transform, prefilter } = subjectLogTransform(
    'acme',
    { id: 'u-1042', emails: ['zoe@example.eu'] },
    T0 + 1000,
  );

  it('drops the subject’s disclosures from a sealed event, keeping the record and the length', () => {
    const original = sealedMessage('acme');
    const r = record(original);
    expect(prefilter(r.value)).toBe(true);
    const value = transform(r) as Buffer;
    expect(value.length).toBe(r.value.length);
    const message = decodeEventMessage(value);
    if (message.kind !== 'sealed' || original.kind !== 'sealed') throw new Error('kind');
    const [event] = message.events;
    expect(event?.record).toBe(original.events[0]?.record);
    expect(event?.hash).toBe(original.events[0]?.hash);
    expect(Object.keys(event?.disclosures ?? {}).sort()).toEqual([
      '/actor/email',
      '/actor/id',
      '/context/ip',
    ]);
    expect(value.includes(Buffer.from('u-1042'))).toBe(false);
    expect(value.toString().toLowerCase().includes('zoe@example.eu')).toBe(false);
    // Only the disclosures field changed, in place: the header, record and hash bytes stay put.
    const line = r.value.indexOf(Buffer.from(original.events[0]!.hash));
    expect(value.subarray(0, line + 65)).toEqual(r.value.subarray(0, line + 65));
    expect(value.toString().endsWith(' \n')).toBe(true);
    // The sink reads the rewritten record as it reads any other.
    const read = readEventMessage(value);
    expect(read.message.events[0]).toMatchObject({ hash: original.events[0]?.hash });
  });

  it('rewrites only the lines that hold the subject, and leaves `{}` when nothing is left', () => {
    const first = sealedMessage('acme', 'u-9');
    if (first.kind !== 'sealed') throw new Error('kind');
    const second = sealedMessage('acme', 'u-1042', 1, first.events[0]!.hash);
    if (second.kind !== 'sealed') throw new Error('kind');
    const both: EventMessage = { ...first, events: [first.events[0]!, second.events[0]!] };
    const r = record(both);
    // Both targets share an e-mail address: by id alone, only the second event is the subject's.
    const byId = subjectLogTransform('acme', { id: 'u-1042' }, T0 + 1000);
    const value = byId.transform(r) as Buffer;
    expect(value.length).toBe(r.value.length);
    const [a, b] = value.toString().split('\n').slice(1);
    const [oldA, oldB] = r.value.toString().split('\n').slice(1);
    expect(a).toBe(oldA);
    expect(b).not.toBe(oldB);
    expect(b?.length).toBe(oldB?.length);
    // A subject that is every person of an event: all its disclosures go.
    const all = subjectLogTransform('acme', { id: 'u-9', emails: ['kim@example.eu'] }, T0 + 1000);
    const own = sealedMessage('acme', 'u-9');
    const erased = all.transform(record(own)) as Buffer;
    const fields = erased.toString().split('\n')[1]?.split('\t');
    // Actor (by e-mail) and target (by id): every disclosure of the event was the subject's.
    expect(fields?.[2]).toMatch(/^\{\} +$/);
    const bare = sealedMessage('acme', 'u-9');
    if (bare.kind !== 'sealed') throw new Error('kind');
    const onlyIds = subjectLogTransform('acme', { id: 'u-9' }, T0 + 1000);
    const noIp: EventMessage = {
      ...bare,
      events: [
        {
          ...bare.events[0]!,
          disclosures: {
            '/target/id': bare.events[0]!.disclosures!['/target/id']!,
          },
        },
      ],
    };
    const emptied = onlyIds.transform(record(noIp)) as Buffer;
    expect(emptied.toString().split('\n')[1]?.split('\t')[2]).toMatch(/^\{\} +$/);
    const read = readEventMessage(emptied);
    expect(read.message.events[0]).not.toHaveProperty('disclosures');
  });

  it('blanks the subject’s values in an unchained event, and their context as the actor', () => {
    const r = record(unchainedMessage('acme'));
    const message = decodeEventMessage(transform(r) as Buffer);
    if (message.kind !== 'unchained') throw new Error('kind');
    const input = message.events[0]?.input;
    expect(input?.actor).toEqual({ type: 'user', id: '', name: '' });
    // The committed context goes; a request id in the clear is not personal and stays.
    expect(input?.context).toEqual({ ip: '', requestId: 'r-1' });
  });

  it('finds an address written with upper-case letters beyond ASCII (§17.2 normal form)', () => {
    const erase = subjectLogTransform(
      'acme',
      { id: 'u-55', emails: ['Müller@Example.DE'] },
      T0 + 1000,
    );
    const message = unchainedMessage('acme');
    if (message.kind !== 'unchained') throw new Error('kind');
    const input = message.events[0]!.input;
    const r = record({
      ...message,
      events: [
        {
          ...message.events[0]!,
          input: { ...input, actor: { type: 'user', id: 'u-9', email: ' MÜLLER@EXAMPLE.DE' } },
        },
      ],
    });
    expect(erase.prefilter(r.value)).toBe(true);
    const erased = decodeEventMessage(erase.transform(r) as Buffer);
    if (erased.kind !== 'unchained') throw new Error('kind');
    expect(erased.events[0]?.input.actor).toEqual({ type: 'user', id: '', email: '' });
  });

  it('leaves other tenants, later events and unrelated records alone', () => {
    expect(transform(record(sealedMessage('other')))).toBeUndefined();
    const later = { ...unchainedMessage('acme'), receivedAt: T0 + 5000 };
    expect(transform(record(later))).toBeUndefined();
    expect(prefilter(Buffer.from('{"v":2,"tenant":"acme","events":[]}'))).toBe(false);
  });
  it('erases whole a record nested too deep to rewrite, leaving its tenant for the sink to set aside', () => {
    // Logged before the depth limit (PROTOCOL.md §3.5): JSON.stringify cannot write it again.
    const text = encodeEventMessage(unchainedMessage('acme'))
      .toString()
      .replace('"context":', `"metadata":{"b":${'['.repeat(7000)}${']'.repeat(7000)}},"context":`);
    const r = { ...record(unchainedMessage('acme')), value: Buffer.from(text) };
    const value = transform(r) as Buffer;
    expect(value.length).toBe(r.value.length);
    expect(value.includes(Buffer.from('u-1042'))).toBe(false);
    expect(JSON.parse(value.toString())).toMatchObject({ v: 2, tenant: 'acme' });
  });
});
