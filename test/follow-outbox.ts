import type { Queryable } from '../platform/pg.js';

/**
 * Issue 12: a payment records its attempt before the persist worker has recorded the booking, so `payments` no longer
 * references `bookings` (db/migrations/0009_payments_follow_outbox.sql, engineer "persist"). Until that migration is
 * on this branch, a test that pays a fresh hold makes the same change in its own schema (IF EXISTS: a no-op once 0009
 * has run).
 */
export async function dropPaymentsBookingFk(pg: Queryable): Promise<void> {
  await pg.query('ALTER TABLE payments DROP CONSTRAINT IF EXISTS payments_booking_id_fkey');
}
