import { simulatedPaymentKeys } from '../../engine/keys.js';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PDFDocument } from 'pdf-lib';
import { pino } from 'pino';
import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent, gaEvent } from '../../test/events.js';
import { dumpEverything } from '../../test/dump.js';
import { dropPaymentsBookingFk } from '../../test/follow-outbox.js';
import { memoryLogger, startApi, token } from '../../test/http.js';
import { waitFor } from '../../test/wait.js';
import { listSimulatedPayments } from '../../integrations/payments/simulated.js';
import { createOutboxMailer } from '../../integrations/mail/outbox.js';
import { notifyProcessor } from '../../workers/processors.js';
import type { Job } from 'bullmq';

const job = (data: unknown) => ({ id: 'test', data }) as Job;

describe('payments, tickets and refunds over HTTP', () => {
  it('happy path: book, pay, CONFIRMED, one e-mail with a valid PDF, TICKETS_DELIVERED; the QR code verifies once', async ({ engine, redis, ns, pg, onTestFinished }) => {
    await dropPaymentsBookingFk(pg);
    const api = await startApi(engine, { persist: true });
    const outbox = await mkdtemp(join(tmpdir(), 'fg-outbox-'));
    onTestFinished(async () => {
      await api.close();
      await rm(outbox, { recursive: true, force: true });
    });
    const ev = await createGaEvent(engine, 10);
    const ann = await token('ann');
    const booked = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 2 } });
    const bookingId = booked.json.bookingId;
    // before paying there are no tickets
    expect((await api.call('GET', `/api/bookings/${bookingId}/tickets.pdf`, { token: ann })).json.type).toBe('/problems/tickets-not-ready');
    const paid = await api.call('POST', '/api/payments', {
      token: ann, body: { bookingId, paymentMethodId: 'pm_card_visa', holderName: 'Анна Каренина', holderEmail: 'ann@example.com' },
      headers: { 'idempotency-key': 'pay-1' },
    });
    expect(paid.status).toBe(200);
    expect(paid.json).toEqual({ paymentId: `${bookingId}.a1`, status: 'succeeded', bookingStatus: 'CONFIRMED' });
    // the persist worker records the sale (and the holder's details) from the outbox, and asks for the tickets then
    await waitFor('CONFIRMED in the record', () => inRecord(pg, bookingId, 'CONFIRMED'));

    // delivery: the notify job, run twice (BullMQ delivers at least once), sends exactly one e-mail
    const notify = notifyProcessor({ engine, log: pino({ level: 'silent' }), mailer: createOutboxMailer({ dir: outbox }), mailFrom: 'tickets@floodgate.test' });
    expect(await notify(job({ bookingId, channel: 'email' }))).toHaveProperty('sent');
    expect(await notify(job({ bookingId, channel: 'email' }))).toEqual({ skipped: 'already sent' });
    const messages = (await readdir(outbox)).filter((f) => !f.startsWith('.'));
    expect(messages).toHaveLength(1);
    const files = await readdir(join(outbox, messages[0]!));
    const pdfFile = files.find((f) => f.endsWith('.pdf'))!;
    const pdf = await readFile(join(outbox, messages[0]!, pdfFile));
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    expect((await PDFDocument.load(pdf)).getPageCount()).toBe(2);
    const eml = await readFile(join(outbox, messages[0]!, 'message.eml'), 'utf8');
    expect(eml).toMatch(/^To: ann@example.com$/m);
    expect((await api.call('GET', `/api/bookings/${bookingId}`, { token: ann })).json.status).toBe('TICKETS_DELIVERED');

    // the owner downloads the same tickets; nobody else can
    const dl = await fetch(`${api.url}/api/bookings/${bookingId}/tickets.pdf`, { headers: { authorization: `Bearer ${ann}` } });
    expect([dl.status, dl.headers.get('content-type'), dl.headers.get('cache-control')]).toEqual([200, 'application/pdf', 'no-store']);
    expect((await PDFDocument.load(new Uint8Array(await dl.arrayBuffer()))).getPageCount()).toBe(2);
    expect((await api.call('GET', `/api/bookings/${bookingId}/tickets.pdf`, { token: await token('mallory') })).status).toBe(404);

    // the gate: valid once, then already used; a forged code is invalid; only gate or admin tokens may scan
    const [code] = engine.tickets.codes((await engine.bookings.get(bookingId, { userId: 'ann' as never })));
    const gate = await token('gate-1', { admin: false });
    expect((await api.call('POST', '/api/tickets/verify', { token: gate, body: { code } })).status).toBe(403);
    const scanner = await engineToken('scanner', 'gate');
    expect((await api.call('POST', '/api/tickets/verify', { token: scanner, body: { code, gate: 'north' } })).json).toMatchObject({ result: 'valid', bookingId, ticket: 1 });
    expect((await api.call('POST', '/api/tickets/verify', { token: scanner, body: { code } })).json).toMatchObject({ result: 'already_used' });
    const forged = code!.slice(0, -3) + (code!.endsWith('AAA') ? 'BBB' : 'AAA');
    expect((await api.call('POST', '/api/tickets/verify', { token: scanner, body: { code: forged } })).json).toEqual({ result: 'invalid', reason: 'bad-signature' });
    expect((await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((p) => p.bookingId === bookingId && p.status === 'captured')).toHaveLength(1);
  });

  it('20 concurrent identical payment requests: identical replies, one charge', async ({ engine, redis, ns, pg, onTestFinished }) => {
    await dropPaymentsBookingFk(pg);
    const api = await startApi(engine, { persist: true });
    onTestFinished(() => api.close());
    const ev = await createGaEvent(engine, 10);
    const bob = await token('bob');
    const bookingId = (await api.call('POST', '/api/bookings', { token: bob, body: { eventId: ev.id, ticketCount: 1 } })).json.bookingId;
    const replies = await Promise.all(
      Array.from({ length: 20 }, () =>
        api.call('POST', '/api/payments', { token: bob, body: { bookingId, paymentMethodId: 'pm_card_visa' }, headers: { 'idempotency-key': 'same-key' } }),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(new Set(replies.map((r) => r.text)).size).toBe(1);
    expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(19);
    const charges = (await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((p) => p.bookingId === bookingId);
    expect(charges).toHaveLength(1);
    expect(charges[0]!.status).toBe('captured');
    // the same key with another request is refused
    const other = await api.call('POST', '/api/payments', { token: bob, body: { bookingId, paymentMethodId: 'pm_card_mastercard' }, headers: { 'idempotency-key': 'same-key' } });
    expect([other.status, other.json.type]).toEqual([422, '/problems/idempotency-key-reused']);
    // without a key, concurrent payments of one booking still charge once: the state guard decides
    const cat = await token('cat');
    const second = (await api.call('POST', '/api/bookings', { token: cat, body: { eventId: ev.id, ticketCount: 1 } })).json.bookingId;
    const racing = await Promise.all(Array.from({ length: 10 }, () => api.call('POST', '/api/payments', { token: cat, body: { bookingId: second, paymentMethodId: 'pm_card_visa' } })));
    // one attempt: requests that find it open carry it on (same idempotency keys at the provider) and answer the same
    // success; the others are refused as already being paid
    const ok = racing.filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((r) => r.json.paymentId))).toEqual(new Set([`${second}.a1`]));
    expect(racing.filter((r) => r.status !== 200).every((r) => r.status === 409 && r.json.type === '/problems/booking-not-payable')).toBe(true);
    expect((await engine.payments.attempts(second)).map((a) => a.status)).toEqual(['captured']);
    expect((await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((p) => p.bookingId === second)).toHaveLength(1);
  });

  it('declines answer 402 with attemptsLeft; the last one cancels and frees the seats', async ({ engine, pg, onTestFinished }) => {
    await dropPaymentsBookingFk(pg);
    const api = await startApi(engine, { persist: true });
    onTestFinished(() => api.close());
    const ev = await createGaEvent(engine, 3);
    const dan = await token('dan');
    const bookingId = (await api.call('POST', '/api/bookings', { token: dan, body: { eventId: ev.id, ticketCount: 3 } })).json.bookingId;
    const pay = () => api.call('POST', '/api/payments', { token: dan, body: { bookingId, paymentMethodId: 'pm_card_chargeDeclined' } });
    for (const left of [2, 1, 0]) {
      const r = await pay();
      expect([r.status, r.json.type, r.json.attemptsLeft]).toEqual([402, '/problems/payment-failed', left]);
      if (left > 0) {
        // the booking says why it is PAYMENT_FAILED (recorded by the persist worker from the PaymentDeclined entry)
        const why = `declined: ${r.json.declineCode}: ${r.json.detail}`;
        await waitFor('PAYMENT_FAILED in the record', async () => {
          const now = (await api.call('GET', `/api/bookings/${bookingId}`, { token: dan })).json;
          return now.status === 'PAYMENT_FAILED' && now.failureReason === why;
        });
      }
    }
    await waitFor('CANCELLED in the record', async () => (await api.call('GET', `/api/bookings/${bookingId}`, { token: dan })).json.status === 'CANCELLED');
    expect((await api.call('GET', `/api/events/${ev.id}`)).json.tiers[0].available).toBe(3);
    expect((await pay()).json.type).toBe('/problems/booking-not-payable');
  });

  it('refunds over HTTP: the buyer asks, the refund job gives money and seats back', async ({ engine, jobs, pg, onTestFinished }) => {
    await dropPaymentsBookingFk(pg);
    const api = await startApi(engine, { persist: true });
    onTestFinished(() => api.close());
    const ev = await createGaEvent(engine, 5);
    const eve = await token('eve');
    const bookingId = (await api.call('POST', '/api/bookings', { token: eve, body: { eventId: ev.id, ticketCount: 2 } })).json.bookingId;
    await api.call('POST', '/api/payments', { token: eve, body: { bookingId, paymentMethodId: 'pm_card_visa' } });
    await waitFor('CONFIRMED in the record', () => inRecord(pg, bookingId, 'CONFIRMED'));
    expect((await api.call('POST', `/api/bookings/${bookingId}/refund`, { token: await token('mallory'), body: {} })).status).toBe(404);
    const asked = await api.call('POST', `/api/bookings/${bookingId}/refund`, { token: eve, body: { reason: 'ill' } });
    expect([asked.status, asked.json]).toEqual([202, { bookingId, status: 'REFUND_REQUESTED', decision: 'automatic' }]);
    expect(jobs.refund).toContain(bookingId);
    await engine.refunds.process(bookingId);
    // REFUNDED, and the seats back in Postgres, from the outbox's BookingRefunded
    await waitFor('REFUNDED in the record', async () => (await api.call('GET', `/api/bookings/${bookingId}`, { token: eve })).json.status === 'REFUNDED');
    expect((await api.call('GET', `/api/events/${ev.id}`)).json.tiers[0].available).toBe(5);
    const again = await api.call('POST', `/api/bookings/${bookingId}/refund`, { token: eve });
    expect([again.status, again.json.type]).toEqual([409, '/problems/refund-not-allowed']);
  });

  it('a refund after the gate scan: 409 ticket-used for the buyer and a plain approval; an admin override needs a reason', async ({ engine, jobs, pg, onTestFinished }) => {
    await dropPaymentsBookingFk(pg);
    const api = await startApi(engine, { persist: true });
    onTestFinished(() => api.close());
    const ev = await createGaEvent(engine, 5);
    const gus = await token('gus');
    const root = await token('root', { admin: true });
    const bookingId = (await api.call('POST', '/api/bookings', { token: gus, body: { eventId: ev.id, ticketCount: 1 } })).json.bookingId;
    expect((await api.call('POST', '/api/payments', { token: gus, body: { bookingId, paymentMethodId: 'pm_card_visa' } })).status).toBe(200);
    await waitFor('CONFIRMED in the record', () => inRecord(pg, bookingId, 'CONFIRMED'));
    const [code] = engine.tickets.codes(await engine.bookings.get(bookingId, { userId: 'gus' as never }));
    expect((await api.call('POST', '/api/tickets/verify', { token: await engineToken('scanner', 'gate'), body: { code } })).json.result).toBe('valid');

    const asked = await api.call('POST', `/api/bookings/${bookingId}/refund`, { token: gus, body: { reason: 'left early' } });
    expect([asked.status, asked.headers.get('content-type'), asked.json.type, asked.json.scannedTickets]).toEqual([
      409, 'application/problem+json', '/problems/ticket-used', 1,
    ]);
    const plain = await api.call('POST', `/api/admin/bookings/${bookingId}/refund`, { token: root, body: { decision: 'approve' } });
    expect([plain.status, plain.json.type]).toEqual([409, '/problems/ticket-used']);
    const noReason = await api.call('POST', `/api/admin/bookings/${bookingId}/refund`, { token: root, body: { decision: 'approve', overrideTicketUsed: true } });
    expect([noReason.status, noReason.json.type, noReason.json.errors]).toEqual([400, '/problems/validation', [expect.objectContaining({ field: 'reason' })]]);
    const denyOverride = await api.call('POST', `/api/admin/bookings/${bookingId}/refund`, {
      token: root, body: { decision: 'deny', overrideTicketUsed: true, reason: 'x' },
    });
    expect([denyOverride.status, denyOverride.json.errors]).toEqual([400, [expect.objectContaining({ field: 'overrideTicketUsed' })]]);
    expect(jobs.refund).not.toContain(bookingId);
    expect((await api.call('GET', `/api/bookings/${bookingId}`, { token: gus })).json.status).toBe('CONFIRMED');

    const forced = await api.call('POST', `/api/admin/bookings/${bookingId}/refund`, {
      token: root, body: { decision: 'approve', overrideTicketUsed: true, reason: 'stage collapsed' },
    });
    expect([forced.status, forced.json]).toEqual([200, { bookingId, status: 'REFUND_REQUESTED' }]);
    expect(jobs.refund).toContain(bookingId);
    expect(await engine.refunds.process(bookingId)).toBe('refunded');
    await waitFor('REFUNDED in the record', async () => (await api.call('GET', `/api/bookings/${bookingId}`, { token: gus })).json.status === 'REFUNDED');
  });

  it('a card number sent to any endpoint is refused (400 raw-card-data) and reaches no log line, job or table', async ({ engine, jobs, pg, redis, ns, onTestFinished }) => {
    const { log, lines } = memoryLogger('trace');
    const api = await startApi(engine, { log, persist: true });
    onTestFinished(() => api.close());
    const ev = await createGaEvent(engine, 5);
    const fay = await token('fay');
    const admin = await token('root', { admin: true });
    const bookingId = (await api.call('POST', '/api/bookings', { token: fay, body: { eventId: ev.id, ticketCount: 1 } })).json.bookingId;
    const cards = ['4242424242424242', '4111 1111 1111 1111', '5555-5555-5555-4444', '378282246310005', '6011000990139424'];
    const attempts = (card: string): [string, string, object | undefined, Record<string, string>?][] => [
      ['POST', '/api/payments', { bookingId, paymentMethodId: card }],
      ['POST', '/api/payments', { bookingId, paymentMethodId: 'pm_card_visa', holderName: `card ${card}` }],
      ['POST', '/api/payments', { bookingId, paymentMethodId: 'pm_card_visa', cardDetails: { number: card, cvc: '123' } }],
      ['POST', '/api/bookings', { eventId: ev.id, ticketCount: 1, note: card }],
      ['POST', '/api/admin/events', { ...gaEvent(5), name: `Show ${card}` }],
      ['POST', `/api/events/${ev.id}/queue?ref=${encodeURIComponent(card)}`, undefined],
      ['GET', `/api/events?category=${encodeURIComponent(card)}`, undefined],
      ['POST', '/api/tickets/verify', { code: card }],
      ['POST', `/api/bookings/${bookingId}/refund`, { reason: card }],
      ['POST', '/api/webhooks/stripe', { data: { object: { card } } }],
      ['POST', '/api/bookings', { eventId: ev.id, ticketCount: 1 }, { 'idempotency-key': card.replace(/ /g, '-') }],
    ];
    for (const card of cards) {
      for (const [method, path, body, headers] of attempts(card)) {
        const r = await api.call(method, path, { token: path.includes('admin') ? admin : fay, body, headers });
        expect([r.status, r.json?.type], `${method} ${path}`).toEqual([400, '/problems/raw-card-data']);
        expect(r.text).not.toContain(card);
      }
    }
    const everything = (await dumpEverything(pg, redis, ns)) + lines.join('\n') + JSON.stringify(jobs);
    for (const card of cards) {
      expect(everything).not.toContain(card);
      expect(everything).not.toContain(card.replace(/[ -]/g, ''));
    }
    // and a harmless body with long numbers that are not card numbers still works
    expect((await api.call('POST', '/api/bookings', { token: fay, body: { eventId: ev.id, ticketCount: 1 }, headers: { 'idempotency-key': '1234567890123' } })).status).toBe(201);
  });
});

/** Whether Postgres has recorded the booking in this state (the API's view falls back to the Redis hold before that). */
const inRecord = async (pg: { query: (q: string, v: unknown[]) => Promise<{ rowCount: number | null }> }, id: string, state: string) =>
  (await pg.query('SELECT 1 FROM bookings WHERE id = $1 AND state = $2', [id, state])).rowCount === 1;

async function engineToken(user: string, role: string) {
  const { sign } = await import('hono/jwt');
  const { TEST_JWT_SECRET } = await import('../../test/http.js');
  return sign({ sub: user, role, exp: Math.floor(Date.now() / 1000) + 600 }, TEST_JWT_SECRET, 'HS256');
}
