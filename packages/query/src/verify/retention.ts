import { CATEGORIES } from '@vigil/protocol';
import { DEFAULTS_TENANT } from '../retention/policies.js';
import { fromChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';

/**
 * Whether retention explains a leaf whose event row is gone (PROTOCOL.md §13.6, §19.4). An
 * event is kept `days` of its category from its `received_at` (PROTOCOL.md §10), the days being
 * the tenant's policy, recorded append-only in `retention_policies` with the configured
 * defaults (tenant `*`); a later, shorter policy may be applied to stored events too. A tenant
 * legal hold keeps every event while it is active.
 *
 * A leaf does not say its event's category (the leaf binds tenant, stream, seq and event hash
 * only), so the shortest period any category had is taken: retention explains the deletion when
 * `received_at` + that period has passed, at some moment since the event arrived, outside every
 * tenant hold. A subject hold cannot be judged for an event that is gone (who it named is gone
 * with it). The leaf's `received_at` is not part of its hash; the tree check (tree.ts) refuses
 * receipt times out of log order, so backdating one leaf to make it look expired shows.
 */

const DAY_MS = 86_400_000;

interface Step {
  /** From this moment (epoch ms) … */
  readonly at: number;
  /** … the shortest period of any category, in days (undefined: nothing recorded yet). */
  readonly days: number | undefined;
}

export interface RetentionVerdict {
  readonly explained: boolean;
  /** Why, in words (the period and when it ran out, or why it does not explain it). */
  readonly reason: string;
}

export class RetentionExplainer {
  private constructor(
    private readonly steps: readonly Step[],
    /** Intervals [from, to) in which a tenant-wide hold was active. */
    private readonly holds: readonly (readonly [number, number])[],
    private readonly now: number,
  ) {}

  static async load(store: Store, tenant: string, now: number): Promise<RetentionExplainer> {
    const rows = await store.query<{ tn: string; cat: string; d: number | string; at: string }>(
      `SELECT tenant_id AS tn, category AS cat, days AS d, toString(changed_at) AS at
       FROM ${store.table('retention_policies')}
       WHERE tenant_id IN ({tenant:String}, {defaults:String})
       ORDER BY changed_at, change_id`,
      { tenant, defaults: DEFAULTS_TENANT },
    );
    // Replay the history: after each change, the shortest period in force over all categories.
    const own = new Map<string, number>();
    const defaults = new Map<string, number>();
    const steps: Step[] = [];
    for (const r of rows) {
      const days = Number(r.d);
      const target = r.tn === DEFAULTS_TENANT ? defaults : own;
      if (days > 0) target.set(r.cat, days);
      else target.delete(r.cat);
      let shortest: number | undefined;
      for (const category of CATEGORIES) {
        const d = own.get(category) ?? defaults.get(category);
        if (d !== undefined) shortest = shortest === undefined ? d : Math.min(shortest, d);
      }
      steps.push({ at: fromChTime(r.at), days: shortest });
    }
    const holdRows = await store.query<{ hid: string; subj: string; ch: string; at: string }>(
      `SELECT hold_id AS hid, subject_id AS subj, change AS ch, toString(at) AS at
       FROM ${store.table('legal_holds')}
       WHERE tenant_id = {tenant:String} ORDER BY at`,
      { tenant },
    );
    const placed = new Map<string, number>();
    const holds: [number, number][] = [];
    for (const h of holdRows) {
      if (h.subj !== '') continue;
      if (h.ch === 'placed') placed.set(h.hid, fromChTime(h.at));
      else if (h.ch === 'released' && placed.has(h.hid)) {
        holds.push([placed.get(h.hid) as number, fromChTime(h.at)]);
        placed.delete(h.hid);
      }
    }
    for (const from of placed.values()) holds.push([from, Infinity]);
    return new RetentionExplainer(steps, holds, now);
  }

  /** The shortest period in force at `at`. */
  private daysAt(at: number): number | undefined {
    let days: number | undefined;
    for (const s of this.steps) {
      if (s.at > at) break;
      days = s.days;
    }
    return days;
  }

  /** Whether [from, now] is entirely inside tenant holds. */
  private heldThroughout(from: number): boolean {
    let covered = from;
    const sorted = [...this.holds].sort((a, b) => a[0] - b[0]);
    for (const [start, end] of sorted) {
      if (start > covered) break;
      if (end > covered) covered = end;
      if (covered >= this.now) return true;
    }
    return covered >= this.now;
  }

  explain(receivedAt: number): RetentionVerdict {
    if (!Number.isFinite(receivedAt) || receivedAt > this.now)
      return { explained: false, reason: 'its receipt time is in the future' };
    // The period in force when it arrived, and any shorter one set since (which may have been
    // applied to stored events: `PUT /v1/admin/retention?apply=stored`).
    let shortest = this.daysAt(receivedAt);
    for (const s of this.steps) {
      if (s.at <= receivedAt || s.at > this.now || s.days === undefined) continue;
      shortest = shortest === undefined ? s.days : Math.min(shortest, s.days);
    }
    if (shortest === undefined)
      return {
        explained: false,
        reason: 'no retention policy is recorded for the time it was received',
      };
    const expiry = receivedAt + shortest * DAY_MS;
    if (expiry > this.now)
      return {
        explained: false,
        reason: `received ${new Date(receivedAt).toISOString()}; no period in force since (shortest ${shortest} days) has run out`,
      };
    if (this.heldThroughout(expiry))
      return {
        explained: false,
        reason: `a tenant legal hold has been active since its expiry (${new Date(expiry).toISOString()})`,
      };
    return {
      explained: true,
      reason: `its event expired ${shortest} days after receipt (the shortest period in force) and was deleted`,
    };
  }
}
