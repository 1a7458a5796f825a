import { describe, expect, it } from 'vitest';
import { startTwilioDouble, twilioSignature, type TwilioDouble } from '../../test/doubles/twilio.js';
import { SmsSendError } from './sender.js';
import { createTwilioSms, retryAfterMs, verifyTwilioSignature } from './twilio.js';

const BOOKING = 'bk_abcdefghijkl_0123456789abcdef';
const FROM = '+15005550006';

async function double(onTestFinished: (fn: () => Promise<void>) => void, o: Parameters<typeof startTwilioDouble>[0] = {}): Promise<TwilioDouble> {
  const t = await startTwilioDouble(o);
  onTestFinished(() => t.close());
  return t;
}
const sender = (t: TwilioDouble, o: Partial<Parameters<typeof createTwilioSms>[0]> = {}) =>
  createTwilioSms({ accountSid: t.accountSid, authToken: t.authToken, from: FROM, apiUrl: t.url, ...o });
const sendError = async (p: Promise<unknown>): Promise<SmsSendError> => {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SmsSendError);
  return err as SmsSendError;
};

describe('createTwilioSms (the twilio SDK against a local double of the Messages API)', () => {
  it('posts the message form-encoded with basic auth, the sender and a status callback carrying the booking id', async ({ onTestFinished }) => {
    const t = await double(onTestFinished);
    const sms = sender(t, { statusCallbackUrl: 'https://tickets.example.com/api/webhooks/twilio' });
    expect(sms.name).toBe('twilio');
    const r = await sms.send({ to: '+49 151 2345-6778', body: 'Concert, Sun 1 Jun. Booking x. Tickets: https://t/x', idempotencyKey: `sms-${BOOKING}`, bookingId: BOOKING });
    expect(r.messageId).toMatch(/^SM[0-9a-f]{32}$/);
    expect(r.status).toBe('queued');
    expect(t.messages).toEqual([
      {
        sid: r.messageId, to: '+4915123456778', from: FROM, messagingServiceSid: null, body: 'Concert, Sun 1 Jun. Booking x. Tickets: https://t/x',
        statusCallback: `https://tickets.example.com/api/webhooks/twilio?bookingId=${BOOKING}`, status: 'queued',
      },
    ]);
    expect(t.requests.map((q) => [q.path, q.status, q.authorized])).toEqual([[`/2010-04-01/Accounts/${t.accountSid}/Messages.json`, 201, true]]);
  });

  it('sends through a Messaging Service instead of a number; no status callback unless configured', async ({ onTestFinished }) => {
    const t = await double(onTestFinished);
    const mg = 'MG0123456789abcdef0123456789abcdef';
    const r = await sender(t, { from: undefined, messagingServiceSid: mg }).send({ to: '+447700900123', body: 'hi', idempotencyKey: 'k' });
    expect(r.status).toBe('accepted');
    expect(t.requests[0]!.form).toEqual({ To: '+447700900123', Body: 'hi', MessagingServiceSid: mg });
  });

  it('waits what Retry-After says after a 429, then sends once', async ({ onTestFinished }) => {
    const t = await double(onTestFinished);
    t.failNext(1, 429, '1');
    const r = await sender(t).send({ to: '+4915123456778', body: 'x', idempotencyKey: 'k' });
    expect(t.requests.map((q) => q.status)).toEqual([429, 201]);
    // setTimeout may fire up to a millisecond early against Date.now()'s rounding; the backoff alone would be 500 ms
    expect(t.requests[1]!.at - t.requests[0]!.at).toBeGreaterThanOrEqual(999);
    expect(t.messages.map((m) => m.sid)).toEqual([r.messageId]);
  });

  it('retries 5xx answers (backing off) and sends once', async ({ onTestFinished }) => {
    const t = await double(onTestFinished);
    t.failNext(1, 503);
    t.failNext(1, 500, '0');
    await sender(t).send({ to: '+4915123456778', body: 'x', idempotencyKey: 'k' });
    expect(t.requests.map((q) => q.status)).toEqual([503, 500, 201]);
    expect(t.messages).toHaveLength(1);
  });

  it('gives up at once, retryable and with the wait asked, when Retry-After is longer than it waits itself; and after maxRetries', async ({ onTestFinished }) => {
    const t = await double(onTestFinished);
    t.failNext(1, 429, '120');
    const long = await sendError(sender(t).send({ to: '+4915123456778', body: 'x', idempotencyKey: 'k' }));
    expect([long.retryable, long.code, long.retryAfterMs]).toEqual([true, '20429', 120_000]);
    expect(t.requests).toHaveLength(1);
    t.failNext(3, 502, '0');
    const down = await sendError(sender(t, { maxRetries: 2 }).send({ to: '+4915123456778', body: 'x', idempotencyKey: 'k' }));
    expect([down.retryable, down.code]).toEqual([true, '20500']);
    expect(t.requests).toHaveLength(4);
    expect(t.messages).toEqual([]);
  });

  it.for<[string, string]>([
    ['+15005550001', '21211'],
    ['+15005550009', '21614'],
    ['+15005550004', '21610'],
    ['+15005550003', '21408'],
    ['+15005550002', '21612'],
  ])('a number Twilio will not reach (%s) is final: error %s, not retryable, nothing sent', async ([to, code], { onTestFinished }) => {
    const t = await double(onTestFinished);
    const err = await sendError(sender(t).send({ to, body: 'x', idempotencyKey: 'k' }));
    expect([err.retryable, err.code]).toEqual([false, code]);
    expect(err.message).toMatch(new RegExp(`^twilio: 400 ${code} `));
    expect(t.messages).toEqual([]);
  });

  it('a number that is not E.164 is refused before any request (as Twilio would: 21211)', async ({ onTestFinished }) => {
    const t = await double(onTestFinished);
    const err = await sendError(sender(t).send({ to: '0151 2345678', body: 'x', idempotencyKey: 'k' }));
    expect([err.retryable, err.code]).toEqual([false, '21211']);
    expect(err.message).not.toContain('2345678');
    expect(t.requests).toEqual([]);
  });

  it('a wrong auth token is final (401, 20003), and the token is in no error', async ({ onTestFinished }) => {
    const t = await double(onTestFinished);
    const wrong = 'f'.repeat(8) + t.authToken.slice(8);
    const err = await sendError(sender(t, { authToken: wrong }).send({ to: '+4915123456778', body: 'x', idempotencyKey: 'k' }));
    expect([err.retryable, err.code]).toEqual([false, '20003']);
    expect(JSON.stringify({ ...err, message: err.message })).not.toContain(wrong);
    expect(t.requests.map((q) => [q.status, q.authorized])).toEqual([[401, false]]);
  });

  it('no answer at all (nothing listening) is retryable', async () => {
    const t = await startTwilioDouble();
    const url = t.url;
    await t.close();
    const err = await sendError(createTwilioSms({ accountSid: t.accountSid, authToken: t.authToken, from: FROM, apiUrl: url }).send({ to: '+4915123456778', body: 'x', idempotencyKey: 'k' }));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/^twilio: no answer/);
  });
});

describe('verifyTwilioSignature (the SDK validateRequest)', () => {
  const token = '0123456789abcdef0123456789abcdef';
  const url = `https://tickets.example.com/api/webhooks/twilio?bookingId=${BOOKING}`;
  const params = { MessageSid: `SM${'a'.repeat(32)}`, MessageStatus: 'delivered', To: '+4915123456778' };
  it('accepts Twilio\'s signature of the URL and fields; refuses another token, URL, field value, or none', () => {
    const sig = twilioSignature(token, url, params);
    expect(verifyTwilioSignature(token, sig, url, params)).toBe(true);
    expect(verifyTwilioSignature(token.replace('0', '1'), sig, url, params)).toBe(false);
    expect(verifyTwilioSignature(token, sig, url.replace(BOOKING, 'bk_abcdefghijkl_0000000000000000'), params)).toBe(false);
    expect(verifyTwilioSignature(token, sig, url, { ...params, MessageStatus: 'failed' })).toBe(false);
    expect(verifyTwilioSignature(token, undefined, url, params)).toBe(false);
  });
});

describe('retryAfterMs', () => {
  it.each([
    ['3', 3000],
    [' 0 ', 0],
    ['Wed, 21 Oct 2015 07:28:05 GMT', 5000],
    ['soon', undefined],
    [undefined, undefined],
  ])('%j → %j', (value, ms) => {
    expect(retryAfterMs(value, Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(ms);
  });
});
