import { readFileSync, readdirSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProtocolErrorDescriptions } from '@vigil/protocol';
import { QueryErrorDescriptions } from '@vigil/query';
import { CollectorErrorDescriptions } from '@vigil/collector';
import { configMarkdownTable } from '@vigil/app';
import { SdkErrorDescriptions } from '@vigil/sdk';
import { DetectErrorDescriptions } from '@vigil/detect';
import { renderErrorsMarkdown, withConfigTable } from '../scripts/docs-lib.mjs';

const tables = [
  { package: '@vigil/protocol', descriptions: ProtocolErrorDescriptions },
  { package: '@vigil/collector', descriptions: CollectorErrorDescriptions },
  { package: '@vigil/query', descriptions: QueryErrorDescriptions },
  { package: '@vigil/sdk', descriptions: SdkErrorDescriptions },
  { package: '@vigil/detect', descriptions: DetectErrorDescriptions },
];
const read = (file: string): string => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');

describe('generated documentation', () => {
  it('gives every error code to exactly one package', () => {
    const all = tables.flatMap((t) => Object.keys(t.descriptions));
    expect(new Set(all).size).toBe(all.length);
    for (const code of all) expect(code).toMatch(/^VIGIL_ERR_[A-Z_]+$/);
  });

  it('documents every code the source uses', () => {
    const known = new Set(tables.flatMap((t) => Object.keys(t.descriptions)));
    const sources = ['protocol', 'collector', 'query', 'sdk', 'detect'].flatMap((p) =>
      listSources(`packages/${p}/src`),
    );
    for (const file of sources) {
      for (const match of read(file).matchAll(/VIGIL_ERR_[A-Z_]+/g)) {
        expect(known.has(match[0]), `${match[0]} used in ${file}`).toBe(true);
      }
    }
  });

  it('keeps ERRORS.md and the README configuration table in step with the code (npm run docs)', () => {
    expect(read('ERRORS.md')).toBe(renderErrorsMarkdown(tables));
    const readme = read('README.md');
    expect(readme).toBe(withConfigTable(readme, configMarkdownTable()));
  });
});

function listSources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(new URL(`../${dir}`, import.meta.url))) {
    const path = `${dir}/${name}`;
    if (statSync(new URL(`../${path}`, import.meta.url)).isDirectory())
      out.push(...listSources(path));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}
