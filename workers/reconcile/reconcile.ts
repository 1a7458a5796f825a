import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { EventId } from '../../engine/ids.js';
import type { Engine } from '../../engine/index.js';
import type { Reconciliation } from '../../engine/inventory/reconcile.js';
import type { Failover, FailoverSignals, RedisServerWatch } from '../../platform/failover.js';
import { createPollLoop } from '../../platform/loop.js';
import type { Metrics } from '../../platform/metrics.js';

export type ReconcileOptions = {
  engine: Engine;
  log: Logger;
  metrics: Metrics;
  intervalMs?: number;
  /** BullMQ queues whose depths to export. */
  queues?: Record<string, Queue>;
  /** Failovers this process notices (platform/failover.ts): each is counted, runs a pass at once and starts a recovery. */
  failovers?: FailoverSignals;
  /** Asked at the start of every pass: notices a Redis failover that no reconnect reported. */
  redisWatch?: Pick<RedisServerWatch, 'check'>;
  /** After a Redis failover, rebuild a mismatched event from Postgres by itself (RECOVERY_AUTO_REBUILD; default on). */
  autoRebuild?: boolean;
  /** Pause before a mismatched event is reconciled a second time, to confirm the mismatch before a rebuild (default 1 s). */
  confirmMs?: number;
};

/** A failover (or several) whose aftermath is not reconciled yet: from its notice until a pass finds every event exact. */
type Recovery = {
  /** When the last failover of it was noticed. */
  lastAtMs: number;
  redis: boolean;
  /** A Postgres failover happened too: Postgres may lack commits (asynchronous standby), so nothing is rebuilt from it. */
  postgres: boolean;
  /** Events rebuilt or refused in this recovery (one rebuild per event: a mismatch left after it is the operator's). */
  settled: Set<EventId>;
  /** Failed rebuilds per event (tried again on the next pass, at most 3 times). */
  failures: Map<EventId, number>;
};

/**
 * The reconcile worker: every few seconds it compares Redis with Postgres for every armed event and exports
 * floodgate_inventory_mismatch (0 when exact; a warning with the differences otherwise). The same loop samples what
 * only a poll can see: outbox backlog and its oldest entry's age, BullMQ queue depths, Postgres lock waits and
 * deadlocks.
 *
 * After a failover (`failovers`: the pool found another Postgres primary, or the Redis client talks to another server
 * process) it counts it (floodgate_failovers_total) and runs a pass at once instead of waiting for its period. Until
 * a pass finds every event exact, it is "recovering": an event still mismatched after a Redis failover, and again a
 * second later, is rebuilt from Postgres (`rebuild --force`), once. Why that is safe, and nothing else is done by
 * itself: docs/reliability.md, "Recovery after a failover". The time from the failover to that exact pass is
 * floodgate_failover_recovery_seconds.
 */
export function createReconcileWorker(o: ReconcileOptions) {
  const { engine, log, metrics } = o;
  const intervalMs = o.intervalMs ?? 5_000;
  const autoRebuild = o.autoRebuild ?? true;
  const confirmMs = o.confirmMs ?? 1_000;
  let lastDeadlocks: number | null = null;
  let recovery: Recovery | undefined;
  // errors, failovers and repairs start at 0: a panel or increase() sees a series from the start, not "no data"
  metrics.workerErrors.inc({ worker: 'reconcile' }, 0);
  for (const store of ['postgres', 'redis'] as const) metrics.failovers.inc({ store }, 0);
  for (const outcome of ['rebuilt', 'refused', 'failed'] as const) metrics.failoverRepairs.inc({ outcome }, 0);

  function noticed(f: Failover) {
    metrics.failovers.inc({ store: f.store });
    log.warn({ store: f.store, from: f.from, to: f.to }, 'failover noticed: reconciling every live event now');
    const r: Recovery = recovery ?? { lastAtMs: f.atMs, redis: false, postgres: false, settled: new Set(), failures: new Map() };
    r.lastAtMs = f.atMs;
    r[f.store] = true;
    // a new failover may have lost more: an event rebuilt after the previous one may be rebuilt again
    r.settled.clear();
    r.failures.clear();
    recovery = r;
    loop.wake();
  }

  /** An event mismatched during a recovery: confirmed a moment later, then rebuilt from Postgres if that is safe. */
  async function repair(eventId: EventId, first: Reconciliation, r: Recovery): Promise<Reconciliation> {
    if (r.settled.has(eventId) || (r.failures.get(eventId) ?? 0) >= 3) return first;
    if (!r.redis || !autoRebuild) return first; // a Postgres failover alone: Redis lost nothing; the mismatch is the operator's
    if (r.postgres) {
      r.settled.add(eventId);
      metrics.failoverRepairs.inc({ outcome: 'refused' });
      log.error({ eventId, mismatch: first.mismatch, differences: first.differences.slice(0, 10) },
        'not rebuilt after the failover: Postgres failed over too and may lack commits; see the runbook, "Database failover"');
      return first;
    }
    await new Promise((res) => setTimeout(res, confirmMs));
    const again = await engine.reconcile(eventId);
    if (again.mismatch === 0) return again;
    try {
      const started = Date.now();
      const report = await engine.rebuild(eventId, { force: true });
      r.settled.add(eventId);
      metrics.failoverRepairs.inc({ outcome: 'rebuilt' });
      log.warn({ eventId, mismatch: again.mismatch, differences: again.differences.slice(0, 10), report, rebuildMs: Date.now() - started },
        'rebuilt from Postgres after a Redis failover (Redis had lost writes Postgres holds)');
    } catch (err) {
      r.failures.set(eventId, (r.failures.get(eventId) ?? 0) + 1);
      metrics.failoverRepairs.inc({ outcome: 'failed' });
      log.error({ eventId, err: { message: (err as Error).message } }, 'rebuild after a failover failed; trying again on the next pass');
      return again;
    }
    return engine.reconcile(eventId);
  }

  async function pass(): Promise<{ mismatch: number }> {
    await o.redisWatch?.check().catch(() => {}); // may notice a failover: then `recovery` is set before the events are read
    const r = recovery;
    let mismatch = 0;
    let backlog = 0;
    let oldest = 0;
    for (const eventId of await engine.inventory.armedEvents()) {
      let rec = await engine.reconcile(eventId);
      if (rec.mismatch > 0 && r) rec = await repair(eventId, rec, r);
      mismatch += rec.mismatch;
      if (rec.mismatch > 0) log.warn({ eventId, mismatch: rec.mismatch, differences: rec.differences.slice(0, 10) }, 'inventory mismatch between Redis and Postgres');
      const b = await engine.outbox.backlog(eventId);
      backlog += b.entries;
      oldest = Math.max(oldest, b.oldestAgeMs);
    }
    metrics.inventoryMismatch.set(mismatch);
    // recovered: the first pass after the failover(s) with every event exact (not if another failover came meanwhile)
    if (r && recovery === r && mismatch === 0) {
      const seconds = (Date.now() - r.lastAtMs) / 1000;
      metrics.failoverRecovery.set(seconds);
      log.info({ seconds, redis: r.redis, postgres: r.postgres }, 'recovered after the failover: Redis and Postgres agree on every live event');
      recovery = undefined;
    }
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
      // right after a failover a store may still be on its way back: try again within a second, not a whole period
      if (recovery) setTimeout(() => loop.wake(), Math.min(1_000, intervalMs)).unref();
    },
  });

  const unlisten = o.failovers?.on(noticed);
  return {
    pass,
    start: loop.start,
    async stop() {
      unlisten?.();
      await loop.stop();
    },
    /** The failover(s) not yet reconciled to an exact state, if any (tests, logs). */
    recovering: () => (recovery ? { redis: recovery.redis, postgres: recovery.postgres, sinceMs: recovery.lastAtMs } : undefined),
  };
}
