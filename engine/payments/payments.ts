import { assertNever, PayHoldReply, RetakeHoldReply } from '../../lua/codes.js';
import { scriptNow } from '../clock.js';
import { withTx, type Queryable } from '../../platform/pg.js';
import { getBooking } from '../booking/bookings-repo.js';
import type { Catalog } from '../catalog/catalog.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import type { HoldRecord } from '../holds/hold-record.js';
import type { Holds } from '../holds/holds.js';
import { eventOfBooking, type BookingId, type EventId, type TierId, type UserId } from '../ids.js';
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

/**
 * Note prefix of an attempt the Redis rebuild marks 'cancelling' because its sale was lost with the Redis state
 * (engine/inventory/rebuild.ts): `${LOST_SALE_NOTE}captured: ...` means the money was captured, so giveBack refunds it
 * (a provider cannot cancel a capture); otherwise the authorization is cancelled.
 */
export const LOST_SALE_NOTE = 'lost sale, was ';
export const paymentIdOf = (bookingId: string, attempt: number) => `${bookingId}.a${attempt}`;
const keyOf = (bookingId: string, attempt: number, step: string) => `${bookingId}:a${attempt}:${step}`;

type AttemptRow = {
  booking_id: string; attempt: number; provider: string; payment_method: string; status: PaymentAttempt['status']; provider_ref: string | null;
  decline_code: string | null; note: string | null; amount: string; currency: string; created_at: Date;
};
const toAttempt = (r: AttemptRow): PaymentAttempt => ({
  bookingId: r.booking_id as BookingId, attempt: r.attempt, provider: r.provider, status: r.status, providerRef: r.provider_ref,
  declineCode: r.decline_code, note: r.note, amount: Number(r.amount), currency: r.currency, createdAt: r.created_at.toISOString(),
});

/** An attempt with what a charge needs (the payment method is not part of the public PaymentAttempt). */
type Charge = PaymentAttempt & { paymentMethod: string };
const toCharge = (r: AttemptRow): Charge => ({ ...toAttempt(r), paymentMethod: r.payment_method });

/** What a late payment needs to re-take its tickets: who holds which tickets of which tier. */
type Tickets = { userId: UserId; tierId: TierId; ticketCount: number; seats: string[] };

const OPEN: readonly PaymentAttempt['status'][] = ['pending', 'authorized', 'cancelling'];

export async function attemptsOf(db: Queryable, bookingId: BookingId): Promise<PaymentAttempt[]> {
  const { rows } = await db.query<AttemptRow>('SELECT * FROM payments WHERE booking_id = $1 ORDER BY attempt', [bookingId]);
  return rows.map(toAttempt);
}

async function chargeOf(db: Queryable, bookingId: BookingId, attempt: number | 'latest'): Promise<Charge | null> {
  const { rows } = attempt === 'latest'
    ? await db.query<AttemptRow>('SELECT * FROM payments WHERE booking_id = $1 ORDER BY attempt DESC LIMIT 1', [bookingId])
    : await db.query<AttemptRow>('SELECT * FROM payments WHERE booking_id = $1 AND attempt = $2', [bookingId, attempt]);
  return rows[0] ? toCharge(rows[0]) : null;
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
 * Payments. The sale is decided in Redis, and Postgres learns of it from the outbox: a payment's own writes in Postgres
 * are its `payments` rows (one per attempt, the money record), never a booking or a tier row. The booking's states
 * (PAYMENT_PENDING, PAYMENT_FAILED, CONFIRMED, CANCELLED, EXPIRED) follow from the entries the scripts append in the same
 * step as each change (PaymentStarted, PaymentDeclined, BookingConfirmed, BookingCancelled, ReservationExpired), applied
 * by the persist worker in stream order and in batches. So a payment never waits for the persist worker and never
 * queues behind a hot row.
 *
 * The steps of an attempt, in this order (each safe to repeat; a crash between two is finished by the settle job, a
 * retry of the request, or a webhook, with the same provider idempotency keys, so money is never taken twice):
 *   1. payHold "start" (Lua): the live, unpaid hold goes held -> paying, its deadline outlives the charge, the attempt
 *      counter `a` in the hold grows by one and names the attempt; PaymentStarted is appended. Before this, nothing.
 *   2. the attempt's row, 'pending', keyed (booking_id, attempt): amount and currency are the tier's price x count
 *      (the catalog, cached per tier). A crash between 1 and 2 leaves a "paying" hold without a row and no money
 *      asked for: a retry of the request finds the running attempt and writes its row; without one the hold expires
 *      at its deadline (the sweeper's ReservationExpired).
 *   3. the settle job is queued (it finishes whatever a dead request left open), at the same time as step 2: a crash
 *      before both are done has asked no money, and a settle job without a row finds nothing to finish.
 *   4. authorize (key `<booking>:a<n>:authorize`). Declined: the row is 'declined' first, then payHold "decline"
 *      (PaymentDeclined; paying -> held), and after the last allowed attempt the hold is released (BookingCancelled).
 *   5. the row is 'authorized' (write-ahead: money exists), then confirmHold (Lua) sells the seats and appends
 *      BookingConfirmed. If the hold did not survive, the very same tickets are re-taken when still free (retakeHold,
 *      under the attempt's row lock, the lock a refund takes too), otherwise the row goes 'cancelling' and the
 *      authorization is cancelled ('cancelled'): no money without a ticket.
 *   6. capture (key `<booking>:a<n>:capture`), then the row is 'captured'. A capture that gets no answer is retried by
 *      the settle job. A crash between 5 and 6 leaves sold seats with authorized money: the settle job captures it.
 */
/**
 * Sells a paid booking's tickets again after its hold expired (or was lost): the same seats, or the same number of
 * general-admission tickets, while they are still free (retakeHold, which appends BookingConfirmed). True when the
 * booking is sold (now or already); false when the tickets are gone. Callers hold the attempt's row lock.
 */
export async function retakeSold(
  d: EngineDeps,
  eventId: EventId,
  bookingId: BookingId,
  t: { userId: string; tierId: string; ticketCount: number; seats: string[] },
  paymentRef: string,
): Promise<boolean> {
  const k = eventKeys(d.ns, eventId);
  const [code] = await d.redis.retakeHold(k.inv, k.sec, k.smap, k.hold(bookingId), k.expiry, k.buyers, k.outbox, eventId, bookingId,
    t.userId, t.tierId, t.ticketCount, t.seats.join(','), scriptNow(d.clock), paymentRef);
  switch (code) {
    case RetakeHoldReply.RETAKEN:
    case RetakeHoldReply.ALREADY_CONFIRMED:
      return true;
    case RetakeHoldReply.GONE:
      return false;
    default:
      return assertNever(code, 'retakeHold');
  }
}

export function createPayments(d: EngineDeps, holds: Holds, catalog: Catalog) {
  const provider = (): PaymentProvider => {
    if (!d.provider) throw new Error('no payment provider configured');
    return d.provider;
  };
  const jobs = d.jobs ?? NO_JOBS;
  const cfg = d.config;

  /** A tier's price and currency never change once it is on sale: read once per process and tier. */
  const prices = new Map<string, { price: number; currency: string }>();
  async function priceOf(eventId: EventId, tierId: TierId): Promise<{ price: number; currency: string }> {
    const known = prices.get(tierId);
    if (known) return known;
    const tier = (await catalog.require(eventId)).tiers.find((t) => t.id === tierId);
    if (!tier) throw new Error(`tier ${tierId} of ${eventId} is not in the catalog`);
    const p = { price: tier.price, currency: tier.currency };
    prices.set(tierId, p);
    return p;
  }

  const payHold = (bookingId: BookingId, userId: string, mode: 'start' | 'decline', attempt: number, reason = '', holder: HolderDetails = {}) => {
    const eventId = eventOfBooking(bookingId);
    const k = eventKeys(d.ns, eventId);
    return d.redis.payHold(k.hold(bookingId), k.expiry, k.outbox, eventId, bookingId, userId, scriptNow(d.clock), cfg.paymentWindowMs, mode,
      attempt, reason, holder.holderName ?? '', holder.holderEmail ?? '', holder.holderPhone ?? '');
  };

  /**
   * Step 2: the attempt's row, written once (a retry or a concurrent double submit of the same attempt finds the row
   * the first one wrote, and charges with its payment method and amount, under the same idempotency keys).
   */
  async function recordAttempt(bookingId: BookingId, attempt: number, paymentMethodId: string, t: Tickets): Promise<Charge> {
    const { price, currency } = await priceOf(eventOfBooking(bookingId), t.tierId);
    try {
      const { rows } = await d.pg.query<AttemptRow>(
        `INSERT INTO payments (booking_id, attempt, provider, payment_method, amount, currency, status) VALUES ($1, $2, $3, $4, $5, $6, 'pending')
         ON CONFLICT (booking_id, attempt) DO NOTHING RETURNING *`,
        [bookingId, attempt, provider().name, paymentMethodId, price * t.ticketCount, currency],
      );
      if (rows[0]) return toCharge(rows[0]);
    } catch (err) {
      // a schema that still has payments.booking_id -> bookings (before migration 0009): the hold is not recorded yet.
      // Nothing was asked of the provider; the hold stays "paying" and a retry carries this attempt on.
      if ((err as { code?: string }).code === '23503') throw notRecorded();
      throw err;
    }
    return (await chargeOf(d.pg, bookingId, attempt))!;
  }

  /** Steps 1-3 and on: a new attempt on a held hold. */
  async function start(r: PayRequest, h: HoldRecord): Promise<PayResult> {
    await priceOf(h.eventId, h.tierId); // before the hold moves: a catalog that cannot answer leaves the hold as it was
    const [code, x, y] = await payHold(r.bookingId, r.userId, 'start', cfg.paymentMaxAttempts, '', r);
    switch (code) {
      case PayHoldReply.DONE:
        break;
      case PayHoldReply.HOLD_NOT_FOUND:
        return fromRecord(r); // expired or cancelled a moment ago
      case PayHoldReply.NOT_OWNER:
        throw notFound();
      case PayHoldReply.NOT_RELEASABLE: {
        // another request started an attempt (or sold it) a moment ago: carry that one on
        const now = await holds.get(h.eventId, r.bookingId);
        if (!now) return fromRecord(r);
        if (now.state === 'held') throw new Error(`payHold start: refused a held hold (${x})`);
        return carryOn(r, now);
      }
      case PayHoldReply.HOLD_EXPIRED:
        throw new DomainError('HOLD_EXPIRED', 'the reservation has expired');
      case PayHoldReply.NO_ATTEMPTS_LEFT:
        // the last attempt was declined and the process stopped before releasing the hold: release it now
        await releaseDeclined(r.bookingId);
        throw new DomainError('BOOKING_NOT_PAYABLE', 'the booking was declined too many times', { bookingStatus: 'CANCELLED' });
      case PayHoldReply.OTHER_ATTEMPT:
        throw new Error('payHold start: unexpected OTHER_ATTEMPT');
      default:
        return assertNever(code, 'payHold');
    }
    const attempt = Number(y);
    // steps 2 and 3 at once: nothing is asked of the provider before both are done, and a settle job that finds no row
    // (the row's write failed) has nothing to finish
    const [charge] = await Promise.all([
      recordAttempt(r.bookingId, attempt, r.paymentMethodId, h),
      jobs.settlePayment(r.bookingId, attempt, cfg.paymentWindowMs + 5_000),
    ]);
    return authorizeAndAct(charge, h);
  }

  /**
   * The hold is "paying" or "sold": attempt `a` of the hold is (or was) running. An open attempt is carried on with the
   * same keys (never a second charge); a paying hold whose row is missing (the request died between steps 1 and 2)
   * gets its row now; a declined attempt whose hold was not handed back yet is handed back, then a new one starts.
   */
  async function carryOn(r: PayRequest, h: HoldRecord): Promise<PayResult> {
    const charge = await chargeOf(d.pg, r.bookingId, h.attempts > 0 ? h.attempts : 'latest');
    if (charge && OPEN.includes(charge.status)) return continueAttempt(charge, h);
    if (h.state === 'sold') throw new DomainError('BOOKING_NOT_PAYABLE', 'the booking is paid already', { bookingStatus: 'CONFIRMED' });
    if (!charge && h.attempts > 0) {
      const written = await recordAttempt(r.bookingId, h.attempts, r.paymentMethodId, h);
      await jobs.settlePayment(r.bookingId, h.attempts, cfg.paymentWindowMs + 5_000);
      return continueAttempt(written, h);
    }
    if (charge?.status === 'declined' && charge.attempt === h.attempts) {
      await finishDecline(r.bookingId, charge.attempt, declineReason(charge));
      const now = await holds.get(h.eventId, r.bookingId);
      if (now?.state === 'held') return start(r, now);
      if (!now) return fromRecord(r);
    }
    throw new DomainError('BOOKING_NOT_PAYABLE', 'the booking is already being paid', { bookingStatus: 'PAYMENT_PENDING' });
  }

  /**
   * The hold is gone from Redis (expired, cancelled, refunded, or never there): the answer comes from the Postgres
   * record, and an attempt still open there is carried on (its money must end captured with a ticket, or returned).
   */
  async function fromRecord(r: PayRequest): Promise<PayResult> {
    const [b, charge] = await Promise.all([getBooking(d.pg, r.bookingId), chargeOf(d.pg, r.bookingId, 'latest')]);
    if (b && b.userId !== r.userId) throw notFound();
    if (!b) {
      // an attempt whose booking the persist worker has not recorded yet: whose it is cannot be told; the settle job
      // finishes it meanwhile
      if (charge && OPEN.includes(charge.status)) throw notRecorded();
      throw notFound();
    }
    if (charge && OPEN.includes(charge.status)) return continueAttempt(charge, b);
    if (b.status === 'EXPIRED') throw new DomainError('HOLD_EXPIRED', 'the reservation has expired');
    throw new DomainError('BOOKING_NOT_PAYABLE', `the booking is ${b.status} and cannot be paid`, { bookingStatus: b.status });
  }

  function continueAttempt(c: Charge, t: Tickets | undefined): Promise<PayResult> {
    return c.status === 'pending' ? authorizeAndAct(c, t) : complete(c.bookingId, c.attempt, c.providerRef!, t);
  }

  /** Step 4: authorizes (again: the same idempotency key returns the first answer) and acts on the outcome. */
  async function authorizeAndAct(c: Charge, t: Tickets | undefined): Promise<PayResult> {
    const auth = await provider().authorize({
      bookingId: c.bookingId, attempt: c.attempt, amount: c.amount, currency: c.currency, paymentMethodId: c.paymentMethod,
      idempotencyKey: keyOf(c.bookingId, c.attempt, 'authorize'), description: `Floodgate booking ${c.bookingId}`,
    });
    switch (auth.outcome) {
      case 'authorized':
        return c.status === 'pending' ? completeFromPending(c.bookingId, c.attempt, auth.paymentRef, t) : complete(c.bookingId, c.attempt, auth.paymentRef, t);
      case 'declined':
        return decline(c.bookingId, c.attempt, auth.code, auth.message);
      case 'unavailable':
        return { outcome: 'pending', paymentId: paymentIdOf(c.bookingId, c.attempt) };
    }
  }

  /** The row first (the money record says declined), then the hold: a crash between is finished by finishDecline. */
  async function decline(bookingId: BookingId, attempt: number, code: string, message: string): Promise<PayResult> {
    const attemptsLeft = Math.max(0, cfg.paymentMaxAttempts - attempt);
    await setAttempt(d.pg, bookingId, attempt, ['pending'], 'declined', { declineCode: code, note: message });
    await finishDecline(bookingId, attempt, `declined: ${code}: ${message}`);
    return {
      outcome: 'declined', paymentId: paymentIdOf(bookingId, attempt), code, message, attemptsLeft,
      bookingStatus: attemptsLeft === 0 ? 'CANCELLED' : 'PAYMENT_FAILED',
    };
  }

  /**
   * Hands a declined attempt's hold back (paying -> held, PaymentDeclined) and, after the last allowed attempt, releases
   * it (BookingCancelled, reason payment_failed; the seats go back at once). Safe to repeat: payHold answers
   * NOT_RELEASABLE once it is done, and OTHER_ATTEMPT if a newer attempt runs (a stale call never touches it).
   */
  async function finishDecline(bookingId: BookingId, attempt: number, reason: string): Promise<void> {
    const [code] = await payHold(bookingId, '', 'decline', attempt, reason);
    switch (code) {
      case PayHoldReply.DONE:
      case PayHoldReply.NOT_RELEASABLE: // handed back before (or the hold expired meanwhile and was re-taken: not ours)
        break;
      case PayHoldReply.HOLD_NOT_FOUND: // expired or released already
      case PayHoldReply.OTHER_ATTEMPT: // a newer attempt runs: this one was handed back long ago
        return;
      case PayHoldReply.NOT_OWNER:
      case PayHoldReply.HOLD_EXPIRED:
      case PayHoldReply.NO_ATTEMPTS_LEFT:
        throw new Error(`payHold decline: unexpected reply ${code}`);
      default:
        assertNever(code, 'payHold');
    }
    if (attempt >= cfg.paymentMaxAttempts) await releaseDeclined(bookingId);
  }

  async function releaseDeclined(bookingId: BookingId): Promise<void> {
    await holds.release(eventOfBooking(bookingId), bookingId, { system: 'BookingCancelled', reason: 'payment_failed', states: ['held'] }).catch(ignoreGone);
  }

  /** Cancels the authorization of a late payment whose seats were gone (marked 'cancelling' first), then records it. */
  async function giveBack(bookingId: BookingId, attempt: number, paymentRef: string, reason: string): Promise<PayResult> {
    if (reason.startsWith(`${LOST_SALE_NOTE}captured`)) {
      const refunded = await provider().refund(paymentRef, keyOf(bookingId, attempt, 'refund'));
      if (refunded.outcome !== 'refunded') throw new Error(`refunding capture ${paymentRef}: ${refunded.message}`);
      await setAttempt(d.pg, bookingId, attempt, ['cancelling'], 'refunded', { note: reason });
      return { outcome: 'returned', paymentId: paymentIdOf(bookingId, attempt), reason };
    }
    const cancelled = await provider().cancel(paymentRef, keyOf(bookingId, attempt, 'cancel'));
    if (cancelled.outcome !== 'cancelled') throw new Error(`cancelling authorization ${paymentRef}: ${cancelled.message}`);
    // only the money record: the booking is EXPIRED by its hold's ReservationExpired, in outbox order
    await setAttempt(d.pg, bookingId, attempt, ['cancelling'], 'cancelled', { note: reason });
    return { outcome: 'returned', paymentId: paymentIdOf(bookingId, attempt), reason };
  }

  /** Who holds which tickets, for a re-take: the hold if Redis still has it, else the Postgres record. */
  async function ticketsOf(bookingId: BookingId): Promise<Tickets | null> {
    return (await holds.get(eventOfBooking(bookingId), bookingId)) ?? (await getBooking(d.pg, bookingId));
  }

  /**
   * Steps 5 and 6: sells the seats in Redis (or, if the hold expired meanwhile, re-takes the same seats when still
   * free), then captures. If the seats are gone the authorization is cancelled: no money is kept without a ticket.
   * Safe to run again at any point, and beside a refund: the re-take happens under the attempt's row lock, so it never
   * re-sells a refunded booking's seats. Postgres: only this attempt's row; the booking becomes CONFIRMED when the
   * persist worker applies BookingConfirmed (and queues the tickets then).
   */
  async function complete(bookingId: BookingId, attempt: number, paymentRef: string, tickets?: Tickets): Promise<PayResult> {
    const paymentId = paymentIdOf(bookingId, attempt);
    const a = await chargeOf(d.pg, bookingId, attempt);
    if (!a) throw new Error(`no payment attempt ${paymentId}`);
    switch (a.status) {
      case 'captured':
        return { outcome: 'succeeded', paymentId, bookingStatus: 'CONFIRMED' };
      case 'cancelling':
        return giveBack(bookingId, attempt, a.providerRef ?? paymentRef, a.note ?? GONE);
      case 'pending':
      case 'authorized':
        break;
      default:
        // cancelled, refunded, declined, failed: a stale call (a parked request, settle job or webhook) changes nothing
        return { outcome: 'returned', paymentId, reason: a.note ?? `the payment attempt is ${a.status}` };
    }
    // write-ahead: the money exists before anything sells it (a crash from here on is the settle job's to finish)
    await setAttempt(d.pg, bookingId, attempt, ['pending'], 'authorized', { providerRef: paymentRef });
    return sellAndCapture(bookingId, attempt, paymentRef, tickets);
  }

  /**
   * complete() for an attempt its caller has just read as 'pending' and authorized: the write-ahead without reading the
   * row again. If the row moved on meanwhile (another call, the settle job), complete() reads it and follows it.
   */
  async function completeFromPending(bookingId: BookingId, attempt: number, paymentRef: string, tickets?: Tickets): Promise<PayResult> {
    if (!(await setAttempt(d.pg, bookingId, attempt, ['pending'], 'authorized', { providerRef: paymentRef }))) return complete(bookingId, attempt, paymentRef, tickets);
    return sellAndCapture(bookingId, attempt, paymentRef, tickets);
  }

  /** Steps 5 (after the write-ahead) and 6. */
  async function sellAndCapture(bookingId: BookingId, attempt: number, paymentRef: string, tickets?: Tickets): Promise<PayResult> {
    const paymentId = paymentIdOf(bookingId, attempt);
    const eventId = eventOfBooking(bookingId);
    let late = false;
    try {
      await holds.confirm(eventId, bookingId, paymentRef);
    } catch (err) {
      if (!(err instanceof DomainError) || (err.code !== 'HOLD_EXPIRED' && err.code !== 'BOOKING_NOT_FOUND')) throw err;
      late = true;
    }
    if (late) {
      const t = tickets ?? (await ticketsOf(bookingId));
      // neither Redis nor Postgres knows the tickets yet (the hold expired before the persist worker recorded it):
      // the settle job tries again once it has
      if (!t) return { outcome: 'pending', paymentId };
      const taken = await withTx(d.pg, async (tx) => {
        // the refund job takes this lock around its own Redis step: a refunded booking is never re-taken
        const { rows } = await tx.query<{ status: PaymentAttempt['status'] }>(
          'SELECT status FROM payments WHERE booking_id = $1 AND attempt = $2 FOR UPDATE', [bookingId, attempt]);
        if (rows[0]!.status !== 'authorized') return rows[0]!.status;
        if (await retakeSold(d, eventId, bookingId, t, paymentRef)) return 'retaken';
        // write-ahead: a retry finishes the cancellation instead of re-taking seats that came free meanwhile
        await setAttempt(tx, bookingId, attempt, ['authorized'], 'cancelling', { note: GONE });
        return 'gone';
      });
      if (taken === 'gone') return giveBack(bookingId, attempt, paymentRef, GONE);
      if (taken !== 'retaken') return complete(bookingId, attempt, paymentRef, t); // another call moved it on meanwhile
    }
    const captured = await provider().capture(paymentRef, keyOf(bookingId, attempt, 'capture'));
    switch (captured.outcome) {
      case 'captured':
        await setAttempt(d.pg, bookingId, attempt, ['pending', 'authorized'], 'captured', { providerRef: paymentRef });
        break;
      case 'unavailable':
        // the seats are sold and the money authorized; a settle job of its own captures once the provider answers
        await jobs.settlePayment(bookingId, attempt, 5_000, 'capture');
        break;
      case 'failed':
        throw new Error(`capture of ${paymentRef} failed: ${captured.message}`);
    }
    return { outcome: 'succeeded', paymentId, bookingStatus: 'CONFIRMED' };
  }

  return {
    complete: (bookingId: BookingId, attempt: number, paymentRef: string) => complete(bookingId, attempt, paymentRef),

    /**
     * POST /api/payments: pay a reservation with a tokenized payment method. Works from the hold in Redis (owner, tier,
     * count, state, deadline, attempt counter): it never waits for the persist worker.
     */
    async pay(r: PayRequest): Promise<PayResult> {
      const h = await holds.get(eventOfBooking(r.bookingId), r.bookingId);
      if (!h) return fromRecord(r);
      if (h.userId !== r.userId) throw notFound();
      return h.state === 'held' ? start(r, h) : carryOn(r, h);
    },

    /**
     * The settle job: finishes an attempt its request left open (process died, provider down), or gives up on it
     * once the hold is gone. Throws while the provider does not answer (the job retries with backoff).
     */
    async settle(bookingId: BookingId, attempt: number): Promise<PayResult | { outcome: 'done' }> {
      const a = await chargeOf(d.pg, bookingId, attempt);
      // no row: the request died before step 2, nothing was asked of the provider (the hold expires at its deadline)
      if (!a) return { outcome: 'done' };
      let r: PayResult;
      if (a.status === 'authorized' || a.status === 'cancelling') r = await complete(bookingId, attempt, a.providerRef!);
      else if (a.status === 'pending') r = await authorizeAndAct(a, undefined);
      else if (a.status === 'declined') {
        // the request may have died between the row and the hold: hand the hold back (or release it) now
        await finishDecline(bookingId, attempt, declineReason(a));
        return { outcome: 'done' };
      } else return { outcome: 'done' };
      if (r.outcome === 'pending') throw new Error(`payment provider unavailable for ${paymentIdOf(bookingId, attempt)}`);
      // a capture the provider did not answer: this job is the one that retries it (it cannot schedule itself again)
      const after = await chargeOf(d.pg, bookingId, attempt);
      if (after?.status === 'authorized') throw new Error(`capture of ${paymentIdOf(bookingId, attempt)} still pending; retrying`);
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

type HolderDetails = { holderName?: string | undefined; holderEmail?: string | undefined; holderPhone?: string | undefined };
type PayRequest = HolderDetails & { bookingId: BookingId; userId: UserId; paymentMethodId: string };

const GONE = 'the payment arrived after the reservation expired and its seats were taken by then; the authorization was cancelled, no money was taken';
const notFound = () => new DomainError('BOOKING_NOT_FOUND', 'no such booking');
const notRecorded = () =>
  new DomainError('BOOKING_NOT_RECORDED', 'the reservation is still being recorded; retry in a moment (nothing was charged)', { retryAfterSeconds: 1 });
const declineReason = (a: PaymentAttempt) => `declined: ${a.declineCode ?? 'unknown'}: ${a.note ?? ''}`;

const ignoreGone = (err: unknown) => {
  if (!(err instanceof DomainError) || err.code !== 'BOOKING_NOT_FOUND') throw err;
};
