import type { DetectionEvent, DetectionParty } from '@vigil/detect';
import type { DerivedColumns } from '../store/derived.js';

/**
 * The event as the detector sees it (`@vigil/detect`'s DetectionEvent), built from an opened
 * record (store/rows.ts openRecord: disclosed personal values in place, undisclosed or erased
 * ones `null`) and the enrichment columns the sink derives from the address and the user agent.
 *
 * The one mapping for the live detector (log records, enriched as the sink enriches them) and
 * for backtests (stored rows, whose derived columns are already there): the same event gives
 * the same DetectionEvent whichever way it was read, so a backtest raises what the detector
 * raised.
 */
export interface DetectionSource {
  readonly tenant: string;
  /** The opened record. */
  readonly view: Readonly<Record<string, unknown>>;
  /** Enrichment (the sink's derived columns); absent parts are '' or null as stored. */
  readonly derived?: Partial<DerivedColumns>;
  /** Integrity flags stored beside the record (PROTOCOL.md §6.2). */
  readonly flags?: readonly string[];
}

type Obj = Readonly<Record<string, unknown>>;

const obj = (value: unknown): Obj | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Obj) : undefined;

/** A present string, or undefined (null, '' and non-strings are absent). */
const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

function party(value: unknown): DetectionParty | undefined {
  const p = obj(value);
  if (!p) return undefined;
  return compact({
    type: str(p['type']) ?? '',
    id: str(p['id']),
    name: str(p['name']),
    email: str(p['email']),
  }) as DetectionParty;
}

/** The object without its undefined members (the engine reads absent as absent). */
function compact<T extends object>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = v;
  return out as T;
}

function enrichment(derived: Partial<DerivedColumns> | undefined): DetectionEvent['enrichment'] {
  if (!derived) return undefined;
  const lat = derived.geo_latitude;
  const lon = derived.geo_longitude;
  const country = str(derived.geo_country);
  const geo =
    country !== undefined && typeof lat === 'number' && typeof lon === 'number'
      ? // The store keeps coordinates as Float32: the live detector (the enrichment's Float64)
        // and a backtest (the stored value, read back as its shortest decimal) both round to
        // the same Float32, so distances and speeds are the same either way.
        compact({
          country,
          city: str(derived.geo_city),
          lat: Math.fround(lat),
          lon: Math.fround(lon),
        })
      : undefined;
  const asn =
    typeof derived.geo_asn === 'number'
      ? compact({ number: derived.geo_asn, org: str(derived.geo_as_org) })
      : undefined;
  const uaParts = compact({
    family: str(derived.ua_browser),
    os: str(derived.ua_os),
    device: str(derived.ua_device),
  });
  const ua = Object.keys(uaParts).length > 0 ? uaParts : undefined;
  if (!geo && !asn && !ua) return undefined;
  return compact({ geo, asn, ua }) as DetectionEvent['enrichment'];
}

/** The DetectionEvent of an opened record, or undefined when it has no id or valid time. */
export function detectionEvent(source: DetectionSource): DetectionEvent | undefined {
  const v = source.view;
  const id = str(v['id']);
  const time = typeof v['time'] === 'string' ? Date.parse(v['time']) : NaN;
  if (id === undefined || !Number.isFinite(time)) return undefined;
  const context = obj(v['context']);
  const access = obj(v['access']);
  const metadata = obj(v['metadata']);
  return compact({
    tenant: source.tenant,
    id,
    time,
    action: str(v['action']) ?? '',
    category: str(v['category']) ?? '',
    outcome: str(v['outcome']) ?? '',
    actor: party(v['actor']) ?? { type: '' },
    target: party(v['target']),
    context: context
      ? compact({
          ip: str(context['ip']),
          userAgent: str(context['userAgent']),
          sessionId: str(context['sessionId']),
          requestId: str(context['requestId']),
        })
      : undefined,
    access: access
      ? compact({
          change: str(access['change']) ?? '',
          subject: party(access['subject']),
          role: str(access['role']),
          permission: str(access['permission']),
          grantedBy: party(access['grantedBy']),
        })
      : undefined,
    metadata,
    enrichment: enrichment(source.derived),
    stream: str(v['stream']),
    seq: typeof v['seq'] === 'number' ? v['seq'] : undefined,
    hash: str(v['hash']),
    flags: source.flags && source.flags.length > 0 ? source.flags : undefined,
  }) as DetectionEvent;
}
