import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import {
  builtinRules,
  loadRules,
  overridesSchema,
  readRuleDir,
  RuleLoadError,
  type CompiledRule,
  type DetectOverrides,
} from '@vigil/detect';
import { ConfigError } from '../errors.js';

/**
 * The rule pack the detector runs: the YAML files of `dir`, or the built-in pack. Invalid rules
 * stop the start with every problem named (file, line, rule, field).
 */
export function loadDetectorRules(dir: string | undefined): CompiledRule[] {
  if (dir === undefined) return builtinRules();
  let sources;
  try {
    sources = readRuleDir(dir);
  } catch (error) {
    throw new ConfigError(`detect.rulesDir ${dir}: ${(error as Error).message}`);
  }
  if (sources.length === 0)
    throw new ConfigError(`detect.rulesDir ${dir} holds no rule file (*.yaml, *.yml)`);
  try {
    return loadRules(sources);
  } catch (error) {
    if (error instanceof RuleLoadError)
      throw new ConfigError(
        `detect.rulesDir ${dir}: invalid rules`,
        error.problems.map((p) => ({
          path: `detect.rulesDir`,
          message: `${p.file}:${p.line}: rule ${p.rule}: ${p.field || '(rule)'}: ${p.message}`,
        })),
      );
    throw error;
  }
}

/**
 * Per-tenant overrides from a YAML or JSON file (YAML 1.2 reads JSON as it is), validated with
 * the engine's own schema; each problem names its setting. Rule ids are checked against the
 * loaded rules when the engine is built.
 */
export function loadDetectorOverrides(file: string | undefined): DetectOverrides | undefined {
  if (file === undefined) return undefined;
  let value: unknown;
  try {
    value = parseYaml(readFileSync(file, 'utf8'), { maxAliasCount: 100 });
  } catch (error) {
    throw new ConfigError(`detect.overridesFile ${file}: ${(error as Error).message}`);
  }
  const result = overridesSchema.safeParse(value ?? {});
  if (!result.success)
    throw new ConfigError(
      `detect.overridesFile ${file}: invalid overrides`,
      result.error.issues.map((i) => ({
        path: `detect.overridesFile: ${i.path.join('.')}`,
        message: i.message,
      })),
    );
  return value as DetectOverrides;
}

/**
 * Ids of the rules whose conditions read `asn.*` (detection, correlation, baseline fields, or a
 * skip_asns list); evidence lists are not conditions. Without ASN data these conditions never
 * match (or never differ), so the detector reports them as disabled.
 */
export function rulesUsingAsn(rules: readonly CompiledRule[]): string[] {
  const uses = (value: unknown, depth: number): boolean => {
    if (depth > 32) return false;
    if (typeof value === 'string') return value === 'asn' || value.startsWith('asn.');
    if (Array.isArray(value)) return value.some((v) => uses(v, depth + 1));
    if (typeof value === 'object' && value !== null)
      return Object.entries(value).some(
        ([key, v]) =>
          key !== 'evidence' &&
          (key.startsWith('asn.') ||
            (key === 'skip_asns' && Array.isArray(v) && v.length > 0) ||
            uses(v, depth + 1)),
      );
    return false;
  };
  return rules.filter((rule) => uses(rule.spec, 0)).map((rule) => rule.id);
}
