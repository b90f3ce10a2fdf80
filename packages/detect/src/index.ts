export type { DetectionEvent, DetectionParty, FieldValue, LocalTime } from './event.js';
export { compileField, isTimeZone, localTime } from './event.js';
export { DetectError, DetectErrorCodes, DetectErrorDescriptions } from './errors.js';
export type { DetectErrorCode } from './errors.js';
export {
  SEVERITIES,
  CORRELATION_TYPES,
  parseDuration,
  ruleSchema,
  correlationSchema,
  baselineSchema,
} from './rules/schema.js';
export type {
  Severity,
  CorrelationType,
  RuleSpec,
  CorrelationSpec,
  BaselineSpec,
} from './rules/schema.js';
export { loadRules, RuleLoadError } from './rules/load.js';
export type { CompiledRule, CompiledStep, RuleProblem, RuleSource } from './rules/load.js';
export { MODIFIERS } from './rules/match.js';
export { overridesSchema, compileOverrides } from './overrides.js';
export type { DetectOverrides, TenantSettings, AllowList } from './overrides.js';
export { DetectionEngine } from './engine/engine.js';
export type {
  Alert,
  AlertUpdate,
  BaselineLookup,
  EngineOptions,
  EngineSnapshot,
  EngineStats,
} from './engine/engine.js';
export { haversineKm } from './engine/geo.js';
export { BUILTIN_RULES_DIR, readRuleDir, builtinRules } from './pack.js';
