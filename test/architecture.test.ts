import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The layering of the workspace, checked on the sources: which package may import which
 * (protocol ← sdk; protocol ← detect ← query ← collector ← app), and no import cycle inside or across
 * packages. Imports are read with the TypeScript compiler's own pre-processor (static imports,
 * re-exports, `import type` and dynamic `import()` alike) rather than with a regular expression.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['protocol', 'sdk', 'detect', 'query', 'collector', 'app'] as const;
type Package = (typeof PACKAGES)[number];

/** The packages each package's sources may import (its own excepted). */
const MAY_IMPORT: Readonly<Record<Package, readonly Package[]>> = {
  protocol: [],
  sdk: ['protocol'],
  detect: ['protocol'],
  query: ['protocol', 'detect'],
  collector: ['protocol', 'sdk', 'detect', 'query'],
  app: ['protocol', 'sdk', 'detect', 'query', 'collector'],
};

function listSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return listSources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

function packageOf(file: string): Package | undefined {
  const match = /^packages\/([^/]+)\/src\//.exec(relative(root, file));
  return PACKAGES.find((p) => p === match?.[1]);
}

/** The source file an import names, or undefined for a module outside the workspace. */
function resolveImport(from: string, specifier: string): string | undefined {
  if (specifier.startsWith('.')) {
    const target = resolve(dirname(from), specifier);
    for (const candidate of [target.replace(/\.js$/, '.ts'), target, `${target}.ts`]) {
      if (candidate.endsWith('.ts') && existsSync(candidate)) return candidate;
    }
    // A data file (package.json, a JSON table) imports nothing.
    if (!/\.[cm]?[jt]s$/.test(target) && existsSync(target)) return undefined;
    throw new Error(`${relative(root, from)}: cannot resolve ${specifier}`);
  }
  const workspace = /^@vigil\/([^/]+)(?:\/(.+))?$/.exec(specifier);
  if (!workspace) return undefined;
  const manifest = JSON.parse(
    readFileSync(join(root, 'packages', workspace[1] as string, 'package.json'), 'utf8'),
  ) as { exports: Record<string, { source?: string } | string> };
  const entry = manifest.exports[workspace[2] === undefined ? '.' : `./${workspace[2]}`];
  const source = typeof entry === 'object' ? entry.source : undefined;
  if (source === undefined) throw new Error(`${specifier} has no source export`);
  return join(root, 'packages', workspace[1] as string, source);
}

interface Graph {
  readonly edges: Map<string, string[]>;
}

function importGraph(): Graph {
  const edges = new Map<string, string[]>();
  for (const p of PACKAGES) {
    for (const file of listSources(join(root, 'packages', p, 'src'))) {
      const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      const targets = info.importedFiles
        .map((f) => resolveImport(file, f.fileName))
        .filter((t): t is string => t !== undefined);
      edges.set(file, [...new Set(targets)]);
    }
  }
  return { edges };
}

/** Every strongly connected component of more than one file, or a file importing itself (Tarjan). */
export function importCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  // Iterative, so a long import chain cannot overflow the call stack.
  for (const start of edges.keys()) {
    if (index.has(start)) continue;
    const work: { node: string; child: number }[] = [{ node: start, child: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1] as { node: string; child: number };
      const children = edges.get(frame.node) ?? [];
      if (frame.child < children.length) {
        const child = children[frame.child++] as string;
        if (!index.has(child)) {
          index.set(child, next);
          low.set(child, next++);
          stack.push(child);
          onStack.add(child);
          work.push({ node: child, child: 0 });
        } else if (onStack.has(child)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(child)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop() as string;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1 || children.includes(frame.node)) cycles.push(component.sort());
      }
    }
  }
  return cycles;
}

describe('architecture', () => {
  const { edges } = importGraph();

  it('finds a cycle when there is one (the checker itself)', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
    ]);
    expect(importCycles(graph)).toEqual([['a', 'b', 'c'], ['e']]);
    expect(
      importCycles(
        new Map([
          ['a', ['b']],
          ['b', []],
        ]),
      ),
    ).toEqual([]);
  });

  it('has no import cycle in any package', () => {
    const cycles = importCycles(edges).map((c) => c.map((f) => relative(root, f)));
    expect(cycles).toEqual([]);
  });

  it('imports only down the layers (protocol ← sdk; protocol ← detect ← query ← collector ← app)', () => {
    const wrong: string[] = [];
    for (const [file, targets] of edges) {
      const from = packageOf(file) as Package;
      for (const target of targets) {
        const to = packageOf(target);
        if (to === undefined) {
          // Tests may use the repository's shared helpers (the Kafka mock broker); code may not.
          const helper = relative(root, target).startsWith('test/helpers/');
          if (!(helper && file.endsWith('.test.ts'))) {
            wrong.push(
              `${relative(root, file)} → ${relative(root, target)} (outside the packages)`,
            );
          }
        } else if (to !== from && !MAY_IMPORT[from].includes(to)) {
          wrong.push(`${relative(root, file)} → ${relative(root, target)}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('lets no file but store.ts reach the ClickHouse client', () => {
    const users = [...edges.keys()]
      .filter((file) =>
        /\bcreateClient\(|\.client\.(?:query|command|insert|exec|ping)\(/.test(
          readFileSync(file, 'utf8'),
        ),
      )
      .map((file) => relative(root, file));
    expect(users).toEqual(['packages/query/src/store/store.ts']);
  });

  it('has one process liveness check (the pid locks of the spool and of the embedded log)', () => {
    const users = [...edges.keys()]
      .filter((file) => /process\.kill\([^,]+,\s*0\)/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(root, file));
    expect(users).toEqual(['packages/protocol/src/process.ts']);
  });
});
