import type { Logger } from 'pino';
import { BaselineRefresher, type Store } from '@vigil/query';
import type { Config } from '../config/config.js';

/**
 * The schedule of the detection baselines' refresh (detect.baselines.*), in the processes that
 * hold the store and consume the log (start, sink). Returns its closer. `timeZone` gives each
 * tenant's zone (the detect overrides'; UTC until they are configured).
 */
export function startBaselineRefresh(
  config: Config,
  store: Store,
  logger: Logger,
  timeZone?: (tenant: string) => string,
): () => Promise<void> {
  const b = config.baselines;
  if (b.refreshMs === 0) return () => Promise.resolve();
  const refresher = new BaselineRefresher(store, {
    historyMs: b.historyMs,
    keepMs: b.keepMs,
    activationMs: b.activationMs,
    ...(timeZone ? { timeZone } : {}),
  });
  const log = logger.child({ component: 'baselines' });
  refresher.start(b.refreshMs, {
    onRefresh: (report) => {
      if (report.generations.length > 0)
        log.info(
          {
            asOf: new Date(report.asOf).toISOString(),
            tenants: report.generations.length,
            rows: report.generations.reduce((n, g) => n + g.rows, 0),
            ms: report.ms,
          },
          'detection baselines refreshed',
        );
    },
    onError: (error) => log.error({ err: error }, 'detection baselines refresh failed'),
  });
  return () => refresher.stop();
}
