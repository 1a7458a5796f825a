import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { startStripeDouble } from '../../test/doubles/stripe.js';
import { dropPaymentsBookingFk } from '../../test/follow-outbox.js';
import { startApi, token } from '../../test/http.js';
import { waitFor } from '../../test/wait.js';
import { snapshotPg, snapshotRedis } from '../../test/state.js';
import { createStripeProvider } from '../../integrations/payments/stripe.js';
import { createEngine } from '../../engine/index.js';
import type { PaymentProvider } from '../../engine/payments/provider.js';
import type { BookingId, UserId } from '../../engine/ids.js';

const SECRET = 'whsec_test_floodgate';

describe('Stripe: the real SDK against a local double, and signed webhooks', () => {
  it('pays through Stripe: authorize (manual capture), sell the seats, then capture; the SDK sends idempotency keys', async ({ engine, deps, pg, onTestFinished }) => {
    await dropPaymentsBookingFk(pg);
    const stripe = await startStripeDouble();
    const provider = createStripeProvider({ secretKey: 'sk_test_floodgate', host: stripe.host, port: stripe.port, protocol: 'http', maxNetworkRetries: 0 });
    const api = await startApi(createEngine({ ...deps, provider }), { stripeWebhookSecrets: [SECRET], persist: true });
    onTestFinished(async () => {
      await api.close();
      await stripe.close();
    });
    const ev = await createGaEvent(engine, 5);
    const ann = await token('ann');
    const bookingId = (await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 2 } })).json.bookingId;
    const paid = await api.call('POST', '/api/payments', { token: ann, body: { bookingId, paymentMethodId: 'pm_card_visa' } });
    expect(paid.status).toBe(200);
    const [pi] = stripe.paymentIntents();
    expect(pi).toMatchObject({ amount: 9000, currency: 'eur', status: 'succeeded', capture_method: 'manual', metadata: { bookingId, attempt: '1' } });
    const creates = stripe.requests.filter((r) => r.method === 'POST' && r.path === '/v1/payment_intents');
    expect(creates.map((r) => r.headers.idempotencyKey)).toEqual([`${bookingId}:a1:authorize`]);
    expect(stripe.requests.filter((r) => r.path.endsWith('/capture')).map((r) => r.headers.idempotencyKey)).toEqual([`${bookingId}:a1:capture`]);
    // a decline from Stripe is a 402 for the buyer
    const bob = await token('bob');
    const b2 = (await api.call('POST', '/api/bookings', { token: bob, body: { eventId: ev.id, ticketCount: 1 } })).json.bookingId;
    const declined = await api.call('POST', '/api/payments', { token: bob, body: { bookingId: b2, paymentMethodId: 'pm_card_chargeDeclinedInsufficientFunds' } });
    expect([declined.status, declined.json.declineCode, declined.json.attemptsLeft]).toEqual([402, 'insufficient_funds', 2]);
    // Stripe down: 503 with Retry-After, nothing charged; the retry (same key) carries the attempt on and succeeds once
    stripe.failNext(1, { status: 500 });
    const down = await api.call('POST', '/api/payments', { token: bob, body: { bookingId: b2, paymentMethodId: 'pm_card_visa' }, headers: { 'idempotency-key': 'k1' } });
    expect([down.status, down.json.type, down.headers.get('retry-after')]).toEqual([503, '/problems/payment-provider-unavailable', '2']);
    const retried = await api.call('POST', '/api/payments', { token: bob, body: { bookingId: b2, paymentMethodId: 'pm_card_visa' }, headers: { 'idempotency-key': 'k1' } });
    expect(retried.status).toBe(200);
    expect(stripe.paymentIntents().filter((p) => p.metadata.bookingId === b2 && p.status === 'succeeded')).toHaveLength(1);
  });

  it('webhooks finish a payment whose request died after the authorization: duplicates and any order are harmless; tampering is refused', async ({ engine, deps, redis, ns, pg, onTestFinished }) => {
    await dropPaymentsBookingFk(pg);
    const stripe = await startStripeDouble();
    const real = createStripeProvider({ secretKey: 'sk_test_floodgate', host: stripe.host, port: stripe.port, protocol: 'http', maxNetworkRetries: 0 });
    // the API process "dies" right after Stripe authorized: the answer never makes it back
    const dying: PaymentProvider = { ...real, authorize: async (i) => (await real.authorize(i), Promise.reject(new Error('process killed'))) };
    const crashing = createEngine({ ...deps, provider: dying });
    const api = await startApi(createEngine({ ...deps, provider: real }), { stripeWebhookSecrets: ["whsec_old_secret_in_rotation", SECRET], persist: true });
    onTestFinished(async () => {
      await api.close();
      await stripe.close();
    });
    const ev = await createGaEvent(engine, 5);
    const { reservation } = await engine.bookings.create({ userId: 'cat' as UserId, eventId: ev.id, ticketCount: 1 });
    const bookingId = reservation.bookingId as BookingId;
    await expect(crashing.payments.pay({ bookingId, userId: 'cat' as UserId, paymentMethodId: 'pm_card_visa' })).rejects.toThrow('process killed');
    expect((await engine.payments.attempts(bookingId))[0]).toMatchObject({ status: 'pending', providerRef: null });
    const pi = stripe.paymentIntents().find((p) => p.metadata.bookingId === bookingId)!;
    expect(pi.status).toBe('requires_capture');

    // a tampered delivery changes nothing (compared once the persist worker has caught up with the outbox)
    const authorized = stripe.makeEvent('payment_intent.amount_capturable_updated', pi);
    await waitFor('the persist worker caught up', async () => (await engine.outbox.backlog(ev.id)).entries === 0);
    const before = [await snapshotRedis(redis, `${ns}:{evt:${ev.id}}:*`), await snapshotPg(pg)];
    const forged = await fetch(`${api.url}/api/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}` },
      body: JSON.stringify(authorized),
    });
    expect(forged.status).toBe(400);
    expect(((await forged.json()) as { type: string }).type).toBe('/problems/webhook-signature');
    const unsigned = await fetch(`${api.url}/api/webhooks/stripe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(authorized) });
    expect(unsigned.status).toBe(400);
    expect([await snapshotRedis(redis, `${ns}:{evt:${ev.id}}:*`), await snapshotPg(pg)]).toEqual(before);

    // a late "succeeded" arrives first (reordered), then the authorization event three times (duplicated)
    const succeeded = stripe.makeEvent('payment_intent.succeeded', { ...pi, status: 'succeeded' });
    expect((await stripe.sendWebhook(`${api.url}/api/webhooks/stripe`, succeeded, { secret: SECRET })).map((r) => r.status)).toEqual([200]);
    const dup = await stripe.sendWebhook(`${api.url}/api/webhooks/stripe`, authorized, { secret: SECRET, times: 3 });
    expect(dup.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(dup.slice(1).every((r) => JSON.parse(r.body).duplicate === true)).toBe(true);
    expect((await engine.payments.attempts(bookingId))[0]).toMatchObject({ status: 'captured', providerRef: pi.id });
    await waitFor('CONFIRMED in the record', async () => (await pg.query("SELECT 1 FROM bookings WHERE id = $1 AND state = 'CONFIRMED'", [bookingId])).rowCount === 1);
    expect(stripe.requests.filter((r) => r.path === `/v1/payment_intents/${pi.id}/capture`)).toHaveLength(1);
    expect((await pg.query('SELECT count(*)::int AS n FROM webhook_events')).rows[0].n).toBe(2);
  });
});
