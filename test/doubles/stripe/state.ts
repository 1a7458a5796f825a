import type { Answer } from './wire.js';
import type { DoublePaymentIntent, DoubleRefund, FailSpec, RecordedRequest, StripeDoubleOptions } from './types.js';

/** Everything one Stripe double holds: its objects, the idempotency records, the test controls' scripts. */
export type StripeState = {
  opts: StripeDoubleOptions;
  requests: RecordedRequest[];
  /** Scripted failures and delays, taken one per request in arrival order. */
  fails: FailSpec[];
  delays: number[];
  intents: Map<string, DoublePaymentIntent>;
  refundsById: Map<string, DoubleRefund>;
  refundedByIntent: Map<string, number>;
  /** Idempotency-Key -> the request's fingerprint and its first answer. */
  saved: Map<string, { fingerprint: string; answer: Answer }>;
  /** Idempotency keys whose first request is still running. */
  inFlight: Set<string>;
  /** Wakes every delayed or hanging request (on close). */
  wakers: Set<() => void>;
};

export const newStripeState = (opts: StripeDoubleOptions): StripeState => ({
  opts,
  requests: [],
  fails: [],
  delays: [],
  intents: new Map(),
  refundsById: new Map(),
  refundedByIntent: new Map(),
  saved: new Map(),
  inFlight: new Set(),
  wakers: new Set(),
});

/** Waits `ms` (null: until woken), or until the client goes away or the double closes. */
export const pause = (state: StripeState, ms: number | null, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      if (timer) clearTimeout(timer);
      state.wakers.delete(done);
      resolve();
    };
    const timer = ms === null ? undefined : setTimeout(done, ms);
    state.wakers.add(done);
    signal.addEventListener('abort', done, { once: true });
  });

export const wakeAll = (state: StripeState) => {
  for (const wake of [...state.wakers]) wake();
};
