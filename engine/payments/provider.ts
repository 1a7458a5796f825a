/**
 * The one interface every payment provider implements (`simulated` for development and tests, `stripe` for
 * production). Floodgate authorizes first and captures only once the seats are confirmed sold; when they are
 * not, it cancels the authorization (no money moves) or, after a capture, refunds.
 *
 * Every call carries an idempotency key derived from the booking and the attempt (e.g. `bk_…:a2:authorize`),
 * so a retried call never charges twice. Card data never reaches Floodgate: `paymentMethodId` is a token
 * (Stripe `pm_…`).
 */
export type AuthorizeInput = {
  bookingId: string;
  /** 1-based attempt number of this booking's payment. */
  attempt: number;
  /** Minor units (cents). */
  amount: number;
  /** ISO 4217, upper case (EUR). */
  currency: string;
  paymentMethodId: string;
  idempotencyKey: string;
  description?: string;
};

export type AuthorizeResult =
  /** The amount is reserved on the card (Stripe: PaymentIntent requires_capture). */
  | { outcome: 'authorized'; paymentRef: string }
  /** The card was declined; the buyer may retry with another method. `code` as Stripe's decline_code/code. */
  | { outcome: 'declined'; paymentRef?: string; code: string; message: string }
  /** The provider did not answer usably (timeout, 5xx, 429 after retries): retry later with the same key. */
  | { outcome: 'unavailable'; message: string };

export type CaptureResult = { outcome: 'captured' } | { outcome: 'unavailable'; message: string } | { outcome: 'failed'; message: string };
export type CancelResult = { outcome: 'cancelled' } | { outcome: 'unavailable'; message: string };
export type RefundResult = { outcome: 'refunded'; refundRef: string } | { outcome: 'unavailable'; message: string };

export type PaymentProvider = {
  readonly name: 'simulated' | 'stripe';
  authorize(input: AuthorizeInput): Promise<AuthorizeResult>;
  /** Takes the authorized money. Capturing an already captured payment answers `captured`. */
  capture(paymentRef: string, idempotencyKey: string): Promise<CaptureResult>;
  /** Releases an authorization that was never captured (no money moved). Idempotent. */
  cancel(paymentRef: string, idempotencyKey: string): Promise<CancelResult>;
  /** Gives captured money back (the whole amount unless `amount` is given). Idempotent per key. */
  refund(paymentRef: string, idempotencyKey: string, amount?: number): Promise<RefundResult>;
};
