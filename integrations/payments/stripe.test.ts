import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import Stripe from 'stripe';
import { describe, expect, it, onTestFinished } from 'vitest';
import { signStripeWebhook, startStripeDouble, type StripeDouble } from '../../test/doubles/stripe.js';
import { waitFor } from '../../test/wait.js';
import type { AuthorizeInput, PaymentProvider } from './provider.js';
import { createStripeProvider, verifyStripeWebhook, WebhookSignatureError, type StripeProviderOptions } from './stripe.js';

const SECRET_KEY = 'sk_test_floodgate';

/** A fresh double and a provider pointed at it (no SDK retries unless asked), closed when the test ends. */
async function setup(opts: Partial<StripeProviderOptions> = {}): Promise<{ double: StripeDouble; provider: PaymentProvider }> {
  const double = await startStripeDouble({ secretKey: SECRET_KEY });
  onTestFinished(() => double.close());
  const provider = createStripeProvider({
    secretKey: SECRET_KEY,
    host: double.host,
    port: double.port,
    protocol: 'http',
    maxNetworkRetries: 0,
    timeoutMs: 2000,
    ...opts,
  });
  return { double, provider };
}

const input = (over: Partial<AuthorizeInput> = {}): AuthorizeInput => {
  const bookingId = `bk_${randomUUID()}`;
  return { bookingId, attempt: 1, amount: 5000, currency: 'EUR', paymentMethodId: 'pm_card_visa', idempotencyKey: `${bookingId}:a1:authorize`, ...over };
};

async function authorized(provider: PaymentProvider, amount = 5000) {
  const res = await provider.authorize(input({ amount }));
  if (res.outcome !== 'authorized') throw new Error(`setup: ${JSON.stringify(res)}`);
  return res.paymentRef;
}

describe('stripe provider', () => {
  describe('authorize', () => {
    it('creates a confirmed manual-capture PaymentIntent and answers authorized with its id', async () => {
      const { double, provider } = await setup();
      const req = input({ attempt: 2, description: 'Floodgate booking' });
      const res = await provider.authorize(req);
      const [pi] = double.paymentIntents();
      expect(res).toEqual({ outcome: 'authorized', paymentRef: pi!.id });
      expect(pi).toMatchObject({ status: 'requires_capture', amount: 5000, amount_capturable: 5000, amount_received: 0, currency: 'eur', capture_method: 'manual' });
      expect(pi!.metadata).toEqual({ bookingId: req.bookingId, attempt: '2' });
      expect(double.requests).toHaveLength(1);
      const [r] = double.requests;
      expect(r).toMatchObject({ method: 'POST', path: '/v1/payment_intents', status: 200 });
      expect(r!.headers.contentType).toMatch(/^application\/x-www-form-urlencoded/);
      expect(r!.headers.idempotencyKey).toBe(req.idempotencyKey);
      expect(r!.headers.authorization).toBe(`Bearer ${SECRET_KEY}`);
      expect(r!.rawBody).toContain('capture_method=manual');
      expect(r!.rawBody).toContain(`metadata[bookingId]=${req.bookingId}`);
      expect(r!.body).toMatchObject({
        amount: '5000',
        currency: 'eur',
        payment_method: 'pm_card_visa',
        confirm: 'true',
        automatic_payment_methods: { enabled: 'true', allow_redirects: 'never' },
        description: 'Floodgate booking',
      });
    });

    it.for([
      ['pm_card_chargeDeclined', 'generic_decline'],
      ['pm_card_chargeDeclinedInsufficientFunds', 'insufficient_funds'],
      ['pm_card_chargeDeclinedExpiredCard', 'expired_card'],
    ])('maps the 402 for %s to declined %s with the PaymentIntent as ref', async ([pm, code]) => {
      const { double, provider } = await setup();
      const res = await provider.authorize(input({ paymentMethodId: pm }));
      const [pi] = double.paymentIntents();
      expect(double.requests[0]!.status).toBe(402);
      expect(res).toEqual({ outcome: 'declined', paymentRef: pi!.id, code, message: expect.stringMatching(/^Your card/) });
      expect(pi).toMatchObject({ status: 'requires_payment_method', amount_capturable: 0, last_payment_error: { decline_code: code } });
    });

    it('maps requires_action (3-D Secure) to declined authentication_required', async () => {
      const { double, provider } = await setup();
      const res = await provider.authorize(input({ paymentMethodId: 'pm_card_authenticationRequired' }));
      expect(res).toEqual({ outcome: 'declined', paymentRef: double.paymentIntents()[0]!.id, code: 'authentication_required', message: expect.any(String) });
    });

    it('maps an unknown payment method (400 resource_missing) to declined payment_method_not_found, creating nothing', async () => {
      const { double, provider } = await setup();
      const res = await provider.authorize(input({ paymentMethodId: 'pm_nope' }));
      expect(res).toEqual({ outcome: 'declined', code: 'payment_method_not_found', message: "No such PaymentMethod: 'pm_nope'" });
      expect(double.paymentIntents()).toEqual([]);
    });

    it('maps a scripted 402 without a PaymentIntent to declined without a ref', async () => {
      const { double, provider } = await setup();
      double.failNext(1, { status: 402, code: 'card_declined', message: 'Your card was declined.' });
      expect(await provider.authorize(input())).toEqual({ outcome: 'declined', code: 'card_declined', message: 'Your card was declined.' });
    });

    it.for([429, 500, 503])('maps HTTP %i to unavailable and creates nothing', async (status) => {
      const { double, provider } = await setup();
      double.failNext(1, { status });
      const res = await provider.authorize(input());
      expect(res).toEqual({ outcome: 'unavailable', message: expect.stringContaining(String(status)) });
      expect(double.requests.map((r) => r.status)).toEqual([status]);
      expect(double.paymentIntents()).toEqual([]);
    });

    it('maps an SDK timeout to unavailable; the retry with the same key gets the PaymentIntent Stripe made meanwhile', async () => {
      const { double, provider } = await setup({ timeoutMs: 200 });
      const req = input();
      double.delayNext(1, 400);
      expect(await provider.authorize(req)).toEqual({ outcome: 'unavailable', message: expect.stringContaining('timeout') });
      await waitFor('the delayed request to execute', () => double.requests[0]!.status === 200);
      const retry = await provider.authorize(req);
      expect(retry).toEqual({ outcome: 'authorized', paymentRef: double.paymentIntents()[0]!.id });
      expect(double.paymentIntents()).toHaveLength(1);
      expect(double.requests[1]).toMatchObject({ replayed: true, headers: { idempotencyKey: req.idempotencyKey } });
    });

    it('maps a provider that never answers (pm_card_timeout) to unavailable after the timeout', async () => {
      const { provider } = await setup({ timeoutMs: 250 });
      const t0 = Date.now();
      expect(await provider.authorize(input({ paymentMethodId: 'pm_card_timeout' }))).toMatchObject({ outcome: 'unavailable' });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
    });

    it('maps 409 (the same key still in flight) to unavailable', async () => {
      const { double, provider } = await setup({ timeoutMs: 300 });
      const req = input({ paymentMethodId: 'pm_card_timeout' });
      const first = provider.authorize(req);
      await waitFor('the first request to arrive', () => double.requests.length === 1);
      expect(await provider.authorize(req)).toEqual({ outcome: 'unavailable', message: expect.stringContaining('409') });
      expect(await first).toMatchObject({ outcome: 'unavailable' });
      expect(double.requests[1]!.status).toBe(409);
    });

    it('throws on a wrong API key (401 is a misconfiguration, not an outage)', async () => {
      const { double } = await setup();
      const bad = createStripeProvider({ secretKey: 'sk_test_wrong', host: double.host, port: double.port, protocol: 'http', maxNetworkRetries: 0 });
      await expect(bad.authorize(input())).rejects.toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
      expect(double.paymentIntents()).toEqual([]);
    });
  });

  describe('idempotency', () => {
    it('replays the first answer for the same key: same PaymentIntent, ONE in the double', async () => {
      const { double, provider } = await setup();
      const req = input();
      const first = await provider.authorize(req);
      const again = await provider.authorize(req);
      expect(again).toEqual(first);
      expect(double.paymentIntents()).toHaveLength(1);
      expect(double.requests.map((r) => [r.headers.idempotencyKey, r.replayed ?? false])).toEqual([
        [req.idempotencyKey, false],
        [req.idempotencyKey, true],
      ]);
    });

    it('throws StripeIdempotencyError when the key comes back with another amount, and changes nothing', async () => {
      const { double, provider } = await setup();
      const req = input();
      await provider.authorize(req);
      await expect(provider.authorize({ ...req, amount: 5001 })).rejects.toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
      expect(double.paymentIntents()).toMatchObject([{ amount: 5000, status: 'requires_capture' }]);
    });

    it('lets the SDK retry a 500 with the same Idempotency-Key (maxNetworkRetries: 2)', async () => {
      const { double, provider } = await setup({ maxNetworkRetries: 2 });
      const req = input();
      double.failNext(1, { status: 500 });
      expect(await provider.authorize(req)).toMatchObject({ outcome: 'authorized' });
      expect(double.requests.map((r) => [r.status, r.headers.idempotencyKey])).toEqual([
        [500, req.idempotencyKey],
        [200, req.idempotencyKey],
      ]);
      expect(double.paymentIntents()).toHaveLength(1);
    });
  });

  describe('capture, cancel and refund', () => {
    it('captures; the same key replays; a new key on a captured PaymentIntent still answers captured', async () => {
      const { double, provider } = await setup();
      const ref = await authorized(provider);
      const key = `${ref}:capture`;
      expect(await provider.capture(ref, key)).toEqual({ outcome: 'captured' });
      expect(await provider.capture(ref, key)).toEqual({ outcome: 'captured' });
      expect(await provider.capture(ref, `${key}-2`)).toEqual({ outcome: 'captured' });
      expect(double.paymentIntents()).toMatchObject([{ id: ref, status: 'succeeded', amount_received: 5000, amount_capturable: 0 }]);
      const captures = double.requests.filter((r) => r.path === `/v1/payment_intents/${ref}/capture`);
      expect(captures.map((r) => [r.headers.idempotencyKey, r.status, r.replayed ?? false])).toEqual([
        [key, 200, false],
        [key, 200, true],
        [`${key}-2`, 400, false],
      ]);
    });

    it('answers unavailable for a capture that got a 500, then captures on retry', async () => {
      const { double, provider } = await setup();
      const ref = await authorized(provider);
      double.failNext(1, { status: 500 });
      expect(await provider.capture(ref, 'k-capture')).toMatchObject({ outcome: 'unavailable' });
      expect(double.paymentIntents()[0]!.status).toBe('requires_capture');
      expect(await provider.capture(ref, 'k-capture')).toEqual({ outcome: 'captured' });
    });

    it('cancels; cancelling again answers cancelled; capturing a cancelled PaymentIntent fails', async () => {
      const { double, provider } = await setup();
      const ref = await authorized(provider);
      expect(await provider.cancel(ref, `${ref}:cancel`)).toEqual({ outcome: 'cancelled' });
      expect(await provider.cancel(ref, `${ref}:cancel-2`)).toEqual({ outcome: 'cancelled' });
      expect(await provider.capture(ref, `${ref}:capture`)).toEqual({ outcome: 'failed', message: expect.stringContaining('cancelled') });
      expect(double.paymentIntents()).toMatchObject([{ status: 'canceled', amount_capturable: 0, amount_received: 0 }]);
    });

    it('does not cancel a captured PaymentIntent: unavailable, refund instead', async () => {
      const { double, provider } = await setup();
      const ref = await authorized(provider);
      await provider.capture(ref, `${ref}:capture`);
      expect(await provider.cancel(ref, `${ref}:cancel`)).toEqual({ outcome: 'unavailable', message: expect.stringContaining('refund') });
      expect(double.paymentIntents()).toMatchObject([{ status: 'succeeded', amount_received: 5000 }]);
    });

    it('refunds partially and replays per key, refunds the rest, and throws past the captured amount', async () => {
      const { double, provider } = await setup();
      const ref = await authorized(provider, 5000);
      await provider.capture(ref, `${ref}:capture`);
      const first = await provider.refund(ref, `${ref}:refund-1`, 2000);
      expect(first).toEqual({ outcome: 'refunded', refundRef: expect.stringMatching(/^re_/) });
      expect(await provider.refund(ref, `${ref}:refund-1`, 2000)).toEqual(first);
      expect(double.paymentIntents()[0]!.amount_refunded).toBe(2000);
      const rest = await provider.refund(ref, `${ref}:refund-2`);
      expect(rest).toMatchObject({ outcome: 'refunded' });
      expect(double.refunds().map((r) => [r.id, r.amount, r.payment_intent])).toEqual([
        [(first as { refundRef: string }).refundRef, 2000, ref],
        [(rest as { refundRef: string }).refundRef, 3000, ref],
      ]);
      const refundBody = double.requests.find((r) => r.path === '/v1/refunds')!.body;
      expect(refundBody).toEqual({ payment_intent: ref, amount: '2000' });
      await expect(provider.refund(ref, `${ref}:refund-3`, 1)).rejects.toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect(double.paymentIntents()[0]!.amount_refunded).toBe(5000);
    });

    it('throws for a refund of an uncaptured PaymentIntent (a caller bug) and refunds nothing', async () => {
      const { double, provider } = await setup();
      const ref = await authorized(provider);
      await expect(provider.refund(ref, `${ref}:refund`)).rejects.toMatchObject({ code: 'charge_not_refundable' });
      expect(double.refunds()).toEqual([]);
    });

    it('throws for an unknown PaymentIntent', async () => {
      const { provider } = await setup();
      await expect(provider.capture('pi_unknown', 'k')).rejects.toMatchObject({ type: 'StripeInvalidRequestError', code: 'resource_missing' });
    });
  });
});

describe('verifyStripeWebhook', () => {
  const secret = 'whsec_current';
  const event = { id: 'evt_1', object: 'event', type: 'payment_intent.succeeded', data: { object: { id: 'pi_1' } } } as unknown as Stripe.Event;
  const rejection = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e;
    }
    throw new Error('expected a rejection');
  };

  it('returns the event for a valid signature', () => {
    const { payload, header } = signStripeWebhook(event, { secret });
    expect(verifyStripeWebhook({ secrets: [secret], rawBody: payload, signature: header })).toMatchObject({ id: 'evt_1', type: 'payment_intent.succeeded' });
  });

  it('rejects a tampered body', () => {
    const { payload, header } = signStripeWebhook(event, { secret });
    const err = rejection(() => verifyStripeWebhook({ secrets: [secret], rawBody: payload.replace('pi_1', 'pi_2'), signature: header }));
    expect(err).toBeInstanceOf(WebhookSignatureError);
    expect(err).toMatchObject({ reason: 'signature_mismatch', code: 'WEBHOOK_SIGNATURE_INVALID' });
  });

  it('rejects a signature made with another secret', () => {
    const { payload, header } = signStripeWebhook(event, { secret: 'whsec_attacker' });
    expect(rejection(() => verifyStripeWebhook({ secrets: [secret], rawBody: payload, signature: header }))).toMatchObject({ reason: 'signature_mismatch' });
  });

  it('rejects a missing or malformed header', () => {
    const { payload } = signStripeWebhook(event, { secret });
    expect(rejection(() => verifyStripeWebhook({ secrets: [secret], rawBody: payload, signature: undefined }))).toMatchObject({ reason: 'missing_header' });
    expect(rejection(() => verifyStripeWebhook({ secrets: [secret], rawBody: payload, signature: 'garbage' }))).toMatchObject({ reason: 'malformed_header' });
  });

  it('rejects a signature 10 minutes old (tolerance 300 s), and accepts it with a larger tolerance', () => {
    const { payload, header } = signStripeWebhook(event, { secret, timestamp: Math.floor(Date.now() / 1000) - 600 });
    const err = rejection(() => verifyStripeWebhook({ secrets: [secret], rawBody: payload, signature: header }));
    expect(err).toMatchObject({ reason: 'timestamp_out_of_tolerance' });
    expect(verifyStripeWebhook({ secrets: [secret], rawBody: payload, signature: header, toleranceSeconds: 900 }).id).toBe('evt_1');
  });

  it('accepts a signature made with the second (rotated) secret', () => {
    const { payload, header } = signStripeWebhook(event, { secret: 'whsec_previous' });
    expect(verifyStripeWebhook({ secrets: [secret, 'whsec_previous'], rawBody: payload, signature: header }).id).toBe('evt_1');
    expect(rejection(() => verifyStripeWebhook({ secrets: [secret], rawBody: payload, signature: header }))).toBeInstanceOf(WebhookSignatureError);
  });

  it('throws a plain Error when no secret is configured', () => {
    const { payload, header } = signStripeWebhook(event, { secret });
    const err = rejection(() => verifyStripeWebhook({ secrets: [], rawBody: payload, signature: header }));
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(WebhookSignatureError);
  });
});

describe('stripe double', () => {
  it('delivers a signed event several times; a receiver verifying with verifyStripeWebhook sees one event id', async () => {
    const double = await startStripeDouble();
    onTestFinished(() => double.close());
    const seen: string[] = [];
    const receiver = new Hono().post('/webhooks/stripe', async (c) => {
      try {
        const ev = verifyStripeWebhook({ secrets: ['whsec_test'], rawBody: await c.req.text(), signature: c.req.header('stripe-signature') });
        seen.push(ev.id);
        return c.json({ received: true });
      } catch (e) {
        if (e instanceof WebhookSignatureError) return c.json({ error: e.reason }, 400);
        throw e;
      }
    });
    const port = await new Promise<number>((resolve) => {
      const s = serve({ fetch: receiver.fetch, hostname: '127.0.0.1', port: 0 }, (info) => resolve(info.port));
      onTestFinished(() => new Promise<void>((r) => (s as Server).close(() => r())));
    });
    const url = `http://127.0.0.1:${port}/webhooks/stripe`;
    const ev = double.makeEvent('payment_intent.amount_capturable_updated', { id: 'pi_x', object: 'payment_intent', status: 'requires_capture' });
    expect(ev).toMatchObject({ id: expect.stringMatching(/^evt_/), object: 'event', type: 'payment_intent.amount_capturable_updated', data: { object: { id: 'pi_x' } } });
    expect((await double.sendWebhook(url, ev, { secret: 'whsec_test', times: 3 })).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(seen).toEqual([ev.id, ev.id, ev.id]);
    expect((await double.sendWebhook(url, ev, { secret: 'whsec_other' })).map((r) => [r.status, r.body])).toEqual([[400, '{"error":"signature_mismatch"}']]);
  });

  it('answers 401 without a test key, 404 for unknown routes, and records both', async () => {
    const double = await startStripeDouble();
    onTestFinished(() => double.close());
    const noKey = await fetch(`${double.url}/v1/payment_intents`, { method: 'POST', body: 'amount=1' });
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    const unknown = await fetch(`${double.url}/v1/customers`, { headers: { Authorization: 'Bearer sk_test_x' } });
    expect(unknown.status).toBe(404);
    expect(double.requests.map((r) => [r.method, r.path, r.status])).toEqual([
      ['POST', '/v1/payment_intents', 401],
      ['GET', '/v1/customers', 404],
    ]);
  });

  it('parses nested and indexed form fields and replays with Idempotent-Replayed: true', async () => {
    const double = await startStripeDouble();
    onTestFinished(() => double.close());
    const body = 'amount=700&currency=EUR&payment_method_types[0]=card&metadata[a]=1&metadata[b]=x%20y';
    const post = () =>
      fetch(`${double.url}/v1/payment_intents`, {
        method: 'POST',
        headers: { Authorization: 'Bearer sk_test_x', 'Content-Type': 'application/x-www-form-urlencoded', 'Idempotency-Key': 'k1' },
        body,
      });
    const a = await post();
    const b = await post();
    expect(a.headers.get('idempotent-replayed')).toBeNull();
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    const pi = (await a.json()) as Stripe.PaymentIntent;
    expect(pi).toMatchObject({ object: 'payment_intent', amount: 700, currency: 'eur', payment_method_types: ['card'], metadata: { a: '1', b: 'x y' }, status: 'requires_payment_method' });
    expect(((await b.json()) as Stripe.PaymentIntent).id).toBe(pi.id);
    expect(double.requests[0]!.body).toEqual({ amount: '700', currency: 'EUR', payment_method_types: ['card'], metadata: { a: '1', b: 'x y' } });
    expect(double.paymentIntents()).toHaveLength(1);
  });
});
