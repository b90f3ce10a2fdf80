import { join } from 'node:path';
import type { Logger } from 'pino';
import { DetectionEngine } from '@vigil/detect';
import { AlertStore, type Store } from '@vigil/query';
import {
  AlertStoreOutput,
  DetectorRunner,
  FileCheckpointStore,
  loadDetectorOverrides,
  loadDetectorRules,
  TableCheckpointStore,
  type AlertOutput,
  type EnrichmentPlugin,
  type Log,
} from '@vigil/collector';
import type { Config } from '../config/config.js';
import type { Metrics } from './metrics.js';

export interface DetectorDeps {
  readonly config: Config;
  readonly store: Store;
  readonly log: Log;
  readonly enrichment: EnrichmentPlugin | undefined;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Further alert outputs after the AlertStore (webhooks). */
  readonly outputs?: readonly AlertOutput[];
}

/**
 * The detector of a role: rules (built-in pack or detect.rulesDir) and overrides loaded and
 * validated here, before anything runs; checkpoints in a file of the data directory with the
 * embedded store, in the store's detector_state table with a ClickHouse server (a detector
 * process elsewhere resumes from it).
 */
export function openDetector(deps: DetectorDeps): DetectorRunner {
  const { config, store, log, logger } = deps;
  const settings = config.detect;
  const rules = loadDetectorRules(settings.rulesDir);
  const overrides = loadDetectorOverrides(settings.overridesFile);
  const engine = (): DetectionEngine =>
    new DetectionEngine({
      rules,
      ...(overrides !== undefined ? { overrides } : {}),
      latenessMs: settings.latenessMs,
    });
  // Built once now so that overrides naming unknown rules stop the start, not the first batch.
  engine();
  const checkpoints =
    config.store.kind === 'chdb'
      ? new FileCheckpointStore(join(config.dataDir, 'detector'), settings.group)
      : new TableCheckpointStore(store, settings.group);
  logger.info(
    { rules: rules.length, group: settings.group, checkpoints: checkpoints.where },
    'detector configured',
  );
  return new DetectorRunner({
    log,
    config: {
      group: settings.group,
      maxBatchRecords: settings.maxBatchRecords,
      checkpointIntervalMs: settings.checkpointIntervalMs,
    },
    engine,
    // Alerts expire alerts.retentionDays after their last event (their own retention).
    outputs: [
      new AlertStoreOutput(new AlertStore(store, { retentionDays: config.alerts.retentionDays })),
      ...(deps.outputs ?? []),
    ],
    checkpoints,
    enrichment: deps.enrichment,
    logger: logger.child({ component: 'detector' }),
    observer: deps.metrics.detectorObserver(),
  });
}
