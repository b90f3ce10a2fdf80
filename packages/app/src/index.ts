export { loadConfig, DEFAULT_PORTS, DEFAULT_RETENTION_DAYS } from './config/config.js';
export type {
  Config,
  Role,
  LogConfig,
  IngestConfig,
  SinkConfig,
  RateLimitConfig,
  EnrichConfig,
  CheckpointConfig,
  LoadOptions,
} from './config/config.js';
export { OPTIONS } from './config/options.js';
export type { OptionSpec } from './config/options.js';
export { configMarkdownTable } from './config/markdown.js';
export { buildApp } from './server/app.js';
export type { AppOptions, ReadyReport } from './server/app.js';
export { Metrics } from './server/metrics.js';
export { registerRateLimits } from './server/rate-limit.js';
export { runRole } from './server/roles.js';
export type { RunningRole, RoleIo } from './server/roles.js';
export type { BootstrapCredentials } from './server/bootstrap.js';
export { startEmbeddedCollector, EmbeddedTransport } from './embedded/embedded.js';
export type { EmbeddedCollector, EmbeddedCollectorOptions } from './embedded/embedded.js';
export { VERSION } from '@vigil/collector';
