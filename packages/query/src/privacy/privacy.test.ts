import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { randomSaltSource, sealEvent, ZERO_HASH, type Disclosures } from '@vigil/protocol';
import { eventRow, type EventRowMeta } from '../store/rows.js';
import { safeCell } from '../export/csv.js';
import {
  fieldOfPath,
  openDisclosures,
  protectRow,
  pseudonymOf,
  rowPrivacyOf,
  sealDisclosures,
  type RowPrivacy,
} from './pseudonyms.js';
import { subjectPaths, subjectRoles, type MatchRow } from './subject.js';

const meta: EventRowMeta = {
  tenantId: 'acme',
  receivedAt: Date.parse('2026-11-23T10:00:00.000Z'),
  keyId: 'k',
  source: 'sealed',
  submittedDigest: '',
  logPartition: 0,
  logOffset: 0,
  logIndex: 0,
  expiresAt: 2_000_000_000,
  flags: [],
};

function privacy(fields: RowPrivacy['fields']): RowPrivacy {
  return {
    tenant: 'acme',
    keyId: 'tk_0123456789abcdef',
    fields,
    pseudonymKey: randomBytes(32),
    encryptionKey: randomBytes(32),
  };
}

describe('pseudonyms', () => {
  it('are keyed, stable per value, shared by one person across roles and address case', () => {
    const key = randomBytes(32);
    const a = pseudonymOf(key, 'email', 'Zoe@Example.eu');
    expect(a).toMatch(/^ps_[A-Za-z0-9_-]{22}$/);
    expect(pseudonymOf(key, 'email', 'zoe@example.eu')).toBe(a);
    expect(pseudonymOf(randomBytes(32), 'email', 'zoe@example.eu')).not.toBe(a);
    // Kinds are separated: an id that looks like an address is another pseudonym.
    expect(pseudonymOf(key, 'id', 'zoe@example.eu')).not.toBe(a);
    expect(fieldOfPath('/actor/id')).toBe('id');
    expect(fieldOfPath('/access/grantedBy/email')).toBe('email');
    expect(fieldOfPath('/metadata/phone')).toBe('metadata');
    expect(fieldOfPath('/resource/id')).toBeUndefined();
  });

  it('gives addresses in the discard-only prefix 100::/64, in RFC 5952 form', () => {
    const key = randomBytes(32);
    for (let i = 0; i < 200; i++) {
      const p = pseudonymOf(key, 'ip', `198.51.100.${i}`);
      expect(isIPv6(p), p).toBe(true);
      expect(p.startsWith('100::')).toBe(true);
      expect(p).toBe(p.toLowerCase());
      expect(p).not.toMatch(/(^|:)0[0-9a-f]/);
    }
  });

  it('moves chosen disclosures into an encrypted column bound to the row', () => {
    const { event, record } = sealEvent(
      {
        id: '0193a4b2-6c1e-7000-8000-000000000001',
        time: '2026-11-23T10:00:00.000Z',
        action: 'user.login',
        category: 'authentication',
        outcome: 'success',
        actor: { type: 'user', id: 'u-1', email: 'zoe@example.eu' },
        context: { ip: '203.0.113.7' },
      },
      { stream: 's', seq: 0, prev: ZERO_HASH },
      randomSaltSource(),
    );
    const p = privacy(new Set(['email', 'ip']));
    const row = eventRow(event, record, event.disclosures, meta, p);
    expect(row.actor_id).toBe('u-1');
    expect(row.actor_email).toMatch(/^ps_/);
    expect(row.ip?.startsWith('100::')).toBe(true);
    const kept = JSON.parse(row.disclosures) as Disclosures;
    expect(Object.keys(kept)).toEqual(['/actor/id']);
    expect(JSON.stringify(row)).not.toContain('zoe@example.eu');
    expect(JSON.stringify(row)).not.toContain('203.0.113.7');
    const where = { tenant: 'acme', id: record.id, hash: event.hash };
    const opened = openDisclosures(row.protected_disclosures ?? '', p.encryptionKey, where);
    expect(opened['/actor/email']?.value).toBe('zoe@example.eu');
    // Bound to its row: moved to another event, it does not open.
    expect(() =>
      openDisclosures(row.protected_disclosures ?? '', p.encryptionKey, { ...where, id: 'x' }),
    ).toThrow();
    // A verifier recomputes the same typed columns from the row's own kinds and the key.
    const again = eventRow(event, record, event.disclosures, meta, rowPrivacyOf(row, p));
    expect({ ...again, protected_disclosures: '' }).toEqual({ ...row, protected_disclosures: '' });
    // Without pseudonymised kinds, nothing changes.
    const plain = eventRow(event, record, event.disclosures, meta);
    protectRow(plain, record, event.disclosures, privacy(new Set()));
    expect(plain.actor_email).toBe('zoe@example.eu');
    expect(sealDisclosures({}, p.encryptionKey, where)).toMatch(/^v1\./);
  });
});

describe('whose values a subject request covers', () => {
  const row = (personal: string[], ids: Partial<MatchRow> = {}): MatchRow => ({
    personal,
    actor_id: '',
    target_id: '',
    subject_id: '',
    granted_by_id: '',
    actor_email: '',
    ...ids,
  });
  const forms = { ids: ['u-1042'], emails: ['zoe@example.eu'] };

  it('finds the subject by id in committed fields, and by address in any party', () => {
    const r = row(['/actor/id', '/target/email', '/target/id'], {
      actor_id: 'u-7',
      target_id: 'x',
    });
    const d: Disclosures = { '/target/email': { salt: 's', value: 'Zoe@example.EU' } };
    expect(subjectRoles(r, d, {}, forms)).toEqual(['target']);
    // An id in the clear is a service's, not the person's.
    expect(subjectRoles(row([], { actor_id: 'u-1042' }), {}, {}, forms)).toEqual([]);
  });

  it('erases committed metadata of every event of the subject, but exports it only when no one else is a party', () => {
    const personal = [
      '/access/grantedBy/id',
      '/access/subject/id',
      '/actor/email',
      '/actor/id',
      '/metadata/phone',
    ];
    const r = row(personal, { subject_id: 'u-1042', actor_id: 'u-1', granted_by_id: 'u-1' });
    expect(subjectPaths(r, ['accessSubject'], 'erase')).toEqual([
      '/access/subject/id',
      '/metadata/phone',
    ]);
    expect(subjectPaths(r, ['accessSubject'], 'export')).toEqual(['/access/subject/id']);
    const alone = row(['/actor/id', '/context/ip', '/metadata/note'], { actor_id: 'u-1042' });
    expect(subjectPaths(alone, ['actor'], 'export')).toEqual([
      '/actor/id',
      '/context/ip',
      '/metadata/note',
    ]);
  });
});

describe('CSV cells', () => {
  it('neutralise what Excel would run as a formula', () => {
    for (const bad of ['=1+2', '+SUM(A1)', '-2+3', '@cmd', '\tx', '\rx'])
      expect(safeCell(bad)).toBe(`'${bad}`);
    expect(safeCell('zoe@example.eu')).toBe('zoe@example.eu');
    expect(safeCell(null)).toBe('');
    expect(safeCell({ a: '=x' })).toBe('{"a":"=x"}');
  });
});
