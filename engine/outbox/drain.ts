import { applyOutbox, type ApplyResult } from '../booking/persist.js';
import type { EngineDeps } from '../deps.js';
import type { Holds } from '../holds/holds.js';
import type { BookingId, EventId } from '../ids.js';
import { eventKeys } from '../keys.js';
import type { Outbox, OutboxEntry } from './outbox.js';

export type DrainOptions = {
  /** Who drains: the lease on the event's outbox is taken (or renewed) in this name. */
  owner: string;
  /** Lease on one event's outbox; another process takes over this long after a crash. */
  leaseMs: number;
  /** Most entries applied in one transaction. */
  batchSize?: number;
  /** Called after the commit, before the entries are acknowledged (tests use it to die at the worst moment). */
  afterCommit?: (result: ApplyResult, entries: OutboxEntry[]) => void | Promise<void>;
};

/** A sale the batch recorded now (for business metrics): its booking as Postgres has it. */
export type Sale = { bookingId: BookingId; ticketCount: number; amount: number; currency: string; createdAtMs: number; confirmedAtMs: number };

export type DrainReport =
  /** 'not-armed': the event's Redis state is gone or being rebuilt (the rebuild drains it itself); 'leased': another
   *  process drains it now. Nothing was read. */
  | { status: 'skipped'; reason: 'not-armed' | 'leased' }
  | {
      status: 'applied';
      /** Entries read and acknowledged: applied now, or skipped as replays (0: the outbox was empty). */
      entries: number;
      result: ApplyResult;
      /** Time from the read to the acknowledgement. */
      seconds: number;
      /** The fresh BookingConfirmed entries' bookings, for metrics (Postgres has them after the commit). */
      sales: Sale[];
      /** Quarantined holds that could not be released in Redis (gone, or no longer just held): for the log. */
      unreleased: { bookingId: BookingId; code: string }[];
    };

const codeOf = (err: unknown) => (err as { code?: string }).code ?? '';

/**
 * The outbox drain: reads one batch of an event's outbox, applies it to Postgres (booking/persist.ts), releases in Redis
 * the holds Postgres refused or quarantined, queues the notify job of every sale, and acknowledges the batch.
 * One process at a time drains an event (a lease); entries are acknowledged only after the Postgres commit, so a
 * crash re-applies at most one batch, which the processed-event markers turn into no-ops.
 */
export function createOutboxDrain(d: EngineDeps, outbox: Outbox, holds: Holds) {
  /** Releases the holds Postgres refused (would oversell) and the poison holds it quarantined; returns the latter left as they were. */
  async function release(refused: OutboxEntry[], quarantined: OutboxEntry[], unreleased: { bookingId: BookingId; code: string }[]) {
    unreleased.length = 0; // a batch retried after a failed commit releases again: report the last run
    for (const e of refused) {
      await holds
        .release(e.eventId, e.bookingId, { system: 'BookingFailed', reason: 'refused by the system of record', states: ['held'] })
        .catch((err: unknown) => {
          if (codeOf(err) !== 'BOOKING_NOT_FOUND') throw err;
        });
    }
    // A poison hold never reached Postgres as a live booking (no payment can start on it): give its seats back. A
    // hold that is gone, or no longer just held, is left as it is: failing here would stall the event again.
    for (const e of quarantined) {
      await holds
        .release(e.eventId, e.bookingId, { system: 'BookingFailed', reason: 'quarantined by the system of record', states: ['held'] })
        .catch((err: unknown) => {
          const code = codeOf(err);
          if (code !== 'BOOKING_NOT_FOUND' && code !== 'BOOKING_NOT_CANCELLABLE') throw err;
          unreleased.push({ bookingId: e.bookingId, code });
        });
    }
  }

  /**
   * Queues the tickets of every BookingConfirmed of the batch, after the commit: the e-mail goes out as soon as the
   * booking is CONFIRMED in Postgres. Replays are queued too (a crash between the commit and the acknowledgement may
   * have come before the queueing); the job is keyed and its delivery claimed, so asking twice sends once.
   */
  async function notify(entries: OutboxEntry[], result: ApplyResult) {
    if (!d.jobs) return;
    const skip = new Set<OutboxEntry>([...result.anomalies.map((a) => a.entry), ...result.quarantined.map((q) => q.entry)]);
    const ids = new Set(entries.filter((e) => e.type === 'BookingConfirmed' && !skip.has(e)).map((e) => e.bookingId));
    for (const id of ids) await d.jobs.deliverTickets(id);
  }

  async function salesOf(result: ApplyResult): Promise<Sale[]> {
    const confirmed = result.fresh.filter((e) => e.type === 'BookingConfirmed');
    if (confirmed.length === 0) return [];
    const { rows } = await d.pg.query<{ id: string; amount: string; currency: string; created_at: Date; ticket_count: number }>(
      'SELECT id, amount, currency, created_at, ticket_count FROM bookings WHERE id = ANY($1::text[])',
      [confirmed.map((e) => e.bookingId)],
    );
    const at = new Map(confirmed.map((e) => [e.bookingId as string, e.atMs]));
    return rows.map((b) => ({
      bookingId: b.id as BookingId, ticketCount: b.ticket_count, amount: Number(b.amount), currency: b.currency,
      createdAtMs: b.created_at.getTime(), confirmedAtMs: at.get(b.id)!,
    }));
  }

  return {
    /**
     * Drains one batch of an event's outbox under its lease: read, apply, release, notify, acknowledge. Throws on
     * infrastructure errors (nothing acknowledged: the next call redoes the batch).
     */
    async drain(eventId: EventId, o: DrainOptions): Promise<DrainReport> {
      // an event whose Redis state is gone, or being rebuilt (disarmed), is left to the rebuild, which drains it itself
      // (its lease, if this owner holds it, goes at once: the rebuild waits for it instead of for its lapse)
      if ((await d.redis.hget(eventKeys(d.ns, eventId).meta, 'armed')) !== '1') {
        await outbox.lease(eventId, o.owner, o.leaseMs, 'drop');
        return { status: 'skipped', reason: 'not-armed' };
      }
      if (!(await outbox.lease(eventId, o.owner, o.leaseMs))) return { status: 'skipped', reason: 'leased' };
      const entries = await outbox.read(eventId, o.batchSize ?? 500);
      const unreleased: { bookingId: BookingId; code: string }[] = [];
      if (entries.length === 0) {
        const result: ApplyResult = { applied: 0, fresh: [], duplicates: 0, refused: [], anomalies: [], quarantined: [] };
        return { status: 'applied', entries: 0, result, seconds: 0, sales: [], unreleased };
      }
      const started = performance.now();
      const result = await applyOutbox(d.pg, entries, (refused, quarantined) => release(refused, quarantined, unreleased));
      await o.afterCommit?.(result, entries);
      await notify(entries, result);
      await outbox.ack(eventId, entries.map((e) => e.id));
      const seconds = (performance.now() - started) / 1000;
      return { status: 'applied', entries: entries.length, result, seconds, sales: await salesOf(result), unreleased };
    },

    /** Applies everything the event's outbox holds, without a lease (the caller holds it: the rebuild). */
    async drainAll(eventId: EventId): Promise<number> {
      let drained = 0;
      for (;;) {
        const entries = await outbox.read(eventId, 500);
        if (entries.length === 0) return drained;
        const result = await applyOutbox(d.pg, entries);
        await notify(entries, result);
        await outbox.ack(eventId, entries.map((e) => e.id));
        drained += entries.length;
      }
    },
  };
}
export type OutboxDrain = ReturnType<typeof createOutboxDrain>;
