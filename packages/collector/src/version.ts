import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The collector package's version (reported by `vigil --version`, /docs and logs). */
export const VERSION: string = (require('../package.json') as { version: string }).version;
