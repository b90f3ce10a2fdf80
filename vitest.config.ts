import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources through the `source` export
// condition, so tests always run against the code in the tree, not a stale build.
const conditions = ['source', 'import', 'node', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: process.env['CI'] ? ['default'] : ['default'],
  },
});
