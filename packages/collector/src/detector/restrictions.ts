import type { Disclosures, EventRecord } from '@vigil/protocol';
import {
  Restrictions,
  type ActiveRestriction,
  type PrivacyService,
  type Store,
} from '@vigil/query';
import { restrictionsCovering } from '../sink/privacy.js';

/**
 * Restriction of processing (GDPR Art. 18) in the live detector: the events of a restricted
 * person are not detected on, as the backtest (and search) skip the rows the sink marked in
 * `restricted_by`. The detector decides with the sink's own test (`restrictionsCovering`: the
 * keyed digests of each party's id and address against the active restrictions), read from the
 * store before each batch as the sink reads them, so the two agree on every event of a batch.
 */
export class DetectorRestrictions {
  private readonly restrictions: Restrictions;
  private active = new Map<string, ActiveRestriction[]>();
  private readonly keys = new Map<string, Buffer>();
  private skippedEvents = 0;

  constructor(
    store: Store,
    private readonly privacy: PrivacyService,
  ) {
    this.restrictions = new Restrictions(store, privacy);
  }

  /** Reads the active restrictions of the batch's tenants. */
  async prepare(tenants: readonly string[]): Promise<void> {
    this.active =
      tenants.length === 0
        ? new Map<string, ActiveRestriction[]>()
        : await this.restrictions.active(tenants);
  }

  /** Whether an event of `tenant` is a restricted person's (counted). */
  restricted(tenant: string, record: EventRecord, disclosures: Disclosures | undefined): boolean {
    const active = this.active.get(tenant);
    if (active === undefined || active.length === 0 || disclosures === undefined) return false;
    let key = this.keys.get(tenant);
    if (key === undefined) this.keys.set(tenant, (key = this.privacy.subjectKey(tenant)));
    const hit = restrictionsCovering(key, record, disclosures, active).length > 0;
    if (hit) this.skippedEvents++;
    return hit;
  }

  /** Events skipped since start. */
  get skipped(): number {
    return this.skippedEvents;
  }
}
