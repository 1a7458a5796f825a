import { withTx, type Pool } from '../../platform/pg.js';
import type { Clock } from '../../engine/clock.js';
import { DomainError } from '../../engine/errors.js';
import { newBookingId, type BookingId, type EventId, type TierId, type UserId } from '../../engine/ids.js';
import type { Hold } from '../../engine/holds/holds.js';
import type { Engine } from '../../engine/index.js';

/** What the baseline needs: the pool, a clock, and how long a hold lives (an engine's deps satisfy it). */
export type PgLockDeps = { pg: Pool; clock: Clock; config: { holdTtlMs: number } };

/**
 * The seed's own design, kept only as the benchmark's baseline (`bench/server.ts pg-lock`): inventory in Postgres, taken
 * in a transaction with SELECT ... FOR UPDATE on the tier row, exactly as the seed's sequence diagram shows. General
 * admission only. The booking is written RESERVED in the same transaction (the same trigger keeps the counters).
 * Floodgate itself never calls it: the bench injects it with withPgLockBookings.
 */
export async function pgLockHold(
  d: PgLockDeps,
  r: { eventId: EventId; bookingId: BookingId; userId: UserId; tierId: TierId; ticketCount: number; maxPerUser: number },
): Promise<Hold> {
  const now = d.clock.now();
  const expiresAt = now + d.config.holdTtlMs;
  await withTx(d.pg, async (tx) => {
    const { rows } = await tx.query<{ capacity: number; reserved: number; sold: number; seated: boolean }>(
      'SELECT capacity, reserved, sold, seated FROM tiers WHERE id = $1 AND event_id = $2 FOR UPDATE',
      [r.tierId, r.eventId],
    );
    const t = rows[0];
    if (!t) throw new DomainError('TIER_NOT_FOUND', 'this event has no such tier', { field: 'tierId' });
    if (t.seated) throw new DomainError('TIER_KIND_MISMATCH', 'the pg-lock baseline sells general admission only', { field: 'tierId' });
    const available = t.capacity - t.reserved - t.sold;
    if (available < r.ticketCount) throw new DomainError('INSUFFICIENT_INVENTORY', `only ${available} ticket(s) available`, { available });
    const mine = await tx.query<{ n: string | null }>(
      `SELECT sum(b.ticket_count) AS n FROM bookings b JOIN booking_states st ON st.state = b.state
        WHERE b.event_id = $1 AND b.user_id = $2 AND st.holds <> 'none'`,
      [r.eventId, r.userId],
    );
    const have = Number(mine.rows[0]?.n ?? 0);
    if (have + r.ticketCount > r.maxPerUser) {
      throw new DomainError('TICKET_LIMIT', `you can hold at most ${Math.max(0, r.maxPerUser - have)} more ticket(s) for this event`, { allowed: Math.max(0, r.maxPerUser - have) });
    }
    await tx.query(
      `INSERT INTO bookings (id, event_id, tier_id, user_id, ticket_count, amount, currency, state, expires_at, created_at)
       SELECT $1, $2, t.id, $4, $5::int, t.price::bigint * $5::int, t.currency, 'RESERVED', to_timestamp($6::bigint / 1000.0), to_timestamp($7::bigint / 1000.0)
         FROM tiers t WHERE t.id = $3`,
      [r.bookingId, r.eventId, r.tierId, r.userId, r.ticketCount, expiresAt, now],
    );
  });
  return { bookingId: r.bookingId, eventId: r.eventId, tierId: r.tierId, ticketCount: r.ticketCount, seats: [], expiresAtMs: expiresAt, createdAtMs: now, replayed: false };
}

/**
 * The engine with POST /api/bookings served by the pg-lock baseline instead of the Redis hold scripts; everything else
 * is the engine's own. Same event and tier checks, in the same order, as engine.bookings.create; it ignores an
 * Idempotency-Key and an admission pass.
 */
export function withPgLockBookings(engine: Engine, d: PgLockDeps): Engine {
  const create: Engine['bookings']['create'] = async (r) => {
    const event = await engine.catalog.require(r.eventId);
    if (event.status !== 'on_sale') throw new DomainError('EVENT_CLOSED', 'this event is not on sale');
    const prefs = r.seatPreferences ?? {};
    const generalAdmission = () => new DomainError('TIER_KIND_MISMATCH', 'the pg-lock baseline sells general admission only', { field: 'seatPreferences' });
    if (prefs.seatIds?.length || prefs.section) throw generalAdmission();
    let tierId = r.tierId;
    if (!tierId) {
      if (event.tiers.length !== 1) throw new DomainError('TIER_REQUIRED', 'this event has several tiers: say which (tierId)', { field: 'tierId' });
      tierId = event.tiers[0]!.id;
    }
    const tier = event.tiers.find((t) => t.id === tierId);
    if (!tier) throw new DomainError('TIER_NOT_FOUND', 'this event has no such tier', { field: 'tierId' });
    if (tier.seated) throw generalAdmission();
    const h = await pgLockHold(d, { eventId: r.eventId, bookingId: newBookingId(r.eventId), userId: r.userId, tierId, ticketCount: r.ticketCount, maxPerUser: event.maxTicketsPerUser });
    return {
      replayed: false,
      reservation: { bookingId: h.bookingId, status: 'RESERVED', eventId: r.eventId, tierId: h.tierId, ticketCount: h.ticketCount, seats: [],
        amount: tier.price * h.ticketCount, currency: tier.currency, expiresAt: new Date(h.expiresAtMs).toISOString(), createdAt: new Date(h.createdAtMs).toISOString() },
    };
  };
  return { ...engine, bookings: { ...engine.bookings, create } };
}
