import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Engine } from '../../engine/index.js';
import type { EventId } from '../../engine/ids.js';
import { eventKeys } from '../../engine/keys.js';
import type { ApplyResult } from '../../engine/booking/persist.js';
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
 * The persist worker: drains every armed event's outbox stream into Postgres, in order, idempotently.
 * One process at a time drains an event (a lease); entries are acknowledged only after the Postgres commit,
 * so a crash re-applies at most one batch, which the processed-event markers turn into no-ops.
 * Holds Postgres refuses (it would oversell) are released in Redis before the commit. An entry Postgres refuses on
 * its data (a poison entry) is quarantined and counted (floodgate_outbox_quarantined_total), and the rest of its batch
 * applies; a poison hold is recorded FAILED and released in Redis the same way.
 */
export function createPersistWorker(o: PersistOptions) {
  const owner = `persist-${randomBytes(6).toString('hex')}`;
  const { engine, log } = o;
  const batchSize = o.batchSize ?? 500;
  const leaseMs = o.leaseMs ?? 10_000;
  const maxIdleMs = o.maxIdleMs ?? 100;
  // errors start at 0: a panel or rate() sees a series (0 errors) from the start, not "no data"
  o.metrics?.workerErrors.inc({ worker: 'persist' }, 0);
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  /** One pass over every armed event; returns how many entries were applied or skipped as replays. */
  async function drainOnce(): Promise<number> {
    let done = 0;
    for (const eventId of await engine.inventory.armedEvents()) {
      // an event whose Redis state is gone, or being rebuilt (disarmed), is left to the rebuild, which drains it itself
      if ((await engine.deps.redis.hget(eventKeys(engine.deps.ns, eventId).meta, 'armed')) !== '1') continue;
      if (!(await engine.outbox.lease(eventId, owner, leaseMs))) continue;
      done += await drainEvent(eventId);
    }
    return done;
  }

  async function drainEvent(eventId: EventId): Promise<number> {
    const entries = await engine.outbox.read(eventId, batchSize);
    if (entries.length === 0) return 0;
    const started = performance.now();
    const result = await engine.applyOutbox(entries, async (refused, quarantined) => {
      for (const e of refused) {
        await engine.holds
          .release(e.eventId, e.bookingId, { system: 'BookingFailed', reason: 'refused by the system of record', states: ['held'] })
          .catch((err: unknown) => {
            if ((err as { code?: string }).code !== 'BOOKING_NOT_FOUND') throw err;
          });
      }
      // A poison hold never reached Postgres as a live booking (no payment can start on it): give its seats back. A
      // hold that is gone, or no longer just held, is left as it is: failing here would stall the event again.
      for (const e of quarantined) {
        await engine.holds
          .release(e.eventId, e.bookingId, { system: 'BookingFailed', reason: 'quarantined by the system of record', states: ['held'] })
          .catch((err: unknown) => {
            const code = (err as { code?: string }).code;
            if (code !== 'BOOKING_NOT_FOUND' && code !== 'BOOKING_NOT_CANCELLABLE') throw err;
            log.error({ bookingId: e.bookingId, eventId, code }, 'quarantined hold not released in redis');
          });
      }
    });
    await engine.outbox.ack(eventId, entries.map((e) => e.id));
    if (o.metrics) await count(o.metrics, result, (performance.now() - started) / 1000);
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
    return entries.length;
  }

  /**
   * Business metrics are counted here, from the durable stream: each domain event is applied once, whichever process
   * (API, settle job, webhook) made the change, so conversions, cancellations and revenue are counted exactly once.
   */
  async function count(m: Metrics, result: ApplyResult, seconds: number) {
    m.persistBatchSeconds.observe(seconds);
    for (const e of result.fresh) m.outboxApplied.inc({ type: e.type });
    m.outboxDuplicates.inc(result.duplicates);
    m.durableRefusals.inc(result.refused.length);
    m.outboxQuarantined.inc(result.quarantined.length);
    const confirmed = result.fresh.filter((e) => e.type === 'BookingConfirmed');
    for (const e of result.fresh) {
      if (e.type === 'BookingCancelled') m.bookingsCancelled.inc({ reason: e.reason === 'payment_failed' ? 'payment_failed' : 'buyer' });
    }
    if (confirmed.length === 0) return;
    const { rows } = await engine.deps.pg.query<{ id: string; amount: string; currency: string; created_at: Date; ticket_count: number }>(
      'SELECT id, amount, currency, created_at, ticket_count FROM bookings WHERE id = ANY($1::text[])',
      [confirmed.map((e) => e.bookingId)],
    );
    const at = new Map(confirmed.map((e) => [e.bookingId as string, e.atMs]));
    for (const b of rows) {
      m.bookingsConfirmed.inc();
      m.ticketsSold.inc(b.ticket_count);
      m.revenue.inc({ currency: b.currency }, Number(b.amount));
      m.timeToBook.observe(Math.max(0, (at.get(b.id)! - b.created_at.getTime()) / 1000));
    }
  }

  async function run() {
    let idle = 5;
    let backoff = 100;
    while (running) {
      try {
        const n = await drainOnce();
        backoff = 100;
        idle = n > 0 ? 0 : Math.min(Math.max(idle * 2, 5), maxIdleMs);
      } catch (err) {
        o.metrics?.workerErrors.inc({ worker: 'persist' });
        log.warn({ err: { message: (err as Error).message } }, 'persist pass failed; retrying');
        idle = backoff;
        backoff = Math.min(backoff * 2, 5_000);
      }
      if (idle > 0 && running) await new Promise<void>((r) => ((wake = r), setTimeout(r, idle).unref()));
    }
  }

  return {
    drainOnce,
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      wake?.();
      await loop;
      for (const eventId of await engine.inventory.armedEvents().catch(() => [])) {
        await engine.outbox.lease(eventId, owner, leaseMs, 'drop').catch(() => {});
      }
    },
  };
}
export type PersistWorker = ReturnType<typeof createPersistWorker>;
