import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from './migrations.js';
import { alterColumns } from './schema.js';
import type { Store } from './store.js';

/** The DDL text a store would run; no engine: a cluster cannot run here, its DDL is text. */
function fakeStore(cluster: string | undefined): Store {
  return {
    cluster,
    database: 'vigil',
    table: (name: string) => `vigil.${name}`,
  } as unknown as Store;
}

describe('cluster DDL', () => {
  it('changes columns on the data table, and on a cluster on the Distributed table too', () => {
    expect(alterColumns(fakeStore(undefined), 'events', 'ADD COLUMN x String')).toEqual([
      'ALTER TABLE vigil.events ADD COLUMN x String',
    ]);
    expect(alterColumns(fakeStore('main'), 'events', 'ADD COLUMN x String')).toEqual([
      'ALTER TABLE vigil.events_local ON CLUSTER main ADD COLUMN x String',
      'ALTER TABLE vigil.events ON CLUSTER main ADD COLUMN x String',
    ]);
  });

  it('gives every column a migration adds to a local table to its Distributed table as well', () => {
    const store = fakeStore('main');
    const statements = MIGRATIONS.flatMap((m) => m.statements(store));
    const added = (table: string) =>
      statements
        .filter((s) => s.startsWith(`ALTER TABLE vigil.${table} ON CLUSTER main`))
        .flatMap((s) => [...s.matchAll(/ADD COLUMN IF NOT EXISTS (\w+)/g)].map((m) => m[1]));
    const local = added('events_local');
    expect(local.length).toBeGreaterThan(0);
    expect(added('events')).toEqual(local);
    expect(added('api_keys')).toEqual(added('api_keys_local'));
  });
});
