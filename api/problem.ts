import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { DomainErrorCode } from '../engine/errors.js';

export type FieldError = { field: string; detail: string };
export type ProblemInput = {
  type: string;
  title: string;
  detail?: string;
  errors?: FieldError[];
  [extra: string]: unknown;
};
export type Problem = ProblemInput & { status: number; instance?: string; requestId?: string };

/** Every domain error code, its HTTP status and title. A new code without a row here fails typecheck. */
export const DOMAIN_HTTP = {
  EVENT_NOT_FOUND: [404, 'Event not found'],
  TIER_NOT_FOUND: [404, 'Tier not found'],
  TIER_REQUIRED: [400, 'Tier required'],
  SALES_NOT_OPEN: [409, 'Sales not open'],
  EVENT_CLOSED: [409, 'Event not on sale'],
  INSUFFICIENT_INVENTORY: [409, 'Insufficient inventory'],
  SEAT_UNAVAILABLE: [409, 'Seat unavailable'],
  UNKNOWN_SEAT: [400, 'Unknown seat'],
  UNKNOWN_SECTION: [400, 'Unknown section'],
  SEAT_TIER_MISMATCH: [400, 'Seats of another tier'],
  TIER_KIND_MISMATCH: [400, 'Seat preferences do not fit the tier'],
  NO_ADJACENT_SEATS: [409, 'No adjacent seats'],
  TICKET_LIMIT: [422, 'Ticket limit reached'],
  IDEMPOTENCY_KEY_REUSED: [422, 'Idempotency key reused'],
  BOOKING_NOT_FOUND: [404, 'Booking not found'],
  BOOKING_NOT_CANCELLABLE: [409, 'Booking not cancellable'],
  HOLD_EXPIRED: [409, 'Reservation expired'],
  INVALID_TRANSITION: [409, 'Booking state does not allow this'],
  ADMISSION_REQUIRED: [403, 'Admission required'],
  PASS_TICKET_LIMIT: [409, 'More tickets than your admission pass allows'],
  QUEUE_CLOSED: [409, 'Waiting room closed'],
  QUEUE_NOT_FOUND: [404, 'Queue place not found'],
  QUEUE_LEFT: [409, 'You left this waiting room'],
  BOOKING_NOT_PAYABLE: [409, 'Booking not payable'],
  REFUND_NOT_ALLOWED: [409, 'Refund not possible'],
  TICKET_USED: [409, 'Ticket already used at the gate'],
  TICKETS_NOT_READY: [409, 'Tickets not available yet'],
  IDEMPOTENCY_IN_PROGRESS: [409, 'Request in progress'],
  EVENT_LIVE: [409, 'Event is live'],
  BOOKING_NOT_RECORDED: [503, 'Booking still being recorded'],
  QUEUE_OPENS_AFTER_SALES: [400, 'Waiting room opens after sales'],
  PAYMENT_FAILED: [402, 'Payment failed'],
  PAYMENT_TOO_LATE: [409, 'Payment too late'],
  PAYMENT_PROVIDER_UNAVAILABLE: [503, 'Payment provider unavailable'],
  WEBHOOK_SIGNATURE: [400, 'Invalid webhook signature'],
  WEBHOOK_MALFORMED: [400, 'Malformed webhook event'],
  RATE_LIMITED: [429, 'Too many requests'],
  SIGN_IN_LINK_INVALID: [400, 'Sign-in link invalid, used or expired'],
  NOT_SOLD_OUT: [409, 'Tickets still on sale'],
  WAITLIST_NOT_AVAILABLE: [409, 'No waitlist for this tier'],
  EMAIL_REQUIRED: [400, 'E-mail address required'],
} as const satisfies Record<DomainErrorCode, readonly [ContentfulStatusCode, string]>;

/** `INSUFFICIENT_INVENTORY` -> `/problems/insufficient-inventory` */
export const problemType = (code: string) => `/problems/${code.toLowerCase().replace(/_/g, '-')}`;

/**
 * The members of a table code's problem document that a route builds itself (an outcome the engine reports as a value,
 * or a refusal before the engine): type, title and status from DOMAIN_HTTP. Unlike a thrown DomainError's document,
 * it carries no `code` member (these documents never had one).
 */
export function problemBody<C extends DomainErrorCode>(code: C, detail?: string) {
  const [status, title] = DOMAIN_HTTP[code];
  return { type: problemType(code), title, status: status as (typeof DOMAIN_HTTP)[C][0], ...(detail === undefined ? {} : { detail }) };
}

/** Answers with the problem document of a table code (see `problemBody`), plus `extra` members. */
export function problemFor(c: Context, code: DomainErrorCode, detail: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const { status, ...p } = problemBody(code, detail);
  return problem(c, status, { ...p, ...extra }, headers);
}

/** Writes an RFC 9457 problem document with the request id and path. */
export function problem(c: Context, status: ContentfulStatusCode, p: ProblemInput, headers: Record<string, string> = {}) {
  const body: Problem = { ...p, status, instance: c.req.path };
  const requestId = c.get('requestId' as never) as string | undefined;
  if (requestId) body.requestId = requestId;
  return c.body(JSON.stringify(body), status, { 'content-type': 'application/problem+json', ...headers });
}
