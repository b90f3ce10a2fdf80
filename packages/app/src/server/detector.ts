import { join } from 'node:path';
import type { Logger } from 'pino';
import { DetectionEngine, type CompiledRule, type DetectOverrides } from '@vigil/detect';
import { AlertStore, StoreBaselines, type PrivacyService, type Store } from '@vigil/query';
import {
  AlertStoreOutput,
  DetectorRestrictions,
  DetectorRunner,
  EngineStage,
  FileCheckpointStore,
  loadDetectorOverrides,
  loadDetectorRules,
  LogTopicMissingError,
  openLog,
  overridesFor,
  partitionCheckpointName,
  rulesUsingAsn,
  RekeyRouter,
  RekeyStage,
  TableCheckpointStore,
  type AlertOutput,
  type EnrichmentPlugin,
  type Log,
  type PartitionCheckpoint,
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
  /**
   * The privacy service of the role: the baselines find pseudonymised actors by their
   * pseudonyms, and the events of restricted people are skipped.
   */
  readonly privacy?: PrivacyService | undefined;
  /** Further alert outputs after the AlertStore (webhooks). */
  readonly outputs?: readonly AlertOutput[];
}

/** What a role runs and /readyz reports: the single detector or the two stages of the re-key. */
export interface DetectorHandle {
  readonly state: 'starting' | 'running' | 'restarting' | 'stopped';
  readonly error: Error | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The detector of a role: rules (built-in pack or detect.rulesDir) and overrides loaded and
 * validated here, before anything runs; checkpoints in a file of the data directory with the
 * embedded store, in the store's detector_state table with a ClickHouse server (a detector
 * process elsewhere resumes from it).
 */
export function openDetector(deps: DetectorDeps): DetectorHandle {
  const { config, store, log, logger } = deps;
  const settings = config.detect;
  const rules = loadDetectorRules(settings.rulesDir);
  const overrides = loadDetectorOverrides(settings.overridesFile);
  // The stored baselines (detect.baselines.*): the generation that answers for each event's
  // time, as a backtest over the same events uses.
  const baselines = new StoreBaselines(store, {
    ...(deps.privacy ? { privacy: deps.privacy } : {}),
    maxEntitiesPerTenant: config.baselines.maxEntitiesPerTenant,
  });
  const engine = (): DetectionEngine =>
    new DetectionEngine({
      rules,
      ...(overrides !== undefined ? { overrides } : {}),
      latenessMs: settings.latenessMs,
      baseline: baselines,
    });
  // Built once now so that overrides naming unknown rules stop the start, not the first batch.
  engine();
  if (deps.enrichment?.enabled.asn !== true) {
    const disabled = rulesUsingAsn(rules);
    deps.metrics.detectorAsnRulesDisabled.set(disabled.length);
    if (disabled.length > 0)
      logger.warn(
        { rules: disabled },
        'no ASN data (geoip.asn=off and no geoip.asnDb): the asn.* conditions of these rules never match',
      );
  }
  if (settings.mode === 'rekey') return new RekeyDetector(deps, rules, overrides);
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
    baselines,
    ...(deps.privacy ? { restrictions: new DetectorRestrictions(store, deps.privacy) } : {}),
    logger: logger.child({ component: 'detector' }),
    observer: deps.metrics.detectorObserver(),
  });
}

/**
 * The detector on Kafka with the re-key (README, "Detection"): the re-key stage (group
 * `<detect.group>.rekey` on the log) and the engine stage (group `detect.group` on the re-key
 * topic), both or one of them per detect.stage. The re-key topic is opened at start; a missing
 * topic is reported with the command that creates it, and retried.
 */
class RekeyDetector implements DetectorHandle {
  private rekeyLog: Log | undefined;
  private stages: (RekeyStage | EngineStage)[] = [];
  private stopped = false;
  private opening: Error | undefined;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: DetectorDeps,
    private readonly rules: readonly CompiledRule[],
    private readonly overrides: DetectOverrides | undefined,
  ) {}

  get state(): DetectorHandle['state'] {
    if (this.stopped) return 'stopped';
    if (this.opening) return 'restarting';
    if (this.stages.length === 0) return 'starting';
    const states = this.stages.map((s) => s.state);
    for (const s of ['restarting', 'starting'] as const) if (states.includes(s)) return s;
    return 'running';
  }

  get error(): Error | undefined {
    return this.opening ?? this.stages.map((s) => s.error).find((e) => e !== undefined);
  }

  async start(): Promise<void> {
    const { config, logger } = this.deps;
    const settings = config.detect;
    try {
      this.rekeyLog = await openLog(
        { ...config.log, topic: settings.topic, partitions: settings.partitions },
        logger,
      );
    } catch (error) {
      this.opening =
        error instanceof LogTopicMissingError
          ? new Error(
              `the detector's re-key topic "${settings.topic}" with ${settings.partitions} ` +
                `partitions is missing: create it, e.g. kafka-topics.sh --create --topic ` +
                `${settings.topic} --partitions ${settings.partitions} --replication-factor 3 ` +
                `--config min.insync.replicas=2 --config retention.ms=${settings.retentionMs} ` +
                `(it holds opened events: keep the retention short), or set detect.topic and ` +
                `detect.partitions (${error.message})`,
            )
          : (error as Error);
      logger.error({ err: this.opening }, 'the detector could not open its re-key topic');
      if (!this.stopped) {
        this.retry = setTimeout(() => void this.start(), 5_000);
        this.retry.unref();
      }
      return;
    }
    this.opening = undefined;
    const rekey = this.rekeyLog;
    if (this.stopped) {
      // Stopped while the topic was being opened.
      await rekey.close();
      return;
    }
    const child = logger.child({ component: 'detector' });
    if (settings.stage !== 'engine')
      this.stages.push(
        new RekeyStage({
          log: this.deps.log,
          rekey,
          group: `${settings.group}.rekey`,
          router: new RekeyRouter(this.rules, this.overrides),
          enrichment: this.deps.enrichment,
          maxBatchRecords: settings.maxBatchRecords,
          punctuationMs: settings.punctuationMs,
          logger: child,
          observer: this.deps.metrics.rekeyObserver(),
        }),
      );
    if (settings.stage !== 'rekey') {
      const sets = new Map(new RekeyRouter(this.rules).sets.map((s) => [s.id, s.rules]));
      const { store } = this.deps;
      this.stages.push(
        new EngineStage({
          rekey,
          group: settings.group,
          engine: (set) => {
            const rules = sets.get(set);
            if (rules === undefined) return undefined;
            const overrides = overridesFor(this.overrides, new Set(rules.map((r) => r.id)));
            return new DetectionEngine({
              rules,
              ...(overrides !== undefined ? { overrides } : {}),
              latenessMs: settings.latenessMs,
            });
          },
          outputs: [new AlertStoreOutput(new AlertStore(store)), ...(this.deps.outputs ?? [])],
          checkpoints: (partition) => {
            const name = partitionCheckpointName(settings.group, settings.topic, partition);
            return config.store.kind === 'chdb'
              ? new FileCheckpointStore<PartitionCheckpoint>(
                  join(config.dataDir, 'detector'),
                  name,
                  'vigil-detector-partition',
                )
              : new TableCheckpointStore<PartitionCheckpoint>(
                  store,
                  name,
                  'vigil-detector-partition',
                );
          },
          checkpointIntervalMs: settings.checkpointIntervalMs,
          maxBatchRecords: settings.maxBatchRecords,
          livenessMs: 10 * settings.punctuationMs,
          logger: child,
          observer: this.deps.metrics.detectorObserver(),
        }),
      );
    }
    logger.info(
      { topic: settings.topic, partitions: settings.partitions, stage: settings.stage },
      'detector re-keys through its own topic',
    );
    if (this.stopped) return;
    await Promise.all(this.stages.map((s) => s.start()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    for (const stage of this.stages) await stage.stop();
    await this.rekeyLog?.close();
  }
}
