import { createHash } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import type { Holds, HoldMode } from '../holds/holds.js';
import type { RateLimitCheck } from '../rate-limits.js';
import { eventOfBooking, newBookingId, type BookingId, type EventId, type TierId, type UserId } from '../ids.js';
import { verifyAdmission } from '../waiting-room/admission-token.js';
import { getBooking, getHolder, listBookings, type Booking } from './bookings-repo.js';

export type SeatPreferences = { seatIds?: string[] | undefined; section?: string | undefined; adjacent?: boolean | undefined };

export type CreateBooking = {
  userId: UserId;
  eventId: EventId;
  tierId?: TierId | undefined;
  ticketCount: number;
  seatPreferences?: SeatPreferences | undefined;
  idempotencyKey?: string | undefined;
  /** X-Admission-Token, required on events with a waiting room. */
  admissionToken?: string | undefined;
  /** The hold rate limits this request counts against (counted by the hold script itself); none = no limits. */
  rateLimit?: RateLimitCheck | undefined;
};

/** What a buyer sees right after holding: the reply of POST /api/bookings. */
export type Reservation = {
  bookingId: BookingId;
  status: 'RESERVED';
  eventId: EventId;
  tierId: TierId;
  ticketCount: number;
  seats: string[];
  amount: number;
  currency: string;
  expiresAt: string;
  createdAt: string;
};

/** The request's identity for idempotency: the same key with another request is refused. */
export function fingerprint(r: CreateBooking): string {
  const p = r.seatPreferences;
  const canonical = JSON.stringify([r.eventId, r.tierId ?? null, r.ticketCount, p?.seatIds ?? null, p?.section ?? null, p?.adjacent ?? null]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 22);
}

export function createBookings(d: EngineDeps, catalog: Catalog, holds: Holds) {
  return {
    /** Holds tickets for a buyer: one atomic Redis script call; Postgres follows through the outbox. */
    async create(r: CreateBooking): Promise<{ reservation: Reservation; replayed: boolean }> {
      const event = await catalog.require(r.eventId);
      if (event.status !== 'on_sale') throw new DomainError('EVENT_CLOSED', 'this event is not on sale');
      const prefs = r.seatPreferences ?? {};
      let tierId = r.tierId;
      let mode: HoldMode;
      if (prefs.seatIds?.length) {
        mode = { kind: 'seats', seatIds: prefs.seatIds };
      } else if (prefs.section) {
        mode = { kind: 'best', section: prefs.section, adjacent: prefs.adjacent ?? true };
      } else {
        if (!tierId) {
          if (event.tiers.length !== 1) {
            throw new DomainError('TIER_REQUIRED', 'this event has several tiers: say which (tierId)', { field: 'tierId' });
          }
          tierId = event.tiers[0]!.id;
        }
        const tier = event.tiers.find((t) => t.id === tierId);
        if (!tier) throw new DomainError('TIER_NOT_FOUND', 'this event has no such tier', { field: 'tierId' });
        mode = tier.seated ? { kind: 'best', adjacent: prefs.adjacent ?? true } : { kind: 'ga' };
      }
      // The pass is checked here (signature, person, event, expiry) and again in the hold script (live in Redis, one live
      // hold per pass); whether the event needs one at all is the script's decision.
      const check = r.admissionToken
        ? verifyAdmission(d.config.admissionSecret, r.admissionToken, { eventId: r.eventId, userId: r.userId, nowMs: d.clock.now() })
        : null;
      const hold = await holds.hold({
        eventId: r.eventId,
        bookingId: newBookingId(r.eventId),
        userId: r.userId,
        tierId,
        ticketCount: r.ticketCount,
        mode,
        idempotency: r.idempotencyKey ? { key: r.idempotencyKey, fingerprint: fingerprint(r) } : undefined,
        pass: check?.ok ? check.claims.member : undefined,
        rateLimit: r.rateLimit,
      }).catch((err: unknown) => {
        if (err instanceof DomainError && err.code === 'ADMISSION_REQUIRED' && check && !check.ok) {
          throw new DomainError('ADMISSION_REQUIRED', `the admission pass is not valid (${check.reason})`, err.extra);
        }
        throw err;
      });
      const tier = event.tiers.find((t) => t.id === hold.tierId)!;
      return {
        replayed: hold.replayed,
        reservation: {
          bookingId: hold.bookingId,
          status: 'RESERVED',
          eventId: r.eventId,
          tierId: hold.tierId,
          ticketCount: hold.ticketCount,
          seats: hold.seats,
          amount: tier.price * hold.ticketCount,
          currency: tier.currency,
          expiresAt: new Date(hold.expiresAtMs).toISOString(),
          createdAt: new Date(hold.createdAtMs).toISOString(),
        },
      };
    },

    /**
     * A booking as its owner (or an admin) sees it: Postgres, or the live Redis hold if the persist worker
     * has not recorded it yet. Anyone else gets BOOKING_NOT_FOUND, as for an id that does not exist.
     */
    async get(bookingId: BookingId, viewer: { userId: UserId; admin?: boolean }): Promise<Booking> {
      let b = await getBooking(d.pg, bookingId);
      if (!b) {
        const eventId = eventOfBooking(bookingId);
        const h = await holds.get(eventId, bookingId);
        if (h) {
          const event = await catalog.cached(eventId);
          const tier = event?.tiers.find((t) => t.id === h.tierId);
          b = {
            bookingId,
            status: h.state === 'sold' ? 'CONFIRMED' : h.state === 'paying' ? 'PAYMENT_PENDING' : 'RESERVED',
            eventId,
            tierId: h.tierId,
            userId: h.userId,
            ticketCount: h.ticketCount,
            seats: [...h.seats].sort(),
            amount: (tier?.price ?? 0) * h.ticketCount,
            currency: tier?.currency ?? '',
            expiresAt: new Date(h.expiresAtMs).toISOString(),
            createdAt: new Date(h.createdAtMs).toISOString(),
            updatedAt: new Date(h.createdAtMs).toISOString(),
            failureReason: null,
          };
        }
      }
      if (!b || (b.userId !== viewer.userId && !viewer.admin)) {
        throw new DomainError('BOOKING_NOT_FOUND', 'no such booking');
      }
      return b;
    },

    list: (userId: UserId, limit?: number) => listBookings(d.pg, userId, limit),

    /** The booking as Postgres records it (null: not recorded), for the workers: no viewer check, no live hold. */
    recorded: (bookingId: BookingId) => getBooking(d.pg, bookingId),

    /** Whom the booking's messages go to (name, e-mail, phone as given at payment) and when it was confirmed. */
    holder: (bookingId: BookingId) => getHolder(d.pg, bookingId),

    /** Buyer cancel: the seats are free again at once; Postgres records CANCELLED through the outbox. */
    async cancel(bookingId: BookingId, userId: UserId): Promise<{ bookingId: BookingId; status: 'CANCELLED' }> {
      try {
        await holds.release(eventOfBooking(bookingId), bookingId, { userId });
        return { bookingId, status: 'CANCELLED' };
      } catch (err) {
        if (!(err instanceof DomainError) || err.code !== 'BOOKING_NOT_FOUND') throw err;
        // No live hold: tell the owner why (already cancelled, expired, paid...); anyone else: not found.
        const b = await getBooking(d.pg, bookingId);
        if (!b || b.userId !== userId) throw err;
        throw new DomainError('BOOKING_NOT_CANCELLABLE', `the booking is ${b.status} and cannot be cancelled`, { status: b.status });
      }
    },
  };
}
export type Bookings = ReturnType<typeof createBookings>;
