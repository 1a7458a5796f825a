import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { twilioSignature } from '../../test/doubles/twilio.js';
import { startApi } from '../../test/http.js';
import { drain } from '../../test/wait.js';
import type { BookingId, UserId } from '../../engine/ids.js';
import type { Engine } from '../../engine/index.js';

const TOKEN = randomBytes(16).toString('hex');
const PUBLIC = 'https://tickets.example.test/api/webhooks/twilio';
const sid = () => `SM${randomBytes(16).toString('hex')}`;

/** A status callback as Twilio posts it: form fields, signed over the public URL (with the booking id) and the fields. */
function receipt(bookingId: string, fields: Record<string, string>, o: { token?: string; signedUrl?: string } = {}) {
  const url = `${PUBLIC}?bookingId=${bookingId}`;
  const params = { AccountSid: `AC${'0'.repeat(32)}`, ApiVersion: '2010-04-01', To: '+4915123456778', From: '+15005550006', ...fields };
  return {
    path: `/api/webhooks/twilio?bookingId=${bookingId}`,
    body: new URLSearchParams(params).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilioSignature(o.token ?? TOKEN, o.signedUrl ?? url, params) },
  };
}

async function booking(engine: Engine): Promise<BookingId> {
  const ev = await createGaEvent(engine, 5);
  const { reservation } = await engine.bookings.create({ userId: 'pat' as UserId, eventId: ev.id, ticketCount: 1 });
  await drain(engine, ev.id);
  return reservation.bookingId;
}

describe('POST /api/webhooks/twilio', () => {
  it('keeps the status per booking: forward only, duplicates and late receipts change nothing', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine, { twilio: { authToken: TOKEN, statusCallbackUrl: PUBLIC } });
    onTestFinished(() => api.close());
    const id = await booking(engine);
    const m = sid();
    await engine.sms.accepted(id, 'twilio', m, 'queued');
    const post = (status: string, extra: Record<string, string> = {}) => {
      const r = receipt(id, { MessageSid: m, MessageStatus: status, SmsSid: m, SmsStatus: status, ...extra });
      return api.call('POST', r.path, { body: r.body, headers: r.headers });
    };
    const sent = await post('sent');
    expect([sent.status, sent.json]).toEqual([200, { received: true, recorded: true }]);
    expect((await post('delivered')).json).toEqual({ received: true, recorded: true });
    expect((await post('delivered')).json).toEqual({ received: true, recorded: false }); // a duplicate
    expect((await post('sent')).json).toEqual({ received: true, recorded: false }); // late, out of order
    expect(await engine.sms.get(id)).toMatchObject({ messageSid: m, status: 'delivered', errorCode: null });
    // a receipt for another message than the booking's is not the booking's status
    const other = receipt(id, { MessageSid: sid(), MessageStatus: 'failed', ErrorCode: '30003' });
    expect((await api.call('POST', other.path, { body: other.body, headers: other.headers })).json).toEqual({ received: true, recorded: false });
    expect((await engine.sms.get(id))!.status).toBe('delivered');
  });

  it('records an undelivered message with its error code', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine, { twilio: { authToken: TOKEN, statusCallbackUrl: PUBLIC } });
    onTestFinished(() => api.close());
    const id = await booking(engine);
    const m = sid();
    await engine.sms.accepted(id, 'twilio', m, 'queued');
    const r = receipt(id, { MessageSid: m, MessageStatus: 'undelivered', ErrorCode: '30003' });
    expect((await api.call('POST', r.path, { body: r.body, headers: r.headers })).status).toBe(200);
    expect(await engine.sms.get(id)).toMatchObject({ status: 'undelivered', errorCode: '30003' });
  });

  it('refuses a forged, altered or unsigned callback with 400 problem+json and records nothing', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine, { twilio: { authToken: TOKEN, statusCallbackUrl: PUBLIC } });
    onTestFinished(() => api.close());
    const id = await booking(engine);
    const m = sid();
    await engine.sms.accepted(id, 'twilio', m, 'queued');
    const before = await engine.sms.get(id);
    const good = receipt(id, { MessageSid: m, MessageStatus: 'failed', ErrorCode: '30005' });
    const forged = [
      // signed with another token
      receipt(id, { MessageSid: m, MessageStatus: 'failed' }, { token: randomBytes(16).toString('hex') }),
      // a genuine signature over another booking's URL
      { ...good, path: `/api/webhooks/twilio?bookingId=${id.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a'))}` },
      // a field changed after signing
      { ...good, body: good.body.replace('MessageStatus=failed', 'MessageStatus=delivered') },
      // no signature
      { ...good, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    ] as { path: string; body: string; headers: Record<string, string> }[];
    for (const f of forged) {
      const res = await api.call('POST', f.path, { body: f.body, headers: f.headers });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.json).toMatchObject({ type: '/problems/webhook-signature', title: 'Invalid webhook signature', status: 400 });
    }
    expect(await engine.sms.get(id)).toEqual(before);
  });

  it('a signed callback without a usable message is 400 webhook-malformed; without Twilio configured the route is 404', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine, { twilio: { authToken: TOKEN, statusCallbackUrl: PUBLIC } });
    const off = await startApi(engine);
    onTestFinished(async () => {
      await api.close();
      await off.close();
    });
    const id = await booking(engine);
    const bad = receipt(id, { MessageSid: 'nope', MessageStatus: 'sent' });
    const res = await api.call('POST', bad.path, { body: bad.body, headers: bad.headers });
    expect([res.status, res.json.type, res.json.errors]).toEqual([400, '/problems/webhook-malformed', [{ field: 'MessageSid', detail: 'a Twilio message SID' }]]);
    const none = await off.call('POST', bad.path, { body: bad.body, headers: bad.headers });
    expect([none.status, none.json.type]).toEqual([404, '/problems/not-found']);
  });

  it('is documented in /openapi.json', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    const doc = (await api.call('GET', '/openapi.json')).json;
    const op = doc.paths['/api/webhooks/twilio'].post;
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '400', '404']));
    expect(Object.keys(op.requestBody.content)).toEqual(['application/x-www-form-urlencoded']);
  });
});
