import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  CheckpointStore,
  PrivacyService,
  type ChangeRecorder,
  type DocumentSigner,
  type LogErasure,
  type PrivacyRoutesOptions,
  type Store,
} from '@vigil/query';
import type { Checkpointing } from '@vigil/collector';
import { openSigner } from '@vigil/collector';
import type { Config } from '../config/config.js';
import type { FileLog } from '@vigil/collector';
import type { Log } from '@vigil/collector';
import { subjectLogTransform } from '@vigil/collector';
import { openMasterKey } from '@vigil/collector';

/**
 * Wires the privacy features of a role: the privacy service on the store (master key from
 * `privacy.keyFile`), and for the admin API the signer of bundles and receipts, the erasure of
 * the embedded log, and on-demand checkpoints.
 */

export function openPrivacyService(
  config: Config,
  store: Store,
  logger?: { warn(obj: object, msg: string): void },
): PrivacyService {
  const master = openMasterKey(config.privacy.keyFile, (file) =>
    logger?.warn(
      { file },
      'generated a new privacy master key: every process of this deployment (API, sinks) must use this same file (privacy.keyFile)',
    ),
  );
  return new PrivacyService(store, master, {
    refreshMs: config.sink.policyRefreshMs ?? 10_000,
  });
}

/**
 * The signer of bundles and receipts: the sink's checkpoint signer where this process runs one;
 * else the configured signer, if its key already exists (a process must not make up a key nobody
 * published). Its public keys are published like the checkpoint keys, so bundles and receipts
 * verify with the keys at /v1/keys/checkpoint.
 */
async function documentSigner(
  config: Config,
  store: Store,
  checkpointing: Checkpointing | undefined,
): Promise<DocumentSigner | undefined> {
  if (checkpointing) return checkpointing.signer;
  const signer = config.checkpoint.signer;
  if (signer.kind === 'file' && !existsSync(join(signer.dir, 'checkpoint-current')))
    return undefined;
  const opened = openSigner(signer);
  await new CheckpointStore(store).publishKeys(opened.publishedKeys());
  return opened;
}

export async function privacyRoutes(deps: {
  readonly config: Config;
  readonly store: Store;
  readonly service: PrivacyService;
  readonly recorder: ChangeRecorder;
  readonly log: Log | undefined;
  readonly checkpointing: Checkpointing | undefined;
}): Promise<Omit<PrivacyRoutesOptions, 'store' | 'registry' | 'onAuthFailure'>> {
  const { log, checkpointing } = deps;
  const signer = await documentSigner(deps.config, deps.store, checkpointing);
  const eraseLog = async (
    tenant: string,
    subject: { id: string; emails?: readonly string[] },
    erasedAt: number,
    eventIds: readonly string[],
  ): Promise<LogErasure> => {
    // The embedded log rewrites; Kafka keeps its records until its own retention deletes them.
    const file = log as Partial<FileLog> | undefined;
    if (!log || log.kind !== 'file' || typeof file?.rewriteRecords !== 'function')
      return { kind: 'kafka', records: 0 };
    const { transform, prefilter } = subjectLogTransform(
      tenant,
      subject,
      erasedAt,
      new Set(eventIds),
    );
    const done = await (log as FileLog).rewriteRecords(transform, { prefilter });
    return { kind: 'file', records: done.records };
  };
  return {
    privacy: deps.service,
    recorder: deps.recorder,
    ...(signer ? { signer } : {}),
    eraseLog,
    ...(checkpointing ? { checkpointNow: () => checkpointing.checkpointer.flush() } : {}),
  };
}
