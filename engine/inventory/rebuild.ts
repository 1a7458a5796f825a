import { randomBytes } from 'node:crypto';
import { ArmEventReply, assertNever } from '../../lua/codes.js';
import { scanKeys } from '../../platform/redis.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import type { EventId } from '../ids.js';
import { holdIdempotencyRecord } from '../idempotency.js';
import { eventKeys, globalKeys } from '../keys.js';
import type { Outbox } from '../outbox/outbox.js';
import type { OutboxDrain } from '../outbox/drain.js';
import type { WaitingRoom } from '../waiting-room/waiting-room.js';
import { specFromPostgres, type ArmSpec } from './inventory.js';

export type RebuildReport = {
  eventId: EventId;
  /** Outbox entries found in Redis and applied to Postgres first (a forced rebuild of a live event). */
  drained: number;
  tiers: ArmSpec['tiers'];
  holdsRestored: number;
  soldRestored: number;
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
  await d.redis.hset(k.meta, 'armed', '0');
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

    const { rows } = await d.pg.query<{ id: string; user_id: string; tier_id: string; ticket_count: number; state: string; holds: string; expires_at: Date | null; created_at: Date; seats: string[] }>(
      `SELECT b.id, b.user_id, b.tier_id, b.ticket_count, b.state, st.holds, b.expires_at, b.created_at,
              COALESCE((SELECT array_agg(s.seat_id ORDER BY s.seat_id) FROM booking_seats s WHERE s.booking_id = b.id AND s.live), '{}') AS seats
         FROM bookings b JOIN booking_states st ON st.state = b.state WHERE b.event_id = $1 AND st.holds <> 'none'`,
      [eventId],
    );
    let holdsRestored = 0;
    let soldRestored = 0;
    for (const b of rows) {
      const state = b.holds === 'sold' ? 'sold' : HOLD_STATE[b.state as keyof typeof HOLD_STATE];
      await d.redis.restoreHold(k.hold(b.id as never), k.expiry, b.id, b.user_id, b.tier_id, b.ticket_count, b.seats.join(','),
        (b.expires_at ?? b.created_at).getTime(), b.created_at.getTime(), state);
      if (state === 'sold') soldRestored++;
      else holdsRestored++;
    }
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
    return { eventId, drained, tiers: spec.tiers, holdsRestored, soldRestored, idempotencyKeysRestored: keyed.rows.length, buyers: spec.buyers.length };
  } finally {
    await outbox.lease(eventId, owner, 30_000, 'drop');
  }
}
