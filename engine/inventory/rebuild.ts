import { randomBytes } from 'node:crypto';
import { ArmEventReply, assertNever } from '../../lua/codes.js';
import { withTx } from '../../platform/pg.js';
import { scanKeys } from '../../platform/redis.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import type { EventId } from '../ids.js';
import { holdIdempotencyRecord } from '../idempotency.js';
import { NO_JOBS } from '../jobs.js';
import { eventKeys, globalKeys } from '../keys.js';
import type { Outbox } from '../outbox/outbox.js';
import type { OutboxDrain } from '../outbox/drain.js';
import { LOST_SALE_NOTE, retakeSold } from '../payments/payments.js';
import type { WaitingRoom } from '../waiting-room/waiting-room.js';
import { specFromPostgres, type ArmSpec } from './inventory.js';

export type RebuildReport = {
  eventId: EventId;
  /** Outbox entries found in Redis and applied to Postgres first (a forced rebuild of a live event). */
  drained: number;
  tiers: ArmSpec['tiers'];
  holdsRestored: number;
  soldRestored: number;
  /** Paid bookings whose BookingConfirmed the loss took: sold again (re-taken) / their money given back. */
  salesRetaken: number;
  paymentsReturned: number;
  idempotencyKeysRestored: number;
  buyers: number;
};

const HOLD_STATE = { RESERVED: 'held', PAYMENT_FAILED: 'held', PAYMENT_PENDING: 'paying' } as const;

/**
 * Rebuilds an event's Redis state from Postgres (after a Redis loss): counters, seat maps, buyers' counts, every live
 * hold (with its expiry) and every sold booking's record. Refuses while the event is live (armed in Redis) unless
 * forced; a forced rebuild first applies whatever the outbox still holds, under the persist lease.
 */
export async function rebuildEvent(
  d: EngineDeps,
  outbox: Outbox & Pick<OutboxDrain, 'drainAll'>,
  waitingRoom: WaitingRoom,
  eventId: EventId,
  o: { force?: boolean } = {},
): Promise<RebuildReport> {
  const k = eventKeys(d.ns, eventId);
  if ((await d.redis.hget(k.meta, 'armed')) === '1' && !o.force) {
    throw new DomainError('EVENT_LIVE', 'the event is live in Redis: rebuilding would replace its state; use --force if you mean it');
  }
  // Stop selling and stop the persist workers on this event (they skip a disarmed event and let their lease lapse);
  // the rebuild applies whatever the outbox still holds itself, under the lease, then arms the event again.
  // `rebuilding`: a hold refused meanwhile answers 503 + Retry-After ("try again in a moment"), not "not on sale"
  // (engine/holds/holds.ts). armEvent's rebuild replaces the meta hash; after a failed rebuild the marker stays, so
  // holds answer 503 for a minute (a retry of the rebuild sets it again), then 409 until someone rebuilds the event
  await d.redis.hset(k.meta, 'armed', '0', 'rebuilding', String(d.clock.now()));
  const owner = `rebuild-${randomBytes(4).toString('hex')}`;
  for (let i = 0; !(await outbox.lease(eventId, owner, 30_000)); i++) {
    if (i > 300) throw new Error('the persist lease of this event is still held after 30 s; is a persist worker stuck?');
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    const drained = await outbox.drainAll(eventId);
    const spec = await specFromPostgres(d, eventId);
    // holds of the old state go; the ones Postgres knows come back below
    // (one event's keys share a slot, so they are on one node and may go in one UNLINK)
    const stale = await scanKeys(d.redis, k.holdPattern);
    for (let i = 0; i < stale.length; i += 500) await d.redis.unlink(...stale.slice(i, i + 500));
    await d.redis.unlink(k.expiry);
    const [code] = await d.redis.armEvent(k.meta, k.inv, k.sec, k.smap, k.buyers, eventId, JSON.stringify(spec), 'rebuild');
    switch (code) {
      case ArmEventReply.ARMED:
        break;
      case ArmEventReply.ALREADY_ARMED: // "rebuild" always writes: this answer is a bug
        throw new Error(`armEvent rebuild: unexpected reply ${code}`);
      default:
        assertNever(code, 'armEvent rebuild');
    }
    await d.redis.sadd(globalKeys(d.ns).events, eventId);

    // `attempts`: the hold's attempt counter comes back as the highest attempt recorded, so the next payHold "start"
    // numbers its attempt max + 1 instead of colliding with an existing payments row (booking_id, attempt)
    const { rows } = await d.pg.query<{ id: string; user_id: string; tier_id: string; ticket_count: number; state: string; holds: string; expires_at: Date | null; created_at: Date; seats: string[]; attempts: number }>(
      `SELECT b.id, b.user_id, b.tier_id, b.ticket_count, b.state, st.holds, b.expires_at, b.created_at,
              COALESCE((SELECT array_agg(s.seat_id ORDER BY s.seat_id) FROM booking_seats s WHERE s.booking_id = b.id AND s.live), '{}') AS seats,
              GREATEST(b.payment_attempts, COALESCE((SELECT max(p.attempt) FROM payments p WHERE p.booking_id = b.id), 0))::int AS attempts
         FROM bookings b JOIN booking_states st ON st.state = b.state WHERE b.event_id = $1 AND st.holds <> 'none'`,
      [eventId],
    );
    let holdsRestored = 0;
    let soldRestored = 0;
    for (const b of rows) {
      const state = b.holds === 'sold' ? 'sold' : HOLD_STATE[b.state as keyof typeof HOLD_STATE];
      await d.redis.restoreHold(k.hold(b.id as never), k.expiry, b.id, b.user_id, b.tier_id, b.ticket_count, b.seats.join(','),
        (b.expires_at ?? b.created_at).getTime(), b.created_at.getTime(), state, b.attempts);
      if (state === 'sold') soldRestored++;
      else holdsRestored++;
    }
    const { salesRetaken, paymentsReturned } = await settleLostSales(d, eventId);
    // first replies of Idempotency-Keys still in their window, so a retry replays the booking instead of a second one
    const keyed = await d.pg.query<{ id: string; user_id: string; tier_id: string; ticket_count: number; expires_at: Date; created_at: Date;
      idempotency_key: string; idempotency_fp: string; seats: string[] }>(
      `SELECT b.id, b.user_id, b.tier_id, b.ticket_count, b.expires_at, b.created_at, b.idempotency_key, b.idempotency_fp,
              COALESCE((SELECT array_agg(s.seat_id ORDER BY s.seat_id) FROM booking_seats s WHERE s.booking_id = b.id), '{}') AS seats
         FROM bookings b WHERE b.event_id = $1 AND b.idempotency_key IS NOT NULL AND b.created_at > now() - make_interval(secs => $2::int / 1000.0)`,
      [eventId, d.config.idempotencyTtlMs],
    );
    for (const b of keyed.rows) {
      const left = d.config.idempotencyTtlMs - (Date.now() - b.created_at.getTime());
      const record = holdIdempotencyRecord(b.idempotency_fp, { bookingId: b.id, tierId: b.tier_id, ticketCount: b.ticket_count, seats: b.seats,
        expiresAtMs: b.expires_at.getTime(), createdAtMs: b.created_at.getTime() });
      if (left > 0) await d.redis.set(k.idem(b.user_id as never, b.idempotency_key), record, 'PX', left, 'NX');
    }
    await waitingRoom.restore(eventId);
    return { eventId, drained, tiers: spec.tiers, holdsRestored, soldRestored, salesRetaken, paymentsReturned, idempotencyKeysRestored: keyed.rows.length, buyers: spec.buyers.length };
  } finally {
    await outbox.lease(eventId, owner, 30_000, 'drop');
  }
}

/** Postgres states a lost sale can be sold again from: BookingConfirmed's moves accept them (persist.ts MOVES). */
const RETAKABLE = new Set(['RESERVED', 'PAYMENT_PENDING', 'PAYMENT_FAILED', 'EXPIRED']);

/**
 * Money without a ticket after a Redis loss: a payment sold its hold in Redis (confirmHold, or retakeHold for a late
 * one) and its attempt is 'authorized' or 'captured', but the BookingConfirmed entry went with the lost outbox, so
 * Postgres (and so the rebuilt inventory) does not count the booking as sold. For each such booking (latest attempt
 * only; the others are settled), exactly one of:
 *  - sold again: retakeHold (the late payment's script) keeps the restored hold ("held"/"paying" -> "sold") or, for an
 *    EXPIRED booking, re-takes the same tickets if they are still free in the rebuilt inventory, and appends
 *    BookingConfirmed (retaken = 1), so the persist worker records the sale in outbox order;
 *  - given back: the tickets are gone (an EXPIRED booking's seats went to a booking Postgres still counts, e.g. one
 *    whose release was lost with the same outbox; or the booking itself was never recorded), so the attempt goes
 *    'cancelling' (write-ahead, LOST_SALE_NOTE) and the settle job cancels the authorization or refunds the capture
 *    (payments.ts complete()/giveBack()).
 * Both happen under the attempt's row lock, the lock complete()'s late path and the refund job take: a payment still
 * in flight during the rebuild (confirmHold does not check `armed`) either sold the hold already (retakeHold answers
 * ALREADY_CONFIRMED: nothing more), or finds the row 'cancelling' and gives the money back, or re-takes after this
 * and gets ALREADY_CONFIRMED. Never both, never neither.
 */
async function settleLostSales(d: EngineDeps, eventId: EventId): Promise<{ salesRetaken: number; paymentsReturned: number }> {
  const jobs = d.jobs ?? NO_JOBS;
  // booking ids start with the event's own part (ids.ts newBookingId), so this event's payments are found by prefix
  const { rows } = await d.pg.query<{ booking_id: string; attempt: number; provider_ref: string; state: string | null; user_id: string;
    tier_id: string; ticket_count: number; seats: string[] }>(
    `SELECT p.booking_id, p.attempt, p.provider_ref, b.state, b.user_id, b.tier_id, b.ticket_count,
            COALESCE((SELECT array_agg(s.seat_id ORDER BY s.seat_id) FROM booking_seats s WHERE s.booking_id = b.id), '{}') AS seats
       FROM (SELECT DISTINCT ON (booking_id) * FROM payments WHERE left(booking_id, length($1)) = $1 ORDER BY booking_id, attempt DESC) p
       LEFT JOIN bookings b ON b.id = p.booking_id LEFT JOIN booking_states st ON st.state = b.state
      WHERE p.status IN ('authorized', 'captured') AND st.holds IS DISTINCT FROM 'sold'`,
    [`bk_${eventId.slice(3)}_`],
  );
  let salesRetaken = 0;
  let paymentsReturned = 0;
  for (const r of rows) {
    const outcome = await withTx(d.pg, async (tx) => {
      const { rows: [now] } = await tx.query<{ status: string }>(
        'SELECT status FROM payments WHERE booking_id = $1 AND attempt = $2 FOR UPDATE', [r.booking_id, r.attempt]);
      if (now?.status !== 'authorized' && now?.status !== 'captured') return 'moved'; // settled meanwhile
      if (r.state && RETAKABLE.has(r.state)) {
        const t = { userId: r.user_id, tierId: r.tier_id, ticketCount: r.ticket_count, seats: r.seats };
        if (await retakeSold(d, eventId, r.booking_id as never, t, r.provider_ref)) return 'retaken';
      }
      await tx.query(`UPDATE payments SET status = 'cancelling', note = $3, updated_at = now() WHERE booking_id = $1 AND attempt = $2`,
        [r.booking_id, r.attempt, `${LOST_SALE_NOTE}${now.status}: the sale was lost with the Redis state and its tickets are taken`]);
      return 'returned';
    });
    if (outcome === 'moved') continue;
    if (outcome === 'retaken') salesRetaken++;
    else paymentsReturned++;
    // an authorized re-taken sale still needs its capture; a returned one its cancel or refund: now, as a follow-up
    // job of its own (the attempt's first settle job may be due minutes from now, or may have run long ago)
    await jobs.settlePayment(r.booking_id as never, r.attempt, 0, 'rebuild');
  }
  return { salesRetaken, paymentsReturned };
}
