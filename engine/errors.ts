/**
 * Expected outcomes the engine reports to its callers. Each has a literal code from one closed union;
 * api/problem.ts maps every code to an HTTP status (a code without a mapping fails typecheck).
 * `detail` and `extra` are safe to show to the client.
 */
export type DomainErrorCode =
  | 'EVENT_NOT_FOUND'
  | 'TIER_NOT_FOUND'
  | 'TIER_REQUIRED'
  | 'SALES_NOT_OPEN'
  | 'EVENT_CLOSED'
  | 'INSUFFICIENT_INVENTORY'
  | 'SEAT_UNAVAILABLE'
  | 'UNKNOWN_SEAT'
  | 'UNKNOWN_SECTION'
  | 'SEAT_TIER_MISMATCH'
  | 'TIER_KIND_MISMATCH'
  | 'NO_ADJACENT_SEATS'
  | 'TICKET_LIMIT'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'BOOKING_NOT_FOUND'
  | 'BOOKING_NOT_CANCELLABLE'
  | 'HOLD_EXPIRED'
  | 'INVALID_TRANSITION'
  | 'ADMISSION_REQUIRED'
  | 'PASS_TICKET_LIMIT'
  | 'QUEUE_CLOSED'
  | 'QUEUE_NOT_FOUND'
  | 'QUEUE_LEFT'
  | 'BOOKING_NOT_PAYABLE'
  | 'REFUND_NOT_ALLOWED'
  | 'TICKET_USED'
  | 'TICKETS_NOT_READY'
  | 'IDEMPOTENCY_IN_PROGRESS'
  | 'EVENT_LIVE'
  | 'BOOKING_NOT_RECORDED'
  | 'QUEUE_OPENS_AFTER_SALES'
  | 'RATE_LIMITED'
  | 'SIGN_IN_LINK_INVALID'
  | 'NOT_SOLD_OUT'
  | 'WAITLIST_NOT_AVAILABLE'
  | 'EMAIL_REQUIRED'
  // Outcomes answered as problem documents but not thrown: the engine reports a payment's outcome as a value
  // (PayResult), which the route keeps for an idempotent replay; the webhook route refuses a provider's delivery
  // before the engine sees it. The route builds their documents from the same table (api/problem.ts `problemFor`).
  | 'PAYMENT_FAILED'
  | 'PAYMENT_TOO_LATE'
  | 'PAYMENT_PROVIDER_UNAVAILABLE'
  | 'WEBHOOK_SIGNATURE'
  | 'WEBHOOK_MALFORMED';

export class DomainError<C extends DomainErrorCode = DomainErrorCode> extends Error {
  constructor(
    readonly code: C,
    readonly detail: string,
    /** Extra members for the problem document (e.g. `available`), and the offending request field. */
    readonly extra: Record<string, unknown> & { field?: string } = {},
  ) {
    super(detail);
    this.name = 'DomainError';
  }
}

export const isDomainError = (e: unknown): e is DomainError => e instanceof DomainError;

/** Thrown when a dependency (Redis, Postgres) cannot answer now; the API maps it to 503 + Retry-After. */
export class UnavailableError extends Error {
  constructor(
    readonly dependency: 'redis' | 'postgres',
    cause: unknown,
  ) {
    super(`${dependency} unavailable`, { cause });
    this.name = 'UnavailableError';
  }
}
