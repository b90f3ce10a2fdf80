import {
  derivedEventId,
  randomSaltSource,
  sealEvent,
  ZERO_HASH,
  type EventInput,
} from '@vigil/protocol';
import type { DetectionEvent } from '@vigil/detect';
import { eventRow, type EventFlag } from '../store/rows.js';
import type { Store } from '../store/store.js';
import type { RowPrivacy } from '../privacy/pseudonyms.js';

const salts = randomSaltSource();

/** One event of a detection test, with the enrichment the sink would have derived. */
export interface DetectInput {
  readonly tenant: string;
  /** Event time, epoch ms. */
  readonly time: number;
  /** When the collector received it (default: the event time): later for late or backfill. */
  readonly receivedAt?: number;
  readonly action: string;
  readonly outcome?: 'success' | 'failure' | 'denied' | 'error';
  readonly category?: string;
  readonly actor: { readonly type: string; readonly id: string };
  readonly target?: { readonly type: string; readonly id: string };
  readonly ip?: string;
  readonly country?: string;
  readonly lat?: number;
  readonly lon?: number;
  readonly asn?: number;
  readonly browser?: string;
  readonly device?: string;
  readonly flags?: readonly EventFlag[];
  readonly restricted?: boolean;
}

/** The id a test event gets: a UUIDv7 of its time, unique by tenant and position. */
export function inputId(e: DetectInput, index: number): string {
  return derivedEventId(e.time, `${e.tenant}/${index}`);
}

/**
 * Seals the events (one chain per tenant, in the order given) and stores them as the sink
 * would, with the derived columns filled from the inputs. Returns the events as the live
 * detector would see them (built here by hand, not through the store).
 */
export async function storeDetectEvents(
  store: Store,
  inputs: readonly DetectInput[],
  /** The pseudonymisation of one tenant's rows, as the sink applies it. */
  privacy?: RowPrivacy,
): Promise<DetectionEvent[]> {
  const chains = new Map<string, { seq: number; prev: string }>();
  const rows: object[] = [];
  const out: DetectionEvent[] = [];
  inputs.forEach((e, index) => {
    const stream = `app/${e.tenant}`;
    const chain = chains.get(stream) ?? { seq: 0, prev: ZERO_HASH };
    const input: EventInput & { id: string; time: string } = {
      id: inputId(e, index),
      time: new Date(e.time).toISOString(),
      action: e.action,
      category: (e.category ?? 'authentication') as EventInput['category'],
      outcome: e.outcome ?? 'success',
      actor: e.actor,
      ...(e.target ? { target: e.target } : {}),
      ...(e.ip ? { context: { ip: e.ip } } : {}),
    };
    const { event, record } = sealEvent(input, { stream, ...chain }, salts);
    chains.set(stream, { seq: chain.seq + 1, prev: event.hash });
    const row = eventRow(
      event,
      record,
      event.disclosures,
      {
        tenantId: e.tenant,
        receivedAt: e.receivedAt ?? e.time,
        keyId: 'k',
        source: 'sealed',
        submittedDigest: '',
        logPartition: 0,
        logOffset: index,
        logIndex: 0,
        expiresAt: Math.floor(e.time / 1000) + 400 * 86_400,
        flags: [...(e.flags ?? [])],
      },
      privacy && privacy.tenant === e.tenant ? privacy : undefined,
    );
    Object.assign(row, {
      geo_country: e.country ?? '',
      geo_latitude: e.lat ?? null,
      geo_longitude: e.lon ?? null,
      geo_asn: e.asn ?? null,
      ua_browser: e.browser ?? '',
      ua_device: e.device ?? '',
      ...(e.restricted ? { restricted_by: ['rst_0000000000000001'] } : {}),
    });
    rows.push(row);
    const geo =
      e.country !== undefined && e.lat !== undefined && e.lon !== undefined
        ? { country: e.country, lat: Math.fround(e.lat), lon: Math.fround(e.lon) }
        : undefined;
    const ua =
      e.browser || e.device
        ? {
            ...(e.browser ? { family: e.browser } : {}),
            ...(e.device ? { device: e.device } : {}),
          }
        : undefined;
    const enrichment =
      geo || e.asn !== undefined || ua
        ? {
            ...(geo ? { geo } : {}),
            ...(e.asn !== undefined ? { asn: { number: e.asn } } : {}),
            ...(ua ? { ua } : {}),
          }
        : undefined;
    out.push({
      tenant: e.tenant,
      id: input.id,
      time: e.time,
      action: e.action,
      category: input.category,
      outcome: input.outcome,
      actor: e.actor,
      ...(e.target ? { target: e.target } : {}),
      ...(e.ip ? { context: { ip: e.ip } } : {}),
      ...(enrichment ? { enrichment } : {}),
      stream,
      seq: chain.seq,
      hash: event.hash,
      ...(e.flags && e.flags.length > 0 ? { flags: e.flags } : {}),
    });
  });
  for (let i = 0; i < rows.length; i += 5000)
    await store.insert(store.table('events'), rows.slice(i, i + 5000));
  return out;
}
