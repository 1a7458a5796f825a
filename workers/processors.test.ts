import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from '../test/fixtures.js';
import { createGaEvent } from '../test/events.js';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../test/env.js';
import { dropPaymentsBookingFk } from '../test/follow-outbox.js';
import { drain, waitFor } from '../test/wait.js';
import { createEngine } from '../engine/index.js';
import type { UserId } from '../engine/ids.js';
import { createTicketPdfPool, type TicketPdfPool } from '../engine/tickets/ticket-pdf-pool.js';
import { createMetrics } from '../platform/metrics.js';
import { createOutboxMailer } from '../integrations/mail/outbox.js';
import { listSimulatedPayments } from '../integrations/payments/simulated.js';
import { createPersistWorker } from './persist/persist.js';
import { startJobWorkers } from './processors.js';
import { createJobSink, QUEUES } from '../integrations/queues.js';
import { simulatedPaymentKeys } from '../engine/keys.js';

/** The BullMQ stages for real: payment settle, notify, refund; and a payer killed with SIGKILL mid-payment. */
describe('job workers', () => {
  it('notify draws the ticket PDFs on the render threads it is given, several bookings at once', async ({ engine, deps, ns, onTestFinished }) => {
    const outbox = await mkdtemp(join(tmpdir(), 'fg-jobs-'));
    const bull = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const sink = createJobSink(bull, `${ns}:bull`, { sms: false });
    const e = createEngine({ ...deps, jobs: sink });
    const pool = createTicketPdfPool({ threads: 1 });
    const rendered: number[] = [];
    const renderPdf: TicketPdfPool['render'] = async (input) => {
      const pdf = await pool.render(input);
      rendered.push(input.tickets.length);
      return pdf;
    };
    const workers = startJobWorkers(
      { engine: e, log: pino({ level: 'silent' }), mailer: createOutboxMailer({ dir: outbox }), mailFrom: 'tickets@floodgate.test', renderPdf },
      bull, `${ns}:bull`, ['payment', 'notify'], { concurrency: { notify: 4 } },
    );
    onTestFinished(async () => {
      await workers.stop();
      await pool.close();
      await sink.close();
      bull.disconnect();
      await rm(outbox, { recursive: true, force: true });
    });
    const ev = await createGaEvent(engine, 12);
    const users = ['ann', 'bob', 'cy'] as UserId[];
    const ids = await Promise.all(users.map(async (userId, i) => (await e.bookings.create({ userId, eventId: ev.id, ticketCount: i + 1 })).reservation.bookingId));
    await drain(e, ev.id);
    await Promise.all(ids.map((bookingId, i) => e.payments.pay({ bookingId, userId: users[i]!, paymentMethodId: 'pm_card_visa' })));
    await drain(e, ev.id); // CONFIRMED in Postgres; the persist worker asks for the tickets then (issue 12, its branch)
    for (const id of ids) await sink.deliverTickets(id);
    for (const [i, id] of ids.entries()) {
      await waitFor(`booking ${i} delivered`, async () => (await e.bookings.get(id, { userId: users[i]! })).status === 'TICKETS_DELIVERED');
    }
    expect(rendered.sort()).toEqual([1, 2, 3]);
    expect((await readdir(outbox)).filter((f) => !f.startsWith('.'))).toHaveLength(3);
  });

  it('a paid booking is delivered by the notify worker: one e-mail, TICKETS_DELIVERED; a refund job refunds', async ({ engine, deps, ns, onTestFinished }) => {
    const outbox = await mkdtemp(join(tmpdir(), 'fg-jobs-'));
    const bull = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const sink = createJobSink(bull, `${ns}:bull`, { sms: false });
    const e = createEngine({ ...deps, jobs: sink });
    const metrics = createMetrics('workers');
    const workers = startJobWorkers(
      { engine: e, log: pino({ level: 'silent' }), metrics, mailer: createOutboxMailer({ dir: outbox }), mailFrom: 'tickets@floodgate.test' },
      bull, `${ns}:bull`, ['payment', 'notify', 'refund'],
    );
    onTestFinished(async () => {
      await workers.stop();
      await sink.close();
      bull.disconnect();
      await rm(outbox, { recursive: true, force: true });
    });
    const ev = await createGaEvent(engine, 4);
    const { reservation } = await e.bookings.create({ userId: 'gil' as UserId, eventId: ev.id, ticketCount: 2 });
    const id = reservation.bookingId;
    await drain(e, ev.id);
    expect((await e.payments.pay({ bookingId: id, userId: 'gil' as UserId, paymentMethodId: 'pm_card_visa' })).outcome).toBe('succeeded');
    await drain(e, ev.id); // CONFIRMED in Postgres; the persist worker asks for the tickets then (issue 12, its branch)
    await sink.deliverTickets(id);
    await waitFor('tickets delivered', async () => (await e.bookings.get(id, { userId: 'gil' as UserId })).status === 'TICKETS_DELIVERED');
    await sink.deliverTickets(id); // asked again: the job id and the delivery claim keep it to one e-mail
    await waitFor('the second notify job done', async () => ((await sink.queues.notify.getJobCounts('completed')).completed ?? 0) >= 1);
    expect((await readdir(outbox)).filter((f) => !f.startsWith('.'))).toHaveLength(1);
    expect(await metrics.registry.getSingleMetricAsString('floodgate_notifications_total')).toMatch(/channel="email",outcome="sent"[^}]*\} 1$/m);

    await e.refunds.request(id, 'gil' as UserId);
    // REFUNDED comes from the outbox's BookingRefunded (the persist worker's step, played here by drain)
    await waitFor('refunded', async () => (await drain(e, ev.id), (await e.bookings.get(id, { userId: 'gil' as UserId })).status === 'REFUNDED'));
    expect((await e.inventory.redisState(ev.id))[ev.tiers[0]!.id]!.free).toBe(4);
  });

  for (const step of ['authorize', 'confirm', 'capture'] as const) {
    it(`a payer killed (SIGKILL) after the ${step}: the settle job finishes it, one charge, one confirmation, one e-mail`, async ({ engine, deps, ns, redis, pg, clock, onTestFinished }) => {
      await dropPaymentsBookingFk(pg);
      const outbox = await mkdtemp(join(tmpdir(), 'fg-kill-'));
      const bull = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
      const sink = createJobSink(bull, `${ns}:bull`, { sms: false });
      const e = createEngine({ ...deps, jobs: sink });
      const ev = await createGaEvent(engine, 4);
      const user = `killed-${step}` as UserId;
      const { reservation } = await e.bookings.create({ userId: user, eventId: ev.id, ticketCount: 1 });
      const id = reservation.bookingId;
      // the payer does not wait for the persist worker: the hold is not in Postgres yet when it pays
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', 'test', 'children', 'pay-and-die.ts')], {
        env: { ...process.env, NS: ns, SCHEMA: ns, REDIS_URL: TEST_REDIS_URL, DATABASE_URL: TEST_DATABASE_URL, BOOKING_ID: id, USER_ID: user,
          DIE_AFTER: step, NOW: String(clock.now()) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const signal = await new Promise((r) => child.once('exit', (_code, sig) => r(sig)));
      expect(signal, out).toBe('SIGKILL');
      const money = () => listSimulatedPayments(redis, simulatedPaymentKeys(ns)).then((p) => p.filter((x) => x.bookingId === id));
      expect((await money()).map((m) => m.status)).toEqual([step === 'capture' ? 'captured' : 'authorized']);
      // authorize: the seats are still only held (being paid); confirm, capture: sold in Redis, the money not captured
      // (confirm) or captured but not recorded (capture)
      expect((await e.holds.get(ev.id, id))!.state).toBe(step === 'authorize' ? 'paying' : 'sold');
      expect((await e.payments.attempts(id)).map((a) => a.status)).toEqual([step === 'authorize' ? 'pending' : 'authorized']);

      // the settle job the payer queued before charging: due now rather than after its delay. Promoted before any
      // worker runs (a worker moves a delayed job whose delay has passed on its own: under load the job may be due already)
      const settle = await sink.queues.payment.getJob(QUEUES.payment.jobId({ bookingId: id, attempt: 1 }));
      expect(await settle?.isDelayed()).toBe(true);
      await settle!.promote();
      const workers = startJobWorkers(
        { engine: e, log: pino({ level: 'silent' }), mailer: createOutboxMailer({ dir: outbox }), mailFrom: 'tickets@floodgate.test' },
        bull, `${ns}:bull`, ['payment', 'notify'],
      );
      // and the persist worker: a sale the dead payer made in Redis is recorded CONFIRMED from the outbox
      const persist = createPersistWorker({ engine: e, log: pino({ level: 'silent' }), maxIdleMs: 20 });
      persist.start();
      onTestFinished(async () => {
        await persist.stop();
        await workers.stop();
        await sink.close();
        bull.disconnect();
        await rm(outbox, { recursive: true, force: true });
      });
      await waitFor('the settle job done', async () => (await e.payments.attempts(id))[0]?.status === 'captured');
      // recorded CONFIRMED: its transition, not the booking's state now. The sale's BookingConfirmed is appended before
      // the capture, so the persist worker may record CONFIRMED and the notify worker deliver the tickets (CONFIRMED ->
      // TICKETS_DELIVERED) before the capture is recorded; a wait for state = 'CONFIRMED' then never ends
      await waitFor('recorded CONFIRMED', async () =>
        (await pg.query("SELECT 1 FROM booking_transitions WHERE booking_id = $1 AND to_state = 'CONFIRMED'", [id])).rowCount === 1);
      // the persist worker asks for the tickets when it records CONFIRMED (issue 12, its branch); asking again is one job
      await sink.deliverTickets(id);
      await waitFor('tickets delivered', async () => (await e.bookings.get(id, { userId: user })).status === 'TICKETS_DELIVERED');
      expect((await money()).map((m) => m.status)).toEqual(['captured']);
      expect((await e.payments.attempts(id)).map((a) => a.status)).toEqual(['captured']);
      const confirmations = await pg.query("SELECT count(*)::int AS n FROM booking_transitions WHERE booking_id = $1 AND to_state = 'CONFIRMED'", [id]);
      expect(confirmations.rows[0].n).toBe(1);
      expect((await readdir(outbox)).filter((f) => !f.startsWith('.'))).toHaveLength(1);
      // running the settle job again changes nothing
      expect(await e.payments.settle(id, 1)).toEqual({ outcome: 'done' });
      expect(await money()).toHaveLength(1);
    });
  }
});
