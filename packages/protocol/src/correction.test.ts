import { describe, expect, it } from 'vitest';
import {
  applyCorrections,
  checkEventInput,
  correctablePathProblem,
  correctedFields,
  correctionRef,
  type EventInput,
  type JsonValue,
} from './index.js';

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

describe('the corrected view (PROTOCOL.md §18.2)', () => {
  it('refuses pointers with no token or an empty one, and fixed members', () => {
    for (const path of ['', '/', '/metadata/', '/actor//id', 'actor/id'])
      expect(correctablePathProblem(path), path).toBeDefined();
    expect(correctablePathProblem('/corrects/hash')).toMatch(/identifies, chains/);
    expect(correctablePathProblem('/metadata/a~1b')).toBeUndefined();
    const fields = correctedFields({
      metadata: { corrected: { '/': 1, '/id': 2, '/outcome': 3 } },
    });
    expect([...fields]).toEqual([['/outcome', 3]]);
  });

  it('walks object members only, making {} of what is missing or not an object on the way', () => {
    const view = { metadata: { tags: ['a', 'b'], n: null, s: 'x' }, outcome: 'success' };
    const fixed = applyCorrections(view, [
      new Map<string, JsonValue>([
        ['/metadata/tags/0', 'z'],
        ['/metadata/n/k', 1],
        ['/metadata/s/k', 2],
        ['/metadata/new/deep/k', 3],
      ]),
      new Map<string, JsonValue>([['/outcome', 'failure']]),
      new Map<string, JsonValue>([['/outcome', 'unknown']]),
    ]);
    expect(fixed).toEqual({
      metadata: { tags: { 0: 'z' }, n: { k: 1 }, s: { k: 2 }, new: { deep: { k: 3 } } },
      outcome: 'unknown',
    });
    expect(view.metadata.tags).toEqual(['a', 'b']); // the base is not changed
  });
});
