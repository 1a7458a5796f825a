import { randomFillSync } from 'node:crypto';

declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type EventId = Brand<string, 'EventId'>;
export type TierId = Brand<string, 'TierId'>;
export type BookingId = Brand<string, 'BookingId'>;
export type UserId = Brand<string, 'UserId'>;
export type Namespace = Brand<string, 'Namespace'>;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

const pool = Buffer.alloc(4096);
let poolAt = pool.length;

/** n random characters of [a-z0-9] from the OS CSPRNG (rejection sampling, no modulo bias; bytes drawn in 4 KiB
 *  batches, since a randomBytes call per id is a visible cost on the hot path). */
export function randomChars(n: number): string {
  let out = '';
  while (out.length < n) {
    if (poolAt === pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const b = pool[poolAt++]!;
    if (b < 252) out += ALPHABET[b % 36];
  }
  return out;
}

export const EVENT_ID = /^ev_[a-z0-9]{12}$/;
export const TIER_ID = /^tr_[a-z0-9]{10}$/;
/** A booking id carries its event's id, so any process finds the booking's Redis slot without a lookup. */
export const BOOKING_ID = /^bk_([a-z0-9]{12})_[a-z0-9]{16}$/;
export const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const SECTION_ID = /^[A-Za-z0-9]{1,16}$/;
/**
 * A seat has exactly one id: its section, then row and number in decimal without sign, space or leading zero. Postgres
 * knows only this spelling ("A-1-1"), so any other ("A-01-1") must be refused before it reaches Redis, never read as
 * the same seat.
 */
export const SEAT_ID = /^([A-Za-z0-9]{1,16})-([1-9][0-9]{0,3})-([1-9][0-9]{0,3})$/;
/** Idempotency keys: printable ASCII without braces or spaces (a key never changes its Redis slot). */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,255}$/;
export const NAMESPACE = /^[a-z0-9_]+$/;

export const newEventId = () => `ev_${randomChars(12)}` as EventId;
export const newTierId = () => `tr_${randomChars(10)}` as TierId;
export const newBookingId = (eventId: EventId) => `bk_${eventId.slice(3)}_${randomChars(16)}` as BookingId;

export const isEventId = (s: string): s is EventId => EVENT_ID.test(s);
export const isTierId = (s: string): s is TierId => TIER_ID.test(s);
export const isBookingId = (s: string): s is BookingId => BOOKING_ID.test(s);
export const isUserId = (s: string): s is UserId => USER_ID.test(s);

/** The event a booking id belongs to. */
export function eventOfBooking(id: BookingId): EventId {
  return `ev_${BOOKING_ID.exec(id)![1]}` as EventId;
}

export function asNamespace(s: string): Namespace {
  if (!NAMESPACE.test(s)) throw new Error(`bad key namespace ${JSON.stringify(s)}: use [a-z0-9_]`);
  return s as Namespace;
}
