import type { EngineDeps } from '../deps.js';
import { eventOfBooking, type BookingId, type EventId } from '../ids.js';
import { HOLD_FIELDS } from '../holds/hold-record.js';
import type { Inventory } from '../inventory/inventory.js';
import type { Reconciliation } from '../inventory/reconcile.js';
import type { Outbox } from '../outbox/outbox.js';
import { eventKeys } from '../keys.js';
import { scanKeys } from '../../platform/redis.js';

/** What the checks read: the stores, and the engine's own views of inventory, outbox and reconciliation. */
export type InvariantSources = Pick<EngineDeps, 'ns' | 'redis' | 'pg'> & {
  inventory: Pick<Inventory, 'armedEvents' | 'redisState'>;
  outbox: Pick<Outbox, 'backlog'>;
  reconcile: (eventId: EventId) => Promise<Reconciliation>;
};

export type InvariantOptions = {
  eventIds?: EventId[];
  charges?: ChargeRecord[];
  emailsPerBooking?: Map<string, number>;
  drained?: boolean;
  settling?: ReadonlySet<string>;
};

/** A charge as the payment provider knows it (the simulated provider's records, or the Stripe double's). */
export type ChargeRecord = { bookingId: string; status: string; amount: number; refunded?: number };

export type InvariantReport = {
  ok: boolean;
  violations: string[];
  figures: {
    events: number;
    capacity: number;
    sold: number;
    held: number;
    bookings: number;
    captured: number;
    refunded: number;
    emailsSent: number;
    outboxBacklog: number;
    mismatch: number;
  };
};

const PAID = new Set(['CONFIRMED', 'TICKETS_DELIVERED', 'REFUND_REQUESTED', 'REFUND_DENIED']);

/**
 * Floodgate's invariants, checked against the real stores (used by tests, the fault suite, the simulation and the
 * benchmark driver):
 *   1. per event and tier in Redis: capacity == available + held + sold, nothing below zero;
 *   2. in Postgres: never a seat in two live bookings, never more reserved + sold than capacity;
 *   3. money: every captured charge belongs to exactly one paid booking (or was refunded with its booking), every paid
 *      booking has exactly one captured charge, never two captures for one booking;
 *   4. at most one e-mail per booking;
 *   5. with `drained`: the outbox is empty and Redis agrees with Postgres exactly;
 *   6. the payment steps (authorize, confirm in Redis, capture; Postgres follows the outbox), checked on the money record
 *      (`payments` rows) against the holds in Redis, so they hold at every instant, not only once drained:
 *      a captured attempt belongs to a sold hold (no money without a ticket); a sold hold has exactly one attempt that
 *      is captured, or authorized with its capture still to come (no ticket without money); and, with `settling` (the
 *      settle jobs still queued or running, as `<bookingId>:a<attempt>`), every attempt still open (pending,
 *      authorized, cancelling) has a settle job that will finish it.
 */
export async function checkInvariants(src: InvariantSources, o: InvariantOptions = {}): Promise<InvariantReport> {
  const v: string[] = [];
  const pg = src.pg;
  const eventIds = o.eventIds ?? (await src.inventory.armedEvents());
  const f: InvariantReport['figures'] = { events: eventIds.length, capacity: 0, sold: 0, held: 0, bookings: 0, captured: 0, refunded: 0, emailsSent: 0, outboxBacklog: 0, mismatch: 0 };

  for (const eventId of eventIds) {
    for (const [tier, t] of Object.entries(await src.inventory.redisState(eventId))) {
      if (t.cap !== t.free + t.held + t.sold) v.push(`redis ${eventId}/${tier}: capacity ${t.cap} != available ${t.free} + held ${t.held} + sold ${t.sold}`);
      if (t.free < 0 || t.held < 0 || t.sold < 0) v.push(`redis ${eventId}/${tier}: a counter below zero ${JSON.stringify(t)}`);
      f.capacity += t.cap;
      f.sold += t.sold;
      f.held += t.held;
    }
    f.outboxBacklog += (await src.outbox.backlog(eventId)).entries;
  }
  const tiers = await pg.query<{ id: string; capacity: number; reserved: number; sold: number }>(
    'SELECT id, capacity, reserved, sold FROM tiers WHERE event_id = ANY($1::text[])',
    [eventIds],
  );
  for (const t of tiers.rows) {
    if (t.reserved < 0 || t.sold < 0 || t.reserved + t.sold > t.capacity) v.push(`postgres tier ${t.id}: reserved ${t.reserved} + sold ${t.sold} vs capacity ${t.capacity}`);
  }
  const doubled = await pg.query<{ seat_id: string; n: number }>(
    `SELECT seat_id, count(*)::int AS n FROM booking_seats WHERE event_id = ANY($1::text[]) AND live GROUP BY event_id, seat_id HAVING count(*) > 1`,
    [eventIds],
  );
  for (const r of doubled.rows) v.push(`postgres: seat ${r.seat_id} in ${r.n} live bookings`);

  const bookings = await pg.query<{ id: string; state: string }>('SELECT id, state FROM bookings WHERE event_id = ANY($1::text[])', [eventIds]);
  f.bookings = bookings.rowCount ?? 0;
  const state = new Map(bookings.rows.map((b) => [b.id, b.state]));
  v.push(...(await paymentSteps(src, eventIds, o.settling)));

  if (o.charges) {
    const mine = o.charges.filter((c) => state.has(c.bookingId));
    const byBooking = new Map<string, ChargeRecord[]>();
    for (const c of mine) byBooking.set(c.bookingId, [...(byBooking.get(c.bookingId) ?? []), c]);
    for (const [id, cs] of byBooking) {
      const captured = cs.filter((c) => c.status === 'captured');
      const refunded = cs.filter((c) => c.status === 'refunded');
      f.captured += captured.length;
      f.refunded += refunded.length;
      if (captured.length + refunded.length > 1) v.push(`booking ${id}: charged ${captured.length + refunded.length} times`);
      const s = state.get(id)!;
      if (captured.length === 1 && !PAID.has(s)) v.push(`money without a ticket: booking ${id} is ${s} but its charge is captured`);
      if (refunded.length === 1 && s !== 'REFUNDED') v.push(`booking ${id} is ${s} but its charge was refunded`);
    }
    for (const [id, s] of state) {
      if (PAID.has(s) && (byBooking.get(id) ?? []).filter((c) => c.status === 'captured').length !== 1) {
        v.push(`a ticket without money: booking ${id} is ${s} without exactly one captured charge`);
      }
    }
  }

  const sent = await pg.query<{ booking_id: string; n: number }>(
    `SELECT d.booking_id, count(*)::int AS n FROM deliveries d JOIN bookings b ON b.id = d.booking_id
      WHERE b.event_id = ANY($1::text[]) AND d.channel = 'email' AND d.status = 'sent' GROUP BY d.booking_id`,
    [eventIds],
  );
  f.emailsSent = sent.rows.length;
  for (const [id, n] of o.emailsPerBooking ?? new Map()) {
    if (state.has(id) && n > 1) v.push(`booking ${id}: ${n} e-mails`);
  }

  if (o.drained) {
    if (f.outboxBacklog > 0) v.push(`the outbox still holds ${f.outboxBacklog} entries`);
    for (const eventId of eventIds) {
      const r = await src.reconcile(eventId);
      f.mismatch += r.mismatch;
      if (r.mismatch > 0) v.push(`${eventId}: Redis and Postgres disagree on ${r.mismatch} (${JSON.stringify(r.differences.slice(0, 3))})`);
    }
  }
  return { ok: v.length === 0, violations: v, figures: f };
}

const OPEN_ATTEMPT = new Set(['pending', 'authorized', 'cancelling']);

/** Rule 6: the money record against the holds in Redis (a payment row may exist before its booking is recorded). */
async function paymentSteps(src: InvariantSources, eventIds: EventId[], settling: ReadonlySet<string> | undefined): Promise<string[]> {
  const v: string[] = [];
  const events = new Set<string>(eventIds);
  const { rows } = await src.pg.query<{ booking_id: BookingId; attempt: number; status: string }>(
    'SELECT booking_id, attempt, status FROM payments ORDER BY booking_id, attempt',
  );
  const mine = rows.filter((r) => events.has(eventOfBooking(r.booking_id)));
  // an approved refund gives the seats back in Redis, then marks the money refunded: in between, captured money has no hold
  const refunding = new Set(
    (await src.pg.query<{ booking_id: string }>("SELECT booking_id FROM refunds WHERE status = 'approved'")).rows.map((r) => r.booking_id),
  );
  const byBooking = new Map<BookingId, { attempt: number; status: string }[]>();
  for (const r of mine) byBooking.set(r.booking_id, [...(byBooking.get(r.booking_id) ?? []), r]);
  for (const [id, as] of byBooking) {
    const n = as.filter((a) => a.status === 'captured' || a.status === 'refunded').length;
    if (n > 1) v.push(`booking ${id}: ${n} captured payments`);
  }
  // every hold of these events that is sold, and the state of the hold of every booking with an attempt
  const state = new Map<string, string | null>();
  for (const eventId of eventIds) {
    const keys = await scanKeys(src.redis, eventKeys(src.ns, eventId).holdPattern);
    const states = await Promise.all(keys.map((key) => src.redis.hget(key, HOLD_FIELDS.state)));
    keys.forEach((key, i) => state.set(key.slice(key.lastIndexOf(':') + 1), states[i] ?? null));
  }
  for (const [id, as] of byBooking) {
    const hold = state.get(id) ?? 'gone';
    for (const a of as) {
      if (a.status === 'captured' && hold !== 'sold' && !(hold === 'gone' && refunding.has(id))) v.push(`money without a ticket: attempt ${id}.a${a.attempt} is captured but the hold is ${hold}`);
      if (settling && OPEN_ATTEMPT.has(a.status) && !settling.has(`${id}:a${a.attempt}`)) {
        v.push(`attempt ${id}.a${a.attempt} is ${a.status} and no settle job will finish it`);
      }
    }
  }
  for (const [id, st] of state) {
    if (st !== 'sold') continue;
    const paid = (byBooking.get(id as BookingId) ?? []).filter((a) => a.status === 'captured' || a.status === 'authorized');
    if (paid.length !== 1) v.push(`a ticket without money: the hold of ${id} is sold with ${paid.length} captured or authorized attempts`);
  }
  return v;
}
