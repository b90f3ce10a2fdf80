import {
  CORRECTION_ACTION,
  applyCorrections,
  committablePathProblem,
  correctablePathProblem,
  correctedFields,
  correctedValuePath,
  type ErrorDetail,
  type EventInput,
  type JsonValue,
} from '@vigil/protocol';
import { InvalidQueryError, QueryError, QueryErrorCodes } from '../errors.js';
import { openRecord } from '../store/rows.js';
import type { Store } from '../store/store.js';

/**
 * Rectification (GDPR Art. 16; PROTOCOL.md §18). A correction is recorded as a new event on the
 * tenant's admin stream (`vigil/admin/…`, which only Vigil writes), naming the event it corrects
 * by id and hash; the original is never touched and stays provable. Searches show events with
 * the corrections recorded there applied, oldest first, unless the original is asked for. A
 * `corrects` member that an application sends on its own events is kept and shown, but not
 * applied: an ingest key must not be able to rewrite what the log shows of other events.
 */

/** Streams whose corrections searches apply: written by Vigil alone (PROTOCOL.md §6.1). */
export const TRUSTED_CORRECTIONS_SQL = "startsWith(stream, 'vigil/admin/')";

export interface CorrectionRequest {
  /** The id of the event to correct. */
  readonly event: string;
  /** Its hash, when several stored copies share the id (a fork). */
  readonly hash?: string;
  /** New values by JSON pointer into the event: `{"/actor/email": "…"}`. */
  readonly fields: Readonly<Record<string, JsonValue>>;
  readonly reason: string;
}

/**
 * The correction event to record for a request: checks that the event exists in the tenant and
 * that every path may be corrected; corrected values at committable paths are committed
 * (PROTOCOL.md §5.1), so they can be erased with the person they concern.
 */
export async function correctionEvent(
  store: Store,
  tenant: string,
  request: CorrectionRequest,
): Promise<EventInput> {
  const details: ErrorDetail[] = [];
  const paths = Object.keys(request.fields);
  if (paths.length === 0)
    details.push({ path: '/fields', message: 'must name at least one field' });
  for (const path of paths) {
    const problem = correctablePathProblem(path);
    if (problem)
      details.push({
        path: `/fields/${path.replaceAll('~', '~0').replaceAll('/', '~1')}`,
        message: `${path} ${problem}`,
      });
  }
  if (details.length > 0) throw new InvalidQueryError('invalid correction', details);
  const rows = await store.query<{ h: string }>(
    `SELECT hash AS h FROM ${store.table('events')} FINAL
     WHERE tenant_id = {tenant:String} AND id = {id:UUID} AND ({hash:String} = '' OR hash = {hash:String})`,
    { tenant, id: request.event, hash: request.hash ?? '' },
  );
  if (rows.length === 0)
    throw new QueryError(
      QueryErrorCodes.EVENT_NOT_FOUND,
      `no stored event ${request.event}${request.hash ? ` with hash ${request.hash}` : ''} in this tenant`,
      { status: 404 },
    );
  if (rows.length > 1)
    throw new InvalidQueryError('the event id names several stored copies; give its hash', [
      { path: '/hash', message: `one of ${rows.map((r) => r.h).join(', ')}` },
    ]);
  const hash = (rows[0] as { h: string }).h;
  const personal = paths
    .filter((p) => committablePathProblem(p) === undefined)
    .map(correctedValuePath)
    .sort();
  return {
    action: CORRECTION_ACTION,
    category: 'data_change',
    outcome: 'success',
    actor: { type: 'system', id: 'vigil' },
    target: { type: 'event', id: request.event },
    corrects: { event: request.event, hash },
    metadata: { corrected: { ...request.fields }, reason: request.reason },
    ...(personal.length > 0 ? { personal } : {}),
  };
}

/** One trusted correction of an event (PROTOCOL.md §18.1). */
export interface EventCorrection {
  /** The id of the correction event. */
  readonly id: string;
  /** The hash its `corrects` names: the copy of the event it is meant for. */
  readonly hash: string;
  /** Its corrected fields, opened (an erased value reads `null`). */
  readonly fields: ReadonlyMap<string, JsonValue>;
}

/**
 * The trusted corrections recorded for the given event ids, by corrected event id, each list in
 * the order §18.2 applies them (time, then the id as text: ClickHouse orders UUIDs by their
 * last eight bytes first).
 */
export async function correctionsOf(
  store: Store,
  tenant: string,
  eventIds: readonly string[],
): Promise<ReadonlyMap<string, readonly EventCorrection[]>> {
  const ids = [...new Set(eventIds)];
  const byEvent = new Map<string, EventCorrection[]>();
  if (ids.length === 0) return byEvent;
  const rows = await store.query<{
    cid: string;
    ch: string;
    rid: string;
    rec: string;
    disc: string;
    ps: string;
  }>(
    `SELECT corrects_id AS cid, JSONExtractString(record, 'corrects', 'hash') AS ch,
       toString(id) AS rid, record AS rec, disclosures AS disc, pseudonyms AS ps
     FROM ${store.table('events')} FINAL
     WHERE tenant_id = {tenant:String} AND corrects_id IN {ids:Array(String)} AND ${TRUSTED_CORRECTIONS_SQL}
     ORDER BY time, toString(id)`,
    { tenant, ids },
  );
  for (const r of rows) {
    const list = byEvent.get(r.cid) ?? [];
    list.push({ id: r.rid, hash: r.ch, fields: correctedFields(openRecord(r.rec, r.disc, r.ps)) });
    byEvent.set(r.cid, list);
  }
  return byEvent;
}

/**
 * Applies the trusted corrections of the given events to their views (in place of each view, a
 * corrected copy with `correctedBy`, the correction ids in order). With `hashOf`, a correction
 * applies only to the copy whose hash its `corrects` names (§18.1: another copy of the id, a
 * fork, is not meant); without it, to every view of the id.
 */
export async function correctViews<T extends Record<string, unknown>>(
  store: Store,
  tenant: string,
  views: readonly T[],
  idOf: (view: T) => string,
  hashOf?: (view: T) => string,
): Promise<(T & { correctedBy?: string[] })[]> {
  const byEvent = await correctionsOf(store, tenant, views.map(idOf));
  if (byEvent.size === 0) return [...views];
  return views.map((view) => {
    const hash = hashOf?.(view);
    const all = byEvent.get(idOf(view));
    const fixes = hash === undefined ? all : all?.filter((f) => f.hash === hash);
    if (!fixes || fixes.length === 0) return view;
    return {
      ...applyCorrections(
        view,
        fixes.map((f) => f.fields),
      ),
      correctedBy: fixes.map((f) => f.id),
    };
  });
}
