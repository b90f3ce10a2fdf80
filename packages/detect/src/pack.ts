import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRules, type CompiledRule, type RuleSource } from './rules/load.js';

/** The directory of the built-in rule pack (`rules/` of this package, shipped with it). */
export const BUILTIN_RULES_DIR = fileURLToPath(new URL('../rules/', import.meta.url));

/** The rule files of a directory (`*.yaml`, `*.yml`), in name order so ids and output are stable. */
export function readRuleDir(dir: string): RuleSource[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => ({ file: f, text: readFileSync(join(dir, f), 'utf8') }));
}

/** The built-in pack, parsed, validated and compiled. */
export function builtinRules(): CompiledRule[] {
  return loadRules(readRuleDir(BUILTIN_RULES_DIR));
}
