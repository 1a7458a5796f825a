import type Stripe from 'stripe';
import { pause, type StripeState } from './state.js';
import type { DoublePaymentIntent, FormObject, FormValue } from './types.js';
import { ApiError, assertNever, field, intField, invalid, nowSec, rand, stringMap, type Answer } from './wire.js';

/** The double's PaymentIntents: create (and confirm at once), confirm, capture, cancel, with Stripe's test cards. */

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

const CANCELLABLE: readonly string[] = ['requires_payment_method', 'requires_capture', 'requires_confirmation', 'requires_action', 'processing'];
const CANCELLATION_REASONS: readonly string[] = ['duplicate', 'fraudulent', 'requested_by_customer', 'abandoned'];

export const getIntent = (state: StripeState, id: string) => {
  const pi = state.intents.get(id);
  if (!pi) throw new ApiError(404, { type: 'invalid_request_error', code: 'resource_missing', param: 'intent', message: `No such payment_intent: '${id}'` });
  return pi;
};
const unexpectedState = (pi: DoublePaymentIntent, message: string) =>
  new ApiError(400, { type: 'invalid_request_error', code: 'payment_intent_unexpected_state', message, payment_intent: structuredClone(pi) }, true);

/** Confirms `pi` with its payment method (Stripe's test cards). Hangs for pm_card_timeout. */
async function confirm(state: StripeState, pi: DoublePaymentIntent, signal: AbortSignal): Promise<Answer> {
  const pm = typeof pi.payment_method === 'string' ? pi.payment_method : null;
  if (!pm) throw unexpectedState(pi, "You cannot confirm this PaymentIntent because it's missing a payment method.");
  const card = TEST_CARDS[pm];
  if (!card) {
    throw new ApiError(400, { type: 'invalid_request_error', code: 'resource_missing', param: 'payment_method', message: `No such PaymentMethod: '${pm}'` });
  }
  if (card.kind === 'hang') {
    await pause(state, null, signal);
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

export async function createIntent(state: StripeState, body: FormObject, signal: AbortSignal): Promise<Answer> {
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
  state.intents.set(id, pi);
  return confirmNow ? confirm(state, pi, signal) : { status: 200, body: pi };
}

export async function confirmIntent(state: StripeState, id: string, body: FormObject, signal: AbortSignal): Promise<Answer> {
  const pi = getIntent(state, id);
  if (pi.status !== 'requires_payment_method' && pi.status !== 'requires_confirmation') {
    throw unexpectedState(pi, `This PaymentIntent's status is ${pi.status}, so it cannot be confirmed.`);
  }
  const pm = field(body, 'payment_method');
  if (pm) pi.payment_method = pm;
  pi.last_payment_error = null;
  return confirm(state, pi, signal);
}

export function captureIntent(state: StripeState, id: string, body: FormObject): Answer {
  const pi = getIntent(state, id);
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

export function cancelIntent(state: StripeState, id: string, body: FormObject): Answer {
  const pi = getIntent(state, id);
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

function apmSettings(v: FormValue | undefined): Stripe.PaymentIntent.AutomaticPaymentMethods {
  if (v === undefined) return { enabled: true };
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid('Invalid automatic_payment_methods: must be a hash', 'automatic_payment_methods');
  const allow = v.allow_redirects;
  if (allow !== undefined && allow !== 'always' && allow !== 'never') throw invalid(`Invalid allow_redirects: ${String(allow)}`, 'automatic_payment_methods[allow_redirects]');
  if (v.enabled !== 'true') throw invalid('automatic_payment_methods[enabled] must be true', 'automatic_payment_methods[enabled]');
  return allow ? { enabled: true, allow_redirects: allow } : { enabled: true };
}
