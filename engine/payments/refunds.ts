import { assertNever, RefundHoldReply } from '../../lua/codes.js';
import { scriptNow } from '../clock.js';
import { withTx, type Queryable } from '../../platform/pg.js';
import { getBooking, transition } from '../booking/bookings-repo.js';
import type { BookingState } from '../booking/states.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import type { BookingId, UserId } from '../ids.js';
import { NO_JOBS } from '../jobs.js';
import { eventKeys } from '../keys.js';
import { attemptsOf } from './payments.js';

export type RefundDecision = 'automatic' | 'pending_review';
export type DecideOptions = {
  reason?: string | undefined;
  /**
   * An admin refunds a booking whose tickets were already scanned at the gate: allowed only when set, and only with a
   * reason. With no refund request waiting, this opens and approves one in the same step.
   */
  overrideTicketUsed?: boolean | undefined;
};

/** Tickets of the booking scanned `valid` at the gate (read after the booking's row lock, so a scan cannot slip past). */
async function scannedTickets(db: Queryable, bookingId: BookingId): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM ticket_scans WHERE booking_id = $1', [bookingId]);
  return rows[0]!.n;
}

/** Locks the booking's row (the gate takes it FOR SHARE before recording a scan) and returns its state. */
async function lockBooking(db: Queryable, bookingId: BookingId): Promise<BookingState | null> {
  const { rows } = await db.query<{ state: BookingState }>('SELECT state FROM bookings WHERE id = $1 FOR UPDATE', [bookingId]);
  return rows[0]?.state ?? null;
}

const ticketUsed = (n: number) =>
  new DomainError('TICKET_USED', `${n} ticket(s) of this booking were already scanned at the gate; only an admin can refund it, with a reason`, {
    scannedTickets: n,
  });

/**
 * Refunds: CONFIRMED (or delivered) -> REFUND_REQUESTED -> REFUNDED (money back, tickets void, seats back to stock)
 * or REFUND_DENIED -> the state it came from (CONFIRMED or TICKETS_DELIVERED). Policy: automatic until
 * `refundCutoffHours` before the event, an admin's decision after that. A booking with a ticket scanned at the gate is
 * refunded only by an admin who overrides explicitly with a reason (409 ticket-used otherwise). Once a refund is
 * approved its tickets are void at the gate; approval and scan both take the booking's row lock, so one of them sees
 * the other.
 */
export function createRefunds(d: EngineDeps) {
  const jobs = d.jobs ?? NO_JOBS;
  const upsertRefund = (tx: Queryable, bookingId: BookingId, status: 'requested' | 'approved', reason: string | null, by: string | null) =>
    tx.query(
      `INSERT INTO refunds (booking_id, status, reason, decided_by, decided_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (booking_id) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, decided_by = EXCLUDED.decided_by,
         decided_at = EXCLUDED.decided_at, requested_at = now()`,
      [bookingId, status, reason, by, by ? new Date(d.clock.now()) : null],
    );
  return {
    async request(bookingId: BookingId, userId: UserId, reason?: string): Promise<{ status: 'REFUND_REQUESTED'; decision: RefundDecision }> {
      const b = await getBooking(d.pg, bookingId);
      if (!b || b.userId !== userId) throw new DomainError('BOOKING_NOT_FOUND', 'no such booking');
      const { rows } = await d.pg.query<{ starts_at: Date }>('SELECT starts_at FROM events WHERE id = $1', [b.eventId]);
      const automatic = rows[0]!.starts_at.getTime() - d.clock.now() > d.config.refundCutoffHours * 3600_000;
      await withTx(d.pg, async (tx) => {
        if (!(await transition(tx, bookingId, ['CONFIRMED', 'TICKETS_DELIVERED'], 'REFUND_REQUESTED', reason ? `refund requested: ${reason}` : 'refund requested'))) {
          throw new DomainError('REFUND_NOT_ALLOWED', `a ${b.status} booking cannot be refunded`, { bookingStatus: b.status });
        }
        // the transition holds the booking's row lock: a scan either committed before (seen here) or waits and then
        // finds the refund approved (void)
        const scanned = await scannedTickets(tx, bookingId);
        if (scanned > 0) throw ticketUsed(scanned);
        await upsertRefund(tx, bookingId, automatic ? 'approved' : 'requested', reason ?? null, automatic ? 'policy' : null);
      });
      if (automatic) await jobs.refund(bookingId);
      return { status: 'REFUND_REQUESTED', decision: automatic ? 'automatic' : 'pending_review' };
    },

    /**
     * An admin approves (the refund job runs) or denies (the booking goes back to CONFIRMED or TICKETS_DELIVERED).
     * Approving a booking with a scanned ticket needs `overrideTicketUsed` and a reason.
     */
    async decide(
      bookingId: BookingId,
      approve: boolean,
      by: string,
      o: DecideOptions = {},
    ): Promise<{ status: 'REFUND_REQUESTED' | 'CONFIRMED' | 'TICKETS_DELIVERED' }> {
      const { reason, overrideTicketUsed = false } = o;
      if (overrideTicketUsed && (!approve || !reason)) throw new Error('overrideTicketUsed needs an approval with a reason');
      const r = await withTx(d.pg, async (tx) => {
        const state = await lockBooking(tx, bookingId);
        if (!state) return null;
        const scanned = approve ? await scannedTickets(tx, bookingId) : 0;
        if (scanned > 0 && !overrideTicketUsed) throw ticketUsed(scanned);
        const cause = scanned > 0 ? `refund approved by ${by} over ${scanned} scanned ticket(s): ${reason}` : null;
        if (overrideTicketUsed && (state === 'CONFIRMED' || state === 'TICKETS_DELIVERED')) {
          // nobody asked (a buyer's request after the scan is refused): the admin's refund opens and approves one
          await transition(tx, bookingId, [state], 'REFUND_REQUESTED', cause ?? `refund by ${by}: ${reason}`);
          await upsertRefund(tx, bookingId, 'approved', reason ?? null, by);
          return 'REFUND_REQUESTED' as const;
        }
        const { rowCount } = await tx.query(
          `UPDATE refunds SET status = $2, decided_by = $3, decided_at = now(), reason = COALESCE($4, reason) WHERE booking_id = $1 AND status = 'requested'`,
          [bookingId, approve ? 'approved' : 'denied', by, reason ?? null],
        );
        if (rowCount !== 1 || state !== 'REFUND_REQUESTED') return null;
        if (approve) return 'REFUND_REQUESTED' as const;
        // back to where the request came from: a delivered booking stays delivered
        const { rows } = await tx.query<{ from_state: BookingState }>(
          `SELECT from_state FROM booking_transitions WHERE booking_id = $1 AND to_state = 'REFUND_REQUESTED' ORDER BY id DESC LIMIT 1`,
          [bookingId],
        );
        const back = rows[0]?.from_state === 'TICKETS_DELIVERED' ? 'TICKETS_DELIVERED' : 'CONFIRMED';
        await transition(tx, bookingId, ['REFUND_REQUESTED'], 'REFUND_DENIED', `refund denied: ${reason ?? 'policy'}`);
        await transition(tx, bookingId, ['REFUND_DENIED'], back, 'booking remains active');
        return back;
      });
      if (!r) throw new DomainError('REFUND_NOT_ALLOWED', 'there is no refund request waiting for a decision');
      if (approve) await jobs.refund(bookingId);
      return { status: r };
    },

    /** The refund's own record: requested, approved, denied or refunded (null: none asked for). */
    async status(bookingId: BookingId): Promise<string | null> {
      const { rows } = await d.pg.query<{ status: string }>('SELECT status FROM refunds WHERE booking_id = $1', [bookingId]);
      return rows[0]?.status ?? null;
    },

    /**
     * The refund job: money back (idempotent key per booking), seats back to stock in Redis (refundHold appends
     * BookingRefunded), and the money record. The booking becomes REFUNDED, and its seats leave Postgres's counters,
     * when the persist worker applies BookingRefunded in outbox order: this job writes no booking or tier row.
     */
    async process(bookingId: BookingId): Promise<'refunded' | 'nothing-to-do'> {
      const { rows } = await d.pg.query<{ status: string }>('SELECT status FROM refunds WHERE booking_id = $1', [bookingId]);
      if (rows[0]?.status !== 'approved') return 'nothing-to-do';
      if (!d.provider) throw new Error('no payment provider configured');
      const attempts = await attemptsOf(d.pg, bookingId);
      // money still on its way (authorized, capture not answered yet): refunding now would give nothing back and the
      // capture that follows would keep it; the job retries until the payment has settled
      const settling = attempts.find((a) => a.status === 'pending' || a.status === 'authorized' || a.status === 'cancelling');
      if (settling) throw new Error(`refund of ${bookingId} waits: payment attempt ${settling.attempt} is ${settling.status}`);
      const paid = attempts.find((a) => a.status === 'captured' || a.status === 'refunded');
      let refundRef: string | null = null;
      if (paid?.status === 'captured') {
        const r = await d.provider.refund(paid.providerRef!, `${bookingId}:refund`);
        if (r.outcome !== 'refunded') throw new Error(`refund of ${paid.providerRef} unavailable: ${r.message}`);
        refundRef = r.refundRef;
      }
      const b = (await getBooking(d.pg, bookingId))!;
      const k = eventKeys(d.ns, b.eventId);
      await withTx(d.pg, async (tx) => {
        // the payment's row lock: a late payment call re-taking seats (payments.complete) waits, then sees 'refunded'
        await tx.query('SELECT 1 FROM payments WHERE booking_id = $1 FOR UPDATE', [bookingId]);
        const [code] = await d.redis.refundHold(k.inv, k.sec, k.smap, k.hold(bookingId), k.buyers, k.outbox, b.eventId, bookingId, scriptNow(d.clock), 'refunded');
        switch (code) {
          case RefundHoldReply.RELEASED:
          case RefundHoldReply.HOLD_NOT_FOUND: // released by an earlier try
            break;
          case RefundHoldReply.NOT_RELEASABLE: // only a sold hold is refunded here: this answer is a bug
            throw new Error(`refundHold: unexpected reply ${code}`);
          default:
            assertNever(code, 'refundHold');
        }
        if (paid) await tx.query(`UPDATE payments SET status = 'refunded', updated_at = now() WHERE booking_id = $1 AND attempt = $2 AND status = 'captured'`, [bookingId, paid.attempt]);
        await tx.query(`UPDATE refunds SET status = 'refunded', provider_ref = COALESCE($2, provider_ref) WHERE booking_id = $1`, [bookingId, refundRef]);
      });
      return 'refunded';
    },
  };
}
export type Refunds = ReturnType<typeof createRefunds>;
