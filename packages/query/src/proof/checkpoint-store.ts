import {
  formatTime,
  parseTime,
  SIGNATURE_ALGORITHM,
  type CheckpointStatement,
  type PublishedKey,
  type SignedCheckpoint,
} from '@vigil/protocol';
import { QueryError, QueryErrorCodes } from '../errors.js';
import { fromChTime, toChTime } from '../store/rows.js';
import type { Store } from '../store/store.js';

/**
 * Signed checkpoints and the public keys that sign them, as the store keeps them
 * (PROTOCOL.md §14.6). Checkpoints are kept without TTL; `body` is the exact signed text.
 */

/** A stored checkpoint: the signed form plus the columns it is found by. */
export interface StoredCheckpoint extends SignedCheckpoint {
  readonly tenant: string;
  readonly time: string;
  readonly keyId: string;
}

export interface CheckpointPage {
  readonly checkpoints: StoredCheckpoint[];
  /** Pass as `cursor` for older checkpoints; absent on the last page. */
  readonly nextCursor?: string;
}

export const CHECKPOINT_KEY_PURPOSE = 'checkpoint';

interface Row {
  cid: string;
  tn: string;
  tm: string;
  kid: string;
  body: string;
  sig: string;
}

// Aliases differ from every column name: ClickHouse resolves aliases in WHERE too.
const COLUMNS = `id AS cid, tenant_id AS tn, toString(time) AS tm, key_id AS kid, body, signature AS sig`;

function toCheckpoint(r: Row): StoredCheckpoint {
  return {
    id: r.cid,
    checkpoint: r.body,
    signature: r.sig,
    tenant: r.tn,
    time: formatTime(fromChTime(r.tm)),
    keyId: r.kid,
  };
}

/** The signed form alone, as the API and witnesses ship it. */
export function signedForm(c: SignedCheckpoint): SignedCheckpoint {
  return { id: c.id, checkpoint: c.checkpoint, signature: c.signature };
}

function decodeCursor(text: string): { time: string; id: string } {
  const [time, id] = Buffer.from(text, 'base64url').toString('utf8').split('|');
  if (time === undefined || parseTime(time) === undefined || !id || !/^[0-9a-f]{64}$/.test(id))
    throw new QueryError(QueryErrorCodes.INVALID_CURSOR, 'cursor is not one this server issued', {
      status: 400,
      details: [{ path: '/cursor', message: 'is invalid' }],
    });
  return { time, id };
}

export class CheckpointStore {
  constructor(readonly store: Store) {}

  async insert(signed: SignedCheckpoint, statement: CheckpointStatement): Promise<void> {
    await this.store.insert(this.store.table('checkpoints'), [
      {
        tenant_id: statement.tenant,
        id: signed.id,
        time: toChTime(statement.time),
        key_id: statement.keyId,
        partitions: statement.partitions.map((p) => p.partition),
        sizes: statement.partitions.map((p) => p.size),
        body: signed.checkpoint,
        signature: signed.signature,
        created_at: Date.now(),
      },
    ]);
  }

  /** The newest checkpoint of the tenant (by its time). */
  async latest(tenant: string): Promise<StoredCheckpoint | undefined> {
    return (await this.list(tenant, { limit: 1 })).checkpoints[0];
  }

  async get(tenant: string, id: string): Promise<StoredCheckpoint | undefined> {
    const rows = await this.store.query<Row>(
      `SELECT ${COLUMNS} FROM ${this.store.table('checkpoints')}
       WHERE tenant_id = {tenant:String} AND id = {id:FixedString(64)} LIMIT 1`,
      { tenant, id },
    );
    return rows[0] ? toCheckpoint(rows[0]) : undefined;
  }

  /** Newest first, with a cursor for older ones. */
  async list(
    tenant: string,
    options: { readonly limit?: number; readonly cursor?: string } = {},
  ): Promise<CheckpointPage> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 1000);
    const params: Record<string, unknown> = { tenant, limit: limit + 1 };
    let where = '';
    if (options.cursor) {
      const c = decodeCursor(options.cursor);
      params['ct'] = toChTime(c.time);
      params['cid'] = c.id;
      where = 'AND (time, id) < ({ct:DateTime64(3)}, {cid:FixedString(64)})';
    }
    const rows = await this.store.query<Row>(
      `SELECT ${COLUMNS} FROM ${this.store.table('checkpoints')} FINAL
       WHERE tenant_id = {tenant:String} ${where}
       ORDER BY time DESC, id DESC LIMIT {limit:UInt32}`,
      params,
    );
    const checkpoints = rows.slice(0, limit).map(toCheckpoint);
    const last = checkpoints[checkpoints.length - 1];
    return rows.length > limit && last
      ? {
          checkpoints,
          nextCursor: Buffer.from(`${last.time}|${last.id}`).toString('base64url'),
        }
      : { checkpoints };
  }

  /**
   * The newest checkpoint whose tree of `partition` has more than `leafIndex` leaves (it proves
   * that leaf), or, with `size`, exactly `size` leaves.
   */
  async covering(
    tenant: string,
    partition: number,
    condition: { readonly leafIndex: number } | { readonly size: number },
  ): Promise<StoredCheckpoint | undefined> {
    const test =
      'size' in condition
        ? 'arrayExists((p, s) -> p = {partition:UInt32} AND s = {n:UInt64}, partitions, sizes)'
        : 'arrayExists((p, s) -> p = {partition:UInt32} AND s > {n:UInt64}, partitions, sizes)';
    const n = 'size' in condition ? condition.size : condition.leafIndex;
    const rows = await this.store.query<Row>(
      `SELECT ${COLUMNS} FROM ${this.store.table('checkpoints')}
       WHERE tenant_id = {tenant:String} AND ${test}
       ORDER BY time DESC, id DESC LIMIT 1`,
      { tenant, partition, n },
    );
    return rows[0] ? toCheckpoint(rows[0]) : undefined;
  }

  /** Publishes public keys (current and retired); idempotent. */
  async publishKeys(keys: readonly PublishedKey[]): Promise<void> {
    const version = Date.now();
    await this.store.insert(
      this.store.table('signing_keys'),
      keys.map((k) => ({
        key_id: k.keyId,
        purpose: CHECKPOINT_KEY_PURPOSE,
        algorithm: k.algorithm,
        public_key: k.publicKey,
        created_at: toChTime(k.createdAt),
        retired_at: k.retiredAt === null ? null : toChTime(k.retiredAt),
        version,
      })),
    );
  }

  /** Every published checkpoint key, oldest first. */
  async keys(): Promise<PublishedKey[]> {
    const rows = await this.store.query<{
      kid: string;
      alg: string;
      pk: string;
      created: string;
      retired: string | null;
    }>(
      `SELECT key_id AS kid, algorithm AS alg, public_key AS pk, toString(created_at) AS created,
              if(isNull(retired_at), NULL, toString(retired_at)) AS retired
       FROM ${this.store.table('signing_keys')} FINAL
       WHERE purpose = {purpose:String}
       ORDER BY created_at, key_id`,
      { purpose: CHECKPOINT_KEY_PURPOSE },
    );
    return rows
      .filter((r) => r.alg === SIGNATURE_ALGORITHM)
      .map((r) => ({
        keyId: r.kid,
        algorithm: SIGNATURE_ALGORITHM,
        publicKey: r.pk,
        createdAt: formatTime(fromChTime(r.created)),
        retiredAt: r.retired === null ? null : formatTime(fromChTime(r.retired)),
      }));
  }
}
