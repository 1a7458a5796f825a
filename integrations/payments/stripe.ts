import Stripe from 'stripe';
import type { AuthorizeInput, AuthorizeResult, CancelResult, CaptureResult, PaymentProvider, RefundResult } from './provider.js';

/**
 * The Stripe payment provider (production), on the official SDK. Authorize = a PaymentIntent created and confirmed
 * with `capture_method: 'manual'`; capture, cancel and refund act on that PaymentIntent. Every call sends the
 * caller's idempotency key, and the SDK's own retries (`maxNetworkRetries`) resend the same key, so a retried
 * call never charges twice.
 *
 * Error mapping:
 * - card declined (402 `StripeCardError`): `declined`, `code = decline_code ?? code`, `paymentRef` = the
 *   PaymentIntent Stripe created for the attempt. An unknown payment method (400 resource_missing on
 *   `payment_method`) is a decline `payment_method_not_found` too (the buyer's token, not our bug), as in the
 *   simulated provider.
 * - Stripe did not answer usably (connection error or timeout, 5xx `StripeAPIError`, 409 key in use, 429):
 *   `unavailable`; retry later with the same key.
 * - anything else (`StripeInvalidRequestError`, `StripeIdempotencyError` = key reused with other parameters,
 *   `StripeAuthenticationError`, ...): thrown, a bug or a misconfiguration.
 * - capture of an already captured PaymentIntent: `captured`; of a cancelled one: `failed`. Cancel of an already
 *   cancelled one: `cancelled`; of a captured one: `unavailable` with "refund it instead" (the contract has no
 *   better outcome; the caller should refund). Stripe answers these with 400 payment_intent_unexpected_state.
 */

export type StripeProviderOptions = {
  secretKey: string;
  /** API host; default Stripe's. Tests point this at the local double (`127.0.0.1`, its port, `http`). */
  host?: string;
  port?: number;
  protocol?: 'http' | 'https';
  /** Per HTTP attempt (the SDK's `timeout`). Default 10 s. */
  timeoutMs?: number;
  /** SDK retries on connection errors, 409 and 5xx, with the same idempotency key. Default 2. */
  maxNetworkRetries?: number;
};

type Unavailable = { outcome: 'unavailable'; message: string };

export function createStripeProvider(opts: StripeProviderOptions): PaymentProvider {
  const stripe = new Stripe(opts.secretKey, {
    host: opts.host,
    port: opts.port,
    protocol: opts.protocol,
    timeout: opts.timeoutMs ?? 10_000,
    maxNetworkRetries: opts.maxNetworkRetries ?? 2,
    appInfo: { name: 'floodgate' },
  });

  /**
   * The PaymentIntent's status behind a 400 payment_intent_unexpected_state (re-read when the error lacks it), or
   * null for any other error.
   */
  async function stateAfter(err: unknown, ref: string): Promise<Stripe.PaymentIntent.Status | null> {
    if (!(err instanceof Stripe.errors.StripeInvalidRequestError) || err.code !== 'payment_intent_unexpected_state') return null;
    return err.payment_intent?.status ?? (await stripe.paymentIntents.retrieve(ref)).status;
  }

  return {
    name: 'stripe',

    async authorize(input: AuthorizeInput): Promise<AuthorizeResult> {
      try {
        const pi = await stripe.paymentIntents.create(
          {
            amount: input.amount,
            currency: input.currency.toLowerCase(),
            payment_method: input.paymentMethodId,
            confirm: true,
            capture_method: 'manual',
            // Cards only, confirmed server-side: a method that needs a redirect fails instead of waiting for one.
            automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
            metadata: { bookingId: input.bookingId, attempt: String(input.attempt) },
            ...(input.description !== undefined && { description: input.description }),
          },
          { idempotencyKey: input.idempotencyKey },
        );
        return authorizeResultOf(pi);
      } catch (err) {
        if (err instanceof Stripe.errors.StripeCardError) {
          const ref = err.payment_intent?.id;
          return { outcome: 'declined', ...(ref && { paymentRef: ref }), code: err.decline_code || err.code || 'card_declined', message: err.message };
        }
        if (err instanceof Stripe.errors.StripeInvalidRequestError && err.code === 'resource_missing' && err.param === 'payment_method') {
          return { outcome: 'declined', code: 'payment_method_not_found', message: err.message };
        }
        return unavailableOrThrow(err);
      }
    },

    capture: (paymentRef: string, idempotencyKey: string): Promise<CaptureResult> =>
      settle(async () => {
        try {
          const pi = await stripe.paymentIntents.capture(paymentRef, {}, { idempotencyKey });
          return pi.status === 'succeeded' ? { outcome: 'captured' } : { outcome: 'failed', message: `PaymentIntent ${paymentRef} is ${pi.status} after capture` };
        } catch (err) {
          const status = await stateAfter(err, paymentRef);
          if (status === 'succeeded') return { outcome: 'captured' };
          if (status === 'canceled') return { outcome: 'failed', message: `PaymentIntent ${paymentRef} was cancelled` };
          if (status === 'requires_payment_method' || status === 'requires_action' || status === 'requires_confirmation') {
            return { outcome: 'failed', message: `PaymentIntent ${paymentRef} was never authorized (${status})` };
          }
          if (err instanceof Stripe.errors.StripeCardError) return { outcome: 'failed', message: err.message };
          throw err;
        }
      }),

    cancel: (paymentRef: string, idempotencyKey: string): Promise<CancelResult> =>
      settle(async () => {
        try {
          await stripe.paymentIntents.cancel(paymentRef, {}, { idempotencyKey });
          return { outcome: 'cancelled' };
        } catch (err) {
          const status = await stateAfter(err, paymentRef);
          if (status === 'canceled') return { outcome: 'cancelled' };
          if (status === 'succeeded') return { outcome: 'unavailable', message: `PaymentIntent ${paymentRef} is already captured: refund it instead` };
          throw err;
        }
      }),

    refund: (paymentRef: string, idempotencyKey: string, amount?: number): Promise<RefundResult> =>
      settle(async () => {
        const r = await stripe.refunds.create({ payment_intent: paymentRef, ...(amount !== undefined && { amount }) }, { idempotencyKey });
        if (r.status === 'failed' || r.status === 'canceled') {
          // Needs a person: the money did not go back, and retrying the same key replays this refund.
          throw new Error(`stripe refund ${r.id} for ${paymentRef} is ${r.status}${r.failure_reason ? ` (${r.failure_reason})` : ''}`);
        }
        return { outcome: 'refunded', refundRef: r.id };
      }),
  };
}

/** Runs one Stripe call; answers `unavailable` when Stripe did not answer usably, rethrows anything else. */
async function settle<R>(call: () => Promise<R>): Promise<R | Unavailable> {
  try {
    return await call();
  } catch (err) {
    return unavailableOrThrow(err);
  }
}

function authorizeResultOf(pi: Stripe.PaymentIntent): AuthorizeResult {
  switch (pi.status) {
    case 'requires_capture':
      return { outcome: 'authorized', paymentRef: pi.id };
    case 'requires_payment_method': {
      const e = pi.last_payment_error;
      return { outcome: 'declined', paymentRef: pi.id, code: e?.decline_code || e?.code || 'card_declined', message: e?.message ?? 'The payment was declined.' };
    }
    case 'requires_action':
      // 3-D Secure: only the buyer can complete it, in the browser. The PaymentIntent expires unused.
      return {
        outcome: 'declined',
        paymentRef: pi.id,
        code: 'authentication_required',
        message: 'The card requires authentication (3-D Secure); the buyer must confirm the payment in the browser.',
      };
    default:
      throw new Error(`stripe: PaymentIntent ${pi.id} is ${pi.status} after a manual-capture confirm`);
  }
}

/** Stripe did not answer usably: the caller retries later with the same key. Anything else is rethrown. */
function unavailableOrThrow(err: unknown): Unavailable {
  const E = Stripe.errors;
  if (err instanceof E.StripeConnectionError) return { outcome: 'unavailable', message: `stripe unreachable: ${err.message}` };
  if (err instanceof E.StripeRateLimitError) return { outcome: 'unavailable', message: `stripe rate limit (429): ${err.message}` };
  if (err instanceof E.StripeAPIError) return { outcome: 'unavailable', message: `stripe error ${err.statusCode ?? ''}: ${err.message}` };
  throw err;
}

export type WebhookSignatureReason = 'missing_header' | 'malformed_header' | 'signature_mismatch' | 'timestamp_out_of_tolerance';

/** A webhook whose `Stripe-Signature` does not prove it came from Stripe recently. Answer 400 and count it. */
export class WebhookSignatureError extends Error {
  readonly code = 'WEBHOOK_SIGNATURE_INVALID';
  constructor(
    readonly reason: WebhookSignatureReason,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookSignatureError';
  }
}

export type VerifyStripeWebhookInput = {
  /** Endpoint secrets (`whsec_…`); two while rotating. Any one that verifies is enough. */
  secrets: readonly string[];
  /** The request body exactly as received (parse only after verifying). */
  rawBody: string | Uint8Array;
  /** The `Stripe-Signature` header. */
  signature: string | undefined;
  /** Maximum age of the signature's timestamp; default 300 s (Stripe's). */
  toleranceSeconds?: number;
};

/**
 * Verifies a Stripe webhook (HMAC-SHA256 over `<t>.<raw body>`, timestamp within the tolerance) against each
 * secret and returns the event, or throws {@link WebhookSignatureError}. Throws a plain Error when no secret is
 * configured (a deployment bug, not a bad request).
 */
export function verifyStripeWebhook(input: VerifyStripeWebhookInput): Stripe.Event {
  if (input.secrets.length === 0) throw new Error('verifyStripeWebhook: no webhook secret configured');
  if (!input.signature) throw new WebhookSignatureError('missing_header', 'missing Stripe-Signature header');
  const tolerance = input.toleranceSeconds ?? 300;
  const failures: WebhookSignatureReason[] = [];
  let lastMessage = '';
  for (const secret of input.secrets) {
    try {
      return Stripe.webhooks.constructEvent(input.rawBody, input.signature, secret, tolerance);
    } catch (err) {
      if (!(err instanceof Stripe.errors.StripeSignatureVerificationError)) throw err;
      failures.push(reasonOf(err.message));
      lastMessage = err.message;
    }
  }
  // The SDK checks the signature before the timestamp, so "too old" means one secret matched.
  const order: WebhookSignatureReason[] = ['timestamp_out_of_tolerance', 'malformed_header', 'signature_mismatch'];
  const reason = order.find((r) => failures.includes(r)) ?? 'signature_mismatch';
  throw new WebhookSignatureError(reason, `stripe webhook rejected (${reason}): ${lastMessage.split('\n')[0]}`);
}

function reasonOf(message: string): WebhookSignatureReason {
  if (/tolerance/i.test(message)) return 'timestamp_out_of_tolerance';
  if (/unable to extract/i.test(message)) return 'malformed_header';
  return 'signature_mismatch';
}
