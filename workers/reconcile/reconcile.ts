import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { Engine } from '../../engine/index.js';
import { createPollLoop } from '../../platform/loop.js';
import type { Metrics } from '../../platform/metrics.js';

export type ReconcileOptions = {
  engine: Engine;
  log: Logger;
  metrics: Metrics;
  intervalMs?: number;
  /** BullMQ queues whose depths to export. */
  queues?: Record<string, Queue>;
};

/**
 * The reconcile worker: every few seconds it compares Redis with Postgres for every armed event and exports
 * floodgate_inventory_mismatch (0 when exact; a warning with the differences otherwise). The same loop samples what
 * only a poll can see: outbox backlog and its oldest entry's age, BullMQ queue depths, Postgres lock waits and
 * deadlocks.
 */
export function createReconcileWorker(o: ReconcileOptions) {
  const { engine, log, metrics } = o;
  const intervalMs = o.intervalMs ?? 5_000;
  let lastDeadlocks: number | null = null;
  // errors start at 0: a panel or rate() sees a series (0 errors) from the start, not "no data"
  metrics.workerErrors.inc({ worker: 'reconcile' }, 0);

  async function pass(): Promise<{ mismatch: number }> {
    let mismatch = 0;
    let backlog = 0;
    let oldest = 0;
    for (const eventId of await engine.inventory.armedEvents()) {
      const r = await engine.reconcile(eventId);
      mismatch += r.mismatch;
      if (r.mismatch > 0) log.warn({ eventId, mismatch: r.mismatch, differences: r.differences.slice(0, 10) }, 'inventory mismatch between Redis and Postgres');
      const b = await engine.outbox.backlog(eventId);
      backlog += b.entries;
      oldest = Math.max(oldest, b.oldestAgeMs);
    }
    metrics.inventoryMismatch.set(mismatch);
    metrics.outboxBacklog.set(backlog);
    metrics.outboxOldestAge.set(oldest / 1000);
    metrics.reconcileRuns.inc();
    for (const [name, q] of Object.entries(o.queues ?? {})) {
      const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed');
      for (const [state, n] of Object.entries(counts)) metrics.queueJobs.set({ queue: name, state }, n);
    }
    const { lockWaits, activeSessions, deadlocks } = await engine.pgActivity();
    metrics.pgLockWaits.set(lockWaits);
    metrics.pgActiveSessions.set(activeSessions);
    if (lastDeadlocks !== null && deadlocks > lastDeadlocks) metrics.pgDeadlocks.inc(deadlocks - lastDeadlocks);
    lastDeadlocks = deadlocks;
    return { mismatch };
  }

  // one pass every intervalMs, whatever it found; a failed pass is counted and tried again after the same pause
  const loop = createPollLoop({
    pass: async () => void (await pass()),
    busyMs: intervalMs,
    idleMs: intervalMs,
    errorMs: intervalMs,
    onError: (err) => {
      metrics.workerErrors.inc({ worker: 'reconcile' });
      log.warn({ err: { message: (err as Error).message } }, 'reconcile pass failed; retrying');
    },
  });

  return { pass, start: loop.start, stop: loop.stop };
}
