import type { BookingId, EventId, UserId } from '../engine/ids.js';
import { eventKeys } from '../engine/keys.js';
import type { Fixtures } from './fixtures.js';

/**
 * A poison outbox entry, as the hold script wrote one before seat ids had one spelling: the hold takes seat `seat`
 * but spells it `spelled` ("A-01-1" for "A-1-1"), in the hold and in its BookingCreated entry. Postgres has no seat of
 * that name, so recording the hold fails on its data (booking_seats_event_id_seat_id_fkey) on every try.
 */
export async function legacySpelledHold(
  { engine, redis, ns }: Pick<Fixtures, 'engine' | 'redis' | 'ns'>, eventId: EventId, userId: UserId, seat = 'A-1-1', spelled = 'A-01-1',
): Promise<BookingId> {
  const { reservation } = await engine.bookings.create({ userId, eventId, ticketCount: 1, seatPreferences: { seatIds: [seat] } });
  const k = eventKeys(ns, eventId);
  await redis.hset(k.hold(reservation.bookingId), 's', spelled);
  const [[id, fields]] = (await redis.xrevrange(k.outbox, '+', '-', 'COUNT', 1)) as [string, string[]][] as [[string, string[]]];
  const f = [...fields];
  if (f[f.indexOf('bookingId') + 1] !== reservation.bookingId || f[f.indexOf('type') + 1] !== 'BookingCreated') {
    throw new Error('legacySpelledHold: the last outbox entry is not this hold');
  }
  f[f.indexOf('seats') + 1] = spelled;
  await redis.multi().xdel(k.outbox, id).xadd(k.outbox, '*', ...f).exec();
  return reservation.bookingId;
}
