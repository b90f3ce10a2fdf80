import type { AlertUpdate } from '@vigil/detect';
import type { AlertStore } from '@vigil/query';

/**
 * Where the detector delivers the alerts it raised or grew: called after each batch and before
 * the checkpoint that covers it. Delivery is at least once (a restart replays the updates since
 * the last checkpoint); receivers dedupe by (alert id, version). A rejection fails the batch:
 * it is processed again from the last checkpoint.
 */
export interface AlertOutput {
  publish(updates: readonly AlertUpdate[]): Promise<void>;
}

/** The store's `alerts` table: rows are idempotent per (alert id, version). */
export class AlertStoreOutput implements AlertOutput {
  constructor(
    private readonly alerts: AlertStore,
    private readonly clock: () => number = Date.now,
  ) {}

  async publish(updates: readonly AlertUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    // An alert grown several times in one batch is written once, at its last version.
    const latest = new Map<string, AlertUpdate['alert']>();
    for (const { alert } of updates) {
      const key = `${alert.tenant}\u0000${alert.id}`;
      const known = latest.get(key);
      if (!known || alert.version > known.version) latest.set(key, alert);
    }
    await this.alerts.record([...latest.values()], this.clock());
  }
}
