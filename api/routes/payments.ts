import { createHash } from 'node:crypto';
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import type { BookingId } from '../../engine/ids.js';
import type { AppEnv } from '../env.js';
import { problem, problemBody } from '../problem.js';
import { BookingIdParam, problemResponses } from '../schemas.js';
import { validationHook } from '../validate.js';

const Pay = z
  .strictObject({
    bookingId: BookingIdParam,
    paymentMethodId: z
      .string()
      .regex(/^pm_[A-Za-z0-9_]{1,100}$/, 'a payment method token (pm_...) from Stripe Elements or Checkout')
      .openapi({ example: 'pm_card_visa' }),
    holderName: z.string().trim().min(1).max(200).regex(/^[^\p{Cc}]*$/u, 'must not contain control characters').optional(),
    holderEmail: z.email().max(254).optional(),
    holderPhone: z.string().regex(/^\+[1-9]\d{6,14}$/, 'E.164, e.g. +4915112345678').optional(),
  })
  .openapi('Payment');
const Paid = z
  .object({ paymentId: z.string(), status: z.literal('succeeded'), bookingStatus: z.literal('CONFIRMED') })
  .openapi('PaymentSucceeded');

export const payments = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(
  createRoute({
    method: 'post',
    path: '/api/payments',
    summary: 'Pay a reservation with a tokenized payment method',
    description:
      'Authorizes the amount, sells the seats, then captures. A decline answers 402 with attemptsLeft (after the last ' +
      'attempt the booking is CANCELLED and its seats released). Card numbers are refused (400 raw-card-data). Send an ' +
      'Idempotency-Key: a retry replays the first answer and never charges twice.',
    security: [{ bearer: [] }],
    request: {
      headers: z.object({ 'idempotency-key': z.string().regex(/^[A-Za-z0-9_.:-]{1,255}$/).optional() }),
      body: { content: { 'application/json': { schema: Pay } }, required: true },
    },
    responses: {
      200: { description: 'Paid: the booking is CONFIRMED', content: { 'application/json': { schema: Paid } } },
      ...problemResponses(400, 401, 402, 404, 409, 422, 503),
    },
  }),
  async (c) => {
    const { engine, metrics } = c.var.deps;
    const body = c.req.valid('json');
    const user = c.var.user.id;
    const providerName = engine.providerName;
    const started = performance.now();
    type Answer = { status: number; store: boolean; body: Record<string, unknown> };
    /** A refusal's problem document, from the closed table; kept whole (with its status) for an idempotent replay. */
    const refused = (code: 'PAYMENT_FAILED' | 'PAYMENT_TOO_LATE' | 'PAYMENT_PROVIDER_UNAVAILABLE', detail: string, store: boolean, extra: Record<string, unknown>): Answer => {
      const p = problemBody(code, detail);
      return { status: p.status, store, body: { ...p, ...extra } };
    };
    const run = async (): Promise<Answer> => {
      const r = await engine.payments.pay({ ...body, bookingId: body.bookingId as BookingId, userId: user });
      metrics.payments.inc({ provider: providerName, outcome: r.outcome === 'succeeded' ? 'succeeded' : r.outcome === 'declined' ? 'declined' : r.outcome === 'pending' ? 'unavailable' : 'failed' });
      metrics.paymentDuration.observe({ provider: providerName }, (performance.now() - started) / 1000);
      switch (r.outcome) {
        case 'succeeded':
          // confirmations, revenue and time to book are counted once, by the persist worker, from the outbox
          return { status: 200, store: true, body: { paymentId: r.paymentId, status: 'succeeded', bookingStatus: 'CONFIRMED' } };
        case 'declined':
          return refused('PAYMENT_FAILED', r.message, true, { paymentId: r.paymentId, declineCode: r.code, attemptsLeft: r.attemptsLeft, bookingStatus: r.bookingStatus });
        case 'returned':
          return refused('PAYMENT_TOO_LATE', r.reason, true, { paymentId: r.paymentId });
        case 'pending':
          // not kept: a retry with the same key carries the same attempt on
          return refused('PAYMENT_PROVIDER_UNAVAILABLE', 'the payment provider did not answer; retry with the same Idempotency-Key (it never charges twice)', false, {
            paymentId: r.paymentId,
          });
      }
    };
    const key = c.req.valid('header')['idempotency-key'];
    const out = key
      ? await engine.idempotency.once('pay', user, key, createHash('sha256').update(JSON.stringify(body)).digest('base64url'), run)
      : { ...(await run()), replayed: false };
    if (out.replayed) c.header('idempotent-replayed', 'true');
    if (out.status === 200) return c.json(out.body as z.infer<typeof Paid>, 200);
    const { type, title, ...rest } = out.body as { type: string; title: string; status: number };
    // problem documents are declared per status above; the typed handler only knows the JSON success
    return problem(c, out.status as 402 | 409 | 503, { type, title, ...rest }, out.status === 503 ? { 'retry-after': '2' } : {}) as never;
  },
);
