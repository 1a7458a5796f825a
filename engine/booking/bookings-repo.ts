import type { Queryable } from '../../platform/pg.js';
import type { BookingId, EventId, TierId, UserId } from '../ids.js';
import { canTransition, type BookingState } from './states.js';

export type Booking = {
  bookingId: BookingId;
  status: BookingState;
  eventId: EventId;
  tierId: TierId;
  userId: UserId;
  ticketCount: number;
  seats: string[];
  amount: number;
  currency: string;
  expiresAt: string | null;
  createdAt: string;
  updatedAt: string;
  failureReason: string | null;
};

const SELECT_BOOKING = `
  SELECT b.id, b.state, b.event_id, b.tier_id, b.user_id, b.ticket_count, b.amount, b.currency,
         b.expires_at, b.created_at, b.updated_at, b.failure_reason,
         COALESCE((SELECT array_agg(s.seat_id ORDER BY s.seat_id) FROM booking_seats s WHERE s.booking_id = b.id), '{}') AS seats
    FROM bookings b`;

type Row = {
  id: string;
  state: BookingState;
  event_id: string;
  tier_id: string;
  user_id: string;
  ticket_count: number;
  amount: string;
  currency: string;
  expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
  failure_reason: string | null;
  seats: string[];
};

const toBooking = (r: Row): Booking => ({
  bookingId: r.id as BookingId,
  status: r.state,
  eventId: r.event_id as EventId,
  tierId: r.tier_id as TierId,
  userId: r.user_id as UserId,
  ticketCount: r.ticket_count,
  seats: r.seats,
  amount: Number(r.amount),
  currency: r.currency,
  expiresAt: r.expires_at?.toISOString() ?? null,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  failureReason: r.failure_reason,
});

export async function getBooking(db: Queryable, id: BookingId): Promise<Booking | null> {
  const { rows } = await db.query<Row>(`${SELECT_BOOKING} WHERE b.id = $1`, [id]);
  return rows[0] ? toBooking(rows[0]) : null;
}

export async function listBookings(db: Queryable, userId: UserId, limit = 50): Promise<Booking[]> {
  const { rows } = await db.query<Row>(`${SELECT_BOOKING} WHERE b.user_id = $1 ORDER BY b.created_at DESC, b.id LIMIT $2`, [
    userId,
    limit,
  ]);
  return rows.map(toBooking);
}

export type NewBooking = {
  bookingId: BookingId;
  eventId: EventId;
  tierId: TierId;
  userId: UserId;
  ticketCount: number;
  seats: string[];
  expiresAtMs: number;
  createdAtMs: number;
};

/**
 * Records a hold as a RESERVED booking (audit: -> PENDING -> RESERVED). The trigger adds its tickets to the
 * tier's `reserved`; the CHECK on tiers and the unique index on live seats make Postgres refuse an oversell
 * (the caller runs this inside a savepoint and records a FAILED booking instead). A booking id already
 * present changes nothing: returns false.
 */
export async function insertBooking(db: Queryable, b: NewBooking, state: 'RESERVED' | 'FAILED', reason?: string): Promise<boolean> {
  // One statement, so it is atomic on its own: the booking, its audit rows and its seats, or nothing.
  const { rows } = await db.query<{ n: string }>(
    `WITH b AS (
       INSERT INTO bookings (id, event_id, tier_id, user_id, ticket_count, amount, currency, state, expires_at, created_at, failure_reason)
       SELECT $1, $2, t.id, $4, $5::int, t.price::bigint * $5::int, t.currency, $8, to_timestamp($6::bigint / 1000.0),
              to_timestamp($7::bigint / 1000.0), $9
         FROM tiers t WHERE t.id = $3 AND t.event_id = $2
       ON CONFLICT (id) DO NOTHING
       RETURNING id, event_id, created_at),
     audit AS (
       INSERT INTO booking_transitions (booking_id, from_state, to_state, cause, at)
       SELECT id, NULL, 'PENDING', 'hold', created_at FROM b
       UNION ALL SELECT id, 'PENDING', $8, $10, created_at FROM b),
     seats AS (
       INSERT INTO booking_seats (booking_id, event_id, seat_id, live)
       SELECT b.id, b.event_id, s, $8 = 'RESERVED' FROM b, unnest($11::text[]) s)
     SELECT count(*) AS n FROM b`,
    [b.bookingId, b.eventId, b.tierId, b.userId, b.ticketCount, b.expiresAtMs, b.createdAtMs, state, reason ?? null,
      state === 'RESERVED' ? 'hold' : `refused: ${reason}`, b.seats],
  );
  return rows[0]!.n === '1';
}

/**
 * Moves a booking from one of `from` to `to` in one guarded statement (the WHERE clause is the concurrency
 * guard) and writes its audit row in the same statement. Returns the state it left, or null when the booking
 * is not in any of `from` (already moved, or unknown). The database trigger refuses illegal moves too.
 */
export async function transition(
  db: Queryable,
  id: BookingId,
  from: readonly BookingState[],
  to: BookingState,
  cause: string,
  reason?: string,
): Promise<BookingState | null> {
  for (const f of from) if (!canTransition(f, to)) throw new Error(`illegal booking transition ${f} -> ${to}`);
  const { rows } = await db.query<{ from_state: BookingState }>(
    `WITH cur AS (SELECT id, state FROM bookings WHERE id = $1 AND state = ANY($2::text[]) FOR UPDATE),
          moved AS (UPDATE bookings b SET state = $3, updated_at = now(), failure_reason = COALESCE($5, b.failure_reason)
                      FROM cur WHERE b.id = cur.id RETURNING cur.state AS from_state)
     INSERT INTO booking_transitions (booking_id, from_state, to_state, cause)
     SELECT $1, from_state, $3, $4 FROM moved RETURNING from_state`,
    [id, from, to, cause, reason ?? null],
  );
  return rows[0]?.from_state ?? null;
}

export type Transition = { from: BookingState | null; to: BookingState; cause: string; at: string };

export async function transitionsOf(db: Queryable, id: BookingId): Promise<Transition[]> {
  const { rows } = await db.query<{ from_state: BookingState | null; to_state: BookingState; cause: string; at: Date }>(
    'SELECT from_state, to_state, cause, at FROM booking_transitions WHERE booking_id = $1 ORDER BY id',
    [id],
  );
  return rows.map((r) => ({ from: r.from_state, to: r.to_state, cause: r.cause, at: r.at.toISOString() }));
}
