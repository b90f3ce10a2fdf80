import { randomBytes } from 'node:crypto';
import {
  jsonShapeProblem,
  normalEmail,
  parsePointer,
  type Disclosures,
  type ErasedEvent,
  type SubjectRef,
  type SubjectRole,
} from '@vigil/protocol';
import type { ClickHouseSettings } from '@clickhouse/client';
import { LegalHolds, type LegalHold } from '../retention/holds.js';
import { DERIVED_PERSONAL_COLUMNS, ERASED_VALUES } from '../store/derived.js';
import { absentValue, PERSONAL_COLUMNS, type PersonalColumn } from '../store/event-columns.js';
import { DEPTH_ONLY, fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { openDisclosures, sealDisclosures } from './pseudonyms.js';
import type { PrivacyService, SubjectForms } from './service.js';
import {
  correctionPaths,
  subjectParams,
  subjectPaths,
  subjectRoles,
  SUBJECT_MATCH_SQL,
  type MatchRow,
} from './subject.js';

/**
 * Erasure in the store (GDPR Art. 17; PROTOCOL.md §5.4, §17). For each event the person is a
 * party of, a new version of its row is written (same sorting key, `row_version` + 1; queries
 * read FINAL, so it wins at once) in which the person's disclosures — value and salt — are gone,
 * the typed columns they fed read exactly as eventRow gives them for an absent disclosure, the
 * geolocation and parsed user agent derived from an erased address or agent are blank,
 * `erased_paths` lists what was erased, and `record`, `hash`, `leaf_index`, `leaf_hash` are
 * unchanged: every hash, link and proof still verifies. The superseded version stays on disk
 * until ClickHouse merges its part (README, "Privacy"): `purge` forces and confirms that.
 */

/** A row of `events` as `SELECT *` returns it. */
export type StoredRow = MatchRow & {
  readonly tenant_id: string;
  readonly id: string;
  readonly hash: string;
  readonly stream: string;
  readonly received_at: string;
  readonly disclosures: string;
  readonly pseudonyms: string;
  readonly pseudonym_key: string;
  readonly protected_disclosures: string;
  readonly erased_paths: readonly string[];
  readonly corrects_id: string;
  readonly legal_hold: number | string;
  readonly row_version: number | string;
  readonly [column: string]: unknown;
};

export interface PlannedEvent {
  readonly row: StoredRow;
  readonly roles: readonly SubjectRole[];
  /** The committed paths to erase that still hold a disclosure or a pseudonym. */
  readonly paths: readonly string[];
}

export interface ErasurePlan {
  readonly erasureId: string;
  readonly tenant: string;
  readonly subject: SubjectRef;
  /** Keyed digests of the subject (PROTOCOL.md §17.2). */
  readonly digests: readonly string[];
  readonly forms: SubjectForms;
  readonly events: readonly PlannedEvent[];
  /** Active legal holds that cover the subject, the tenant or any of the events. */
  readonly holds: readonly LegalHold[];
  /** Events among them flagged legal_hold = 1. */
  readonly heldEvents: number;
}

export interface AppliedErasure {
  readonly events: ErasedEvent[];
  readonly disclosures: number;
  readonly derivedColumns: number;
}

/** A marker of an erasure, as the sink honours it for events received before `erasedAt`. */
export interface ErasureMarker {
  readonly erasureId: string;
  readonly digests: ReadonlySet<string>;
  readonly erasedAt: number;
}

export function newErasureId(): string {
  return `era_${randomBytes(8).toString('hex')}`;
}

/** Rows per INSERT of new versions. */
const BATCH = 1000;
/** Erasures of one tenant in this process run one at a time (each reads the row versions it bumps). */
const running = new Map<string, Promise<unknown>>();

/** Runs `work` after the erasures of `key` already running in this process. */
export function serialised<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = running.get(key) ?? Promise.resolve();
  const next = previous.then(work, work);
  const tail = next.catch(() => undefined);
  running.set(key, tail);
  void tail.then(() => {
    if (running.get(key) === tail) running.delete(key);
  });
  return next;
}

function parseJson<T>(text: string, empty: T): T {
  return text === '' ? empty : (JSON.parse(text) as T);
}

export class Eraser {
  constructor(
    private readonly store: Store,
    private readonly privacy: PrivacyService,
  ) {}

  /** Finds what erasing `subject` from the tenant's events means, without changing anything. */
  async plan(tenant: string, subject: SubjectRef): Promise<ErasurePlan> {
    const forms = await this.privacy.subjectForms(tenant, subject);
    const rows = await this.store.query<StoredRow>(
      `SELECT * FROM ${this.store.table('events')} FINAL
       WHERE tenant_id = {tenant:String} AND ${SUBJECT_MATCH_SQL}`,
      { tenant, ...subjectParams(forms) },
    );
    const events: PlannedEvent[] = [];
    const ids = new Set<string>();
    for (const row of rows) {
      const planned = await this.planRow(row, forms);
      ids.add(row.id);
      if (planned.paths.length > 0) events.push(planned);
    }
    for (const row of await this.corrections(tenant)) {
      if (ids.has(row.id)) continue;
      const { disclosures } = await this.privacy.plainDisclosures(row);
      const names = Object.values(disclosures).some(
        (d) =>
          typeof d.value === 'string' &&
          (forms.ids.includes(d.value) || forms.emails.includes(normalEmail(d.value))),
      );
      if (!names && !ids.has(row.corrects_id)) continue;
      const paths = this.present(row, correctionPaths(row.personal, [], 'erase'));
      if (paths.length > 0) events.push({ row, roles: ['correction'], paths });
    }
    const holds = await this.coveringHolds(tenant, forms, events);
    return {
      erasureId: newErasureId(),
      tenant,
      subject,
      digests: this.privacy.digests(tenant, subject),
      forms,
      events,
      holds,
      heldEvents: events.filter((e) => Number(e.row.legal_hold) === 1).length,
    };
  }

  /** Records the marker a replaying sink honours; written before any row changes. */
  async markStarted(plan: ErasurePlan, at: number): Promise<void> {
    await this.store.insert(this.store.table('erasures'), [
      {
        tenant_id: plan.tenant,
        erasure_id: plan.erasureId,
        subject_digests: [...plan.digests],
        erased_at: toChTime(new Date(at).toISOString()),
        status: 'started',
        receipt: '',
        receipt_id: '',
        version: 1,
      },
    ]);
  }

  /** Writes the new versions of the planned rows. */
  async apply(plan: ErasurePlan): Promise<AppliedErasure> {
    return serialised(`${this.store.database}\u0000${plan.tenant}`, async () => {
      const out: ErasedEvent[] = [];
      let disclosures = 0;
      let derivedColumns = 0;
      let batch: Record<string, unknown>[] = [];
      // Rows are read again: a version written since the plan (the sink, another erasure)
      // must be the one bumped.
      const fresh = await this.rowsById(
        plan.tenant,
        plan.events.map((e) => e.row.id),
      );
      for (const planned of plan.events) {
        const row = fresh.get(`${planned.row.id}\u0000${planned.row.hash}`) ?? planned.row;
        const paths = this.present(row, planned.paths);
        if (paths.length === 0) continue;
        const next = await this.erasedVersion(row, paths);
        disclosures += next.disclosures;
        derivedColumns += next.derivedColumns;
        out.push({ id: row.id, hash: row.hash, paths });
        batch.push(next.row);
        if (batch.length >= BATCH) {
          await this.store.insert(this.store.table('events'), batch);
          batch = [];
        }
      }
      await this.store.insert(this.store.table('events'), batch);
      return { events: out, disclosures, derivedColumns };
    });
  }

  /**
   * Erases subjects of `markers` from rows just stored by a sink (rows that reached the store
   * while an erasure ran). Returns the number of rows rewritten.
   */
  async reapply(
    tenant: string,
    ids: readonly string[],
    markers: readonly ErasureMarker[],
    pathsOf: (row: StoredRow, disclosures: Disclosures) => readonly string[],
  ): Promise<number> {
    if (ids.length === 0 || markers.length === 0) return 0;
    return serialised(`${this.store.database}\u0000${tenant}`, async () => {
      const rows = await this.rowsById(tenant, ids);
      const batch: Record<string, unknown>[] = [];
      for (const row of rows.values()) {
        const { disclosures } = await this.privacy.plainDisclosures(row);
        const paths = this.present(row, [...pathsOf(row, disclosures)]);
        if (paths.length === 0) continue;
        batch.push((await this.erasedVersion(row, paths)).row);
      }
      await this.store.insert(this.store.table('events'), batch);
      return batch.length;
    });
  }

  /**
   * Deletes log records kept in `rejected_records` that hold one of the subject's values (they
   * cannot be rewritten, only removed): those of the tenant, and those whose tenant could not be
   * decoded; never another tenant's. Returns how many there were.
   */
  async eraseRejected(tenant: string, subject: SubjectRef): Promise<number> {
    const needles = [JSON.stringify(subject.id), ...(subject.emails ?? []).map(normalEmail)];
    // Rows set aside before tenant_id existed (migration 6) have '': their payload still names
    // the tenant wherever it decodes, so another tenant's are left alone.
    const where = `(tenant_id = {tenant:String} OR (tenant_id = '' AND JSONExtractString(base64Decode(payload), 'tenant') IN ('', {tenant:String}))) AND arrayExists(n -> positionCaseInsensitiveUTF8(base64Decode(payload), n) > 0, {needles:Array(String)})`;
    const table = this.store.table('rejected_records');
    const found = await this.store.query<{ n: number | string }>(
      `SELECT count() AS n FROM ${table} WHERE ${where}`,
      { needles, tenant },
    );
    const n = Number(found[0]?.n ?? 0);
    if (n > 0) {
      const settings: ClickHouseSettings = { mutations_sync: '2' };
      await this.store.command(
        `ALTER TABLE ${this.store.table(this.store.cluster ? 'rejected_records_local' : 'rejected_records')} DELETE WHERE ${where}`,
        { needles, tenant },
        settings,
      );
    }
    return n;
  }

  /** Stores the signed receipt; the erasure is done. */
  async finish(
    plan: ErasurePlan,
    at: number,
    receipt: { id: string; text: string },
  ): Promise<void> {
    await this.store.insert(this.store.table('erasures'), [
      {
        tenant_id: plan.tenant,
        erasure_id: plan.erasureId,
        subject_digests: [...plan.digests],
        erased_at: toChTime(new Date(at).toISOString()),
        status: 'done',
        receipt: receipt.text,
        receipt_id: receipt.id,
        version: 2,
      },
    ]);
  }

  /**
   * Forces the merge that drops superseded versions of the erased rows (OPTIMIZE … FINAL on the
   * monthly partitions that hold them) and counts the old versions left: 0 when done.
   */
  async purge(tenant: string, events: readonly ErasedEvent[]): Promise<{ oldVersions: number }> {
    if (events.length === 0) return { oldVersions: 0 };
    const ids = events.map((e) => e.id);
    const parts = await this.store.query<{ p: string }>(
      `SELECT DISTINCT toString(toYYYYMM(received_at)) AS p FROM ${this.store.table('events')}
       WHERE tenant_id = {tenant:String} AND id IN {ids:Array(UUID)}`,
      { tenant, ids },
    );
    const table = this.store.table(this.store.cluster ? 'events_local' : 'events');
    const cluster = this.store.cluster ? ` ON CLUSTER ${this.store.cluster}` : '';
    for (const { p } of parts) {
      if (!/^\d{6}$/.test(p)) continue;
      await this.store.command(`OPTIMIZE TABLE ${table}${cluster} PARTITION ${p} FINAL`);
    }
    return { oldVersions: await this.oldVersions(tenant, events) };
  }

  /** Versions of the erased rows older than the erased one, still on disk (not merged yet). */
  async oldVersions(tenant: string, events: readonly ErasedEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    const rows = await this.store.query<{ n: number | string }>(
      `SELECT count() - uniqExact(id, hash) AS n FROM ${this.store.table('events')}
       WHERE tenant_id = {tenant:String} AND id IN {ids:Array(UUID)}`,
      { tenant, ids: events.map((e) => e.id) },
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** The erasure markers of tenants, for the sink. */
  async markers(tenants: readonly string[]): Promise<Map<string, ErasureMarker[]>> {
    const out = new Map<string, ErasureMarker[]>();
    if (tenants.length === 0) return out;
    const rows = await this.store.query<{ tn: string; eid: string; d: string[]; at: string }>(
      `SELECT tenant_id AS tn, erasure_id AS eid, any(subject_digests) AS d, toString(min(erased_at)) AS at
       FROM ${this.store.table('erasures')}
       WHERE tenant_id IN {tenants:Array(String)}
       GROUP BY tenant_id, erasure_id`,
      { tenants },
    );
    for (const r of rows) {
      const list = out.get(r.tn) ?? [];
      list.push({ erasureId: r.eid, digests: new Set(r.d), erasedAt: fromChTime(r.at) });
      out.set(r.tn, list);
    }
    return out;
  }

  /** Signed receipts of the tenant's erasures, newest first. */
  async receipts(tenant: string): Promise<{ erasure: string; at: number; receipt: string }[]> {
    const rows = await this.store.query<{ eid: string; at: string; r: string }>(
      `SELECT erasure_id AS eid, toString(erased_at) AS at, receipt AS r
       FROM ${this.store.table('erasures')} FINAL
       WHERE tenant_id = {tenant:String} AND status = 'done'
       ORDER BY erased_at DESC`,
      { tenant },
    );
    return rows.map((r) => ({
      erasure: r.eid,
      at: fromChTime(r.at),
      receipt: r.r,
    }));
  }

  // ---- internals --------------------------------------------------------------------------

  private async planRow(row: StoredRow, forms: SubjectForms): Promise<PlannedEvent> {
    const { disclosures } = await this.privacy.plainDisclosures(row);
    const pseudonyms = parseJson<Record<string, string>>(row.pseudonyms, {});
    const roles = subjectRoles(row, disclosures, pseudonyms, forms);
    return { row, roles, paths: this.present(row, subjectPaths(row, roles, 'erase')) };
  }

  /** Of `paths`, those the row still holds a disclosure or a pseudonym for. */
  private present(row: StoredRow, paths: readonly string[]): string[] {
    const d = parseJson<Disclosures>(row.disclosures, {});
    const p = parseJson<Record<string, string>>(row.pseudonyms, {});
    return paths.filter((path) => d[path] !== undefined || p[path] !== undefined).sort();
  }

  private async corrections(tenant: string): Promise<StoredRow[]> {
    return this.store.query<StoredRow>(
      `SELECT * FROM ${this.store.table('events')} FINAL
       WHERE tenant_id = {tenant:String} AND corrects_id != '' AND startsWith(stream, 'vigil/admin/')`,
      { tenant },
    );
  }

  private async rowsById(tenant: string, ids: readonly string[]): Promise<Map<string, StoredRow>> {
    const out = new Map<string, StoredRow>();
    for (let i = 0; i < ids.length; i += BATCH) {
      const rows = await this.store.query<StoredRow>(
        `SELECT * FROM ${this.store.table('events')} FINAL
         WHERE tenant_id = {tenant:String} AND id IN {ids:Array(UUID)}`,
        { tenant, ids: [...new Set(ids.slice(i, i + BATCH))] },
      );
      for (const r of rows) out.set(`${r.id}\u0000${r.hash}`, r);
    }
    return out;
  }

  private async coveringHolds(
    tenant: string,
    forms: SubjectForms,
    events: readonly PlannedEvent[],
  ): Promise<LegalHold[]> {
    const active = await new LegalHolds(this.store).list(tenant);
    const named = new Set<string>();
    for (const e of events) {
      if (Number(e.row.legal_hold) !== 1) continue;
      for (const c of ['actor_id', 'target_id', 'subject_id'] as const) named.add(e.row[c]);
    }
    return active.filter(
      (h) =>
        h.subject === null ||
        forms.ids.includes(h.subject) ||
        forms.emails.includes(normalEmail(h.subject)) ||
        named.has(h.subject),
    );
  }

  /** The new version of a row without the disclosures of `paths`. */
  private async erasedVersion(
    row: StoredRow,
    paths: readonly string[],
  ): Promise<{ row: Record<string, unknown>; disclosures: number; derivedColumns: number }> {
    const next: Record<string, unknown> = { ...row };
    const erase = new Set(paths);
    let removed = 0;
    const plain = parseJson<Disclosures>(row.disclosures, {});
    // A disclosed value nested beyond the depth limit (a row stored before PROTOCOL.md §3.5)
    // cannot be serialised again: it goes with the person's, or the erasure could never finish.
    for (const [p, d] of Object.entries(plain))
      if (jsonShapeProblem(d.value, parsePointer(p)?.length ?? 0, DEPTH_ONLY) !== undefined)
        erase.add(p);
    for (const p of erase) {
      if (plain[p] !== undefined) {
        delete plain[p];
        removed++;
      }
    }
    if (row.disclosures !== '') next['disclosures'] = JSON.stringify(plain);
    const pseudonyms = parseJson<Record<string, string>>(row.pseudonyms, {});
    const protectedPaths = Object.keys(pseudonyms).filter((p) => erase.has(p));
    if (protectedPaths.length > 0) {
      for (const p of protectedPaths) delete pseudonyms[p];
      removed += protectedPaths.length;
      next['pseudonyms'] = Object.keys(pseudonyms).length === 0 ? '' : JSON.stringify(pseudonyms);
      next['protected_disclosures'] = await this.reseal(row, erase, Object.keys(pseudonyms).length);
    }
    const columns = PERSONAL_COLUMNS as Readonly<Record<string, PersonalColumn>>;
    for (const p of erase) {
      const column = columns[p];
      if (column !== undefined) next[column] = absentValue(column);
    }
    let derivedColumns = 0;
    for (const [source, derived] of Object.entries(DERIVED_PERSONAL_COLUMNS)) {
      if (!erase.has(source)) continue;
      for (const c of derived) {
        const before = row[c];
        if (before !== undefined && before !== null && before !== '') derivedColumns++;
        next[c] = ERASED_VALUES[c];
      }
    }
    next['erased_paths'] = [...new Set([...row.erased_paths, ...erase])].sort();
    next['row_version'] = Number(row.row_version) + 1;
    return { row: next, disclosures: removed, derivedColumns };
  }

  /** `protected_disclosures` without the erased paths; unreadable ones (key destroyed) stay as they are. */
  private async reseal(row: StoredRow, erase: ReadonlySet<string>, left: number): Promise<string> {
    if (left === 0) return '';
    const key = await this.privacy.keys.get(row.tenant_id, row.pseudonym_key);
    if (!key) return row.protected_disclosures;
    const where = { tenant: row.tenant_id, id: row.id, hash: row.hash };
    const opened = openDisclosures(row.protected_disclosures, key.encryptionKey, where);
    for (const p of erase) delete opened[p];
    return sealDisclosures(opened, key.encryptionKey, where);
  }
}
