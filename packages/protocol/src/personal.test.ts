import { describe, expect, it } from 'vitest';
import { committablePathProblem, parsePointer, requiredPersonalPaths, toPointer } from './index.js';
import { parseTime } from './time.js';

describe('requiredPersonalPaths', () => {
  it('commits people, not services or documents', () => {
    expect(
      requiredPersonalPaths({
        actor: { type: 'user', id: 'u', name: 'N', email: 'e' },
        target: { type: 'document', id: 'd', name: 'Plan' },
        context: { ip: '1.2.3.4', userAgent: 'ua', requestId: 'r' },
      }),
    ).toEqual(['/actor/id', '/actor/name', '/actor/email', '/context/ip', '/context/userAgent']);
    expect(requiredPersonalPaths({ actor: { type: 'service', id: 's', email: 'ops@x' } })).toEqual([
      '/actor/email',
    ]);
    expect(
      requiredPersonalPaths({
        actor: { type: 'service', id: 's' },
        target: { type: 'customer', id: 'c' },
      }),
    ).toEqual(['/target/id']);
  });

  it('commits the subject and grantor of an access change', () => {
    expect(
      requiredPersonalPaths({
        actor: { type: 'service', id: 'idp' },
        access: { subject: { type: 'user', id: 'u' }, grantedBy: { type: 'group', id: 'admins' } },
      }),
    ).toEqual(['/access/subject/id']);
  });
});

describe('JSON pointers and committable paths', () => {
  it('round-trips keys with / and ~', () => {
    const p = toPointer(['metadata', 'a/b~c']);
    expect(p).toBe('/metadata/a~1b~0c');
    expect(parsePointer(p)).toEqual(['metadata', 'a/b~c']);
    expect(parsePointer('metadata')).toBeUndefined();
    expect(parsePointer('/a~2')).toBeUndefined();
  });

  it('keeps structural fields in the clear', () => {
    expect(committablePathProblem('/metadata/phone')).toBeUndefined();
    expect(committablePathProblem('/context/sessionId')).toBeUndefined();
    expect(committablePathProblem('/actor/type')).toMatch(/cannot be personal/);
    expect(committablePathProblem('/metadata/')).toMatch(/cannot be personal/);
  });
});

describe('parseTime', () => {
  it('takes only UTC with milliseconds that names a real instant', () => {
    expect(parseTime('2026-11-23T10:50:48.123Z')).toBe(Date.UTC(2026, 10, 23, 10, 50, 48, 123));
    expect(parseTime('2026-11-23T10:50:48Z')).toBeUndefined();
    expect(parseTime('2026-11-23T10:50:48.123+01:00')).toBeUndefined();
    expect(parseTime('2026-02-29T00:00:00.000Z')).toBeUndefined();
    expect(parseTime('2028-02-29T00:00:00.000Z')).toBe(Date.UTC(2028, 1, 29));
    expect(parseTime('0050-01-01T00:00:00.000Z')).toBe(
      new Date('0050-01-01T00:00:00.000Z').getTime(),
    );
    expect(parseTime('2026-11-23T24:00:00.000Z')).toBeUndefined();
  });
});
