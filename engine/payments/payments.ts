import { assertNever, PayHoldReply, RetakeHoldReply } from '../../lua/codes.js';
import { scriptNow } from '../clock.js';
import { withTx, withTxRetrying, type Queryable } from '../../platform/pg.js';
import { getBooking, transition, type Booking } from '../booking/bookings-repo.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import type { Holds } from '../holds/holds.js';
import { eventOfBooking, type BookingId, type UserId } from '../ids.js';
import { NO_JOBS } from '../jobs.js';
import { eventKeys } from '../keys.js';
import type { PaymentProvider } from './provider.js';

export type PaymentAttempt = {
  bookingId: BookingId;
  attempt: number;
  provider: string;
  /** 'cancelling': the seats were gone when the money came; the authorization is being cancelled (write-ahead). */
  status: 'pending' | 'authorized' | 'captured' | 'declined' | 'failed' | 'cancelling' | 'cancelled' | 'refunded';
  providerRef: string | null;
  declineCode: string | null;
  note: string | null;
  amount: number;
  currency: string;
  createdAt: string;
};

export type PayResult =
  | { outcome: 'succeeded'; paymentId: string; bookingStatus: 'CONFIRMED' }
  | { outcome: 'declined'; paymentId: string; code: string; message: string; attemptsLeft: number; bookingStatus: 'PAYMENT_FAILED' | 'CANCELLED' }
  /** The provider did not answer: the attempt stays open; a retry (or the settle job) finishes it. */
  | { outcome: 'pending'; paymentId: string }
  /** The money came too late for the seats: the authorization was cancelled (or the capture refunded). */
  | { outcome: 'returned'; paymentId: string; reason: string };

export const paymentIdOf = (bookingId: string, attempt: number) => `${bookingId}.a${attempt}`;
const keyOf = (bookingId: string, attempt: number, step: string) => `${bookingId}:a${attempt}:${step}`;

type AttemptRow = {
  booking_id: string; attempt: number; provider: string; status: PaymentAttempt['status']; provider_ref: string | null;
  decline_code: string | null; note: string | null; amount: string; currency: string; created_at: Date;
};
const toAttempt = (r: AttemptRow): PaymentAttempt => ({
  bookingId: r.booking_id as BookingId, attempt: r.attempt, provider: r.provider, status: r.status, providerRef: r.provider_ref,
  declineCode: r.decline_code, note: r.note, amount: Number(r.amount), currency: r.currency, createdAt: r.created_at.toISOString(),
});

export async function attemptsOf(db: Queryable, bookingId: BookingId): Promise<PaymentAttempt[]> {
  const { rows } = await db.query<AttemptRow>('SELECT * FROM payments WHERE booking_id = $1 ORDER BY attempt', [bookingId]);
  return rows.map(toAttempt);
}

/** Moves an attempt forward only from the states given (the guard makes every step safe to repeat). */
async function setAttempt(
  db: Queryable,
  bookingId: string,
  attempt: number,
  from: PaymentAttempt['status'][],
  to: PaymentAttempt['status'],
  extra: { providerRef?: string | undefined; declineCode?: string | undefined; note?: string | undefined } = {},
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE payments SET status = $4, provider_ref = COALESCE($5, provider_ref), decline_code = COALESCE($6, decline_code),
            note = COALESCE($7, note), updated_at = now()
      WHERE booking_id = $1 AND attempt = $2 AND status = ANY($3::text[])`,
    [bookingId, attempt, from, to, extra.providerRef ?? null, extra.declineCode ?? null, extra.note ?? null],
  );
  return rowCount === 1;
}

/**
 * Takes the row lock of the booking's tier before anything else in a transaction that may move its counters (the
 * booking_inventory trigger updates the tier row): the persist worker's batch takes tier rows first as well, so
 * the two wait for each other instead of deadlocking.
 */
export async function lockTierOf(tx: Queryable, bookingId: BookingId): Promise<void> {
  await tx.query('SELECT t.id FROM tiers t JOIN bookings b ON b.tier_id = t.id AND b.event_id = t.event_id WHERE b.id = $1 FOR NO KEY UPDATE OF t', [bookingId]);
}

export function createPayments(d: EngineDeps, holds: Holds) {
  const provider = (): PaymentProvider => {
    if (!d.provider) throw new Error('no payment provider configured');
    return d.provider;
  };
  const jobs = d.jobs ?? NO_JOBS;
  const cfg = d.config;

  /**
   * The caller's booking as Postgres has it. A hold the persist worker has not recorded yet (it was made a moment ago)
   * is waited for, briefly: the payment paths never write a booking ahead of the outbox, whose order is what keeps
   * Postgres's stock and seats in step with Redis. Someone else's booking, or none, is null at once.
   */
  async function recorded(bookingId: BookingId, userId: UserId): Promise<Booking | null> {
    const b = await getBooking(d.pg, bookingId);
    if (b) return b.userId === userId ? b : null;
    const h = await holds.get(eventOfBooking(bookingId), bookingId);
    if (!h || h.userId !== userId) return null;
    const deadline = performance.now() + (cfg.recordWaitMs ?? 5_000);
    for (let pause = 10; performance.now() < deadline; pause = Math.min(pause * 2, 250)) {
      await new Promise((r) => setTimeout(r, pause));
      const now = await getBooking(d.pg, bookingId);
      if (now) return now;
    }
    throw new DomainError('BOOKING_NOT_RECORDED', 'the reservation is still being recorded; retry in a moment (nothing was charged)', {
      retryAfterSeconds: 1,
    });
  }

  async function decline(b: Booking, attempt: number, code: string, message: string): Promise<PayResult> {
    const attemptsLeft = Math.max(0, cfg.paymentMaxAttempts - attempt);
    const cancel = attemptsLeft === 0;
    await withTxRetrying(d.pg, async (tx) => {
      await lockTierOf(tx, b.bookingId);
      await setAttempt(tx, b.bookingId, attempt, ['pending'], 'declined', { declineCode: code, note: message });
      await transition(tx, b.bookingId, ['PAYMENT_PENDING'], 'PAYMENT_FAILED', `declined: ${code}`, `payment declined (${code}): ${message}`);
      if (cancel) await transition(tx, b.bookingId, ['PAYMENT_FAILED'], 'CANCELLED', 'payment_failed', 'payment declined too many times');
    });
    const eventId = eventOfBooking(b.bookingId);
    if (cancel) {
      // the seats go back at once
      await holds.release(eventId, b.bookingId, { system: 'BookingCancelled', reason: 'payment_failed', states: ['paying', 'held'] }).catch(ignoreGone);
    } else {
      const k = eventKeys(d.ns, eventId);
      await d.redis.payHold(k.hold(b.bookingId), k.expiry, b.bookingId, '', scriptNow(d.clock), 0, 'decline');
    }
    return { outcome: 'declined', paymentId: paymentIdOf(b.bookingId, attempt), code, message, attemptsLeft, bookingStatus: cancel ? 'CANCELLED' : 'PAYMENT_FAILED' };
  }

  /** Cancels the authorization of a late payment whose seats were gone (marked 'cancelling' first), then records it. */
  async function giveBack(bookingId: BookingId, attempt: number, paymentRef: string, reason: string): Promise<PayResult> {
    const cancelled = await provider().cancel(paymentRef, keyOf(bookingId, attempt, 'cancel'));
    if (cancelled.outcome !== 'cancelled') throw new Error(`cancelling authorization ${paymentRef}: ${cancelled.message}`);
    await withTxRetrying(d.pg, async (tx) => {
      await lockTierOf(tx, bookingId);
      await setAttempt(tx, bookingId, attempt, ['cancelling'], 'cancelled');
      await tx.query('UPDATE bookings SET failure_reason = $2, updated_at = now() WHERE id = $1', [bookingId, reason]);
      // a booking still PAYMENT_PENDING here expires (its hold did; seats only leave the record here)
      await transition(tx, bookingId, ['PAYMENT_PENDING'], 'EXPIRED', 'payment too late');
    });
    return { outcome: 'returned', paymentId: paymentIdOf(bookingId, attempt), reason };
  }

  /**
   * Finishes an authorized attempt: the seats are sold in Redis (or, if the hold expired meanwhile, the same seats are
   * re-taken when still free), then the money is captured and the booking CONFIRMED. If the seats are gone the
   * authorization is cancelled: no money is kept without a ticket. Safe to run again at any point, and beside a
   * refund: the re-take happens under the attempt's row lock, so it never re-sells a refunded booking's seats.
   *
   * Postgres: the booking moves to CONFIRMED here only when this call sold a live hold (held -> sold, same seats).
   * A sale that went through an expiry (a re-take) or that an earlier call made is recorded by the persist worker in
   * outbox order, so Postgres never counts seats ahead of the stream that freed them in between.
   */
  async function complete(bookingId: BookingId, attempt: number, paymentRef: string): Promise<PayResult> {
    const paymentId = paymentIdOf(bookingId, attempt);
    const b = (await getBooking(d.pg, bookingId))!;
    const a = (await attemptsOf(d.pg, bookingId)).find((x) => x.attempt === attempt)!;
    const gone = 'the payment arrived after the reservation expired and its seats were taken by then; the authorization was cancelled, no money was taken';
    switch (a.status) {
      case 'captured':
        return { outcome: 'succeeded', paymentId, bookingStatus: 'CONFIRMED' };
      case 'cancelling':
        return giveBack(bookingId, attempt, a.providerRef ?? paymentRef, a.note ?? gone);
      case 'pending':
      case 'authorized':
        break;
      default:
        // cancelled, refunded, declined, failed: a stale call (a parked request, settle job or webhook) changes nothing
        return { outcome: 'returned', paymentId, reason: a.note ?? `the payment attempt is ${a.status}` };
    }
    await setAttempt(d.pg, bookingId, attempt, ['pending'], 'authorized', { providerRef: paymentRef });

    const eventId = eventOfBooking(bookingId);
    let sold: 'confirmed' | 'already-confirmed' | 'late';
    try {
      sold = await holds.confirm(eventId, bookingId, paymentRef);
    } catch (err) {
      if (!(err instanceof DomainError) || (err.code !== 'HOLD_EXPIRED' && err.code !== 'BOOKING_NOT_FOUND')) throw err;
      sold = 'late';
    }
    if (sold === 'late') {
      const k = eventKeys(d.ns, eventId);
      const taken = await withTx(d.pg, async (tx) => {
        // the refund job takes this lock around its own Redis step: a refunded booking is never re-taken
        const { rows } = await tx.query<{ status: PaymentAttempt['status'] }>(
          'SELECT status FROM payments WHERE booking_id = $1 AND attempt = $2 FOR UPDATE', [bookingId, attempt]);
        if (rows[0]!.status !== 'authorized') return rows[0]!.status;
        const [code] = await d.redis.retakeHold(k.inv, k.sec, k.smap, k.hold(bookingId), k.expiry, k.buyers, k.outbox, eventId, bookingId,
          b.userId, b.tierId, b.ticketCount, b.seats.join(','), scriptNow(d.clock), paymentRef);
        switch (code) {
          case RetakeHoldReply.RETAKEN:
          case RetakeHoldReply.ALREADY_CONFIRMED:
            return 'retaken';
          case RetakeHoldReply.GONE:
            break;
          default:
            assertNever(code, 'retakeHold');
        }
        // write-ahead: a retry finishes the cancellation instead of re-taking seats that came free meanwhile
        await setAttempt(tx, bookingId, attempt, ['authorized'], 'cancelling', { note: gone });
        return 'gone';
      });
      if (taken === 'gone') return giveBack(bookingId, attempt, paymentRef, gone);
      if (taken !== 'retaken') return complete(bookingId, attempt, paymentRef); // another call moved it on meanwhile
    }
    const captured = await provider().capture(paymentRef, keyOf(bookingId, attempt, 'capture'));
    if (captured.outcome === 'unavailable') {
      // the seats are sold and the money authorized; the settle job captures once the provider answers
      await jobs.settlePayment(bookingId, attempt, 5_000);
    } else if (captured.outcome === 'failed') {
      throw new Error(`capture of ${paymentRef} failed: ${captured.message}`);
    }
    await withTxRetrying(d.pg, async (tx) => {
      await lockTierOf(tx, bookingId);
      if (captured.outcome === 'captured') await setAttempt(tx, bookingId, attempt, ['pending', 'authorized'], 'captured', { providerRef: paymentRef });
      if (sold === 'confirmed') {
        await transition(tx, bookingId, ['RESERVED', 'PAYMENT_FAILED'], 'PAYMENT_PENDING', 'payment');
        await transition(tx, bookingId, ['PAYMENT_PENDING'], 'CONFIRMED', `payment ${paymentRef}`);
      }
    });
    // the notify job waits for the record to say CONFIRMED (the persist worker's step after a re-take)
    await jobs.deliverTickets(bookingId);
    return { outcome: 'succeeded', paymentId, bookingStatus: 'CONFIRMED' };
  }

  /** Authorizes (again: the same idempotency key returns the first answer) and acts on the outcome. */
  async function authorizeAndAct(b: Booking, attempt: number, paymentMethodId: string, validate?: () => Promise<unknown>): Promise<PayResult> {
    const [auth] = await Promise.all([
      provider().authorize({
        bookingId: b.bookingId, attempt, amount: b.amount, currency: b.currency, paymentMethodId,
        idempotencyKey: keyOf(b.bookingId, attempt, 'authorize'), description: `Floodgate booking ${b.bookingId}`,
      }),
      // the booking is validated while the charge runs (the seed's parallel step); complete() re-takes or gives the
      // money back if the hold did not survive
      validate?.(),
    ]);
    switch (auth.outcome) {
      case 'authorized':
        return complete(b.bookingId, attempt, auth.paymentRef);
      case 'declined':
        return decline(b, attempt, auth.code, auth.message);
      case 'unavailable':
        return { outcome: 'pending', paymentId: paymentIdOf(b.bookingId, attempt) };
    }
  }

  return {
    complete,

    /** POST /api/payments: pay a reservation with a tokenized payment method. */
    async pay(r: {
      bookingId: BookingId;
      userId: UserId;
      paymentMethodId: string;
      holderName?: string | undefined;
      holderEmail?: string | undefined;
      holderPhone?: string | undefined;
    }): Promise<PayResult> {
      const b = await recorded(r.bookingId, r.userId);
      if (!b) throw new DomainError('BOOKING_NOT_FOUND', 'no such booking');
      const payment = await d.pg.query<{ payment_method: string; attempt: number; status: string }>(
        'SELECT payment_method, attempt, status FROM payments WHERE booking_id = $1 ORDER BY attempt DESC LIMIT 1',
        [b.bookingId],
      );
      const open = payment.rows[0];
      if (b.status === 'PAYMENT_PENDING' && open && (open.status === 'pending' || open.status === 'authorized')) {
        // an attempt is still open (the provider did not answer): carry it on, same keys, never a second charge
        return authorizeAndAct(b, open.attempt, open.payment_method);
      }
      if (b.status !== 'RESERVED' && b.status !== 'PAYMENT_FAILED') {
        throw new DomainError('BOOKING_NOT_PAYABLE', `the booking is ${b.status} and cannot be paid`, { bookingStatus: b.status });
      }
      const k = eventKeys(d.ns, b.eventId);
      const attempt = await withTx(d.pg, async (tx) => {
        if (!(await transition(tx, b.bookingId, ['RESERVED', 'PAYMENT_FAILED'], 'PAYMENT_PENDING', 'payment started'))) {
          throw new DomainError('BOOKING_NOT_PAYABLE', 'the booking is already being paid', { bookingStatus: 'PAYMENT_PENDING' });
        }
        const { rows } = await tx.query<{ payment_attempts: number }>(
          // a new attempt: the reason the last one was declined no longer describes the booking
          `UPDATE bookings SET payment_attempts = payment_attempts + 1, failure_reason = NULL, holder_name = COALESCE($2, holder_name),
                  holder_email = COALESCE($3, holder_email), holder_phone = COALESCE($4, holder_phone) WHERE id = $1 RETURNING payment_attempts`,
          [b.bookingId, r.holderName ?? null, r.holderEmail ?? null, r.holderPhone ?? null],
        );
        const n = rows[0]!.payment_attempts;
        await tx.query(
          `INSERT INTO payments (booking_id, attempt, provider, payment_method, amount, currency, status) VALUES ($1, $2, $3, $4, $5, $6, 'pending')`,
          [b.bookingId, n, provider().name, r.paymentMethodId, b.amount, b.currency],
        );
        // the hold must be live and unpaid; it now outlives the charge (committed only if this succeeds)
        const [code, x] = await d.redis.payHold(k.hold(b.bookingId), k.expiry, b.bookingId, r.userId, scriptNow(d.clock), cfg.paymentWindowMs, 'start');
        switch (code) {
          case PayHoldReply.DONE:
            return n;
          case PayHoldReply.HOLD_EXPIRED:
            throw new DomainError('HOLD_EXPIRED', 'the reservation has expired');
          case PayHoldReply.HOLD_NOT_FOUND:
          case PayHoldReply.NOT_OWNER:
          case PayHoldReply.NOT_RELEASABLE:
            throw new DomainError('BOOKING_NOT_PAYABLE', `the reservation cannot be paid now (${x ?? 'no hold'})`);
          default:
            return assertNever(code, 'payHold');
        }
      });
      await jobs.settlePayment(b.bookingId, attempt, cfg.paymentWindowMs + 5_000);
      return authorizeAndAct({ ...b, status: 'PAYMENT_PENDING' }, attempt, r.paymentMethodId, async () => {
        const h = await holds.get(b.eventId, b.bookingId);
        return h?.state === 'paying' && h.expiresAtMs > d.clock.now();
      });
    },

    /**
     * The settle job: finishes an attempt its request left open (process died, provider down), or gives up on it
     * once the hold is gone. Throws while the provider does not answer (the job retries with backoff).
     */
    async settle(bookingId: BookingId, attempt: number): Promise<PayResult | { outcome: 'done' }> {
      const a = (await attemptsOf(d.pg, bookingId)).find((x) => x.attempt === attempt);
      if (!a) return { outcome: 'done' };
      let r: PayResult;
      if (a.status === 'authorized' || a.status === 'cancelling') r = await complete(bookingId, attempt, a.providerRef!);
      else if (a.status !== 'pending') return { outcome: 'done' };
      else {
        const b = (await getBooking(d.pg, bookingId))!;
        const { rows } = await d.pg.query<{ payment_method: string }>('SELECT payment_method FROM payments WHERE booking_id = $1 AND attempt = $2', [bookingId, attempt]);
        r = await authorizeAndAct(b, attempt, rows[0]!.payment_method);
      }
      if (r.outcome === 'pending') throw new Error(`payment provider unavailable for ${paymentIdOf(bookingId, attempt)}`);
      // a capture the provider did not answer: this job is the one that retries it (it cannot schedule itself again)
      const after = (await attemptsOf(d.pg, bookingId)).find((x) => x.attempt === attempt)!;
      if (after.status === 'authorized') throw new Error(`capture of ${paymentIdOf(bookingId, attempt)} still pending; retrying`);
      return r;
    },

    attempts: (bookingId: BookingId) => attemptsOf(d.pg, bookingId),

    /** The attempt a provider reference belongs to (webhooks). */
    async byProviderRef(ref: string): Promise<PaymentAttempt | null> {
      const { rows } = await d.pg.query<AttemptRow>('SELECT * FROM payments WHERE provider_ref = $1', [ref]);
      return rows[0] ? toAttempt(rows[0]) : null;
    },
  };
}
export type Payments = ReturnType<typeof createPayments>;

const ignoreGone = (err: unknown) => {
  if (!(err instanceof DomainError) || err.code !== 'BOOKING_NOT_FOUND') throw err;
};
