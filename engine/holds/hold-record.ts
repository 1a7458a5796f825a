import type { BookingId, EventId, TierId, UserId } from '../ids.js';

/**
 * The hold HASH (`eventKeys(ns, e).hold(bookingId)`) as the Lua scripts store it: one letter per field, documented
 * for Lua in the comment block of `lua/includes/holdCommon.lua`. This table is the only place in TypeScript that maps
 * the letters to names; `lua/commands.test.ts` checks that it equals the Lua block and that the scripts use no other
 * field. The letters stay as they are: renaming a stored field would strand the holds already in Redis during a
 * rolling deploy.
 */
export const HOLD_FIELDS = {
  userId: 'u',
  tierId: 't',
  ticketCount: 'n',
  /** "A-1-1,A-1-2"; "" for general admission. */
  seats: 's',
  expiresAtMs: 'x',
  createdAtMs: 'c',
  /** "held" | "paying" | "sold" */
  state: 'st',
  /** The admission pass member the hold used ("" = none). */
  pass: 'p',
  /** Payment attempts started on this hold (absent = 0); payHold "start" increments it and names the attempt. */
  attempts: 'a',
} as const satisfies Record<string, string>;

export type HoldState = 'held' | 'paying' | 'sold';

/** A live (or sold) hold read from Redis, with readable names. */
export type HoldRecord = {
  bookingId: BookingId;
  eventId: EventId;
  userId: UserId;
  tierId: TierId;
  ticketCount: number;
  seats: string[];
  expiresAtMs: number;
  createdAtMs: number;
  state: HoldState;
  /** Payment attempts started (the running or last attempt's number; 0 = none yet). */
  attempts: number;
};

/** Decodes an HGETALL of a hold HASH; null when the hold does not exist (HGETALL answers {}). */
export function decodeHold(eventId: EventId, bookingId: BookingId, h: Record<string, string>): HoldRecord | null {
  const f = HOLD_FIELDS;
  const userId = h[f.userId];
  if (!userId) return null;
  const seats = h[f.seats];
  return {
    bookingId,
    eventId,
    userId: userId as UserId,
    tierId: h[f.tierId] as TierId,
    ticketCount: Number(h[f.ticketCount]),
    seats: seats ? seats.split(',') : [],
    expiresAtMs: Number(h[f.expiresAtMs]),
    createdAtMs: Number(h[f.createdAtMs]),
    state: h[f.state] as HoldState,
    attempts: Number(h[f.attempts] ?? 0),
  };
}
