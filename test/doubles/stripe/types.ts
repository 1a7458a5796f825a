import type Stripe from 'stripe';

/** The Stripe double's public types (test/doubles/stripe.ts re-exports them). */

/** A parsed form body: Stripe's `a[b][0]=x` encoding as nested objects and arrays. */
export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormObject = { [key: string]: FormValue };

export type RecordedRequest = {
  method: string;
  /** Path without the query string. */
  path: string;
  headers: { idempotencyKey?: string; authorization?: string; contentType?: string; stripeVersion?: string };
  rawBody: string;
  body: FormObject;
  /** The status the double answered (unset while the request is still running). */
  status?: number;
  /** True when the answer was an idempotent replay. */
  replayed?: boolean;
};

export type DoublePaymentIntent = Pick<
  Stripe.PaymentIntent,
  | 'id'
  | 'object'
  | 'amount'
  | 'amount_capturable'
  | 'amount_received'
  | 'automatic_payment_methods'
  | 'canceled_at'
  | 'cancellation_reason'
  | 'capture_method'
  | 'client_secret'
  | 'confirmation_method'
  | 'created'
  | 'currency'
  | 'description'
  | 'last_payment_error'
  | 'latest_charge'
  | 'livemode'
  | 'metadata'
  | 'next_action'
  | 'payment_method'
  | 'payment_method_types'
  | 'status'
>;

export type DoubleRefund = Pick<
  Stripe.Refund,
  'id' | 'object' | 'amount' | 'balance_transaction' | 'charge' | 'created' | 'currency' | 'metadata' | 'payment_intent' | 'reason' | 'status'
>;

/** A PaymentIntent as the double holds it, plus the refunded sum (on Stripe that lives on the Charge). */
export type DoublePaymentIntentState = DoublePaymentIntent & { amount_refunded: number };

export type FailSpec = { status: number; type?: string; code?: string; message?: string };

export type SendWebhookOptions = {
  secret: string;
  /** Unix seconds of the signature; default now. */
  timestamp?: number;
  /** Deliver the same signed payload this many times (duplicates). Default 1. */
  times?: number;
};

export type StripeDouble = {
  host: string;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
  requests: RecordedRequest[];
  /** The next n requests answer `status` with Stripe's error JSON (type defaults by status), without executing. */
  failNext(n: number, spec: FailSpec): void;
  /** The next n requests wait `ms` before they are handled. */
  delayNext(n: number, ms: number): void;
  /** Copies of every PaymentIntent, in creation order. */
  paymentIntents(): DoublePaymentIntentState[];
  refunds(): DoubleRefund[];
  /** A Stripe event (`evt_…`) wrapping `object`, as Stripe would POST it to a webhook endpoint. */
  makeEvent<T extends Stripe.Event.Type>(type: T, object: object): Extract<Stripe.Event, { type: T }>;
  /** POSTs `event` to `url` signed like Stripe (`Stripe-Signature`), `times` times; answers each delivery's response. */
  sendWebhook(url: string, event: Stripe.Event, opts: SendWebhookOptions): Promise<{ status: number; body: string }[]>;
};

export type StripeDoubleOptions = {
  /** When set, only this exact key is accepted; otherwise any `sk_test_…` key. */
  secretKey?: string;
};
