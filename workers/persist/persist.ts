import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Engine } from '../../engine/index.js';
import type { EventId } from '../../engine/ids.js';
import type { DrainReport } from '../../engine/outbox/drain.js';
import { createPollLoop } from '../../platform/loop.js';
import type { Metrics } from '../../platform/metrics.js';

export type PersistOptions = {
  engine: Engine;
  log: Logger;
  metrics?: Metrics;
  batchSize?: number;
  /** Lease on one event's outbox; another process takes over this long after a crash. */
  leaseMs?: number;
  /** Longest pause between polls when every outbox is empty. */
  maxIdleMs?: number;
};

/**
 * The persist worker: a loop that drains every armed event's outbox stream into Postgres with the engine's
 * `outbox.drain` (in order, idempotently, under a per-event lease; see engine/outbox/drain.ts), and turns what each
 * batch did into metrics and logs. Holds Postgres refuses (it would oversell) are released in Redis before the commit.
 * An entry Postgres refuses on its data (a poison entry) is quarantined and counted
 * (floodgate_outbox_quarantined_total), and the rest of its batch applies; a poison hold is recorded FAILED and
 * released in Redis the same way.
 */
export function createPersistWorker(o: PersistOptions) {
  const owner = `persist-${randomBytes(6).toString('hex')}`;
  const { engine, log } = o;
  const batchSize = o.batchSize ?? 500;
  const leaseMs = o.leaseMs ?? 10_000;
  const maxIdleMs = o.maxIdleMs ?? 100;
  // errors start at 0: a panel or rate() sees a series (0 errors) from the start, not "no data"
  o.metrics?.workerErrors.inc({ worker: 'persist' }, 0);

  /** One pass over every armed event; returns how many entries were applied or skipped as replays. */
  async function drainOnce(): Promise<number> {
    let done = 0;
    for (const eventId of await engine.inventory.armedEvents()) {
      const r = await engine.outbox.drain(eventId, { owner, leaseMs, batchSize });
      if (r.status !== 'applied' || r.entries === 0) continue;
      if (o.metrics) count(o.metrics, r);
      report(eventId, r);
      done += r.entries;
    }
    return done;
  }

  function report(eventId: EventId, { result, unreleased }: Extract<DrainReport, { status: 'applied' }>) {
    for (const u of unreleased) log.error({ bookingId: u.bookingId, eventId, code: u.code }, 'quarantined hold not released in redis');
    for (const e of result.refused) {
      log.error({ bookingId: e.bookingId, eventId }, 'postgres refused a hold (would oversell); booking FAILED and hold released');
    }
    for (const q of result.quarantined) {
      log.error(
        { bookingId: q.entry.bookingId, eventId, type: q.entry.type, reason: q.reason, recorded: q.recorded, entry: q.entry },
        'outbox entry quarantined: postgres refused its data; the rest of the batch applied',
      );
    }
    for (const a of result.anomalies) {
      log.warn({ bookingId: a.entry.bookingId, type: a.entry.type, problem: a.problem }, 'outbox entry did not apply');
    }
  }

  /**
   * Business metrics are counted here, from the durable stream: each domain event is applied once, whichever process
   * (API, settle job, webhook) made the change, so conversions, cancellations and revenue are counted exactly once.
   */
  function count(m: Metrics, { result, seconds, sales }: Extract<DrainReport, { status: 'applied' }>) {
    m.persistBatchSeconds.observe(seconds);
    for (const e of result.fresh) m.outboxApplied.inc({ type: e.type });
    m.outboxDuplicates.inc(result.duplicates);
    m.durableRefusals.inc(result.refused.length);
    m.outboxQuarantined.inc(result.quarantined.length);
    for (const e of result.fresh) {
      if (e.type === 'BookingCancelled') m.bookingsCancelled.inc({ reason: e.reason === 'payment_failed' ? 'payment_failed' : 'buyer' });
    }
    for (const b of sales) {
      m.bookingsConfirmed.inc();
      m.ticketsSold.inc(b.ticketCount);
      m.revenue.inc({ currency: b.currency }, b.amount);
      m.timeToBook.observe(Math.max(0, (b.confirmedAtMs - b.createdAtMs) / 1000));
    }
  }

  // drains again at once while there is work; idle pauses grow 5 ms -> maxIdleMs; failures back off 100 ms -> 5 s
  const loop = createPollLoop({
    pass: drainOnce,
    idleMs: 5,
    maxIdleMs,
    errorMs: 100,
    maxErrorMs: 5_000,
    onError(err) {
      o.metrics?.workerErrors.inc({ worker: 'persist' });
      log.warn({ err: { message: (err as Error).message } }, 'persist pass failed; retrying');
    },
  });

  return {
    drainOnce,
    start: () => loop.start(),
    async stop() {
      await loop.stop();
      for (const eventId of await engine.inventory.armedEvents().catch(() => [])) {
        await engine.outbox.lease(eventId, owner, leaseMs, 'drop').catch(() => {});
      }
    },
  };
}
export type PersistWorker = ReturnType<typeof createPersistWorker>;
