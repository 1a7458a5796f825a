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
  idempotencyKey?: string | undefined;
  idempotencyFp?: string | undefined;
};

/**
 * Records holds as RESERVED (or FAILED) bookings in one statement (the audit trigger writes -> PENDING -> state, with
 * the cause this statement sets in `floodgate.cause`). The inventory trigger adds
 * their tickets to the tiers' `reserved`; the CHECK on tiers and the unique index on live seats make Postgres
 * refuse an oversell, failing the whole statement (the caller then retries one by one in savepoints). Booking
 * ids already present change nothing. Returns the ids recorded now.
 */
export async function insertBookings(db: Queryable, bs: NewBooking[], state: 'RESERVED' | 'FAILED', reason?: string): Promise<Set<string>> {
  if (bs.length === 0) return new Set();
  const seatOwners = bs.flatMap((b) => b.seats.map(() => b.bookingId));
  const { rows } = await db.query<{ id: string }>(
    `WITH why AS (SELECT set_config('floodgate.cause', $10, true)),
     input AS (
       SELECT i.* FROM why, unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::bigint[], $13::text[], $14::text[])
         AS i(id, event_id, tier_id, user_id, n, expires_ms, created_ms, idem_key, idem_fp)),
     b AS (
       INSERT INTO bookings (id, event_id, tier_id, user_id, ticket_count, amount, currency, state, expires_at, created_at, failure_reason,
                             idempotency_key, idempotency_fp)
       SELECT i.id, i.event_id, t.id, i.user_id, i.n, t.price::bigint * i.n, t.currency, $8, to_timestamp(i.expires_ms / 1000.0),
              to_timestamp(i.created_ms / 1000.0), $9, i.idem_key, i.idem_fp
         FROM input i JOIN tiers t ON t.id = i.tier_id AND t.event_id = i.event_id
       ON CONFLICT (id) DO NOTHING
       RETURNING id, event_id, created_at),
     seats AS (
       INSERT INTO booking_seats (booking_id, event_id, seat_id, live)
       SELECT b.id, b.event_id, s.seat, $8 = 'RESERVED' FROM unnest($11::text[], $12::text[]) AS s(booking_id, seat) JOIN b ON b.id = s.booking_id)
     SELECT id FROM b`,
    [
      bs.map((b) => b.bookingId), bs.map((b) => b.eventId), bs.map((b) => b.tierId), bs.map((b) => b.userId),
      bs.map((b) => b.ticketCount), bs.map((b) => b.expiresAtMs), bs.map((b) => b.createdAtMs),
      state, reason ?? null, state === 'RESERVED' ? 'hold' : `refused: ${reason}`,
      seatOwners, bs.flatMap((b) => b.seats),
      bs.map((b) => b.idempotencyKey ?? null), bs.map((b) => b.idempotencyFp ?? null),
    ],
  );
  return new Set(rows.map((r) => r.id));
}

/** One booking: see insertBookings. Returns false when the id was already recorded. */
export async function insertBooking(db: Queryable, b: NewBooking, state: 'RESERVED' | 'FAILED', reason?: string): Promise<boolean> {
  return (await insertBookings(db, [b], state, reason)).size === 1;
}

/** One booking of a `moveMany`: its cause (the audit row's), and the columns the move sets (absent = kept). */
export type BookingMove = {
  id: BookingId;
  cause: string;
  paymentAttempts?: number | undefined;
  /** A string sets the failure reason, null clears it, absent keeps it. */
  failureReason?: string | null | undefined;
  /** Holder fields: a value replaces the recorded one, absent keeps it. */
  holderName?: string | undefined;
  holderEmail?: string | undefined;
  holderPhone?: string | undefined;
};

/**
 * Moves many bookings from one of `from` to `to` in one guarded statement, each with its own cause and columns (per-row
 * arrays, unnested): the audit trigger writes a row each with its booking's cause (`floodgate.causes`, set by this
 * statement), and the inventory trigger moves each tier's counters once for the whole statement. Returns the ids that
 * moved (the others were not in any of `from`).
 */
export async function moveMany(db: Queryable, moves: readonly BookingMove[], from: readonly BookingState[], to: BookingState): Promise<Set<string>> {
  for (const f of from) if (!canTransition(f, to)) throw new Error(`illegal booking transition ${f} -> ${to}`);
  if (moves.length === 0) return new Set();
  const { rows } = await db.query<{ booking_id: string }>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $4::text[], $5::int[], $6::boolean[], $7::text[], $8::text[], $9::text[], $10::text[])
         AS u(id, cause, attempts, set_failure, failure, holder_name, holder_email, holder_phone)),
     why AS (SELECT set_config('floodgate.causes', (SELECT jsonb_object_agg(id, cause) FROM input)::text, true),
                    set_config('floodgate.cause', '', true)),
     cur AS (SELECT b.id, i.attempts, i.set_failure, i.failure, i.holder_name, i.holder_email, i.holder_phone
               FROM why, bookings b JOIN input i ON i.id = b.id
              WHERE b.state = ANY($2::text[]) ORDER BY b.id FOR UPDATE OF b)
     UPDATE bookings b SET state = $3, updated_at = now(),
            payment_attempts = COALESCE(cur.attempts, b.payment_attempts),
            failure_reason = CASE WHEN cur.set_failure THEN cur.failure ELSE b.failure_reason END,
            holder_name = COALESCE(cur.holder_name, b.holder_name),
            holder_email = COALESCE(cur.holder_email, b.holder_email),
            holder_phone = COALESCE(cur.holder_phone, b.holder_phone)
       FROM cur WHERE b.id = cur.id RETURNING b.id AS booking_id`,
    [
      moves.map((m) => m.id), from, to, moves.map((m) => m.cause), moves.map((m) => m.paymentAttempts ?? null),
      moves.map((m) => m.failureReason !== undefined), moves.map((m) => m.failureReason ?? null),
      moves.map((m) => m.holderName ?? null), moves.map((m) => m.holderEmail ?? null), moves.map((m) => m.holderPhone ?? null),
    ],
  );
  return new Set(rows.map((r) => r.booking_id));
}

/** moveMany with one cause for all and no other column. */
export async function transitionMany(
  db: Queryable,
  ids: readonly BookingId[],
  from: readonly BookingState[],
  to: BookingState,
  cause: string,
): Promise<Set<string>> {
  return moveMany(db, ids.map((id) => ({ id, cause })), from, to);
}

/**
 * Moves a booking from one of `from` to `to` in one guarded statement (the WHERE clause is the concurrency
 * guard); the audit trigger (migration 0007) writes its row with the cause this statement sets in `floodgate.cause`
 * (transaction-local). Returns the state it left, or null when the booking
 * is not in any of `from` (already moved, or unknown). The database trigger refuses illegal moves too.
 */
/**
 * The CTE `why` that tells the audit trigger (migration 0007) the cause of a statement moving one booking: `param` is
 * the statement's placeholder for the cause (transaction-local; `floodgate.causes`, the per-booking causes of
 * `moveMany`, cleared). Read it in the statement (`FROM why, ...`) so it runs before the move.
 */
export const whyCte = (param: string) => `why AS (SELECT set_config('floodgate.cause', ${param}, true), set_config('floodgate.causes', '', true))`;

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
    `WITH ${whyCte('$4')},
          cur AS (SELECT id, state FROM why, bookings WHERE id = $1 AND state = ANY($2::text[]) FOR UPDATE OF bookings)
     UPDATE bookings b SET state = $3, updated_at = now(), failure_reason = COALESCE($5, b.failure_reason)
       FROM cur WHERE b.id = cur.id RETURNING cur.state AS from_state`,
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

/** Who a booking's messages go to, as the buyer gave it at payment (null: not given), and when it was confirmed. */
export type Holder = { name: string | null; email: string | null; phone: string | null; confirmedAt: Date | null };

export async function getHolder(db: Queryable, id: BookingId): Promise<Holder | null> {
  const { rows } = await db.query<{ holder_name: string | null; holder_email: string | null; holder_phone: string | null; confirmed_at: Date | null }>(
    `SELECT holder_name, holder_email, holder_phone,
            (SELECT max(at) FROM booking_transitions WHERE booking_id = $1 AND to_state = 'CONFIRMED') AS confirmed_at
       FROM bookings WHERE id = $1`,
    [id],
  );
  const r = rows[0];
  return r ? { name: r.holder_name, email: r.holder_email, phone: r.holder_phone, confirmedAt: r.confirmed_at } : null;
}
