import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { Context } from 'hono';
import Stripe from 'stripe';

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
 */

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

type Answer = { status: number; body: unknown };

/** A Stripe API error. `save: false` for errors raised before the request executed (not saved for its key). */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { type: string; code?: string; message: string; param?: string; decline_code?: string; [k: string]: unknown },
    readonly save = false,
  ) {
    super(body.message);
  }
}

type TestCard =
  | { kind: 'succeed' }
  | { kind: 'decline'; code: Stripe.PaymentIntent.LastPaymentError.Code; decline_code: string; message: string }
  | { kind: 'requires_action' }
  | { kind: 'hang' };

const TEST_CARDS: Record<string, TestCard> = {
  pm_card_visa: { kind: 'succeed' },
  pm_card_mastercard: { kind: 'succeed' },
  pm_card_chargeDeclined: { kind: 'decline', code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' },
  pm_card_chargeDeclinedInsufficientFunds: {
    kind: 'decline',
    code: 'card_declined',
    decline_code: 'insufficient_funds',
    message: 'Your card has insufficient funds.',
  },
  pm_card_chargeDeclinedExpiredCard: { kind: 'decline', code: 'expired_card', decline_code: 'expired_card', message: 'Your card has expired.' },
  pm_card_authenticationRequired: { kind: 'requires_action' },
  pm_card_timeout: { kind: 'hang' },
};

const ERROR_TYPE_BY_STATUS: Record<number, string> = { 400: 'invalid_request_error', 401: 'invalid_request_error', 402: 'card_error', 404: 'invalid_request_error', 409: 'idempotency_error', 429: 'invalid_request_error' };
const CANCELLABLE: readonly string[] = ['requires_payment_method', 'requires_capture', 'requires_confirmation', 'requires_action', 'processing'];
const CANCELLATION_REASONS: readonly string[] = ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'];
const REFUND_REASONS: readonly string[] = ['duplicate', 'fraudulent', 'requested_by_customer'];

const rand = (n: number) => randomBytes(n).toString('base64url').replace(/[-_]/g, 'x').slice(0, n);
const nowSec = () => Math.floor(Date.now() / 1000);

/** Parses Stripe's form encoding (`metadata[bookingId]=x`, `payment_method_types[0]=card`) into nested values. */
export function parseStripeForm(raw: string): FormObject {
  const root: FormObject = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    const path = m ? [m[1]!, ...[...m[2]!.matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1]!)] : [key];
    let node: { [key: string]: FormValue } = root;
    for (const seg of path.slice(0, -1)) {
      const next = node[seg];
      if (typeof next === 'object' && !Array.isArray(next)) node = next;
      else node = node[seg] = {};
    }
    node[path.at(-1)!] = value;
  }
  return arraysFromIndexes(root) as FormObject;
}

function arraysFromIndexes(v: FormValue): FormValue {
  if (typeof v === 'string' || Array.isArray(v)) return v;
  const keys = Object.keys(v);
  const mapped = Object.fromEntries(keys.map((k) => [k, arraysFromIndexes(v[k]!)]));
  const isList = keys.length > 0 && keys.every((k, i) => k === String(i));
  return isList ? keys.map((k) => mapped[k]!) : mapped;
}

/** `{ payload, header }`: `event` as Stripe sends it, and its `Stripe-Signature` header for `secret`. */
export function signStripeWebhook(event: Stripe.Event | string, opts: { secret: string; timestamp?: number }): { payload: string; header: string } {
  const payload = typeof event === 'string' ? event : JSON.stringify(event, null, 2);
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret, timestamp: opts.timestamp ?? nowSec() });
  return { payload, header };
}

export async function startStripeDouble(opts: StripeDoubleOptions = {}): Promise<StripeDouble> {
  const requests: RecordedRequest[] = [];
  const fails: FailSpec[] = [];
  const delays: number[] = [];
  const intents = new Map<string, DoublePaymentIntent>();
  const refundsById = new Map<string, DoubleRefund>();
  const refundedByIntent = new Map<string, number>();
  const saved = new Map<string, { fingerprint: string; answer: Answer }>();
  const inFlight = new Set<string>();
  /** Wakes every delayed or hanging request (on close). */
  const wakers = new Set<() => void>();

  const pause = (ms: number | null, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const done = () => {
        if (timer) clearTimeout(timer);
        wakers.delete(done);
        resolve();
      };
      const timer = ms === null ? undefined : setTimeout(done, ms);
      wakers.add(done);
      signal.addEventListener('abort', done, { once: true });
    });

  const field = (body: FormObject, name: string): string | undefined => {
    const v = body[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalid(`Invalid ${name}: must be a string`, name);
    return v;
  };
  const intField = (body: FormObject, name: string): number | undefined => {
    const v = field(body, name);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new ApiError(400, { type: 'invalid_request_error', code: 'parameter_invalid_integer', param: name, message: `Invalid integer: ${v}` });
    return Number(v);
  };
  const stringMap = (body: FormObject, name: string): Record<string, string> => {
    const v = body[name];
    if (v === undefined || v === '') return {};
    if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) throw invalid(`Invalid ${name}: must be a hash of strings`, name);
    return { ...(v as Record<string, string>) };
  };
  const getIntent = (id: string) => {
    const pi = intents.get(id);
    if (!pi) throw new ApiError(404, { type: 'invalid_request_error', code: 'resource_missing', param: 'intent', message: `No such payment_intent: '${id}'` });
    return pi;
  };
  const unexpectedState = (pi: DoublePaymentIntent, message: string) =>
    new ApiError(400, { type: 'invalid_request_error', code: 'payment_intent_unexpected_state', message, payment_intent: structuredClone(pi) }, true);

  /** Confirms `pi` with its payment method (Stripe's test cards). Hangs for pm_card_timeout. */
  async function confirm(pi: DoublePaymentIntent, signal: AbortSignal): Promise<Answer> {
    const pm = typeof pi.payment_method === 'string' ? pi.payment_method : null;
    if (!pm) throw unexpectedState(pi, "You cannot confirm this PaymentIntent because it's missing a payment method.");
    const card = TEST_CARDS[pm];
    if (!card) {
      throw new ApiError(400, { type: 'invalid_request_error', code: 'resource_missing', param: 'payment_method', message: `No such PaymentMethod: '${pm}'` });
    }
    if (card.kind === 'hang') {
      await pause(null, signal);
      throw new ApiError(500, { type: 'api_error', message: 'The double was closed or the client went away.' });
    }
    const charge = `ch_${rand(24)}`;
    switch (card.kind) {
      case 'succeed':
        pi.latest_charge = charge;
        if (pi.capture_method === 'manual') {
          pi.status = 'requires_capture';
          pi.amount_capturable = pi.amount;
        } else {
          pi.status = 'succeeded';
          pi.amount_received = pi.amount;
        }
        return { status: 200, body: pi };
      case 'requires_action':
        pi.status = 'requires_action';
        pi.next_action = { type: 'use_stripe_sdk', use_stripe_sdk: { type: 'three_d_secure_redirect', stripe_js: 'https://hooks.stripe.com/3d_secure' } };
        return { status: 200, body: pi };
      case 'decline': {
        pi.latest_charge = charge;
        pi.status = 'requires_payment_method';
        pi.last_payment_error = { type: 'card_error', code: card.code, decline_code: card.decline_code, message: card.message, charge };
        const error = { type: 'card_error', code: card.code, decline_code: card.decline_code, message: card.message, charge, payment_intent: pi };
        return { status: 402, body: { error } };
      }
      default:
        return assertNever(card);
    }
  }

  async function createIntent(body: FormObject, signal: AbortSignal): Promise<Answer> {
    const amount = intField(body, 'amount');
    if (amount === undefined) throw new ApiError(400, { type: 'invalid_request_error', code: 'parameter_missing', param: 'amount', message: 'Missing required param: amount.' });
    if (amount < 1) throw invalid('Amount must be at least 1', 'amount');
    const currency = field(body, 'currency');
    if (!currency) throw new ApiError(400, { type: 'invalid_request_error', code: 'parameter_missing', param: 'currency', message: 'Missing required param: currency.' });
    if (!/^[a-z]{3}$/i.test(currency)) throw invalid(`Invalid currency: ${currency}`, 'currency');
    const captureMethod = field(body, 'capture_method') ?? 'automatic_async';
    if (!['automatic', 'automatic_async', 'manual'].includes(captureMethod)) throw invalid(`Invalid capture_method: ${captureMethod}`, 'capture_method');
    const types = body.payment_method_types;
    const apm = body.automatic_payment_methods;
    if (types !== undefined && apm !== undefined) {
      throw invalid('You may only specify one of these parameters: automatic_payment_methods, payment_method_types.', 'automatic_payment_methods');
    }
    if (types !== undefined && (!Array.isArray(types) || types.some((t) => typeof t !== 'string'))) throw invalid('Invalid array', 'payment_method_types');
    // Since API 2023-08-16 automatic payment methods are on unless payment_method_types is given.
    const automatic = types === undefined ? apmSettings(apm) : null;
    const confirmNow = field(body, 'confirm') === 'true';
    if (confirmNow && automatic?.allow_redirects !== 'never' && !field(body, 'return_url')) {
      throw invalid(
        'This PaymentIntent is configured to accept payment methods enabled in your Dashboard, some of which may require a full page redirect. ' +
          'Specify `return_url`, or set `automatic_payment_methods[allow_redirects]=never`.',
        'return_url',
      );
    }
    const pm = field(body, 'payment_method') ?? null;
    const id = `pi_${rand(24)}`;
    const pi = {
      id,
      object: 'payment_intent',
      amount,
      amount_capturable: 0,
      amount_received: 0,
      automatic_payment_methods: automatic,
      canceled_at: null,
      cancellation_reason: null,
      capture_method: captureMethod as Stripe.PaymentIntent.CaptureMethod,
      client_secret: `${id}_secret_${rand(24)}`,
      confirmation_method: 'automatic',
      created: nowSec(),
      currency: currency.toLowerCase(),
      description: field(body, 'description') ?? null,
      last_payment_error: null,
      latest_charge: null,
      livemode: false,
      metadata: stringMap(body, 'metadata'),
      next_action: null,
      payment_method: pm,
      payment_method_types: Array.isArray(types) ? (types as string[]) : ['card'],
      status: pm ? 'requires_confirmation' : 'requires_payment_method',
    } satisfies DoublePaymentIntent;
    // Stripe checks the payment method before it creates anything.
    if (confirmNow && !pm) {
      throw new ApiError(400, { type: 'invalid_request_error', code: 'parameter_missing', param: 'payment_method', message: 'Missing required param: payment_method.' });
    }
    if (confirmNow && pm && !TEST_CARDS[pm]) {
      throw new ApiError(400, { type: 'invalid_request_error', code: 'resource_missing', param: 'payment_method', message: `No such PaymentMethod: '${pm}'` });
    }
    intents.set(id, pi);
    return confirmNow ? confirm(pi, signal) : { status: 200, body: pi };
  }

  async function confirmIntent(id: string, body: FormObject, signal: AbortSignal): Promise<Answer> {
    const pi = getIntent(id);
    if (pi.status !== 'requires_payment_method' && pi.status !== 'requires_confirmation') {
      throw unexpectedState(pi, `This PaymentIntent's status is ${pi.status}, so it cannot be confirmed.`);
    }
    const pm = field(body, 'payment_method');
    if (pm) pi.payment_method = pm;
    pi.last_payment_error = null;
    return confirm(pi, signal);
  }

  function captureIntent(id: string, body: FormObject): Answer {
    const pi = getIntent(id);
    if (pi.status !== 'requires_capture') {
      throw unexpectedState(
        pi,
        `This PaymentIntent could not be captured because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be captured: requires_capture.`,
      );
    }
    const amount = intField(body, 'amount_to_capture') ?? pi.amount_capturable;
    if (amount > pi.amount_capturable) {
      throw new ApiError(400, { type: 'invalid_request_error', code: 'amount_too_large', param: 'amount_to_capture', message: `Amount to capture (${amount}) exceeds the capturable amount (${pi.amount_capturable}).` });
    }
    pi.status = 'succeeded';
    pi.amount_received = amount;
    pi.amount_capturable = 0;
    return { status: 200, body: pi };
  }

  function cancelIntent(id: string, body: FormObject): Answer {
    const pi = getIntent(id);
    const reason = field(body, 'cancellation_reason');
    if (reason !== undefined && !CANCELLATION_REASONS.includes(reason)) throw invalid(`Invalid cancellation_reason: ${reason}`, 'cancellation_reason');
    if (!CANCELLABLE.includes(pi.status)) {
      throw unexpectedState(
        pi,
        `You cannot cancel this PaymentIntent because it has a status of ${pi.status}. Only a PaymentIntent with one of the following statuses may be canceled: ${CANCELLABLE.join(', ')}.`,
      );
    }
    pi.status = 'canceled';
    pi.canceled_at = nowSec();
    pi.cancellation_reason = (reason ?? null) as Stripe.PaymentIntent.CancellationReason | null;
    pi.amount_capturable = 0;
    pi.next_action = null;
    return { status: 200, body: pi };
  }

  function createRefund(body: FormObject): Answer {
    const piId = field(body, 'payment_intent');
    const chargeId = field(body, 'charge');
    const pi = piId ? getIntent(piId) : [...intents.values()].find((p) => chargeId !== undefined && p.latest_charge === chargeId);
    if (!pi) {
      if (chargeId) throw new ApiError(404, { type: 'invalid_request_error', code: 'resource_missing', param: 'charge', message: `No such charge: '${chargeId}'` });
      throw new ApiError(400, { type: 'invalid_request_error', code: 'parameter_missing', message: 'One of the following params should be provided for this request: payment_intent or charge.' });
    }
    const reason = field(body, 'reason');
    if (reason !== undefined && !REFUND_REASONS.includes(reason)) throw invalid(`Invalid reason: ${reason}`, 'reason');
    if (pi.status !== 'succeeded') {
      throw new ApiError(400, { type: 'invalid_request_error', code: 'charge_not_refundable', message: `This PaymentIntent (${pi.id}) does not have a successful charge to refund.` }, true);
    }
    const refunded = refundedByIntent.get(pi.id) ?? 0;
    const remaining = pi.amount_received - refunded;
    if (remaining === 0) {
      throw new ApiError(400, { type: 'invalid_request_error', code: 'charge_already_refunded', message: `Charge ${String(pi.latest_charge)} has already been refunded.` }, true);
    }
    const amount = intField(body, 'amount') ?? remaining;
    if (amount < 1) throw invalid('Invalid positive integer', 'amount');
    if (amount > remaining) {
      throw new ApiError(400, { type: 'invalid_request_error', code: 'amount_too_large', param: 'amount', message: `Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})` }, true);
    }
    const refund = {
      id: `re_${rand(24)}`,
      object: 'refund',
      amount,
      balance_transaction: `txn_${rand(24)}`,
      charge: pi.latest_charge as string,
      created: nowSec(),
      currency: pi.currency,
      metadata: stringMap(body, 'metadata'),
      payment_intent: pi.id,
      reason: (reason ?? null) as Stripe.Refund.Reason | null,
      status: 'succeeded',
    } satisfies DoubleRefund;
    refundsById.set(refund.id, refund);
    refundedByIntent.set(pi.id, refunded + amount);
    return { status: 200, body: refund };
  }

  type Env = { Variables: { rec: RecordedRequest } };
  const app = new Hono<Env>();

  const send = (c: Context<Env>, a: Answer, headers: Record<string, string> = {}) => {
    c.get('rec').status = a.status;
    return c.body(JSON.stringify(a.body, null, 2), a.status as 200, {
      'Content-Type': 'application/json',
      'Request-Id': `req_${rand(14)}`,
      'Stripe-Version': Stripe.API_VERSION,
      ...headers,
    });
  };
  const sendError = (c: Context<Env>, e: ApiError) => send(c, { status: e.status, body: { error: e.body } });

  app.use('*', async (c, next) => {
    const rawBody = c.req.method === 'GET' ? '' : await c.req.text();
    const rec: RecordedRequest = {
      method: c.req.method,
      path: c.req.path,
      headers: dropUndefined({
        idempotencyKey: c.req.header('idempotency-key'),
        authorization: c.req.header('authorization'),
        contentType: c.req.header('content-type'),
        stripeVersion: c.req.header('stripe-version'),
      }),
      rawBody,
      body: parseStripeForm(rawBody),
    };
    requests.push(rec);
    c.set('rec', rec);
    // Both scripts are taken in arrival order, so a delayed request keeps the failure meant for it.
    const delay = delays.shift();
    const fail = fails.shift();
    if (delay !== undefined) await pause(delay, c.req.raw.signal);
    if (fail) {
      const type = fail.type ?? ERROR_TYPE_BY_STATUS[fail.status] ?? 'api_error';
      return sendError(c, new ApiError(fail.status, dropUndefined({ type, code: fail.code, message: fail.message ?? `Scripted failure (${fail.status}) from the Stripe double.` })));
    }
    const auth = rec.headers.authorization;
    const key = /^Bearer (\S+)$/.exec(auth ?? '')?.[1];
    if (!key || !(opts.secretKey ? key === opts.secretKey : key.startsWith('sk_test_'))) {
      return sendError(
        c,
        new ApiError(401, {
          type: 'invalid_request_error',
          message: key ? `Invalid API Key provided: ${key.slice(0, 8)}****` : 'You did not provide an API key. Provide it in the Authorization header (Bearer auth).',
        }),
      );
    }
    await next();
  });

  /** Runs `handler` under Stripe's idempotency rules for the request's Idempotency-Key (POST only). */
  const idempotent = async (c: Context<Env>, handler: () => Answer | Promise<Answer>) => {
    const rec = c.get('rec');
    const key = rec.headers.idempotencyKey;
    const fingerprint = `${rec.method} ${rec.path} ${[...new URLSearchParams(rec.rawBody)].map(([k, v]) => `${k}=${v}`).sort().join('&')}`;
    if (key) {
      const prior = saved.get(key);
      if (prior && prior.fingerprint !== fingerprint) {
        return sendError(
          c,
          new ApiError(400, {
            type: 'idempotency_error',
            message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
          }),
        );
      }
      if (prior) {
        rec.replayed = true;
        return send(c, prior.answer, { 'Idempotency-Key': key, 'Idempotent-Replayed': 'true' });
      }
      if (inFlight.has(key)) {
        return sendError(c, new ApiError(409, { type: 'idempotency_error', code: 'idempotency_key_in_use', message: 'There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through). Please retry in a few seconds.' }));
      }
      inFlight.add(key);
    }
    try {
      let answer: Answer;
      let save = true;
      try {
        answer = await handler();
        answer = { status: answer.status, body: structuredClone(answer.body) };
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        answer = { status: e.status, body: { error: e.body } };
        save = e.save;
      }
      // Saved even when the client already gave up (timeout): the request executed, as it would on Stripe.
      if (key && save) saved.set(key, { fingerprint, answer });
      return send(c, answer, key ? { 'Idempotency-Key': key } : {});
    } finally {
      if (key) inFlight.delete(key);
    }
  };

  app.post('/v1/payment_intents', (c) => idempotent(c, () => createIntent(c.get('rec').body, c.req.raw.signal)));
  app.get('/v1/payment_intents/:id', (c) => idempotent(c, () => ({ status: 200, body: getIntent(c.req.param('id')) })));
  app.post('/v1/payment_intents/:id/confirm', (c) => idempotent(c, () => confirmIntent(c.req.param('id'), c.get('rec').body, c.req.raw.signal)));
  app.post('/v1/payment_intents/:id/capture', (c) => idempotent(c, () => captureIntent(c.req.param('id'), c.get('rec').body)));
  app.post('/v1/payment_intents/:id/cancel', (c) => idempotent(c, () => cancelIntent(c.req.param('id'), c.get('rec').body)));
  app.post('/v1/refunds', (c) => idempotent(c, () => createRefund(c.get('rec').body)));
  app.notFound((c) =>
    sendError(c, new ApiError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${c.req.method}: ${c.req.path}).` })),
  );
  app.onError((err, c) => sendError(c, new ApiError(500, { type: 'api_error', message: `Stripe double bug: ${err.message}` })));

  const { server, port } = await new Promise<{ server: Server; port: number }>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => resolve({ server: s as Server, port: info.port }));
  });
  const host = '127.0.0.1';

  return {
    host,
    port,
    url: `http://${host}:${port}`,
    requests,
    async close() {
      for (const wake of [...wakers]) wake();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    failNext(n, spec) {
      for (let i = 0; i < n; i++) fails.push(spec);
    },
    delayNext(n, ms) {
      for (let i = 0; i < n; i++) delays.push(ms);
    },
    paymentIntents: () => [...intents.values()].map((pi) => ({ ...structuredClone(pi), amount_refunded: refundedByIntent.get(pi.id) ?? 0 })),
    refunds: () => [...refundsById.values()].map((r) => structuredClone(r)),
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

function apmSettings(v: FormValue | undefined): Stripe.PaymentIntent.AutomaticPaymentMethods {
  if (v === undefined) return { enabled: true };
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid('Invalid automatic_payment_methods: must be a hash', 'automatic_payment_methods');
  const allow = v.allow_redirects;
  if (allow !== undefined && allow !== 'always' && allow !== 'never') throw invalid(`Invalid allow_redirects: ${String(allow)}`, 'automatic_payment_methods[allow_redirects]');
  if (v.enabled !== 'true') throw invalid('automatic_payment_methods[enabled] must be true', 'automatic_payment_methods[enabled]');
  return allow ? { enabled: true, allow_redirects: allow } : { enabled: true };
}

function invalid(message: string, param: string) {
  return new ApiError(400, { type: 'invalid_request_error', code: 'parameter_invalid', param, message });
}

function dropUndefined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}
