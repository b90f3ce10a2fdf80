import { v7 } from 'uuid';
import { sha256 } from './hash.js';

/** A new UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, then random bits. */
export function newEventId(ms?: number): string {
  return ms === undefined ? v7() : v7({ msecs: ms });
}

/**
 * A UUIDv7 whose random bits are derived from `seed`: the same seed and time give the same id.
 * Used for events Vigil derives itself (stream openings, integrity alerts), so that replaying
 * the log after a crash yields the same ids and deduplicates.
 */
export function derivedEventId(ms: number, seed: string): string {
  const random = sha256(seed).subarray(0, 16);
  return v7({ msecs: ms, random });
}

/** The millisecond timestamp inside a UUIDv7. */
export function uuidV7Time(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
