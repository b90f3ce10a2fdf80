import {
  subjectDigest,
  type Disclosures,
  type EventRecord,
  type SubjectRole,
} from '@vigil/protocol';
import {
  absentValue,
  DERIVED_PERSONAL_COLUMNS,
  ERASED_VALUES,
  Eraser,
  PARTIES,
  PERSONAL_COLUMNS,
  protectRow,
  Restrictions,
  subjectPaths,
  type ActiveRestriction,
  type DerivedColumn,
  type ErasureMarker,
  type EventRow,
  type PersonalColumn,
  type PrivacyService,
  type Store,
} from '@vigil/query';
import type { BatchContext, RowContext, SinkPlugin } from './plugins.js';

/**
 * The sink's part in the data-subject rights and pseudonymisation, the last step of every row:
 *
 * 1. **Erasure markers** (GDPR Art. 17). A row of an event received before an erasure of one of
 *    its parties is stored already erased: the person's disclosures are dropped before insert.
 *    This covers events that were in the log, not yet stored, when the erasure ran, and a log
 *    replayed into the same store; markers name the person only by keyed digests. Values that
 *    the embedded log itself had erased (an unchained event's value rewritten to "",
 *    privacy/log-erasure.ts) are dropped the same way, so even a replay into an empty store
 *    gives back no value.
 * 2. **Restrictions** (Art. 18): rows of a restricted person get the restriction's id in
 *    `restricted_by`, which hides them from search and analytics.
 * 3. **Pseudonymisation** (Art. 25, 32): the tenant's chosen fields become pseudonyms and their
 *    disclosures are encrypted (privacy/pseudonyms.ts).
 *
 * It must run after every plugin that reads plain values (enrichment, legal holds). Markers and
 * restrictions are read for every batch, and read again after its insert: one placed while the
 * batch was being built is applied to the stored rows then, as legal holds are (retention.ts).
 */

export const PRIVACY_PLUGIN = 'privacy';

interface BatchState {
  readonly markers: Map<string, ErasureMarker[]>;
  readonly restrictions: Map<string, ActiveRestriction[]>;
}

/** The keyed digests of each party's id and address in an event (for markers and restrictions). */
function partyDigests(
  key: Buffer,
  personal: readonly string[],
  disclosures: Disclosures,
): Map<SubjectRole, Set<string>> {
  const out = new Map<SubjectRole, Set<string>>();
  for (const party of PARTIES) {
    const set = new Set<string>();
    for (const kind of ['id', 'email'] as const) {
      const path = `${party.base}/${kind}`;
      const value = disclosures[path]?.value;
      if (personal.includes(path) && typeof value === 'string' && value !== '')
        set.add(subjectDigest(key, kind, value));
    }
    if (set.size > 0) out.set(party.role, set);
  }
  return out;
}

/**
 * The ids of the active restrictions that cover an event (one of its parties' digests is one of
 * theirs): the sink's `restricted_by`, and the events the detector skips.
 */
export function restrictionsCovering(
  key: Buffer,
  record: EventRecord,
  disclosures: Disclosures,
  restrictions: readonly ActiveRestriction[],
): string[] {
  const digests = partyDigests(key, record.personal ?? [], disclosures);
  const all = [...digests.values()].flatMap((s) => [...s]);
  return restrictions
    .filter((r) => all.some((d) => r.digests.has(d)))
    .map((r) => r.id)
    .sort();
}

/**
 * The paths an erasure marker erases from an event received at `receivedAt`: the fields of the
 * parties it names (and their context and committed metadata, as an erasure in the store does),
 * and corrected values that are one of its digests.
 */
export function markerPaths(
  key: Buffer,
  record: Pick<EventRecord, 'personal'> & { readonly corrects?: unknown },
  disclosures: Disclosures,
  receivedAt: number,
  markers: readonly ErasureMarker[],
): string[] {
  const personal = record.personal ?? [];
  const applicable = markers.filter((m) => receivedAt <= m.erasedAt);
  if (applicable.length === 0) return [];
  const digests = partyDigests(key, personal, disclosures);
  const roles: SubjectRole[] = [];
  for (const [role, set] of digests)
    if (applicable.some((m) => [...set].some((d) => m.digests.has(d)))) roles.push(role);
  const row = {
    personal,
    actor_id: '',
    target_id: '',
    subject_id: '',
    granted_by_id: '',
    actor_email: '',
  };
  const paths = new Set(subjectPaths(row, roles, 'erase'));
  if (record.corrects !== undefined) {
    for (const p of personal) {
      const v = disclosures[p]?.value;
      if (!p.startsWith('/metadata/corrected/') || typeof v !== 'string') continue;
      const hit = applicable.some(
        (m) =>
          m.digests.has(subjectDigest(key, 'id', v)) ||
          m.digests.has(subjectDigest(key, 'email', v)),
      );
      if (hit) for (const q of personal) if (q.startsWith('/metadata/corrected/')) paths.add(q);
    }
  }
  return [...paths].filter((p) => disclosures[p] !== undefined).sort();
}

/** Drops the disclosures of `paths` from a row being built, as an erasure would. */
function eraseFromRow(
  row: EventRow,
  disclosures: Disclosures,
  paths: readonly string[],
): Disclosures {
  const reduced: Disclosures = { ...disclosures };
  for (const p of paths) delete reduced[p];
  row.disclosures = JSON.stringify(reduced);
  const columns = PERSONAL_COLUMNS as Readonly<Record<string, PersonalColumn>>;
  const target = row as unknown as Record<string, unknown>;
  for (const p of paths) {
    const column = columns[p];
    if (column !== undefined) target[column] = absentValue(column);
    const derived: readonly DerivedColumn[] | undefined = DERIVED_PERSONAL_COLUMNS[p];
    for (const c of derived ?? []) if (target[c] !== undefined) target[c] = ERASED_VALUES[c];
  }
  row.erased_paths = [...new Set([...(row.erased_paths ?? []), ...paths])].sort();
  return reduced;
}

export interface PrivacyPluginOptions {
  readonly store: Store;
  readonly privacy: PrivacyService;
  readonly logger?: { warn(obj: object, msg: string): void };
}

export class PrivacyPlugin implements SinkPlugin {
  readonly name = PRIVACY_PLUGIN;
  private readonly eraser: Eraser;
  private readonly restrictions: Restrictions;
  /** Per partition: batches of different partitions are built concurrently. */
  private readonly batches = new Map<number, BatchState>();
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly options: PrivacyPluginOptions) {
    this.eraser = new Eraser(options.store, options.privacy);
    this.restrictions = new Restrictions(options.store, options.privacy);
  }

  async prepare(batch: BatchContext): Promise<void> {
    const tenants = [...batch.tenants];
    await this.options.privacy.load(tenants);
    this.batches.set(batch.partition, {
      markers: await this.eraser.markers(tenants),
      restrictions: await this.restrictions.active(tenants),
    });
  }

  decorate(row: EventRow, context: RowContext): void {
    const state = this.batches.get(context.partition);
    let disclosures = context.disclosures;
    if (disclosures) {
      const erase = new Set<string>();
      // Values the embedded log erased from an unchained event (privacy/log-erasure.ts).
      if (row.source === 'unchained')
        for (const [p, d] of Object.entries(disclosures)) if (d.value === '') erase.add(p);
      const markers = state?.markers.get(row.tenant_id);
      if (markers && markers.length > 0)
        for (const p of markerPaths(
          this.key(row.tenant_id),
          context.record,
          disclosures,
          row.received_at,
          markers,
        ))
          erase.add(p);
      if (erase.size > 0) disclosures = eraseFromRow(row, disclosures, [...erase].sort());
      const restrictions = state?.restrictions.get(row.tenant_id);
      if (restrictions && restrictions.length > 0)
        row.restricted_by = this.restrictedBy(
          row.tenant_id,
          context.record,
          disclosures,
          restrictions,
        );
    }
    const privacy = this.options.privacy.loaded(row.tenant_id);
    if (privacy) protectRow(row, context.record, disclosures, privacy);
  }

  async stored(rows: readonly EventRow[], batch: BatchContext): Promise<void> {
    const state = this.batches.get(batch.partition);
    if (!state || rows.length === 0) return;
    const tenants = [...batch.tenants];
    const [markers, restrictions] = await Promise.all([
      this.eraser.markers(tenants),
      this.restrictions.active(tenants),
    ]);
    for (const tenant of tenants) {
      const known = new Set((state.markers.get(tenant) ?? []).map((m) => m.erasureId));
      const added = (markers.get(tenant) ?? []).filter((m) => !known.has(m.erasureId));
      const ids = rows.filter((r) => r.tenant_id === tenant).map((r) => r.id);
      if (added.length > 0) {
        const key = this.key(tenant);
        const n = await this.eraser.reapply(tenant, ids, added, (row, disclosures) =>
          markerPaths(
            key,
            JSON.parse(String(row['record'])) as EventRecord,
            disclosures,
            Date.parse(`${row.received_at.replace(' ', 'T')}Z`),
            added,
          ),
        );
        this.options.logger?.warn(
          { tenant, rows: n },
          'an erasure ran while a batch was being stored; erased its rows again',
        );
      }
      const had = new Set((state.restrictions.get(tenant) ?? []).map((r) => r.id));
      const placed = (restrictions.get(tenant) ?? []).filter((r) => !had.has(r.id));
      if (placed.length > 0) {
        const flags = new Map<string, string[]>();
        for (const row of rows) {
          if (row.tenant_id !== tenant) continue;
          const record = JSON.parse(row.record.toString()) as EventRecord;
          const d = row.disclosures === '' ? {} : (JSON.parse(row.disclosures) as Disclosures);
          for (const id of this.restrictedBy(tenant, record, d, placed)) {
            const list = flags.get(id) ?? [];
            list.push(row.id);
            flags.set(id, list);
          }
        }
        await this.restrictions.flagRows(tenant, flags);
      }
    }
  }

  reset(): void {
    this.batches.clear();
    this.options.privacy.reset();
  }

  private key(tenant: string): Buffer {
    let key = this.keys.get(tenant);
    if (!key) {
      key = this.options.privacy.subjectKey(tenant);
      this.keys.set(tenant, key);
    }
    return key;
  }

  private restrictedBy(
    tenant: string,
    record: EventRecord,
    disclosures: Disclosures,
    restrictions: readonly ActiveRestriction[],
  ): string[] {
    return restrictionsCovering(this.key(tenant), record, disclosures, restrictions);
  }
}
