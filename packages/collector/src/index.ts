export {
  CollectorError,
  CollectorErrorCodes,
  CollectorErrorDescriptions,
  LogUnavailableError,
  LogCorruptError,
  LogClosedError,
  LogTopicMissingError,
  ConfigError,
} from './errors.js';
export type { CollectorErrorCode } from './errors.js';
export { DEFAULT_RETENTION_DAYS } from './stage-config.js';
export type {
  LogConfig,
  IngestConfig,
  SinkConfig,
  EnrichConfig,
  CheckpointConfig,
} from './stage-config.js';
export type {
  Log,
  LogMessage,
  LogConsumer,
  ConsumeOptions,
  ConsumedBatch,
  ConsumedRecord,
  AppendedPosition,
} from './log/log.js';
export { partitionForKey } from './log/partitioner.js';
export { FileLog } from './log/file/file-log.js';
export type { FileLogOptions, FsyncMode, FileLogLogger } from './log/file/file-log.js';
export { openLog } from './log/open.js';
export { Ingestor } from './ingest/ingestor.js';
export type {
  IngestResult,
  IngestSource,
  IngestObserver,
  IngestorOptions,
} from './ingest/ingestor.js';
export { parseEventsBody, checkBatch, checkBody } from './ingest/batch-check.js';
export type {
  BatchCheck,
  CheckedBatch,
  RefusedBatch,
  CheckContext,
  CheckLimits,
} from './ingest/batch-check.js';
export { CheckPool } from './ingest/check-pool.js';
export {
  Admission,
  LAG_RETRY_AFTER_SECONDS,
  SINK_RETRY_AFTER_SECONDS,
  type AdmissionOptions,
  type Refusal,
} from './ingest/admission.js';
export { SinkProcessor, integrityStream } from './sink/sink.js';
export type { SinkObserver, SinkProcessorOptions } from './sink/sink.js';
export { SinkRunner } from './sink/runner.js';
export type { SinkPlugin, BatchContext, RowContext } from './sink/plugins.js';
export { EnrichmentPlugin, openEnrichment } from './sink/enrich.js';
export type { EnrichmentOptions, EnrichmentLogger } from './sink/enrich.js';
export { GeoIp, bundledCityDbs, cityFields, asnFields } from './sink/geoip.js';
export type { GeoIpOptions, GeoFields } from './sink/geoip.js';
export { UserAgentParser } from './sink/user-agent.js';
export type { UserAgentFields } from './sink/user-agent.js';
export { RetentionPlugin, RETENTION_PLUGIN } from './sink/retention.js';
export type { RetentionPluginOptions } from './sink/retention.js';
export type { KafkaLogOptions, KafkaSaslOptions } from './log/kafka/kafka-log.js';
export type { KafkaLogLogger } from './log/kafka/kafka-logger.js';
export type { SinkRunnerOptions, SinkRunnerMetrics } from './sink/runner.js';
export { SystemRecorder, ADMIN_STREAM_PREFIX, streamHost } from './system/recorder.js';
export type { SystemRecorderOptions } from './system/recorder.js';
export { VERSION } from './version.js';
export { SignerError, WitnessError } from './errors.js';
export { MerklePlugin, MERKLE_PLUGIN } from './sink/merkle.js';
export type { TreeObserver, MerklePluginOptions } from './sink/merkle.js';
export { Checkpointer } from './checkpoint/checkpointer.js';
export type {
  CheckpointerOptions,
  CheckpointObserver,
  HeadSource,
  CheckpointSink,
} from './checkpoint/checkpointer.js';
export {
  KeyFileSigner,
  CommandSigner,
  MemorySigner,
  rotateCheckpointKey,
  listKeyFiles,
  parseSignatureText,
} from './checkpoint/signer.js';
export type { CheckpointSigner, CommandSignerOptions } from './checkpoint/signer.js';
export {
  DirectoryWitness,
  WebhookWitness,
  WitnessQueue,
  WitnessDispatcher,
  witnessDocument,
} from './checkpoint/witness.js';
export type {
  CheckpointWitness,
  WitnessedCheckpoint,
  WitnessObserver,
  WitnessQueueOptions,
  WebhookWitnessOptions,
} from './checkpoint/witness.js';
export { openCheckpointing, openSigner } from './checkpoint/setup.js';
export type { Checkpointing, CheckpointingDeps } from './checkpoint/setup.js';
export { CheckpointMetrics } from './checkpoint/metrics.js';
export { TreeWriter } from './checkpoint/tree-writer.js';
export { registerIngestRoutes } from './ingest/routes.js';
export { encodeEventMessage, decodeEventMessage } from './log/event-message.js';
export type { EventMessage } from './log/event-message.js';
export { PrivacyPlugin } from './sink/privacy.js';
export { AccessPlugin, ACCESS_PLUGIN } from './sink/access.js';
export type { AccessPluginOptions } from './sink/access.js';
export { subjectLogTransform } from './privacy/log-erasure.js';
export { openMasterKey } from './privacy/master-key.js';
export { DetectorRunner } from './detector/runner.js';
export type {
  DetectorConfig,
  DetectorRunnerOptions,
  DetectorObserver,
  DetectorBatchReport,
  DetectorLogger,
} from './detector/runner.js';
export { DetectionReader, SeenHeads } from './detector/events.js';
export { DetectorRestrictions } from './detector/restrictions.js';
export { restrictionsCovering } from './sink/privacy.js';
export { FileCheckpointStore, TableCheckpointStore } from './detector/checkpoint.js';
export type {
  CheckpointFormat,
  CheckpointStore,
  DetectorCheckpoint,
} from './detector/checkpoint.js';
export { AlertStoreOutput } from './detector/outputs.js';
export type { AlertOutput } from './detector/outputs.js';
export { Watermark } from './detector/watermark.js';
export { loadDetectorRules, loadDetectorOverrides, rulesUsingAsn } from './detector/setup.js';
export { RekeyStage } from './detector/rekey/rekey-stage.js';
export type { RekeyObserver, RekeyStageOptions, RekeyStats } from './detector/rekey/rekey-stage.js';
export { EngineStage, partitionCheckpointName } from './detector/rekey/engine-stage.js';
export type { EngineStageOptions, PartitionCheckpoint } from './detector/rekey/engine-stage.js';
export { RekeyRouter, rekeySets, overridesFor } from './detector/rekey/route.js';
export type { RekeySet, Routed } from './detector/rekey/route.js';
