import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { Engine } from '../../engine/index.js';
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
  let running = false;
  let loop: Promise<void> | undefined;

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
    const { rows } = await engine.deps.pg.query<{ waiting: string; active: string; deadlocks: string }>(
      `SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock') AS waiting,
              (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active') AS active,
              (SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()) AS deadlocks`,
    );
    metrics.pgLockWaits.set(Number(rows[0]!.waiting));
    metrics.pgActiveSessions.set(Number(rows[0]!.active));
    const deadlocks = Number(rows[0]!.deadlocks);
    if (lastDeadlocks !== null && deadlocks > lastDeadlocks) metrics.pgDeadlocks.inc(deadlocks - lastDeadlocks);
    lastDeadlocks = deadlocks;
    return { mismatch };
  }

  async function run() {
    while (running) {
      try {
        await pass();
      } catch (err) {
        metrics.workerErrors.inc({ worker: 'reconcile' });
        log.warn({ err: { message: (err as Error).message } }, 'reconcile pass failed; retrying');
      }
      if (running) await new Promise((r) => setTimeout(r, intervalMs).unref());
    }
  }

  return {
    pass,
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}
