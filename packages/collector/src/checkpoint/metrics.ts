import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CheckpointObserver } from './checkpointer.js';
import type { WitnessObserver } from './witness.js';

/** Metrics of the tree, the checkpointer and the witnesses, on the process's registry. */
export class CheckpointMetrics {
  readonly leaves: Counter;
  readonly checkpoints: Counter;
  readonly checkpointFailures: Counter;
  readonly checkpointSeconds: Histogram;
  readonly witnessDelivered: Counter<'witness'>;
  readonly witnessFailures: Counter<'witness'>;
  readonly witnessDropped: Counter<'witness'>;
  readonly witnessQueue: Gauge<'witness'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.leaves = new Counter({
      name: 'vigil_merkle_leaves_total',
      help: 'Leaves appended to Merkle trees by this sink.',
      registers,
    });
    this.checkpoints = new Counter({
      name: 'vigil_checkpoints_total',
      help: 'Checkpoints signed and stored.',
      registers,
    });
    this.checkpointFailures = new Counter({
      name: 'vigil_checkpoint_failures_total',
      help: 'Checkpoints that failed (signer or store); the tenant is retried at the next tick.',
      registers,
    });
    this.checkpointSeconds = new Histogram({
      name: 'vigil_checkpoint_seconds',
      help: 'Time to read the heads, sign and store one checkpoint.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.witnessDelivered = new Counter({
      name: 'vigil_witness_delivered_total',
      help: 'Checkpoints a witness took.',
      labelNames: ['witness'],
      registers,
    });
    this.witnessFailures = new Counter({
      name: 'vigil_witness_failures_total',
      help: 'Failed attempts to hand a checkpoint to a witness (each is retried).',
      labelNames: ['witness'],
      registers,
    });
    this.witnessDropped = new Counter({
      name: 'vigil_witness_dropped_total',
      help: 'Checkpoints dropped from a full witness queue (later checkpoints cover their events).',
      labelNames: ['witness'],
      registers,
    });
    this.witnessQueue = new Gauge({
      name: 'vigil_witness_queue',
      help: 'Checkpoints waiting for a witness.',
      labelNames: ['witness'],
      registers,
    });
  }

  checkpointObserver(): CheckpointObserver {
    return {
      signed: (seconds) => {
        this.checkpoints.inc();
        this.checkpointSeconds.observe(seconds);
      },
      failed: () => this.checkpointFailures.inc(),
      leaves: (count) => this.leaves.inc(count),
    };
  }

  witnessObserver(): WitnessObserver {
    return {
      delivered: (witness) => this.witnessDelivered.inc({ witness }),
      failed: (witness) => this.witnessFailures.inc({ witness }),
      dropped: (witness) => this.witnessDropped.inc({ witness }),
      depth: (witness, queued) => this.witnessQueue.set({ witness }, queued),
    };
  }
}
