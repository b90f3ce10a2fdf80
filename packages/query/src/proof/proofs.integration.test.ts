import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  EMPTY_TREE_ROOT,
  rawPublicKey,
  verifyConsistencyProof,
  verifyInclusionProof,
} from '@vigil/protocol';
import { QueryErrorCodes } from '../errors.js';
import { openTestStore, type TestStore } from '../store/store.testkit.js';
import { CheckpointStore } from './checkpoint-store.js';
import { ProofService } from './proofs.js';
import { insertLeaves, testSigner, type TestSigner, type TestTree } from './trees.testkit.js';
import { MerkleStore, TreeIncompleteError, TreeInconsistentError } from './tree-store.js';

const T = (second: number): string => `2026-01-01T00:00:${String(second).padStart(2, '0')}.000Z`;

describe('the tree store', () => {
  let ts: TestStore;
  beforeEach(async () => {
    ts = await openTestStore();
  });
  afterEach(async () => {
    await ts.cleanup();
  });

  const nodeCount = async (): Promise<number> =>
    Number(
      (
        await ts.store.query<{ n: string }>(
          `SELECT count() AS n FROM ${ts.store.table('merkle_nodes')}`,
        )
      )[0]?.n,
    );

  it('computes the RFC 9162 root of every size from the leaves, and stores the nodes it built', async () => {
    const tree = await insertLeaves(ts.store, 'acme', 0, 21);
    const trees = new MerkleStore(ts.store);
    expect(await trees.leafCount('acme', 0)).toBe(21);
    expect(await trees.leafCount('acme', 1)).toBe(0);
    expect(await trees.root('acme', 0, 0)).toEqual(EMPTY_TREE_ROOT);
    for (const size of [1, 2, 3, 8, 13, 21]) {
      expect((await trees.root('acme', 0, size)).toString('hex'), `size ${size}`).toBe(
        tree.rootAt(size),
      );
    }
    expect(await nodeCount()).toBeGreaterThan(0);
    // Without write-back nothing more is written; the answers stay the same.
    const before = await nodeCount();
    const readOnly = new MerkleStore(ts.store, { writeBack: false });
    expect((await readOnly.root('acme', 0, 20)).toString('hex')).toBe(tree.rootAt(20));
    expect(await nodeCount()).toBe(before);
  });

  it('distrusts a node stored twice with different hashes and rebuilds it from the leaves', async () => {
    const tree = await insertLeaves(ts.store, 'acme', 0, 8);
    // Two copies of one node that disagree (both wrong); merges stopped so that both stay.
    await ts.store.command(`SYSTEM STOP MERGES ${ts.store.table('merkle_nodes')}`);
    const trees = new MerkleStore(ts.store, { writeBack: false });
    for (const hash of ['ab'.repeat(32), 'cd'.repeat(32)]) {
      await trees.writeNodes([
        { tenant_id: 'acme', log_partition: 0, level: 3, node_index: 0, hash },
      ]);
    }
    expect((await trees.root('acme', 0, 8)).toString('hex')).toBe(tree.rootAt(8));
  });

  it('says which leaves are missing, and refuses two different leaves at one index', async () => {
    await insertLeaves(ts.store, 'acme', 0, 4);
    const trees = new MerkleStore(ts.store);
    await expect(trees.root('acme', 0, 6)).rejects.toBeInstanceOf(TreeIncompleteError);
    await expect(trees.root('acme', 0, 6)).rejects.toThrow(/2 of the leaves 0\.\.5/);
    // A forged leaf at index 1 beside the real one: both are kept as evidence.
    await insertLeaves(ts.store, 'acme', 0, 2, 'forged');
    await expect(trees.leaves('acme', 0, 0, 4)).rejects.toBeInstanceOf(TreeInconsistentError);
  });

  it('keeps the largest head of each tree, and gives the frontier to append to', async () => {
    const tree = await insertLeaves(ts.store, 'acme', 0, 5);
    const trees = new MerkleStore(ts.store);
    await trees.writeHeads('acme', [{ partition: 0, size: 3, root: tree.rootAt(3) }]);
    await trees.writeHeads('acme', [{ partition: 0, size: 5, root: tree.rootAt(5) }]);
    expect(await trees.heads('acme')).toEqual([{ partition: 0, size: 5, root: tree.rootAt(5) }]);
    expect(await trees.head('acme', 1)).toBeUndefined();
    const frontier = await trees.frontier('acme', 0, 5);
    expect(frontier.root().toString('hex')).toBe(tree.rootAt(5));
  });
});

describe('proofs', () => {
  let ts: TestStore;
  let signer: TestSigner;
  let proofs: ProofService;
  let tree: TestTree;
  beforeEach(async () => {
    ts = await openTestStore();
    signer = testSigner(ts.store);
    proofs = new ProofService(ts.store);
    tree = await insertLeaves(ts.store, 'acme', 0, 13);
    await proofs.trees.writeHeads('acme', [{ partition: 0, size: 13, root: tree.rootAt(13) }]);
  });
  afterEach(async () => {
    await ts.cleanup();
  });

  it('proves an event included in the newest checkpoint covering it, as the protocol verifies', async () => {
    await expect(proofs.inclusion('acme', tree.eventIds[6] as string)).rejects.toMatchObject({
      code: QueryErrorCodes.PROOF_NOT_READY,
      status: 409,
    });
    await signer.checkpoint('acme', [{ partition: 0, size: 7, root: tree.rootAt(7) }], T(1));
    const latest = await signer.checkpoint(
      'acme',
      [{ partition: 0, size: 13, root: tree.rootAt(13) }],
      T(2),
    );
    for (const index of [0, 6, 12]) {
      const proof = await proofs.inclusion('acme', tree.eventIds[index] as string);
      expect(proof).toMatchObject({ leafIndex: index, treeSize: 13, root: tree.rootAt(13) });
      expect(proof.checkpoint.id).toBe(latest.id);
      expect(verifyInclusionProof(proof, [signer.publicKey])).toMatchObject({ ok: true });
      // The proof is only as good as its checkpoint's key.
      expect(verifyInclusionProof(proof, [testSigner(ts.store).publicKey]).ok).toBe(false);
    }
    // Against an older checkpoint, by tree size.
    const old = await proofs.inclusion('acme', tree.eventIds[6] as string, { checkpoint: '7' });
    expect(old.treeSize).toBe(7);
    expect(verifyInclusionProof(old, [rawPublicKey(signer.publicKey)])).toMatchObject({ ok: true });
    await expect(
      proofs.inclusion('acme', tree.eventIds[9] as string, { checkpoint: '7' }),
    ).rejects.toMatchObject({ status: 400, details: [{ path: '/checkpoint' }] });
  });

  it('answers only for the tenant that owns the event', async () => {
    await signer.checkpoint('acme', [{ partition: 0, size: 13, root: tree.rootAt(13) }], T(1));
    await expect(proofs.inclusion('other', tree.eventIds[0] as string)).rejects.toMatchObject({
      code: QueryErrorCodes.EVENT_NOT_FOUND,
      status: 404,
    });
  });

  it('raises an integrity alarm when the stored tree is not the one the checkpoint signed', async () => {
    // A checkpoint whose root is of other leaves than those stored.
    await signer.checkpoint('acme', [{ partition: 0, size: 13, root: 'cd'.repeat(32) }], T(1));
    await expect(proofs.inclusion('acme', tree.eventIds[3] as string)).rejects.toBeInstanceOf(
      TreeInconsistentError,
    );
  });

  it('names every invalid parameter', async () => {
    await expect(
      proofs.inclusion('acme', 'not-a-uuid', { hash: 'XYZ', checkpoint: '-1' }),
    ).rejects.toMatchObject({
      status: 400,
      details: [{ path: '/event' }, { path: '/hash' }, { path: '/checkpoint' }],
    });
    await expect(proofs.consistency('acme', 'x', 'y', '3')).rejects.toMatchObject({
      status: 400,
      details: [{ path: '/partition' }, { path: '/from' }],
    });
  });

  it('proves two checkpoints consistent, as the protocol verifies', async () => {
    const from = await signer.checkpoint(
      'acme',
      [{ partition: 0, size: 5, root: tree.rootAt(5) }],
      T(1),
    );
    const to = await signer.checkpoint(
      'acme',
      [{ partition: 0, size: 13, root: tree.rootAt(13) }],
      T(2),
    );
    const proof = await proofs.consistency('acme', '0', from.id, to.id);
    expect(proof).toMatchObject({ fromSize: 5, toSize: 13, fromRoot: tree.rootAt(5) });
    expect(verifyConsistencyProof(proof, [signer.publicKey])).toMatchObject({ ok: true });
    // By sizes, without checkpoints.
    const bySize = await proofs.consistency('acme', '0', '3', '12');
    expect(verifyConsistencyProof(bySize)).toMatchObject({ ok: true });
    expect(bySize.toRoot).toBe(tree.rootAt(12));

    await expect(proofs.consistency('acme', '0', '9', '4')).rejects.toMatchObject({
      status: 400,
      details: [{ path: '/from' }],
    });
    await expect(proofs.consistency('acme', '0', '4', '14')).rejects.toMatchObject({
      code: QueryErrorCodes.PROOF_NOT_READY,
    });
    await expect(proofs.consistency('acme', '0', 'ab'.repeat(32), '4')).rejects.toMatchObject({
      code: QueryErrorCodes.CHECKPOINT_NOT_FOUND,
      status: 404,
    });
  });
});

describe('the checkpoint store', () => {
  let ts: TestStore;
  beforeEach(async () => {
    ts = await openTestStore();
  });
  afterEach(async () => {
    await ts.cleanup();
  });

  it('lists checkpoints newest first in pages, and finds the one covering a leaf or a size', async () => {
    const signer = testSigner(ts.store);
    const checkpoints = new CheckpointStore(ts.store);
    const root = 'ef'.repeat(32);
    const signed = [];
    for (let i = 1; i <= 5; i++) {
      signed.push(
        await signer.checkpoint(
          'acme',
          [
            { partition: 0, size: i * 10, root },
            { partition: 2, size: i, root },
          ],
          T(i),
        ),
      );
    }
    await signer.checkpoint('other', [{ partition: 0, size: 1000, root }], T(9));

    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await checkpoints.list('acme', cursor ? { limit: 2, cursor } : { limit: 2 });
      ids.push(...page.checkpoints.map((c) => c.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(ids).toEqual(signed.map((s) => s.id).reverse());
    expect((await checkpoints.latest('acme'))?.id).toBe(signed[4]?.id);
    expect(await checkpoints.get('acme', signed[0]?.id as string)).toMatchObject({
      checkpoint: signed[0]?.checkpoint,
      signature: signed[0]?.signature,
      tenant: 'acme',
      time: T(1),
      keyId: signer.keyId,
    });
    expect(await checkpoints.get('other', signed[0]?.id as string)).toBeUndefined();

    // Newest covering leaf 25 of partition 0 is the newest of all; size 30 exactly is the third.
    expect((await checkpoints.covering('acme', 0, { leafIndex: 25 }))?.id).toBe(signed[4]?.id);
    expect((await checkpoints.covering('acme', 0, { size: 30 }))?.id).toBe(signed[2]?.id);
    expect(await checkpoints.covering('acme', 0, { leafIndex: 50 })).toBeUndefined();
    expect(await checkpoints.covering('acme', 1, { leafIndex: 0 })).toBeUndefined();

    await expect(checkpoints.list('acme', { cursor: 'bm9wZQ' })).rejects.toMatchObject({
      code: QueryErrorCodes.INVALID_CURSOR,
      status: 400,
    });
  });

  it('publishes checkpoint keys, a retired one with its retirement', async () => {
    const checkpoints = new CheckpointStore(ts.store);
    const a = testSigner(ts.store);
    const b = testSigner(ts.store);
    const key = (s: TestSigner, createdAt: string, retiredAt: string | null) => ({
      keyId: s.keyId,
      algorithm: 'Ed25519' as const,
      publicKey: rawPublicKey(s.publicKey).toString('base64url'),
      createdAt,
      retiredAt,
    });
    await checkpoints.publishKeys([key(a, T(1), null)]);
    await checkpoints.publishKeys([key(a, T(1), T(5)), key(b, T(5), null)]);
    expect(await checkpoints.keys()).toEqual([key(a, T(1), T(5)), key(b, T(5), null)]);
  });
});
