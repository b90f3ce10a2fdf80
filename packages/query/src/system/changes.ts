import type { Category, JsonObject, Outcome, Party } from '@vigil/protocol';
import { VigilError } from '@vigil/protocol';

/**
 * Changes to tenants, keys and retention are audit events themselves (issue 4: "every change
 * … is itself recorded as an audit event in a system stream"). The routes that make such
 * changes depend on this interface; the collector implements it on the log (SystemRecorder),
 * so the events are sealed, chained and stored like any other.
 */

/** Who made a change: the id of the API key that asked for it, or a part of Vigil itself. */
export type ChangeActor = string | { readonly system: string };

/**
 * A change as an event: the recorder adds id, time, chain and actor. A full EventInput is
 * accepted too (its `actor`, `id` and `time` are replaced: the recorder says who and when).
 */
export interface AdminChange {
  /** `tenant.created`, `api_key.revoked`, `retention.policy_changed` … (see ADMIN_ACTIONS). */
  readonly action: string;
  /** Default `admin`. */
  readonly category?: Category;
  /** What was changed: `{type: 'tenant' | 'api_key' | …, id}`. */
  readonly target?: Party;
  /** Default `success`; `error` when a recorded change could not be applied afterwards. */
  readonly outcome?: Outcome;
  /** Details of the change. Never a secret: records are kept for years and exported. */
  readonly metadata?: JsonObject;
  /**
   * Metadata paths (`/metadata/reason`) whose values may identify a person: they enter the
   * record as commitments and can be erased (PROTOCOL.md §5).
   */
  readonly personal?: readonly string[];
}

/** Where a recorded change sits: its event id and its place in the system stream's chain. */
export interface RecordedChange {
  readonly id: string;
  readonly stream: string;
  readonly seq: number;
  readonly hash: string;
}

export interface ChangeRecorder {
  /**
   * Records a change of `tenantId` (in that tenant's system stream) and resolves once the event
   * is durable in the log. Callers record before they apply a change and refuse the change
   * when this rejects, so no change happens without its event.
   */
  record(tenantId: string, actor: ChangeActor, change: AdminChange): Promise<RecordedChange>;
}

/** The actions of tenant and key changes. */
export const ADMIN_ACTIONS = {
  tenantCreated: 'tenant.created',
  tenantSuspended: 'tenant.suspended',
  tenantResumed: 'tenant.resumed',
  keyCreated: 'api_key.created',
  keyRevoked: 'api_key.revoked',
  keyRotated: 'api_key.rotated',
} as const;

/**
 * Records a change, then applies it: no change happens without its audit event (when recording
 * fails, the change is refused), and when applying fails after the event is durable, a second
 * event with outcome `error` says so. That event names the failure by its code only: a store's
 * message may quote the row it failed on. `failed` adds metadata to it from the first record's
 * result; a failure to record it goes to `unrecorded` (the original error is thrown either way).
 */
export async function recordThenApply<
  C extends { readonly outcome?: Outcome; readonly metadata?: JsonObject },
  R,
  T,
>(
  record: (change: C) => Promise<R>,
  change: C,
  apply: () => Promise<T>,
  options: { failed?: (recorded: R) => JsonObject; unrecorded?: (error: unknown) => void } = {},
): Promise<T> {
  const recorded = await record(change);
  try {
    return await apply();
  } catch (error) {
    await record({
      ...change,
      outcome: 'error',
      metadata: {
        ...change.metadata,
        ...options.failed?.(recorded),
        error: error instanceof VigilError ? error.code : 'internal error',
      },
    }).catch((failure: unknown) => options.unrecorded?.(failure));
    throw error;
  }
}
