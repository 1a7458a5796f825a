import type Stripe from 'stripe';
import { getIntent } from './payment-intents.js';
import type { StripeState } from './state.js';
import type { DoubleRefund, FormObject } from './types.js';
import { ApiError, field, intField, invalid, nowSec, rand, stringMap, type Answer } from './wire.js';

/** The double's refunds: by PaymentIntent or charge, partial or full, up to what was captured. */

const REFUND_REASONS: readonly string[] = ['duplicate', 'fraudulent', 'requested_by_customer'];

export function createRefund(state: StripeState, body: FormObject): Answer {
  const piId = field(body, 'payment_intent');
  const chargeId = field(body, 'charge');
  const pi = piId ? getIntent(state, piId) : [...state.intents.values()].find((p) => chargeId !== undefined && p.latest_charge === chargeId);
  if (!pi) {
    if (chargeId) throw new ApiError(404, { type: 'invalid_request_error', code: 'resource_missing', param: 'charge', message: `No such charge: '${chargeId}'` });
    throw new ApiError(400, { type: 'invalid_request_error', code: 'parameter_missing', message: 'One of the following params should be provided for this request: payment_intent or charge.' });
  }
  const reason = field(body, 'reason');
  if (reason !== undefined && !REFUND_REASONS.includes(reason)) throw invalid(`Invalid reason: ${reason}`, 'reason');
  if (pi.status !== 'succeeded') {
    throw new ApiError(400, { type: 'invalid_request_error', code: 'charge_not_refundable', message: `This PaymentIntent (${pi.id}) does not have a successful charge to refund.` }, true);
  }
  const refunded = state.refundedByIntent.get(pi.id) ?? 0;
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
  state.refundsById.set(refund.id, refund);
  state.refundedByIntent.set(pi.id, refunded + amount);
  return { status: 200, body: refund };
}
