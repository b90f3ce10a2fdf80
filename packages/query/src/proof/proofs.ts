import {
  EMPTY_TREE_ROOT,
  leafData,
  parseCheckpoint,
  PROOF_VERSION,
  rootFromInclusionProof,
  verifyConsistency,
  type CheckpointStatement,
  type ConsistencyProof,
  type InclusionProof,
} from '@vigil/protocol';
import { InvalidQueryError, QueryError, QueryErrorCodes } from '../errors.js';
import type { Store } from '../store/store.js';
import { CheckpointStore, signedForm, type StoredCheckpoint } from './checkpoint-store.js';
import { MerkleStore, TreeInconsistentError, type StoredLeaf } from './tree-store.js';

/**
 * Builds the proof documents of PROTOCOL.md §15 from the store. Every proof is checked against
 * its signed checkpoint before it is returned: a stored tree that disagrees with what was signed
 * is an integrity alarm (TreeInconsistentError), never a proof that fails only at the client.
 */

/** An inclusion proof as the API returns it: the document, plus other leaves of the same id. */
export interface InclusionProofResponse extends InclusionProof {
  /** Other leaves that name this event id (a forked or conflicting copy kept as evidence). */
  readonly otherLeaves?: readonly { partition: number; leafIndex: number; eventHash: string }[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SIZE = /^(0|[1-9][0-9]{0,15})$/;

function notFound(code: 'EVENT_NOT_FOUND' | 'CHECKPOINT_NOT_FOUND', message: string): QueryError {
  return new QueryError(QueryErrorCodes[code], message, { status: 404 });
}

function notReady(message: string): QueryError {
  return new QueryError(QueryErrorCodes.PROOF_NOT_READY, message, { status: 409, retriable: true });
}

function statementOf(c: StoredCheckpoint): CheckpointStatement {
  const parsed = parseCheckpoint(c.checkpoint);
  if (!parsed.ok) throw new TreeInconsistentError(`stored checkpoint ${c.id}: ${parsed.problem}`);
  return parsed.statement;
}

export class ProofService {
  readonly trees: MerkleStore;
  readonly checkpoints: CheckpointStore;

  constructor(
    readonly store: Store,
    trees?: MerkleStore,
    checkpoints?: CheckpointStore,
  ) {
    this.trees = trees ?? new MerkleStore(store);
    this.checkpoints = checkpoints ?? new CheckpointStore(store);
  }

  /**
   * The inclusion proof of an event of the tenant. `checkpoint` names the checkpoint to prove
   * against (its id, or the size of the event's partition tree in it); by default the newest
   * checkpoint that covers the event. `hash` picks one leaf when several name the id.
   */
  async inclusion(
    tenant: string,
    eventId: string,
    options: { readonly checkpoint?: string; readonly hash?: string } = {},
  ): Promise<InclusionProofResponse> {
    const problems = [];
    if (!UUID.test(eventId))
      problems.push({ path: '/event', message: 'must be an event id (UUID)' });
    if (options.hash !== undefined && !HEX64.test(options.hash))
      problems.push({ path: '/hash', message: 'must be 64 lower-case hex digits' });
    if (
      options.checkpoint !== undefined &&
      !HEX64.test(options.checkpoint) &&
      !SIZE.test(options.checkpoint)
    )
      problems.push({
        path: '/checkpoint',
        message: 'must be a checkpoint id (64 hex) or a tree size',
      });
    if (problems.length > 0) throw new InvalidQueryError('invalid proof parameters', problems);

    const all = await this.trees.findLeaves(tenant, eventId);
    const leaves = options.hash ? all.filter((l) => l.eventHash === options.hash) : all;
    const leaf = leaves[0];
    if (!leaf)
      throw notFound(
        'EVENT_NOT_FOUND',
        `no stored event ${eventId}${options.hash ? ` with hash ${options.hash}` : ''} in this tenant has a leaf`,
      );
    const checkpoint = await this.checkpointFor(tenant, leaf, options.checkpoint);
    const statement = statementOf(checkpoint);
    const head = statement.partitions.find((p) => p.partition === leaf.partition);
    if (!head || head.size <= leaf.leafIndex)
      throw notReady(
        `checkpoint ${checkpoint.id} does not cover leaf ${leaf.leafIndex} of partition ${leaf.partition}`,
      );
    const path = await this.trees.inclusionPath(tenant, leaf.partition, leaf.leafIndex, head.size);
    const root = rootFromInclusionProof(
      leaf.leafIndex,
      head.size,
      Buffer.from(leaf.leafHash, 'hex'),
      path,
    );
    if (!root || root.toString('hex') !== head.root)
      throw new TreeInconsistentError(
        `tenant ${tenant} partition ${leaf.partition}: the stored tree does not lead to the root signed in checkpoint ${checkpoint.id}`,
      );
    const data = leafData({
      tenant,
      stream: leaf.stream,
      seq: leaf.seq,
      eventHash: leaf.eventHash,
      columns: leaf.columns,
    });
    const record = await this.record(tenant, eventId, leaf.eventHash);
    const others = all.filter((l) => l !== leaf);
    return {
      v: PROOF_VERSION,
      eventId,
      ...(record !== undefined ? { record } : {}),
      partition: leaf.partition,
      leafIndex: leaf.leafIndex,
      treeSize: head.size,
      leaf: {
        stream: leaf.stream,
        seq: leaf.seq,
        eventHash: leaf.eventHash,
        columns: leaf.columns,
      },
      leafData: data.toString('hex'),
      leafHash: leaf.leafHash,
      auditPath: path.map((h) => h.toString('hex')),
      root: head.root,
      checkpoint: signedForm(checkpoint),
      ...(others.length > 0
        ? {
            otherLeaves: others.map((l) => ({
              partition: l.partition,
              leafIndex: l.leafIndex,
              eventHash: l.eventHash,
            })),
          }
        : {}),
    };
  }

  /**
   * The consistency proof between two sizes of one partition's tree. `from` and `to` are
   * sizes or checkpoint ids; with ids, the checkpoints are included and their roots are used.
   */
  async consistency(
    tenant: string,
    partitionText: string,
    fromText: string,
    toText: string,
  ): Promise<ConsistencyProof> {
    const problems = [];
    const partition = Number(partitionText);
    if (!SIZE.test(partitionText) || partition > 2 ** 32 - 1)
      problems.push({ path: '/partition', message: 'must be a partition number' });
    for (const [name, text] of [
      ['from', fromText],
      ['to', toText],
    ] as const) {
      if (!HEX64.test(text) && !SIZE.test(text))
        problems.push({
          path: `/${name}`,
          message: 'must be a tree size or a checkpoint id (64 hex)',
        });
    }
    if (problems.length > 0) throw new InvalidQueryError('invalid proof parameters', problems);

    const ends = [];
    for (const text of [fromText, toText]) {
      if (SIZE.test(text)) {
        ends.push({ size: Number(text), checkpoint: undefined, root: undefined });
        continue;
      }
      const checkpoint = await this.checkpoints.get(tenant, text);
      if (!checkpoint)
        throw notFound('CHECKPOINT_NOT_FOUND', `no checkpoint ${text} in this tenant`);
      const head = statementOf(checkpoint).partitions.find((p) => p.partition === partition);
      ends.push({ size: head?.size ?? 0, checkpoint, root: head?.root });
    }
    const [from, to] = ends as [(typeof ends)[number], (typeof ends)[number]];
    if (from.size > to.size)
      throw new InvalidQueryError('invalid proof parameters', [
        {
          path: '/from',
          message: `names a larger tree (${from.size} leaves) than to (${to.size})`,
        },
      ]);
    const head = await this.trees.head(tenant, partition);
    const available = head?.size ?? 0;
    if (to.size > available)
      throw notReady(
        `partition ${partition} of this tenant has ${available} leaves, not ${to.size}`,
      );
    const [fromRoot, toRoot] = await Promise.all([
      this.trees.root(tenant, partition, from.size),
      this.trees.root(tenant, partition, to.size),
    ]);
    for (const [end, root] of [
      [from, fromRoot],
      [to, toRoot],
    ] as const) {
      if (end.root !== undefined && end.root !== root.toString('hex'))
        throw new TreeInconsistentError(
          `tenant ${tenant} partition ${partition}: the stored tree of ${end.size} leaves does not have the root signed in checkpoint ${end.checkpoint?.id ?? ''}`,
        );
    }
    const path = await this.trees.consistencyPath(tenant, partition, from.size, to.size);
    if (!verifyConsistency(from.size, to.size, path, fromRoot, toRoot))
      throw new TreeInconsistentError(
        `tenant ${tenant} partition ${partition}: the stored tree does not prove ${from.size} → ${to.size} consistent`,
      );
    return {
      v: PROOF_VERSION,
      partition,
      fromSize: from.size,
      toSize: to.size,
      fromRoot: (from.size === 0 ? EMPTY_TREE_ROOT : fromRoot).toString('hex'),
      toRoot: toRoot.toString('hex'),
      path: path.map((h) => h.toString('hex')),
      ...(from.checkpoint ? { from: signedForm(from.checkpoint) } : {}),
      ...(to.checkpoint ? { to: signedForm(to.checkpoint) } : {}),
    };
  }

  private async checkpointFor(
    tenant: string,
    leaf: StoredLeaf,
    wanted: string | undefined,
  ): Promise<StoredCheckpoint> {
    if (wanted === undefined) {
      const found = await this.checkpoints.covering(tenant, leaf.partition, {
        leafIndex: leaf.leafIndex,
      });
      if (!found)
        throw notReady(
          `event ${leaf.eventId} is stored (leaf ${leaf.leafIndex} of partition ${leaf.partition}) but no checkpoint covers it yet; retry after the next checkpoint`,
        );
      return found;
    }
    if (HEX64.test(wanted)) {
      const found = await this.checkpoints.get(tenant, wanted);
      if (!found) throw notFound('CHECKPOINT_NOT_FOUND', `no checkpoint ${wanted} in this tenant`);
      return found;
    }
    const size = Number(wanted);
    if (size <= leaf.leafIndex)
      throw new InvalidQueryError('invalid proof parameters', [
        {
          path: '/checkpoint',
          message: `a tree of ${size} leaves does not hold leaf ${leaf.leafIndex}`,
        },
      ]);
    const found = await this.checkpoints.covering(tenant, leaf.partition, { size });
    if (!found)
      throw notFound(
        'CHECKPOINT_NOT_FOUND',
        `no checkpoint states ${size} leaves for partition ${leaf.partition}`,
      );
    return found;
  }

  /** The exact record bytes, while the store still holds the event. */
  private async record(tenant: string, eventId: string, hash: string): Promise<string | undefined> {
    const rows = await this.store.query<{ rec: string }>(
      `SELECT record AS rec FROM ${this.store.table('events')}
       WHERE tenant_id = {tenant:String} AND id = {id:UUID} AND hash = {hash:FixedString(64)}
       LIMIT 1`,
      { tenant, id: eventId, hash },
    );
    return rows[0]?.rec;
  }
}
