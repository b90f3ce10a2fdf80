import { describe, expect, it } from 'vitest';
import { checkEventInput, correctionRef, type EventInput } from './index.js';

const corrects = {
  event: '0193a4b2-6c1f-7000-8000-000000000001',
  hash: '9f5684e38ea20b1c0891b842447bd6c98904fdbf33961086e4674312940f35cc',
};
const input: EventInput = {
  id: '0193a4b2-6c1f-7000-8000-000000000002',
  time: '2026-11-23T09:00:02.000Z',
  action: 'event.corrected',
  category: 'data_change',
  outcome: 'success',
  actor: { type: 'service', id: 'vigil' },
  corrects,
  metadata: { corrected: { '/outcome': 'failure' }, reason: 'mistyped' },
};

describe('corrects is closed (PROTOCOL.md §18.1)', () => {
  it('takes exactly event and hash', () => {
    expect(checkEventInput(input).ok).toBe(true);
    expect(correctionRef({ corrects })).toEqual(corrects);
  });

  it('refuses another member, naming it', () => {
    const extra = { ...input, corrects: { ...corrects, evnet: corrects.event } };
    const checked = checkEventInput(extra);
    expect(checked.ok).toBe(false);
    if (!checked.ok)
      expect(checked.details).toContainEqual({
        path: '/corrects/evnet',
        message: 'is not allowed here',
      });
    expect(correctionRef({ corrects: { ...corrects, evnet: corrects.event } })).toBeUndefined();
  });
});
