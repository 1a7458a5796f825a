import { withTx } from '../../platform/pg.js';
import type { EngineDeps } from '../../engine/deps.js';
import { DomainError } from '../../engine/errors.js';
import type { BookingId, EventId, TierId, UserId } from '../../engine/ids.js';
import type { Hold } from '../../engine/holds/holds.js';

/**
 * The seed's own design, kept only as the benchmark's baseline (INVENTORY_MODE=pg-lock): inventory in Postgres, taken
 * in a transaction with SELECT ... FOR UPDATE on the tier row, exactly as the seed's sequence diagram shows. General
 * admission only. The booking is written RESERVED in the same transaction (the same trigger keeps the counters).
 */
export async function pgLockHold(
  d: EngineDeps,
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
