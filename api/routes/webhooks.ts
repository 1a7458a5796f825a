import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import { WebhookSignatureError, verifyStripeWebhook } from '../../integrations/payments/stripe.js';
import type { BookingId } from '../../engine/ids.js';
import type { AppEnv } from '../env.js';
import { problemFor } from '../problem.js';

/** What the handler reads of a (signed) event: anything else in it is ignored, anything missing is a 400. */
const WebhookEvent = z.looseObject({
  id: z.string().min(1).max(255),
  type: z.string().min(1).max(255),
  data: z.looseObject({
    object: z.looseObject({
      id: z.string().max(255).optional(),
      metadata: z.looseObject({ bookingId: z.string().optional(), attempt: z.string().optional() }).nullish(),
    }),
  }),
});

/**
 * Stripe webhooks: the signature is checked on the raw body (two secrets during a rotation), each event is handled once
 * (its id is recorded), and handling only moves things forward, so duplicates and any order are harmless.
 */
export const webhooks = new Hono<AppEnv>().post('/api/webhooks/stripe', async (c) => {
  const { engine, config, log } = c.var.deps;
  const secrets = config.stripeWebhookSecrets ?? [];
  if (secrets.length === 0) throw new HTTPException(404, { message: 'Stripe is not the payment provider here' });
  const raw = await c.req.text();
  let verified: unknown;
  try {
    verified = verifyStripeWebhook({ secrets, rawBody: raw, signature: c.req.header('stripe-signature') });
  } catch (err) {
    if (err instanceof WebhookSignatureError) {
      log.warn({ reason: err.reason, requestId: c.var.requestId }, 'stripe webhook signature rejected');
      return problemFor(c, 'WEBHOOK_SIGNATURE', err.reason);
    }
    // the signature matched but the body is not JSON (the SDK parses it after checking the signature)
    if (!(err instanceof SyntaxError)) throw err;
  }
  const parsed = WebhookEvent.safeParse(verified);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    log.warn({ requestId: c.var.requestId, field: issue.path.join('.') }, 'signed stripe webhook is not a usable event');
    const field = issue.path.join('.') || 'body';
    return problemFor(c, 'WEBHOOK_MALFORMED', `not a Stripe event: ${field}: ${issue.message}`, { errors: [{ field, detail: issue.message }] });
  }
  const event = parsed.data;
  if (await engine.webhookEvents.seen(event.id)) return c.json({ received: true, duplicate: true });
  const pi = event.data.object;
  // the attempt: by the PaymentIntent id, or by its metadata when the request that created it died before recording it
  let attempt = pi.id?.startsWith('pi_') ? await engine.payments.byProviderRef(pi.id) : null;
  if (!attempt && pi.metadata?.bookingId && /^bk_[a-z0-9]{12}_[a-z0-9]{16}$/.test(pi.metadata.bookingId)) {
    const n = Number(pi.metadata.attempt);
    attempt = (await engine.payments.attempts(pi.metadata.bookingId as BookingId)).find((a) => a.attempt === n) ?? null;
  }
  if (attempt) {
    switch (event.type) {
      case 'payment_intent.amount_capturable_updated':
      case 'payment_intent.succeeded':
        // the authorization (or capture) landed: finish the booking if the request that started it did not
        if (pi.id && (attempt.status === 'pending' || attempt.status === 'authorized')) await engine.payments.complete(attempt.bookingId, attempt.attempt, pi.id);
        break;
      case 'payment_intent.payment_failed':
      case 'payment_intent.canceled':
        // the request (or the settle job) records declines with their details; nothing to move forward here
        break;
    }
  }
  // recorded once handled: a delivery whose handling failed (500) is handled again when Stripe retries it
  await engine.webhookEvents.record(event.id, event.type);
  return c.json({ received: true });
});
