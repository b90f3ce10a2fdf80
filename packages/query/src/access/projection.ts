import { localName } from '../store/schema.js';
import { onCluster, type Store } from '../store/store.js';
import type { AccessFactRow } from './facts.js';

/**
 * The `access_projection` table (migration 9): facts inserted by the sink, erased with the
 * person, read back as grants with their revocations. The table is a ReplacingMergeTree on
 * `version`: an erasure writes the person's rows again with version + 1, and reads use FINAL.
 */

export const ACCESS_TABLE = 'access_projection';

/** Rows per INSERT when an erasure writes new versions. */
const BATCH = 5000;

export class AccessProjection {
  constructor(private readonly store: Store) {}

  async insert(rows: readonly AccessFactRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.store.insert(this.store.table(ACCESS_TABLE), rows);
  }

  /**
   * Erases a person from the projection (GDPR Art. 17): the rows they are the subject of keep
   * their key (the keyed digest erasure receipts name them by) and lose the id, name and the
   * free-text reason, and are marked erased, so a review shows "erased", never a new person;
   * where they granted a right, the grantor's id is blanked; in the snapshots of review
   * campaigns their id and name are blanked. Returns the rows rewritten.
   */
  async erase(tenant: string, digests: readonly string[]): Promise<number> {
    if (digests.length === 0) return 0;
    const rows = await this.store.query<Record<string, unknown>>(
      `SELECT * FROM ${this.store.table(ACCESS_TABLE)} FINAL
       WHERE tenant_id = {tenant:String}
         AND ((subject_key IN {digests:Array(String)} AND (erased = 0 OR subject_id != '' OR subject_name != '' OR reason != ''))
           OR (granted_by_key IN {digests:Array(String)} AND granted_by_id != ''))`,
      { tenant, digests: [...digests] },
    );
    const set = new Set(digests);
    const next = rows.map((r) => {
      const out: Record<string, unknown> = { ...r, version: Number(r['version']) + 1 };
      if (set.has(String(r['subject_key']))) {
        out['subject_id'] = '';
        out['subject_name'] = '';
        out['reason'] = '';
        out['erased'] = 1;
      }
      if (set.has(String(r['granted_by_key']))) out['granted_by_id'] = '';
      return out;
    });
    for (let i = 0; i < next.length; i += BATCH)
      await this.store.insert(this.store.table(ACCESS_TABLE), next.slice(i, i + BATCH));
    return next.length + (await this.eraseFromCampaigns(tenant, digests));
  }

  /** Blanks the person in the snapshots of review campaigns (a mutation, waited for). */
  private async eraseFromCampaigns(tenant: string, digests: readonly string[]): Promise<number> {
    const where = `tenant_id = {tenant:String} AND subject_key IN {digests:Array(String)} AND (subject_id != '' OR subject_name != '' OR erased = 0)`;
    const params = { tenant, digests: [...digests] };
    const [row] = await this.store.query<{ n: number | string }>(
      `SELECT count() AS n FROM ${this.store.table('review_items')} WHERE ${where}`,
      params,
    );
    const n = Number(row?.n ?? 0);
    if (n > 0)
      await this.store.command(
        `ALTER TABLE ${this.store.table(localName(this.store, 'review_items'))}${onCluster(this.store)} UPDATE subject_id = '', subject_name = '', erased = 1 WHERE ${where}`,
        params,
        { mutations_sync: '2' },
      );
    return n;
  }
}

/** A fact as the sink writes it for a person erased before the event was stored. */
export function erasedFact(row: AccessFactRow, erasedKeys: ReadonlySet<string>): AccessFactRow {
  const subject = erasedKeys.has(row.subject_key);
  const grantor = row.granted_by_key !== '' && erasedKeys.has(row.granted_by_key);
  if (!subject && !grantor) return row;
  return {
    ...row,
    ...(subject ? { subject_id: '', subject_name: '', reason: '', erased: 1 } : {}),
    ...(grantor ? { granted_by_id: '' } : {}),
  };
}
