// Regenerates ERRORS.md and the README's configuration table from the built packages.
//   npm run docs
import { readFileSync, writeFileSync } from 'node:fs';
import { ProtocolErrorDescriptions } from '@vigil/protocol';
import { QueryErrorDescriptions } from '@vigil/query';
import { CollectorErrorDescriptions } from '@vigil/collector';
import { configMarkdownTable } from '@vigil/app';
import { SdkErrorDescriptions } from '@vigil/sdk';
import { DetectErrorDescriptions } from '@vigil/detect';
import { renderErrorsMarkdown, withConfigTable } from './docs-lib.mjs';

const root = new URL('../', import.meta.url);
writeFileSync(
  new URL('ERRORS.md', root),
  renderErrorsMarkdown([
    { package: '@vigil/protocol', descriptions: ProtocolErrorDescriptions },
    { package: '@vigil/collector', descriptions: CollectorErrorDescriptions },
    { package: '@vigil/query', descriptions: QueryErrorDescriptions },
    { package: '@vigil/sdk', descriptions: SdkErrorDescriptions },
    { package: '@vigil/detect', descriptions: DetectErrorDescriptions },
  ]),
);
const readmeUrl = new URL('README.md', root);
writeFileSync(readmeUrl, withConfigTable(readFileSync(readmeUrl, 'utf8'), configMarkdownTable()));
console.log('wrote ERRORS.md and the configuration table of README.md');
