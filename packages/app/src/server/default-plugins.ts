import type { PrivacyService, Store } from '@vigil/query';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { openEnrichment, type EnrichmentPlugin } from '@vigil/collector';
import { MerklePlugin, type TreeObserver } from '@vigil/collector';
import type { SinkPlugin } from '@vigil/collector';
import { RetentionPlugin } from '@vigil/collector';
import { PrivacyPlugin } from '@vigil/collector';
import { AccessPlugin } from '@vigil/collector';

export interface SinkPluginDeps {
  readonly config: Config;
  readonly store: Store;
  readonly logger: Logger;
  /** Told about every tree extension (the checkpointer). */
  readonly trees?: TreeObserver;
  /** Erasure markers, restrictions and pseudonymisation (sink/privacy.ts). */
  readonly privacy?: PrivacyService;
  /** Enrichment already opened (shared with the detector of the process). */
  readonly enrichment?: EnrichmentPlugin;
}

/** The sink's plugins in the order they run on each row. */
export async function defaultSinkPlugins(deps: SinkPluginDeps): Promise<SinkPlugin[]> {
  const plugins: SinkPlugin[] = [
    // Geo and user agent columns (sink/enrich.ts); databases are opened once, here.
    deps.enrichment ??
      (await openEnrichment(deps.config.enrich, deps.logger.child({ component: 'enrich' }))),
    // expires_at from the tenant's policy, legal_hold from active holds (sink/retention.ts).
    new RetentionPlugin({
      store: deps.store,
      defaults: deps.config.retentionDays,
      ...(deps.config.sink.policyRefreshMs !== undefined
        ? { refreshMs: deps.config.sink.policyRefreshMs }
        : {}),
      logger: deps.logger.child({ component: 'retention' }),
    }),
    // Leaf positions and hashes (sink/merkle.ts). Last: it reads only the chain columns, and
    // its `stored` writes tree nodes and heads once the others have done their part.
    new MerklePlugin({
      store: deps.store,
      ...(deps.trees ? { observer: deps.trees } : {}),
      logger: deps.logger.child({ component: 'merkle' }),
    }),
  ];
  // The access projection (sink/access.ts): keys subjects from the plain values, so before the
  // privacy plugin; it writes its facts once the rows are stored.
  if (deps.privacy)
    plugins.push(
      new AccessPlugin({
        store: deps.store,
        privacy: deps.privacy,
        facts: { leaverActions: new Set(deps.config.access.leaverActions) },
      }),
    );
  // Last: it needs the plain values the others read, then erases, restricts and pseudonymises.
  if (deps.privacy)
    plugins.push(
      new PrivacyPlugin({
        store: deps.store,
        privacy: deps.privacy,
        logger: deps.logger.child({ component: 'privacy' }),
      }),
    );
  return plugins;
}
