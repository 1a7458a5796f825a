import type { OpenAPIHono } from '@hono/zod-openapi';
import { Hono } from 'hono';
import { z } from 'zod';
import type { BookingId } from '../../engine/ids.js';
import { verifyTwilioSignature } from '../../integrations/sms/twilio.js';
import type { AppEnv } from '../env.js';
import { problem } from '../problem.js';
import { problemResponses } from '../schemas.js';

/** What the handler reads of a (signed) status callback; Twilio sends more fields, which are ignored. */
const Receipt = z.object({
  MessageSid: z.string().regex(/^(SM|MM)[0-9a-f]{32}$/, 'a Twilio message SID'),
  MessageStatus: z.string().regex(/^[a-z_-]{1,32}$/, 'a Twilio message status'),
  ErrorCode: z.string().regex(/^\d{1,10}$/).optional(),
});
const BookingIdQuery = z.string().regex(/^bk_[a-z0-9]{12}_[a-z0-9]{16}$/, 'a booking id');

/**
 * Twilio's delivery receipts (status callbacks) of the tickets SMS. The signature (`X-Twilio-Signature`, checked with
 * the SDK's validateRequest) covers the URL Twilio called, the configured TWILIO_STATUS_CALLBACK_URL with this
 * request's query string (the booking id the sender put there), and every form field. Receipts may come twice and in
 * any order: the record only moves forward (engine.sms.receipt). Twilio expects a 2xx; anything else is logged there.
 */
export const webhooksTwilio = new Hono<AppEnv>().post('/api/webhooks/twilio', async (c) => {
  const { engine, config, log } = c.var.deps;
  if (!config.twilio) return problem(c, 404, { type: '/problems/not-found', title: 'Not found', detail: 'Twilio is not the SMS provider here' });
  const raw = await c.req.text();
  const params = Object.fromEntries(new URLSearchParams(raw));
  const called = new URL(config.twilio.statusCallbackUrl);
  called.search = new URL(c.req.url).search;
  if (!verifyTwilioSignature(config.twilio.authToken, c.req.header('x-twilio-signature'), called.href, params)) {
    log.warn({ requestId: c.var.requestId, signed: c.req.header('x-twilio-signature') !== undefined }, 'twilio webhook signature rejected');
    return problem(c, 400, { type: '/problems/webhook-signature', title: 'Invalid webhook signature', detail: 'X-Twilio-Signature does not match this request' });
  }
  const parsed = Receipt.safeParse(params);
  const bookingId = BookingIdQuery.safeParse(c.req.query('bookingId'));
  if (!parsed.success || !bookingId.success) {
    const issue = parsed.success ? { path: ['bookingId'], message: 'a booking id (query)' } : parsed.error.issues[0]!;
    const field = issue.path.join('.') || 'body';
    log.warn({ requestId: c.var.requestId, field }, 'signed twilio webhook is not a usable status callback');
    return problem(c, 400, {
      type: '/problems/webhook-malformed', title: 'Malformed webhook event', detail: `not a Twilio status callback: ${field}: ${issue.message}`,
      errors: [{ field, detail: issue.message }],
    });
  }
  const r = parsed.data;
  let recorded: boolean;
  try {
    recorded = await engine.sms.receipt(bookingId.data as BookingId, 'twilio', r.MessageSid, r.MessageStatus, r.ErrorCode ?? null);
  } catch (err) {
    // a signed receipt for a booking this database does not have (another environment sharing the account): nothing to keep
    if ((err as { code?: string }).code !== '23503') throw err;
    recorded = false;
  }
  return c.json({ received: true, recorded });
});

/** The route's OpenAPI entry (a plain handler: the signature is checked over the raw form before any parsing). */
export function documentTwilioWebhook(app: Pick<OpenAPIHono, 'openAPIRegistry'>) {
  app.openAPIRegistry.registerPath({
    method: 'post',
    path: '/api/webhooks/twilio',
    summary: 'Twilio SMS status callback: X-Twilio-Signature checked, the status kept per booking (only ever forward)',
    description:
      'Twilio posts here (TWILIO_STATUS_CALLBACK_URL, with `?bookingId=`) as the tickets SMS moves on: queued, sent, delivered, ' +
      'undelivered, failed (with ErrorCode). A forged or altered request is 400 `/problems/webhook-signature`; 404 when Twilio is not the SMS provider.',
    request: {
      query: z.object({ bookingId: BookingIdQuery }),
      headers: z.object({ 'x-twilio-signature': z.string().openapi({ description: 'base64 HMAC-SHA1 of the URL and the sorted form fields, keyed by the auth token' }) }),
      body: {
        content: {
          'application/x-www-form-urlencoded': {
            schema: z.looseObject({ MessageSid: z.string(), MessageStatus: z.string(), ErrorCode: z.string().optional(), AccountSid: z.string().optional(), To: z.string().optional() }),
          },
        },
        required: true,
      },
    },
    responses: {
      200: {
        description: 'Received (recorded: false when it changed nothing, e.g. a receipt behind the recorded status)',
        content: { 'application/json': { schema: z.object({ received: z.literal(true), recorded: z.boolean() }) } },
      },
      ...problemResponses(404),
    },
  });
}
