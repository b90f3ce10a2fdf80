import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { loadDetectorOverrides, loadDetectorRules } from './setup.js';

const dir = mkdtempSync(join(tmpdir(), 'vigil-detector-setup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function thrown(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('did not throw');
}

describe('detector rules and overrides from files', () => {
  it('reads the built-in pack without a directory', () => {
    expect(loadDetectorRules(undefined).map((r) => r.id)).toContain('auth.brute_force_account');
  });

  it('names the file, line, rule and field of an invalid rule', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'id: Bad Id\ntitle: t\n');
    const error = thrown(() => loadDetectorRules(dir));
    expect(error.code).toBe('VIGIL_ERR_CONFIG_INVALID');
    expect(error.details[0]?.message).toMatch(/^bad\.yaml:\d+: rule /);
  });

  it('reads YAML and JSON overrides and names the setting that is wrong', () => {
    const yaml = join(dir, 'overrides.yaml');
    writeFileSync(yaml, 'tenants:\n  acme:\n    timeZone: Europe/Paris\n');
    expect(loadDetectorOverrides(yaml)).toEqual({
      tenants: { acme: { timeZone: 'Europe/Paris' } },
    });
    const json = join(dir, 'overrides.json');
    writeFileSync(json, JSON.stringify({ tenants: { acme: { thresholds: { x: 'many' } } } }));
    const error = thrown(() => loadDetectorOverrides(json));
    expect(error.details.map((d) => d.path).join(' ')).toContain('tenants.acme.thresholds.x');
    const typo = join(dir, 'typo.yaml');
    writeFileSync(typo, 'tenant:\n  acme: {}\n');
    expect(thrown(() => loadDetectorOverrides(typo)).details[0]?.path).toMatch(
      /detect\.overridesFile/,
    );
  });

  it('refuses a file that is not YAML', () => {
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'tenants: [unclosed\n');
    expect(thrown(() => loadDetectorOverrides(broken)).message).toContain('detect.overridesFile');
  });
});
