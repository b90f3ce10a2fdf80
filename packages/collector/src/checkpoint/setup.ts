import { existsSync, readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { CheckpointStore, type Store } from '@vigil/query';
import type { CheckpointConfig } from '../stage-config.js';
import { ConfigError } from '../errors.js';
import { Checkpointer } from './checkpointer.js';
import { CheckpointMetrics } from './metrics.js';
import { CommandSigner, KeyFileSigner, type CheckpointSigner } from './signer.js';
import { TreeWriter } from './tree-writer.js';
import {
  DirectoryWitness,
  WebhookWitness,
  WitnessDispatcher,
  type CheckpointWitness,
} from './witness.js';

/** The checkpointing of a sink process: signer, checkpointer and witnesses, wired from config. */
export interface Checkpointing {
  readonly signer: CheckpointSigner;
  /** Builds tree nodes and heads from the leaves the sink reports (the checkpointer's heads). */
  readonly trees: TreeWriter;
  readonly checkpointer: Checkpointer;
  readonly witnesses: WitnessDispatcher;
  /** Stops the timer, signs what is pending, then gives the witnesses a moment to take it. */
  close(): Promise<void>;
}

export interface CheckpointingDeps {
  readonly config: CheckpointConfig;
  readonly store: Store;
  readonly registry: Registry;
  readonly logger: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
  /** A signer to use instead of the configured one (tests, embedding). */
  readonly signer?: CheckpointSigner;
}

/** The external signer's public key setting: a PEM file, or the raw key in base64url. */
export function readPublicKeySetting(value: string): string {
  if (/^[A-Za-z0-9_-]{43}$/.test(value)) return value;
  if (!existsSync(value))
    throw new ConfigError(
      `checkpoint.signerPublicKey: "${value}" is neither a base64url Ed25519 key nor a file`,
    );
  return readFileSync(value, 'utf8');
}

export function openSigner(config: CheckpointConfig['signer']): CheckpointSigner {
  return config.kind === 'file'
    ? KeyFileSigner.open(config.dir)
    : new CommandSigner({
        command: config.command,
        publicKey: readPublicKeySetting(config.publicKey),
      });
}

/**
 * Opens the signer, publishes its public keys (current and retired) in the store for
 * GET /v1/keys/checkpoint, and starts the tree writer, the checkpointer and the witnesses. The
 * checkpointer is the tree plugin's observer (defaultSinkPlugins `trees`).
 */
export async function openCheckpointing(deps: CheckpointingDeps): Promise<Checkpointing> {
  const { config, store, logger } = deps;
  const signer = deps.signer ?? openSigner(config.signer);
  const checkpoints = new CheckpointStore(store);
  await checkpoints.publishKeys(signer.publishedKeys());
  const metrics = new CheckpointMetrics(deps.registry);
  const list: CheckpointWitness[] = [];
  if (config.witness.dir) list.push(new DirectoryWitness(config.witness.dir));
  for (const url of config.witness.webhooks)
    list.push(
      new WebhookWitness({
        url,
        ...(config.witness.webhookToken ? { token: config.witness.webhookToken } : {}),
      }),
    );
  const witnesses = new WitnessDispatcher(list, {
    capacity: config.witness.queue,
    observer: metrics.witnessObserver(),
    logger,
  });
  const trees = new TreeWriter(store);
  const checkpointer = new Checkpointer({
    heads: trees,
    tree: trees,
    lagging: (olderThanMs) => trees.lagging(olderThanMs),
    sink: checkpoints,
    signer,
    everyEvents: config.everyEvents,
    intervalMs: config.intervalMs,
    witnesses,
    observer: metrics.checkpointObserver(),
    logger,
  });
  checkpointer.start();
  logger.info(
    {
      keyId: signer.keyId,
      signer: config.signer.kind,
      witnesses: list.map((w) => w.name),
      everyEvents: config.everyEvents,
      intervalSeconds: config.intervalMs / 1000,
    },
    'checkpoints signed by this sink',
  );
  return {
    signer,
    trees,
    checkpointer,
    witnesses,
    async close() {
      await checkpointer.stop();
      await witnesses.close();
    },
  };
}
