import { randomBytes } from 'node:crypto';
import { formatTime } from '@vigil/protocol';
import { csvHeader, csvRows, csvTime, csvTimeHeader, type CsvOptions } from '../export/csv.js';
import type { DocumentSigner } from '../privacy/export.js';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import {
  encodeEvidence,
  evidenceFileOf,
  evidenceSigningInput,
  EVIDENCE_TYPE,
  signedEvidence,
  type SignedEvidenceManifest,
} from './evidence.js';
import { REVIEW_COLUMNS, reviewCells } from './export.js';
import { ACCESS_TABLE } from './projection.js';
import type { AccessReviewer, ReviewRow, ReviewScope, ReviewSnapshot } from './review.js';

/**
 * Review campaigns (issue 12 item 4): a snapshot of the rights held at a date, frozen when the
 * campaign starts; decisions on each right (approve, revoke, modify; reviewer; justification),
 * each recorded as an audit event by the caller before it is stored; what is still undecided;
 * and at the close an evidence pack: the snapshot, the decisions, the state after remediation
 * (which revocations really happened, from later `access` events, and when), leavers against the
 * removal of their rights, and a signed manifest (access/evidence.ts).
 */

export const DECISIONS = ['approve', 'revoke', 'modify'] as const;
export type Decision = (typeof DECISIONS)[number];

export interface Campaign {
  readonly id: string;
  readonly tenant: string;
  readonly asOf: number;
  /** T0 of the snapshot: the earliest event of the tenant retained when it started. */
  readonly trackingSince: number | null;
  readonly scope: ReviewScope;
  readonly status: 'open' | 'closed';
  readonly startedAt: number;
  readonly startedBy: string;
  readonly closedAt: number | null;
}

export interface ReviewItem {
  readonly itemId: string;
  readonly row: ReviewRow;
}

export interface DecisionInput {
  readonly item: string;
  readonly decision: Decision;
  readonly reviewer: string;
  readonly justification: string;
}

export interface StoredDecision extends DecisionInput {
  readonly decidedAt: number;
  readonly keyId: string;
  readonly eventId: string;
}

/** The columns a reviewer fills in the worksheet (after the review's own). */
export const DECISION_COLUMNS = ['item_id', 'decision', 'reviewer', 'justification'] as const;

export function newCampaignId(): string {
  return `rev_${randomBytes(8).toString('hex')}`;
}

/** A right's id within a campaign: its grant event and the right (one event grants at most a role and a permission). */
export function itemIdOf(row: Pick<ReviewRow, 'grantEvent' | 'rightKind' | 'right'>): string {
  return `${row.grantEvent}/${row.rightKind}/${row.right}`;
}

interface CampaignRow {
  campaign_id: string;
  as_of: string;
  tracking_since: string | null;
  scope: string;
  status: string;
  started_at: string;
  started_by: string;
  closed_at: string | null;
  manifest: string;
  version: number | string;
}

const BATCH = 10_000;

export class ReviewCampaigns {
  constructor(
    private readonly store: Store,
    private readonly reviewer: AccessReviewer,
  ) {}

  /** Snapshots the rights held at `asOf` into a new open campaign. */
  async start(
    tenant: string,
    asOf: number,
    scope: ReviewScope,
    keyId: string,
    id: string,
    now = Date.now(),
  ): Promise<{ campaign: Campaign; snapshot: ReviewSnapshot }> {
    const snapshot = await this.reviewer.snapshot(tenant, asOf, scope);
    const rows = snapshot.rows.map((r, position) => ({
      tenant_id: tenant,
      campaign_id: id,
      position,
      item_id: itemIdOf(r),
      subject_key: r.subjectKey,
      subject_id: r.subjectId,
      subject_name: r.subjectName,
      erased: r.subjectState === 'erased' ? 1 : 0,
      row: JSON.stringify({ ...r, subjectId: '', subjectName: '' }),
    }));
    for (let i = 0; i < rows.length; i += BATCH)
      await this.store.insert(this.store.table('review_items'), rows.slice(i, i + BATCH));
    const campaign: Campaign = {
      id,
      tenant,
      asOf,
      trackingSince: snapshot.trackingSince,
      scope,
      status: 'open',
      startedAt: now,
      startedBy: keyId,
      closedAt: null,
    };
    await this.write(campaign, '', 1);
    return { campaign, snapshot };
  }

  async get(tenant: string, id: string): Promise<Campaign | undefined> {
    return (await this.rows(tenant, id))[0];
  }

  async list(tenant: string): Promise<Campaign[]> {
    return this.rows(tenant);
  }

  /** The campaign's items in snapshot order (an erased subject shows blank). */
  async items(tenant: string, id: string): Promise<ReviewItem[]> {
    const rows = await this.store.query<{
      item_id: string;
      subject_id: string;
      subject_name: string;
      erased: number | string;
      row: string;
    }>(
      `SELECT item_id, subject_id, subject_name, erased, row FROM ${this.store.table('review_items')}
       WHERE tenant_id = {tenant:String} AND campaign_id = {id:String} ORDER BY position`,
      { tenant, id },
    );
    return rows.map((r) => {
      const row = JSON.parse(r.row) as ReviewRow;
      const erased = Number(r.erased) === 1;
      return {
        itemId: r.item_id,
        row: {
          ...row,
          subjectId: r.subject_id,
          subjectName: r.subject_name,
          ...(erased ? { subjectState: 'erased' as const } : {}),
        },
      };
    });
  }

  /** The latest decision on each item. */
  async decisions(tenant: string, id: string): Promise<Map<string, StoredDecision>> {
    const rows = await this.store.query<{
      item_id: string;
      decision: Decision;
      reviewer: string;
      justification: string;
      at: string;
      key_id: string;
      event_id: string;
    }>(
      `SELECT item_id, decision, reviewer, justification, toString(decided_at) AS at, key_id, event_id
       FROM ${this.store.table('review_decisions')}
       WHERE tenant_id = {tenant:String} AND campaign_id = {id:String}
       ORDER BY decided_at, event_id`,
      { tenant, id },
    );
    const out = new Map<string, StoredDecision>();
    for (const r of rows)
      out.set(r.item_id, {
        item: r.item_id,
        decision: r.decision,
        reviewer: r.reviewer,
        justification: r.justification,
        decidedAt: fromChTime(r.at),
        keyId: r.key_id,
        eventId: r.event_id,
      });
    return out;
  }

  /** Stores decisions already recorded as audit events. */
  async decide(tenant: string, id: string, decisions: readonly StoredDecision[]): Promise<void> {
    await this.store.insert(
      this.store.table('review_decisions'),
      decisions.map((d) => ({
        tenant_id: tenant,
        campaign_id: id,
        item_id: d.item,
        decision: d.decision,
        reviewer: d.reviewer,
        justification: d.justification,
        decided_at: toChTime(formatTime(d.decidedAt)),
        key_id: d.keyId,
        event_id: d.eventId,
      })),
    );
  }

  /** The worksheet: the snapshot's columns, then item_id and the latest decision of each item. */
  async worksheet(tenant: string, campaign: Campaign, options: CsvOptions = {}): Promise<string> {
    const items = await this.items(tenant, campaign.id);
    const decided = await this.decisions(tenant, campaign.id);
    return (
      csvHeader([...REVIEW_COLUMNS.map(([c]) => c), ...DECISION_COLUMNS], options) +
      csvRows(
        items.map((i) => {
          const d = decided.get(i.itemId);
          return [
            ...reviewCells(i.row, campaign),
            i.itemId,
            d?.decision ?? '',
            d?.reviewer ?? '',
            d?.justification ?? '',
          ];
        }),
      )
    );
  }

  /**
   * Closes the campaign: writes the evidence pack and signs its manifest. The files, by name:
   * snapshot.csv, decisions.csv, remediation.csv, leavers.csv.
   */
  async close(
    tenant: string,
    campaign: Campaign,
    signer: DocumentSigner,
    now = Date.now(),
  ): Promise<{ manifest: SignedEvidenceManifest; files: Record<string, string> }> {
    const items = await this.items(tenant, campaign.id);
    const decided = await this.decisions(tenant, campaign.id);
    const after = await this.revocations(
      tenant,
      items.map((i) => i.row),
    );
    const leftAt = await this.leavers(
      tenant,
      [...new Set(items.map((i) => i.row.subjectKey))],
      now,
    );
    const files: Record<string, string> = {
      'snapshot.csv':
        csvHeader([...REVIEW_COLUMNS.map(([c]) => c), 'item_id'], {}) +
        csvRows(items.map((i) => [...reviewCells(i.row, campaign), i.itemId])),
      'decisions.csv':
        csvHeader(
          [
            'item_id',
            'subject_key',
            'right',
            'decision',
            'reviewer',
            'justification',
            csvTimeHeader('decided_at'),
            'audit_event',
          ],
          {},
        ) +
        csvRows(
          items
            .filter((i) => decided.has(i.itemId))
            .map((i) => {
              const d = decided.get(i.itemId) as StoredDecision;
              return [
                i.itemId,
                i.row.subjectKey,
                i.row.right,
                d.decision,
                d.reviewer,
                d.justification,
                csvTime(d.decidedAt),
                d.eventId,
              ];
            }),
        ),
      'remediation.csv':
        csvHeader(
          [
            'item_id',
            'subject_key',
            'right',
            'resource_type',
            'resource_id',
            'decision',
            csvTimeHeader('revoked_at'),
            'revoking_event',
            'outcome',
          ],
          {},
        ) +
        csvRows(
          items.map((i) => {
            const d = decided.get(i.itemId);
            const r = after.get(i.itemId);
            const revoked = r !== undefined && r.at <= now;
            const outcome =
              d?.decision === 'revoke'
                ? revoked
                  ? 'revoked as decided'
                  : 'revocation pending'
                : revoked
                  ? 'revoked'
                  : d === undefined
                    ? 'undecided, still held'
                    : 'kept';
            return [
              i.itemId,
              i.row.subjectKey,
              i.row.right,
              i.row.resourceType,
              i.row.resourceId,
              d?.decision ?? '',
              revoked ? csvTime(r.at) : '',
              revoked ? r.event : '',
              outcome,
            ];
          }),
        ),
      'leavers.csv':
        csvHeader(
          [
            'item_id',
            'subject_key',
            'right',
            csvTimeHeader('left_at'),
            csvTimeHeader('removed_at'),
            'days_to_removal',
          ],
          {},
        ) +
        csvRows(
          items
            .filter((i) => leftAt.has(i.row.subjectKey))
            .map((i) => {
              const left = leftAt.get(i.row.subjectKey) as number;
              const r = after.get(i.itemId);
              const removed = r !== undefined && r.at <= now ? r.at : undefined;
              return [
                i.itemId,
                i.row.subjectKey,
                i.row.right,
                csvTime(left),
                csvTime(removed),
                removed === undefined
                  ? 'still held'
                  : String(Math.floor((removed - left) / 86_400_000)),
              ];
            }),
        ),
    };
    const text = encodeEvidence({
      v: 1,
      type: EVIDENCE_TYPE,
      tenant,
      campaign: campaign.id,
      asOf: formatTime(campaign.asOf),
      startedAt: formatTime(campaign.startedAt),
      closedAt: formatTime(now),
      keyId: signer.keyId,
      files: Object.entries(files).map(([name, content]) => evidenceFileOf(name, content)),
    });
    const manifest = signedEvidence(text, await signer.sign(evidenceSigningInput(text)));
    await this.write({ ...campaign, status: 'closed', closedAt: now }, JSON.stringify(manifest), 2);
    return { manifest, files };
  }

  // ---- internals --------------------------------------------------------------------------

  /** The first revocation at or after each item's grant, from the projection (events to now). */
  private async revocations(
    tenant: string,
    rows: readonly ReviewRow[],
  ): Promise<Map<string, { at: number; event: string }>> {
    const out = new Map<string, { at: number; event: string }>();
    const events = [...new Set(rows.map((r) => r.grantEvent))];
    if (events.length === 0) return out;
    const table = this.store.table(ACCESS_TABLE);
    const found = await this.store.query<{
      ev: string;
      rk: string;
      rn: string;
      at: string;
      rev: string;
    }>(
      `SELECT toString(g.event_id) AS ev, g.right_kind AS rk, g.right_name AS rn, toString(r.at) AS at,
              toString(r.event_id) AS rev
       FROM (SELECT * FROM ${table} FINAL WHERE tenant_id = {tenant:String} AND kind = 'grant'
             AND event_id IN {events:Array(UUID)}) AS g
       ASOF INNER JOIN (SELECT subject_key, right_kind, right_name, resource_type, resource_id, at, event_id
             FROM ${table} FINAL WHERE tenant_id = {tenant:String} AND kind = 'revoke') AS r
       ON g.subject_key = r.subject_key AND g.right_kind = r.right_kind AND g.right_name = r.right_name
          AND g.resource_type = r.resource_type AND g.resource_id = r.resource_id AND g.at <= r.at`,
      { tenant, events },
    );
    for (const f of found)
      out.set(`${f.ev}/${f.rk}/${f.rn}`, { at: fromChTime(f.at), event: f.rev });
    return out;
  }

  private async leavers(
    tenant: string,
    keys: readonly string[],
    now: number,
  ): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (keys.length === 0) return out;
    for (const r of await this.store.query<{ sk: string; la: string }>(
      `SELECT subject_key AS sk, toString(min(at)) AS la FROM ${this.store.table(ACCESS_TABLE)} FINAL
       WHERE tenant_id = {tenant:String} AND kind = 'leave' AND subject_key IN {keys:Array(String)}
         AND at <= {now:DateTime64(3, 'UTC')}
       GROUP BY subject_key`,
      { tenant, keys: [...keys], now: toChTime(formatTime(now)) },
    ))
      out.set(r.sk, fromChTime(r.la));
    return out;
  }

  private async rows(tenant: string, id?: string): Promise<Campaign[]> {
    const rows = await this.store.query<CampaignRow>(
      `SELECT campaign_id, toString(as_of) AS as_of, toString(tracking_since) AS tracking_since, scope, status, toString(started_at) AS started_at,
              started_by, toString(closed_at) AS closed_at, manifest, version
       FROM ${this.store.table('review_campaigns')} FINAL
       WHERE tenant_id = {tenant:String}${id !== undefined ? ' AND campaign_id = {id:String}' : ''}
       ORDER BY started_at DESC, campaign_id`,
      { tenant, id: id ?? '' },
    );
    return rows.map((r) => ({
      id: r.campaign_id,
      tenant,
      asOf: fromChTime(r.as_of),
      trackingSince: r.tracking_since ? fromChTime(r.tracking_since) : null,
      scope: JSON.parse(r.scope) as ReviewScope,
      status: r.status === 'closed' ? 'closed' : 'open',
      startedAt: fromChTime(r.started_at),
      startedBy: r.started_by,
      closedAt: r.closed_at ? fromChTime(r.closed_at) : null,
    }));
  }

  private async write(campaign: Campaign, manifest: string, version: number): Promise<void> {
    await this.store.insert(this.store.table('review_campaigns'), [
      {
        tenant_id: campaign.tenant,
        campaign_id: campaign.id,
        as_of: toChTime(formatTime(campaign.asOf)),
        tracking_since:
          campaign.trackingSince === null ? null : toChTime(formatTime(campaign.trackingSince)),
        scope: JSON.stringify(campaign.scope),
        status: campaign.status,
        started_at: toChTime(formatTime(campaign.startedAt)),
        started_by: campaign.startedBy,
        closed_at: campaign.closedAt === null ? null : toChTime(formatTime(campaign.closedAt)),
        manifest,
        version,
      },
    ]);
  }
}
