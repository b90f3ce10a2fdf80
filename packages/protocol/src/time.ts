import { PATTERNS } from './constants.js';

/** Formats epoch milliseconds as the protocol's time form: `2026-11-23T10:50:48.123Z`. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString();
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digits(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + (text.charCodeAt(i) - 48);
  return n;
}

/**
 * Parses the protocol's time form. Returns epoch milliseconds, or `undefined` when the
 * text is not exactly RFC 3339 UTC with millisecond precision (`YYYY-MM-DDTHH:MM:SS.mmmZ`)
 * or names no real instant (`2026-02-30…`, `…T24:00…`). Runs on every event the collector
 * takes in, hence the hand-rolled field checks instead of a Date round trip.
 */
export function parseTime(text: string): number | undefined {
  if (!PATTERNS.time.test(text)) return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  const hour = digits(text, 11, 13);
  const minute = digits(text, 14, 16);
  const second = digits(text, 17, 19);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59)
    return undefined;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = month === 2 && leap ? 29 : (DAYS[month - 1] as number);
  if (day > days) return undefined;
  const millis = digits(text, 20, 23);
  if (year >= 100) return Date.UTC(year, month - 1, day, hour, minute, second, millis);
  // Date.UTC reads years 0-99 as 1900-1999; setUTCFullYear takes the year as written.
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, millis));
  date.setUTCFullYear(year);
  return date.getTime();
}
