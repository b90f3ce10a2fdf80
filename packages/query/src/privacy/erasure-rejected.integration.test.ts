import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { Eraser } from './erasure.js';
import type { PrivacyService } from './service.js';

/**
 * Log records a sink set aside are searched for the subject's values when a person is erased;
 * only the erasing tenant's go, also among rows set aside before they carried their tenant.
 */
describe('Eraser.eraseRejected', () => {
  let ts: TestStore;
  beforeEach(async () => {
    ts = await openTestStore();
  });
  afterEach(async () => {
    await ts.cleanup();
  });

  const payload = (text: string): string => Buffer.from(text).toString('base64');

  it("deletes the tenant's set-aside records holding the subject, never another tenant's", async () => {
    const subject = '"u-1042"';
    const rows = [
      { tenant_id: 'acme', payload: payload(`{"tenant":"acme","x":${subject}}`) },
      { tenant_id: '', payload: payload(`{"tenant":"acme","x":${subject}}`) },
      { tenant_id: '', payload: payload(`not json at all ${subject}`) },
      { tenant_id: '', payload: payload(`{"tenant":"globex","x":${subject}}`) },
      { tenant_id: 'globex', payload: payload(`{"tenant":"globex","x":${subject}}`) },
      { tenant_id: 'acme', payload: payload(`{"tenant":"acme","x":"u-7"}`) },
    ].map((r, i) => ({
      ...r,
      log_partition: 0,
      log_offset: i,
      logged_at: '2026-01-01 00:00:00.000',
      error: 'test',
    }));
    await ts.store.insert(ts.store.table('rejected_records'), rows);
    const eraser = new Eraser(ts.store, {} as PrivacyService);
    expect(await eraser.eraseRejected('acme', { id: 'u-1042' })).toBe(3);
    const left = await ts.store.query<{ log_offset: number | string }>(
      `SELECT log_offset FROM ${ts.store.table('rejected_records')} FINAL ORDER BY log_offset`,
    );
    expect(left.map((r) => Number(r.log_offset))).toEqual([3, 4, 5]);
  });
});
