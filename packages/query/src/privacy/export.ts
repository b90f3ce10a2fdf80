import {
  applyCorrections,
  correctedFields,
  correctionRef,
  CORRECTED_MEMBER,
  formatTime,
  getAt,
  inclusionProofRanges,
  normalEmail,
  parsePointer,
  parseCheckpoint,
  verifyInclusion,
  BundleWriter,
  type BundleEntry,
  type CheckpointStatement,
  type Disclosures,
  type JsonObject,
  type SignedCheckpoint,
  type SubjectRef,
  type SubjectRole,
} from '@vigil/protocol';
import { AlertPrivacy, subjectAlert, subjectNeedles } from '../alerts/privacy.js';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { csvHeader, csvRows } from '../export/csv.js';
import { signedForm } from '../proof/checkpoint-store.js';
import { TreeInconsistentError } from '../proof/tree-store.js';
import type { ProofService } from '../proof/proofs.js';
import { derivedView, type DerivedColumnsOut } from '../store/derived.js';
import { fromChTime, openRecord, withinDepth } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { StoredRow } from './erasure.js';
import type { PrivacyService, SubjectForms } from './service.js';
import {
  correctionPaths,
  subjectParams,
  subjectPaths,
  subjectRoles,
  SUBJECT_MATCH_SQL,
} from './subject.js';

/**
 * Subject export (GDPR Art. 15, right of access; Art. 20, portability): every event a person is
 * a party of, and the corrections of those events, as JSON, as CSV, or as a signed bundle an
 * auditor verifies offline (PROTOCOL.md §16). Only the person's own values are disclosed; other
 * people's stay commitments (Art. 15(4)). Events are read and written page by page, so a person
 * with millions of events streams out in bounded memory.
 */

export type ExportFormat = 'json' | 'csv' | 'bundle';

/** Signs bundles and receipts: the checkpoint signer (checkpoint/signer.ts in the collector). */
export interface DocumentSigner {
  readonly keyId: string;
  sign(message: Uint8Array): Promise<Buffer>;
}

/** `Listed.correction` of an event that is the subject's both as a party and as a correction. */
const BOTH = 2;
/** Where a correction commits its corrected values (§18.1). */
const CORRECTED_PATH_PREFIX = `/metadata/${CORRECTED_MEMBER}/`;

interface Listed {
  readonly eid: string;
  readonly hash: string;
  readonly part: number | string;
  readonly li: number | string;
  readonly lh: string;
  readonly correction: number | string;
}

export interface PreparedExport {
  /** Events in the export. */
  readonly events: number;
  /** The signed checkpoint the bundle's proofs lead to (format bundle). */
  readonly checkpoint?: SignedCheckpoint;
  readonly contentType: string;
  readonly fileName: string;
  /** The export, in pieces, as it is built. */
  stream(): AsyncGenerator<string>;
}

const PAGE = 500;

/** CSV columns, in order (the view's fields; others' personal values appear as commitments). */
export const CSV_COLUMNS = [
  'time',
  'id',
  'action',
  'category',
  'outcome',
  'roles',
  'actor_type',
  'actor_id',
  'actor_name',
  'actor_email',
  'target_type',
  'target_id',
  'target_name',
  'target_email',
  'access_change',
  'access_role',
  'access_permission',
  'access_subject_id',
  'access_granted_by_id',
  'resource',
  'ip',
  'user_agent',
  'country',
  'city',
  'corrected_by',
  'stream',
  'seq',
  'hash',
  'metadata',
] as const;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};

function csvRow(item: SubjectItem): unknown[] {
  const v = item.corrected ?? item.event;
  const actor = obj(v['actor']);
  const target = obj(v['target']);
  const access = obj(v['access']);
  const context = obj(v['context']);
  const resource = obj(access['resource']);
  const geo = obj(item.geo);
  const cells: Record<(typeof CSV_COLUMNS)[number], unknown> = {
    time: v['time'],
    id: v['id'],
    action: v['action'],
    category: v['category'],
    outcome: v['outcome'],
    roles: item.roles.join(' '),
    actor_type: actor['type'],
    actor_id: actor['id'],
    actor_name: actor['name'],
    actor_email: actor['email'],
    target_type: target['type'],
    target_id: target['id'],
    target_name: target['name'],
    target_email: target['email'],
    access_change: access['change'],
    access_role: access['role'],
    access_permission: access['permission'],
    access_subject_id: obj(access['subject'])['id'],
    access_granted_by_id: obj(access['grantedBy'])['id'],
    resource:
      typeof resource['type'] === 'string' && typeof resource['id'] === 'string'
        ? `${resource['type']}/${resource['id']}`
        : '',
    ip: context['ip'],
    user_agent: context['userAgent'],
    country: geo['country'],
    city: geo['city'],
    corrected_by: (item.correctedBy ?? []).join(' '),
    stream: v['stream'],
    seq: v['seq'],
    hash: item.hash,
    metadata: v['metadata'],
  };
  return CSV_COLUMNS.map((c) => cells[c]);
}

/** One event as the person sees it in a JSON or CSV export. */
export interface SubjectItem {
  readonly roles: readonly SubjectRole[];
  readonly hash: string;
  readonly receivedAt: string;
  /** The record with the person's values disclosed; other personal values are commitments. */
  readonly event: Obj;
  /** Pointers shown as commitments (other people's values, or values erased or withheld). */
  readonly committed: readonly string[];
  /** The event with its corrections applied, when there are any. */
  readonly corrected?: Obj;
  readonly correctedBy?: readonly string[];
  readonly geo?: unknown;
  readonly ua?: unknown;
}

/** The record with only `paths` opened from `disclosures`; other personal fields keep their commitment. */
function personView(record: string, disclosures: Disclosures, paths: readonly string[]): Obj {
  const shown: Disclosures = {};
  for (const p of paths) {
    const d = disclosures[p];
    // Serialised just below: only as deep as the limit (a row stored before it may be deeper).
    if (d) shown[p] = { ...d, value: withinDepth(d.value, parsePointer(p)?.length ?? 0) as never };
  }
  const view = openRecord(record, JSON.stringify(shown));
  const parsed = JSON.parse(record) as Obj & { personal?: string[] };
  // openRecord reads an undisclosed field as null; here it keeps its commitment.
  for (const p of parsed.personal ?? []) {
    if (shown[p]) continue;
    const tokens = parsePointer(p);
    if (!tokens || tokens.length === 0) continue;
    let node: Obj = view;
    for (const t of tokens.slice(0, -1)) node = obj(node[t]);
    node[tokens[tokens.length - 1] as string] = getAt(parsed, tokens);
  }
  return view;
}

export class SubjectExporter {
  constructor(
    private readonly store: Store,
    private readonly privacy: PrivacyService,
    private readonly proofs: ProofService,
  ) {}

  /**
   * Finds the subject's events and, for a bundle, the checkpoint that covers them all (asking
   * `checkpointNow` for one when the newest does not). Errors here are answered as errors; the
   * export itself then streams.
   */
  async prepare(
    tenant: string,
    subject: SubjectRef,
    format: ExportFormat,
    options: {
      readonly signer?: DocumentSigner;
      readonly checkpointNow?: (tenant: string) => Promise<void>;
      readonly now?: number;
    } = {},
  ): Promise<PreparedExport> {
    const forms = await this.privacy.subjectForms(tenant, subject);
    const listed = await this.list(tenant, forms);
    const createdAt = formatTime(options.now ?? Date.now());
    const base = `subject-${createdAt.replace(/[:.]/g, '-')}`;
    if (format !== 'bundle') {
      return {
        events: listed.length,
        contentType: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json',
        fileName: `${base}.${format}`,
        stream: () =>
          format === 'csv'
            ? this.csv(tenant, forms, listed)
            : this.json(tenant, subject, forms, listed, createdAt),
      };
    }
    const signer = options.signer;
    if (!signer)
      throw new QueryError(
        QueryErrorCodes.SIGNER_UNAVAILABLE,
        'this process has no signing key for bundles; ask a server that runs a sink or has checkpoint.keyDir',
        { status: 503 },
      );
    let checkpoint = await this.covering(tenant, listed);
    if (!checkpoint && options.checkpointNow) {
      await options.checkpointNow(tenant);
      checkpoint = await this.covering(tenant, listed);
    }
    if (!checkpoint)
      throw new QueryError(
        QueryErrorCodes.PROOF_NOT_READY,
        "some of the subject's events are not covered by a signed checkpoint yet; retry after the next checkpoint",
        { status: 409, retriable: true },
      );
    const signed = checkpoint;
    return {
      events: listed.length,
      checkpoint: signed,
      contentType: 'application/x-ndjson',
      fileName: `${base}.vigil-bundle`,
      stream: () => this.bundle(tenant, subject, forms, listed, signed, createdAt, signer),
    };
  }

  /** The subject's events and the corrections of them, oldest first: ids and tree positions. */
  private async list(tenant: string, forms: SubjectForms): Promise<Listed[]> {
    const columns = `toString(id) AS eid, hash, log_partition AS part, leaf_index AS li, leaf_hash AS lh`;
    const events = await this.store.query<Listed>(
      `SELECT ${columns}, 0 AS correction FROM ${this.store.table('events')} FINAL
       WHERE tenant_id = {tenant:String} AND ${SUBJECT_MATCH_SQL}
       ORDER BY time, toString(id)`,
      { tenant, ...subjectParams(forms) },
    );
    const corrections = await this.store.query<Listed & { cid: string; ch: string; disc: string }>(
      `SELECT ${columns}, 1 AS correction, corrects_id AS cid,
         JSONExtractString(record, 'corrects', 'hash') AS ch, disclosures AS disc
       FROM ${this.store.table('events')} FINAL
       WHERE tenant_id = {tenant:String} AND corrects_id != '' AND startsWith(stream, 'vigil/admin/')
       ORDER BY time, toString(id)`,
      { tenant },
    );
    // A correction is the subject's when it corrects one of their events, by id and hash (the
    // one copy it names, §18.1), or when one of its corrected values names them (§16.3).
    const keys = new Set(events.map((e) => `${e.eid}\u0000${e.hash}`));
    const named = (c: { disc: string }): boolean =>
      c.disc !== '' &&
      Object.entries(JSON.parse(c.disc) as Disclosures).some(
        ([path, d]) =>
          path.startsWith(CORRECTED_PATH_PREFIX) &&
          typeof d.value === 'string' &&
          (forms.ids.includes(d.value) || forms.emails.includes(normalEmail(d.value))),
      );
    const theirs = corrections.filter((c) => keys.has(`${c.cid}\u0000${c.ch}`) || named(c));
    // A correction the subject is also a party of (an admin correcting their own event) is one
    // entry with both parts: an event appears once in a bundle (§16.5).
    const both = new Set(theirs.map((c) => `${c.eid}\u0000${c.hash}`));
    return [
      ...events.map((e) => (both.has(`${e.eid}\u0000${e.hash}`) ? { ...e, correction: BOTH } : e)),
      ...theirs.filter((c) => !keys.has(`${c.eid}\u0000${c.hash}`)),
    ];
  }

  /** The newest checkpoint whose trees hold every listed leaf. */
  private async covering(
    tenant: string,
    listed: readonly Listed[],
  ): Promise<SignedCheckpoint | undefined> {
    const latest = await this.proofs.checkpoints.latest(tenant);
    if (!latest) return undefined;
    const parsed = parseCheckpoint(latest.checkpoint);
    if (!parsed.ok)
      throw new TreeInconsistentError(`stored checkpoint ${latest.id}: ${parsed.problem}`);
    const heads = new Map(parsed.statement.partitions.map((h) => [h.partition, h.size]));
    const covered = listed.every(
      (l) => l.lh === '' || Number(l.li) < (heads.get(Number(l.part)) ?? 0),
    );
    return covered ? signedForm(latest) : undefined;
  }

  /** Full rows of a page of listed events, in the listed order, with the subject's part. */
  private async *items(
    tenant: string,
    forms: SubjectForms,
    listed: readonly Listed[],
  ): AsyncGenerator<
    {
      listed: Listed;
      row: StoredRow;
      item: SubjectItem;
      disclosures: Disclosures;
      paths: string[];
    }[]
  > {
    const corrected = new Map<
      string,
      { id: string; fields: ReturnType<typeof correctedFields>; time: string }[]
    >();
    const correctionsSeen = listed.filter((l) => Number(l.correction) !== 0);
    /** The subject's paths in each event written so far that they are a party of. */
    const parties = new Map<string, string[]>();
    for (let i = 0; i < listed.length; i += PAGE) {
      const page = listed.slice(i, i + PAGE);
      const rows = await this.store.query<StoredRow>(
        `SELECT * FROM ${this.store.table('events')} FINAL
         WHERE tenant_id = {tenant:String} AND id IN {ids:Array(UUID)}`,
        { tenant, ids: page.map((l) => l.eid) },
      );
      const byKey = new Map(rows.map((r) => [`${r.id}\u0000${r.hash}`, r]));
      // Corrections of this page's events, applied to their views (admin streams only).
      const pageIds = page.map((l) => l.eid);
      if (correctionsSeen.length > 0) {
        const fixes = await this.store.query<{
          cid: string;
          ch: string;
          rid: string;
          rec: string;
          disc: string;
          ps: string;
          tm: string;
        }>(
          `SELECT corrects_id AS cid, JSONExtractString(record, 'corrects', 'hash') AS ch,
             toString(id) AS rid, record AS rec, disclosures AS disc, pseudonyms AS ps, toString(time) AS tm
           FROM ${this.store.table('events')} FINAL
           WHERE tenant_id = {tenant:String} AND corrects_id IN {ids:Array(String)} AND startsWith(stream, 'vigil/admin/')
           ORDER BY time, toString(id)`,
          { tenant, ids: pageIds },
        );
        for (const f of fixes) {
          // The copy the correction names (§18.1): by id and by hash.
          if (!page.some((l) => l.eid === f.cid && l.hash === f.ch)) continue;
          const list = corrected.get(f.cid) ?? [];
          list.push({
            id: f.rid,
            fields: correctedFields(openRecord(f.rec, f.disc, f.ps)),
            time: f.tm,
          });
          corrected.set(f.cid, list);
        }
      }
      const out = [];
      for (const l of page) {
        const row = byKey.get(`${l.eid}\u0000${l.hash}`);
        if (!row) continue; // deleted by retention since it was listed
        const { disclosures } = await this.privacy.plainDisclosures(row);
        const pseudonyms =
          row.pseudonyms === '' ? {} : (JSON.parse(row.pseudonyms) as Record<string, string>);
        let roles: SubjectRole[] = [];
        let paths: string[] = [];
        const kind = Number(l.correction);
        if (kind !== 1) {
          roles = subjectRoles(row, disclosures, pseudonyms, forms);
          paths = subjectPaths(row, roles, 'export');
        }
        if (roles.length > 0) parties.set(`${row.id}\u0000${row.hash}`, paths);
        if (kind !== 0) {
          // The subject's only where a verifier can tell (§16.5): it corrects an event written
          // before it with the subject as a party, or a corrected value of it names them.
          const ref = correctionRef(JSON.parse(String(row['record'])) as { corrects?: unknown });
          const original = ref ? parties.get(`${ref.event}\u0000${ref.hash}`) : undefined;
          const naming = row.personal.filter((p) => {
            const v = disclosures[p]?.value;
            return (
              p.startsWith(CORRECTED_PATH_PREFIX) &&
              typeof v === 'string' &&
              (forms.ids.includes(v) || forms.emails.includes(normalEmail(v)))
            );
          });
          if (original || naming.length > 0) {
            const values = original ? correctionPaths(row.personal, original, 'export') : [];
            roles = [...roles, 'correction'];
            paths = [...new Set([...paths, ...values, ...naming])].sort();
          }
        }
        // Listed, but not provably theirs (the corrected event left the store since): left out.
        if (roles.length === 0) continue;
        const event = personView(String(row['record']), disclosures, paths);
        const fixes = corrected.get(row.id);
        const derived = roles.includes('actor')
          ? derivedView(row as unknown as DerivedColumnsOut)
          : {};
        const personal = row.personal;
        const item: SubjectItem = {
          roles,
          hash: row.hash,
          receivedAt: formatTime(fromChTime(String(row['received_at']))),
          event,
          committed: personal.filter((p) => !paths.includes(p) || !disclosures[p]),
          ...(fixes
            ? {
                corrected: applyCorrections(
                  event,
                  fixes.map((f) => f.fields),
                ),
                correctedBy: fixes.map((f) => f.id),
              }
            : {}),
          ...derived,
        };
        out.push({ listed: l, row, item, disclosures, paths });
      }
      yield out;
    }
  }

  private async *json(
    tenant: string,
    subject: SubjectRef,
    forms: SubjectForms,
    listed: readonly Listed[],
    createdAt: string,
  ): AsyncGenerator<string> {
    const head = {
      format: 'vigil.subject-export',
      v: 1,
      tenant,
      subject: {
        id: subject.id,
        emails: [...new Set((subject.emails ?? []).map(normalEmail))].sort(),
      },
      createdAt,
      events: listed.length,
    };
    const text = JSON.stringify(head);
    yield `${text.slice(0, -1)},"items":[`;
    let first = true;
    // The person's own values, as alerts may list them (addresses, agents …).
    const values = new Set<string>();
    for await (const page of this.items(tenant, forms, listed)) {
      let chunk = '';
      for (const { item, disclosures, paths } of page) {
        chunk += (first ? '\n' : ',\n') + JSON.stringify(item);
        first = false;
        for (const path of paths) {
          const v = disclosures[path]?.value;
          if (typeof v === 'string' && v !== '') values.add(v);
        }
      }
      if (chunk) yield chunk;
    }
    // The alerts that name the person or were raised from their events, with their values only.
    const needles = subjectNeedles(forms, values);
    const ids = listed.map((l) => l.eid);
    const own = new Set(ids);
    const alerts = (await new AlertPrivacy(this.store).ofSubject(tenant, needles, ids)).map((a) =>
      subjectAlert(a, needles, own),
    );
    yield `\n],"alerts":${JSON.stringify(alerts)}}\n`;
  }

  private async *csv(
    tenant: string,
    forms: SubjectForms,
    listed: readonly Listed[],
  ): AsyncGenerator<string> {
    // UTF-8 BOM so Excel reads the file as UTF-8.
    yield csvHeader(CSV_COLUMNS, { bom: true });
    for await (const page of this.items(tenant, forms, listed)) {
      yield csvRows(page.map((p) => csvRow(p.item)));
    }
  }

  private async *bundle(
    tenant: string,
    subject: SubjectRef,
    forms: SubjectForms,
    listed: readonly Listed[],
    checkpoint: SignedCheckpoint,
    createdAt: string,
    signer: DocumentSigner,
  ): AsyncGenerator<string> {
    const parsed = parseCheckpoint(checkpoint.checkpoint);
    if (!parsed.ok)
      throw new TreeInconsistentError(`checkpoint ${checkpoint.id}: ${parsed.problem}`);
    const statement = parsed.statement;
    const writer = new BundleWriter({
      v: 1,
      format: 'vigil.bundle',
      tenant,
      createdAt,
      subject: { id: subject.id, emails: (subject.emails ?? []).map(normalEmail) },
      checkpoint,
    });
    yield writer.header();
    for await (const page of this.items(tenant, forms, listed)) {
      const paths = await this.auditPaths(
        tenant,
        statement,
        page.map((p) => p.listed),
      );
      let chunk = '';
      for (const [i, p] of page.entries()) {
        const shown: Disclosures = {};
        for (const path of p.paths) if (p.disclosures[path]) shown[path] = p.disclosures[path];
        const enrichment: JsonObject = {};
        if (p.item.geo && shown['/context/ip']) enrichment['geo'] = p.item.geo as JsonObject;
        if (p.item.ua && shown['/context/userAgent']) enrichment['ua'] = p.item.ua as JsonObject;
        const entry: BundleEntry = {
          type: 'event',
          record: String(p.row['record']),
          hash: p.row.hash,
          disclosures: shown,
          roles: p.item.roles,
          proof: paths[i] ?? null,
          ...(Object.keys(enrichment).length > 0 ? { enrichment } : {}),
        };
        chunk += writer.entry(entry);
      }
      if (chunk) yield chunk;
    }
    yield await writer.finish(signer.keyId, (input) => signer.sign(input));
  }

  /** The audit paths of a page's leaves in the checkpoint's trees, checked against its roots. */
  private async auditPaths(
    tenant: string,
    statement: CheckpointStatement,
    page: readonly Listed[],
  ): Promise<({ partition: number; leafIndex: number; auditPath: string[] } | null)[]> {
    const out: ({ partition: number; leafIndex: number; auditPath: string[] } | null)[] = page.map(
      () => null,
    );
    const byPartition = new Map<number, number[]>();
    page.forEach((l, i) => {
      if (l.lh === '') return;
      const list = byPartition.get(Number(l.part)) ?? [];
      list.push(i);
      byPartition.set(Number(l.part), list);
    });
    for (const [partition, indexes] of byPartition) {
      const head = statement.partitions.find((h) => h.partition === partition);
      if (!head)
        throw new TreeInconsistentError(`checkpoint states no tree for partition ${partition}`);
      const ranges = indexes.map((i) => inclusionProofRanges(Number(page[i]?.li), head.size));
      const hashes = await this.proofs.trees.rangeHashes(tenant, partition, ranges.flat());
      let at = 0;
      for (const [k, i] of indexes.entries()) {
        const l = page[i] as Listed;
        const n = (ranges[k] as unknown[]).length;
        const path = hashes.slice(at, at + n);
        at += n;
        const leafIndex = Number(l.li);
        if (
          !verifyInclusion(
            leafIndex,
            head.size,
            Buffer.from(l.lh, 'hex'),
            path,
            Buffer.from(head.root, 'hex'),
          )
        )
          throw new TreeInconsistentError(
            `tenant ${tenant} partition ${partition}: the stored tree does not lead leaf ${leafIndex} to the root signed in checkpoint ${statement.keyId}`,
          );
        out[i] = { partition, leafIndex, auditPath: path.map((h) => h.toString('hex')) };
      }
    }
    return out;
  }
}
