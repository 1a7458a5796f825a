import type { Pool, PoolClient } from '../../platform/pg.js';
import type { OutboxEntry } from '../outbox/outbox.js';
import { insertBooking, transition } from './bookings-repo.js';

export type ApplyResult = {
  applied: number;
  duplicates: number;
  /** Holds Postgres refused (it would have oversold): recorded FAILED; the caller releases them in Redis. */
  refused: OutboxEntry[];
  /** Entries that found their booking in an unexpected state (already moved, or never recorded). */
  anomalies: { entry: OutboxEntry; problem: string }[];
};

/** Postgres errors meaning "this would oversell": tier CHECK, live-seat unique index, unknown seat. */
const REFUSALS = new Set(['23514', '23505', '23503']);

/** The marker of an applied entry: each kind of domain event happens at most once per booking. */
export const markerOf = (e: OutboxEntry) => `${e.bookingId}:${e.type}`;

async function applyOne(tx: PoolClient, e: OutboxEntry, out: ApplyResult): Promise<void> {
  const anomaly = (problem: string) => out.anomalies.push({ entry: e, problem });
  switch (e.type) {
    case 'BookingCreated': {
      const b = { ...e, ticketCount: e.count, expiresAtMs: e.expiresAtMs ?? e.atMs, createdAtMs: e.atMs };
      await tx.query('SAVEPOINT created');
      try {
        if (!(await insertBooking(tx, b, 'RESERVED'))) anomaly('booking id already recorded');
        await tx.query('RELEASE SAVEPOINT created');
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!code || !REFUSALS.has(code)) throw err;
        await tx.query('ROLLBACK TO SAVEPOINT created');
        await insertBooking(tx, b, 'FAILED', 'inventory-conflict');
        out.refused.push(e);
      }
      return;
    }
    case 'BookingCancelled':
      if (!(await transition(tx, e.bookingId, ['RESERVED', 'PAYMENT_FAILED'], 'CANCELLED', e.reason ?? 'cancelled'))) {
        anomaly('not RESERVED or PAYMENT_FAILED');
      }
      return;
    case 'ReservationExpired':
      if (!(await transition(tx, e.bookingId, ['RESERVED', 'PAYMENT_PENDING', 'PAYMENT_FAILED'], 'EXPIRED', 'hold expired'))) {
        anomaly('not in a held state');
      }
      return;
    case 'BookingFailed':
      // Compensation for a refused hold: the booking was recorded FAILED when Postgres refused it.
      return;
    case 'BookingConfirmed': {
      // A confirmation means the payment succeeded; a booking still RESERVED/PAYMENT_FAILED here walks the
      // legal path through PAYMENT_PENDING.
      await transition(tx, e.bookingId, ['RESERVED', 'PAYMENT_FAILED'], 'PAYMENT_PENDING', 'payment');
      if (!(await transition(tx, e.bookingId, ['PAYMENT_PENDING'], 'CONFIRMED', `payment ${e.paymentRef ?? ''}`.trim()))) {
        anomaly('not PAYMENT_PENDING');
      }
      return;
    }
  }
}

/**
 * Applies a batch of outbox entries to Postgres in one transaction, in stream order. Each entry is applied
 * at most once (a processed_events marker per booking and event type), so a replayed batch changes nothing.
 * Throws on infrastructure errors: nothing is committed and the caller retries the same batch.
 * A hold Postgres refuses (it would oversell) is recorded FAILED and handed to onRefused.
 */
export async function applyOutbox(
  pool: Pool,
  entries: OutboxEntry[],
  /** Called before the commit with the holds Postgres refused, to release them in Redis: if it throws,
   *  nothing commits and the batch is retried, so the release happens at least once. */
  onRefused: (refused: OutboxEntry[]) => Promise<void> = async () => {},
): Promise<ApplyResult> {
  const out: ApplyResult = { applied: 0, duplicates: 0, refused: [], anomalies: [] };
  if (entries.length === 0) return out;
  const tx = await pool.connect();
  try {
    await tx.query('BEGIN');
    const { rows } = await tx.query<{ key: string }>(
      'INSERT INTO processed_events (key) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING key',
      [entries.map(markerOf)],
    );
    const fresh = new Set(rows.map((r) => r.key));
    for (const e of entries) {
      if (!fresh.delete(markerOf(e))) {
        out.duplicates++;
        continue;
      }
      await applyOne(tx, e, out);
      out.applied++;
    }
    if (out.refused.length > 0) await onRefused(out.refused);
    await tx.query('COMMIT');
    return out;
  } catch (err) {
    await tx.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    tx.release();
  }
}
