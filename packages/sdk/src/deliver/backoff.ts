/** Backoff parameters (see RetryOptions). */
export interface BackoffPolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * Delay before retry number `attempt` (0 for the first retry): exponential backoff with full
 * jitter, a uniform draw in [0, min(max, initial·2^attempt)], which spreads many clients
 * recovering from the same outage instead of having them retry in lockstep. A `Retry-After`
 * from the collector (429/503) is a floor: the SDK never comes back sooner than asked.
 */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
  retryAfterMs?: number,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt, 30));
  const jittered = Math.floor(random() * ceiling);
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, jittered);
}

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when
 * absent or unreadable. Capped at an hour so a bad header cannot park the SDK for good.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, 3_600_000);
}
