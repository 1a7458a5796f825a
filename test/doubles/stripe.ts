import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import Stripe from 'stripe';
import { createStripeApp } from './stripe/app.js';
import { newStripeState, wakeAll } from './stripe/state.js';
import type { StripeDouble, StripeDoubleOptions } from './stripe/types.js';
import { nowSec, rand } from './stripe/wire.js';

/**
 * A local HTTP double of the Stripe API, for tests that run the real `stripe` SDK (and so its retries, timeouts,
 * form encoding and error classes). It speaks Stripe's wire format for what Floodgate calls, on 127.0.0.1 and a
 * random port:
 *
 *   POST /v1/payment_intents               create (optionally `confirm=true`)
 *   GET  /v1/payment_intents/:id           retrieve
 *   POST /v1/payment_intents/:id/confirm   confirm
 *   POST /v1/payment_intents/:id/capture   capture (optional `amount_to_capture`)
 *   POST /v1/payment_intents/:id/cancel    cancel (optional `cancellation_reason`)
 *   POST /v1/refunds                       refund by `payment_intent` or `charge` (optional `amount`)
 *
 * Payment methods (Stripe's test tokens): `pm_card_visa`, `pm_card_mastercard` succeed; `pm_card_chargeDeclined`
 * (card_declined / generic_decline), `pm_card_chargeDeclinedInsufficientFunds` (card_declined / insufficient_funds),
 * `pm_card_chargeDeclinedExpiredCard` (expired_card / expired_card) answer 402 with the PaymentIntent left in
 * `requires_payment_method`; `pm_card_authenticationRequired` answers 200 `requires_action`; `pm_card_timeout`
 * (Floodgate's own) never answers; any other id answers 400 resource_missing (param `payment_method`).
 *
 * Idempotency as Stripe documents it: the first status and body for an `Idempotency-Key` are replayed for the same
 * method, path and parameters (header `Idempotent-Replayed: true`); other parameters answer 400 idempotency_error;
 * a key whose first request is still running answers 409. Nothing is saved for requests that never executed
 * (scripted failures, auth errors, invalid parameters, unknown objects), so their retries run again.
 *
 * Test controls: `failNext` answers the next n requests with an error before they execute; `delayNext` holds the
 * next n requests (to provoke SDK timeouts; the request still executes afterwards, as Stripe would); `requests`
 * records every request; `paymentIntents()` / `refunds()` expose the state for invariant checks.
 *
 * The parts, in test/doubles/stripe/: types.ts (the public types), wire.ts (form encoding, parameter readers, API
 * errors), state.ts (what one double holds), payment-intents.ts and refunds.ts (the objects' rules), app.ts (request
 * recording, scripted faults, auth, idempotency, the routes). This file serves the app on a socket and adds the test
 * controls.
 */

export type {
  DoublePaymentIntent,
  DoublePaymentIntentState,
  DoubleRefund,
  FailSpec,
  FormObject,
  FormValue,
  RecordedRequest,
  SendWebhookOptions,
  StripeDouble,
  StripeDoubleOptions,
} from './stripe/types.js';
export { parseStripeForm } from './stripe/wire.js';

/** `{ payload, header }`: `event` as Stripe sends it, and its `Stripe-Signature` header for `secret`. */
export function signStripeWebhook(event: Stripe.Event | string, opts: { secret: string; timestamp?: number }): { payload: string; header: string } {
  const payload = typeof event === 'string' ? event : JSON.stringify(event, null, 2);
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret, timestamp: opts.timestamp ?? nowSec() });
  return { payload, header };
}

export async function startStripeDouble(opts: StripeDoubleOptions = {}): Promise<StripeDouble> {
  const state = newStripeState(opts);
  const { server, port } = await new Promise<{ server: Server; port: number }>((resolve) => {
    const s = serve({ fetch: createStripeApp(state).fetch, hostname: '127.0.0.1', port: 0 }, (info) => resolve({ server: s as Server, port: info.port }));
  });
  const host = '127.0.0.1';

  return {
    host,
    port,
    url: `http://${host}:${port}`,
    requests: state.requests,
    async close() {
      wakeAll(state);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    failNext(n, spec) {
      for (let i = 0; i < n; i++) state.fails.push(spec);
    },
    delayNext(n, ms) {
      for (let i = 0; i < n; i++) state.delays.push(ms);
    },
    paymentIntents: () => [...state.intents.values()].map((pi) => ({ ...structuredClone(pi), amount_refunded: state.refundedByIntent.get(pi.id) ?? 0 })),
    refunds: () => [...state.refundsById.values()].map((r) => structuredClone(r)),
    makeEvent<T extends Stripe.Event.Type>(type: T, object: object) {
      const event = {
        id: `evt_${rand(24)}`,
        object: 'event',
        api_version: Stripe.API_VERSION,
        created: nowSec(),
        data: { object: structuredClone(object) },
        livemode: false,
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
        type,
      };
      return event as unknown as Extract<Stripe.Event, { type: T }>;
    },
    async sendWebhook(url, event, o) {
      const { payload, header } = signStripeWebhook(event, o);
      const out: { status: number; body: string }[] = [];
      for (let i = 0; i < (o.times ?? 1); i++) {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json; charset=utf-8', 'Stripe-Signature': header, 'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
          body: payload,
        });
        out.push({ status: res.status, body: await res.text() });
      }
      return out;
    },
  };
}
