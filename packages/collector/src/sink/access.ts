import type { Disclosures, EventRecord } from '@vigil/protocol';
import {
  AccessProjection,
  Eraser,
  erasedFact,
  factsOf,
  hasFacts,
  type AccessFactRow,
  type EventRow,
  type FactOptions,
  type PrivacyService,
  type Store,
} from '@vigil/query';
import type { BatchContext, RowContext, SinkPlugin } from './plugins.js';

/**
 * Keeps the access projection (query access/facts.ts) as events are stored: grants and
 * revocations from `access` events, leavers from the configured actions, MFA enrolment from
 * `mfa.*` events. Facts are written in `stored`, after the events are safely in the store, from
 * the rows as they were stored (so ids and names are shown as pseudonyms where the tenant chose
 * so) and the plain disclosures the sink received (which key the subject). A batch delivered
 * again writes the same facts again; they collapse on the table's sorting key.
 *
 * Erasure markers are honoured like the privacy plugin does (sink/privacy.ts): a fact of an
 * event received before the erasure of its subject is written erased.
 */

export const ACCESS_PLUGIN = 'access';

interface Pending {
  readonly row: EventRow;
  readonly record: EventRecord;
  readonly disclosures: Disclosures | undefined;
}

export interface AccessPluginOptions {
  readonly store: Store;
  readonly privacy: PrivacyService;
  readonly facts: FactOptions;
}

export class AccessPlugin implements SinkPlugin {
  readonly name = ACCESS_PLUGIN;
  private readonly projection: AccessProjection;
  private readonly eraser: Eraser;
  /** Per partition: batches of different partitions are built concurrently. */
  private readonly pending = new Map<number, Pending[]>();

  constructor(private readonly options: AccessPluginOptions) {
    this.projection = new AccessProjection(options.store);
    this.eraser = new Eraser(options.store, options.privacy);
  }

  prepare(batch: BatchContext): Promise<void> {
    // A batch built again (a record set aside) starts over.
    this.pending.delete(batch.partition);
    return Promise.resolve();
  }

  decorate(row: EventRow, context: RowContext): void {
    if (!hasFacts(context.record, this.options.facts)) return;
    let list = this.pending.get(context.partition);
    if (!list) {
      list = [];
      this.pending.set(context.partition, list);
    }
    list.push({ row, record: context.record, disclosures: context.disclosures });
  }

  async stored(rows: readonly EventRow[], batch: BatchContext): Promise<void> {
    const list = this.pending.get(batch.partition);
    this.pending.delete(batch.partition);
    if (!list || list.length === 0) return;
    const storedRows = new Set(rows);
    const facts: AccessFactRow[] = [];
    for (const p of list) {
      if (!storedRows.has(p.row)) continue;
      const key = this.options.privacy.subjectKey(p.row.tenant_id);
      facts.push(...factsOf(p.record, p.disclosures, p.row, key, this.options.facts));
    }
    if (facts.length === 0) return;
    const markers = await this.eraser.markers([...new Set(facts.map((f) => f.tenant_id))]);
    const out = facts.map((f) => {
      const applicable = (markers.get(f.tenant_id) ?? []).filter(
        (m) => f.received_at <= m.erasedAt,
      );
      if (applicable.length === 0) return f;
      const keys = new Set(applicable.flatMap((m) => [...m.digests]));
      return erasedFact(f, keys);
    });
    await this.projection.insert(out);
  }

  reset(): void {
    this.pending.clear();
  }
}
