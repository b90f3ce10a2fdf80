import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  checkpointKeyId,
  createSignedCheckpoint,
  hashLeaf,
  leafData,
  rootOf,
  sha256Hex,
  type SignedCheckpoint,
} from '@vigil/protocol';
import { toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';
import { CheckpointStore } from './checkpoint-store.js';

/** A tree built by inserting leaves straight into `merkle_leaves`, as the sink's view would. */
export interface TestTree {
  readonly tenant: string;
  readonly partition: number;
  readonly eventIds: string[];
  readonly eventHashes: string[];
  readonly leafHashes: Buffer[];
  /** RFC 9162 root of the first `size` leaves, computed here, not by the store. */
  rootAt(size: number): string;
}

export function eventIdOf(partition: number, index: number): string {
  return `0193a4b2-6c1e-7000-8${String(partition).padStart(3, '0')}-${String(index).padStart(12, '0')}`;
}

export async function insertLeaves(
  store: Store,
  tenant: string,
  partition: number,
  count: number,
  stream = `s/${partition}`,
): Promise<TestTree> {
  const eventIds: string[] = [];
  const eventHashes: string[] = [];
  const leafHashes: Buffer[] = [];
  const rows = [];
  for (let i = 0; i < count; i++) {
    const eventId = eventIdOf(partition, i);
    const eventHash = sha256Hex(`${tenant}/${partition}/${i}`);
    const columns = sha256Hex(`columns/${tenant}/${partition}/${i}`);
    const leafHash = hashLeaf(leafData({ tenant, stream, seq: i, eventHash, columns }));
    eventIds.push(eventId);
    eventHashes.push(eventHash);
    leafHashes.push(leafHash);
    const at = toChTime(new Date(Date.parse('2026-01-01T00:00:00.000Z') + i).toISOString());
    rows.push({
      tenant_id: tenant,
      log_partition: partition,
      leaf_index: i,
      leaf_hash: leafHash.toString('hex'),
      event_id: eventId,
      event_hash: eventHash,
      stream,
      seq: i,
      received_at: at,
      time: at,
      column_digest: columns,
    });
  }
  await store.insert(store.table('merkle_leaves'), rows);
  return {
    tenant,
    partition,
    eventIds,
    eventHashes,
    leafHashes,
    rootAt: (size) => rootOf(leafHashes.slice(0, size)).toString('hex'),
  };
}

/** An Ed25519 checkpoint signer held in the test, and a way to store what it signs. */
export interface TestSigner {
  readonly publicKey: KeyObject;
  readonly keyId: string;
  /** Signs and stores a checkpoint stating these heads of the tenant's trees, at `time`. */
  checkpoint(
    tenant: string,
    heads: readonly { partition: number; size: number; root: string }[],
    time: string,
  ): Promise<SignedCheckpoint>;
}

export function testSigner(store: Store): TestSigner {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const keyId = checkpointKeyId(publicKey);
  const checkpoints = new CheckpointStore(store);
  return {
    publicKey,
    keyId,
    async checkpoint(tenant, heads, time) {
      const statement = { v: 1 as const, tenant, time, keyId, partitions: heads };
      const signed = createSignedCheckpoint(statement, privateKey);
      await checkpoints.insert(signed, statement);
      return signed;
    },
  };
}
