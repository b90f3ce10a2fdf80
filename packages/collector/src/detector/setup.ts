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
