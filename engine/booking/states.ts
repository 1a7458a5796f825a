/** The booking state machine of the seed, as data. db/migrations/0001_init.sql holds the same table and a
 *  trigger that refuses any other transition; booking/states.test.ts checks the two agree. */
export const BOOKING_STATES = [
  'PENDING',
  'RESERVED',
  'PAYMENT_PENDING',
  'PAYMENT_FAILED',
  'CONFIRMED',
  'TICKETS_DELIVERED',
  'REFUND_REQUESTED',
  'REFUND_DENIED',
  'REFUNDED',
  'CANCELLED',
  'EXPIRED',
  'FAILED',
] as const;
export type BookingState = (typeof BOOKING_STATES)[number];

export const TRANSITIONS = {
  PENDING: ['RESERVED', 'FAILED'],
  RESERVED: ['PAYMENT_PENDING', 'EXPIRED', 'CANCELLED'],
  PAYMENT_PENDING: ['CONFIRMED', 'PAYMENT_FAILED', 'EXPIRED'],
  PAYMENT_FAILED: ['PAYMENT_PENDING', 'CANCELLED', 'EXPIRED'],
  CONFIRMED: ['TICKETS_DELIVERED', 'REFUND_REQUESTED'],
  TICKETS_DELIVERED: ['REFUND_REQUESTED'],
  REFUND_REQUESTED: ['REFUNDED', 'REFUND_DENIED'],
  // a denied refund goes back to where it came from (tickets sent or not)
  REFUND_DENIED: ['CONFIRMED', 'TICKETS_DELIVERED'],
  REFUNDED: [],
  CANCELLED: [],
  // a payment that lands after the reservation expired re-takes the same seats if they are still free
  EXPIRED: ['CONFIRMED'],
  FAILED: [],
} as const satisfies Record<BookingState, readonly BookingState[]>;

/** What a booking in each state does to inventory: nothing, holds seats, or has bought them. */
export const HOLDS = {
  PENDING: 'none',
  RESERVED: 'held',
  PAYMENT_PENDING: 'held',
  PAYMENT_FAILED: 'held',
  CONFIRMED: 'sold',
  TICKETS_DELIVERED: 'sold',
  REFUND_REQUESTED: 'sold',
  REFUND_DENIED: 'sold',
  REFUNDED: 'none',
  CANCELLED: 'none',
  EXPIRED: 'none',
  FAILED: 'none',
} as const satisfies Record<BookingState, 'none' | 'held' | 'sold'>;

export const canTransition = (from: BookingState, to: BookingState): boolean =>
  (TRANSITIONS[from] as readonly BookingState[]).includes(to);

/** No further state changes (EXPIRED only moves again for a late payment that re-takes its seats). */
export const isFinal = (s: BookingState): boolean => TRANSITIONS[s].length === 0 || s === 'EXPIRED';

export const isBookingState = (s: string): s is BookingState => (BOOKING_STATES as readonly string[]).includes(s);
