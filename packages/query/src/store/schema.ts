import { onCluster, type Store } from './store.js';

/**
 * DDL builders that give one schema two shapes: a single node (chDB or one server) gets plain
 * MergeTree-family tables; a cluster (`cluster` set) gets, per logical table, a Replicated
 * `<name>_local` on every node plus a Distributed `<name>` over them, so every statement that
 * reads or writes `<name>` is the same in both shapes (ClickHouse docs: "Distributed table
 * engine", "Data replication").
 */

export type EngineKind = 'MergeTree' | 'ReplacingMergeTree' | 'AggregatingMergeTree';

export interface TableSpec {
  readonly name: string;
  /** Column and index definitions, one per line, without the surrounding parentheses. */
  readonly columns: string;
  readonly engine: EngineKind;
  /** Argument of the engine, e.g. the version column of a ReplacingMergeTree. */
  readonly engineArg?: string;
  /** PARTITION BY / ORDER BY / TTL / SETTINGS clauses. */
  readonly tail: string;
  /** Sharding key of the Distributed table in cluster mode. */
  readonly shardingKey: string;
}

export function localName(store: Pick<Store, 'cluster'>, name: string): string {
  return store.cluster ? `${name}_local` : name;
}

export function createTable(store: Store, spec: TableSpec): string[] {
  const arg = spec.engineArg ?? '';
  if (!store.cluster) {
    return [
      `CREATE TABLE IF NOT EXISTS ${store.table(spec.name)} (\n${spec.columns}\n) ENGINE = ${spec.engine}(${arg})\n${spec.tail}`,
    ];
  }
  const local = `${spec.name}_local`;
  const replicatedArgs = [`'/clickhouse/tables/{shard}/{database}/${local}'`, `'{replica}'`];
  if (arg) replicatedArgs.push(arg);
  return [
    `CREATE TABLE IF NOT EXISTS ${store.table(local)}${onCluster(store)} (\n${spec.columns}\n) ENGINE = Replicated${spec.engine}(${replicatedArgs.join(', ')})\n${spec.tail}`,
    `CREATE TABLE IF NOT EXISTS ${store.table(spec.name)}${onCluster(store)} AS ${store.table(local)} ENGINE = Distributed(${store.cluster}, ${store.database}, ${local}, ${spec.shardingKey})`,
  ];
}

/** A materialized view from `from` into `to`, both logical names (local tables on a cluster). */
export function createMaterializedView(
  store: Store,
  name: string,
  from: string,
  to: string,
  select: string,
): string {
  return `CREATE MATERIALIZED VIEW IF NOT EXISTS ${store.table(name)}${onCluster(store)} TO ${store.table(localName(store, to))} AS ${select.replaceAll('{from}', store.table(localName(store, from)))}`;
}

/** `ALTER TABLE` on the table that holds the data (the local one on a cluster). */
export function alterTable(store: Store, name: string, change: string): string {
  return `ALTER TABLE ${store.table(localName(store, name))}${onCluster(store)} ${change}`;
}

/**
 * Adds or changes columns: on the table that holds the data and, on a cluster, on the
 * Distributed table too, which keeps its own column list.
 */
export function alterColumns(store: Store, name: string, change: string): string[] {
  return [
    alterTable(store, name, change),
    ...(store.cluster ? [`ALTER TABLE ${store.table(name)}${onCluster(store)} ${change}`] : []),
  ];
}
