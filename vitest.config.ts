import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources through the `source` export
// condition, so tests always run against the code in the tree, not a stale build.
const conditions = ['source', 'import', 'node', 'default'];
const ssrConditions = conditions.filter((c) => c !== 'import');

export default defineConfig({
  resolve: { conditions },
  // Vitest hands ssr.resolve.conditions to node as --conditions: with `import` among them, a
  // CommonJS package's require() of a dual package loads its ESM build (@fastify/helmet got
  // helmet's module namespace instead of its function). Node and Vite add `import` or
  // `require` themselves for each kind of request.
  ssr: { resolve: { conditions: ssrConditions, externalConditions: ssrConditions } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: process.env['CI'] ? ['default'] : ['default'],
  },
});
