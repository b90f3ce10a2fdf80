import { CATEGORIES, type Category } from '@vigil/protocol';
import type { ClickHouseSettings } from '@clickhouse/client';
import { alterTable } from '../store/schema.js';
import type { QueryParams, Store } from '../store/store.js';

/**
 * When a stored event expires: `received_at` (the collector's clock, which a producer cannot
 * set; PROTOCOL.md §10) plus the days its tenant keeps its category. Never the event's own
 * `time`: a producer could otherwise push its events' expiry to 1970 or 2099.
 */

export type RetentionDays = Readonly<Record<Category, number>>;

/** Bounds of a retention period in days (the same as the configuration's `retention`). */
export const MIN_RETENTION_DAYS = 1;
export const MAX_RETENTION_DAYS = 36_600;

/** The largest ClickHouse `DateTime` (UInt32 seconds, 2106-02-07): a later expiry is clamped. */
export const MAX_EXPIRY_SECONDS = 4_294_967_295;

const DAY_MS = 86_400_000;

/** `expires_at` (epoch seconds) of an event received at `receivedAtMs`, kept `days` days. */
export function expirySeconds(receivedAtMs: number, days: number): number {
  return Math.min(Math.floor((receivedAtMs + days * DAY_MS) / 1000), MAX_EXPIRY_SECONDS);
}

/**
 * expirySeconds() in ClickHouse SQL over a row's `received_at`, with the period bound as
 * `{retentionMs:UInt64}`: re-applying a policy to stored rows gives each exactly the expiry the
 * sink would have given it.
 */
export const EXPIRY_SQL = `toDateTime(least(intDiv(toUnixTimestamp64Milli(received_at) + {retentionMs:UInt64}, 1000), ${MAX_EXPIRY_SECONDS}), 'UTC')`;

export function retentionMs(days: number): number {
  return days * DAY_MS;
}

export function isCategory(value: string): value is Category {
  return (CATEGORIES as readonly string[]).includes(value);
}

export function validDays(days: unknown): days is number {
  return (
    typeof days === 'number' &&
    Number.isInteger(days) &&
    days >= MIN_RETENTION_DAYS &&
    days <= MAX_RETENTION_DAYS
  );
}

/**
 * Runs `ALTER TABLE events UPDATE …` and waits until every replica has applied it
 * (`mutations_sync = 2`; ClickHouse docs, "ALTER TABLE … UPDATE" and "Synchronicity of ALTER
 * queries"). A mutation rewrites every data part that holds a matching row, which is why each
 * caller makes it an explicit operation. Rewriting a part also drops its expired, unheld rows:
 * ClickHouse applies the table TTL whenever it writes a part (see README, "Retention and legal
 * holds").
 */
export async function updateEvents(
  store: Store,
  assignments: string,
  where: string,
  params: QueryParams,
): Promise<void> {
  const settings: ClickHouseSettings = { mutations_sync: '2' };
  await store.command(
    alterTable(store, 'events', `UPDATE ${assignments} WHERE ${where}`),
    params,
    settings,
  );
}
