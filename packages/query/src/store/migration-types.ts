import { createTable } from './schema.js';
import type { Store } from './store.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: (store: Store) => string[];
}

export function MIGRATION_TABLE_DDL(store: Store): string[] {
  return createTable(store, {
    name: 'schema_migrations',
    columns: `
  version UInt32,
  name String,
  applied_at DateTime64(3, 'UTC')`,
    engine: 'ReplacingMergeTree',
    tail: 'ORDER BY version',
    shardingKey: 'version',
  });
}
