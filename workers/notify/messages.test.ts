import type { Job } from 'bullmq';
import { pino } from 'pino';
import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { drain } from '../../test/wait.js';
import { CreateEvent } from '../../api/schemas.js';
import type { Engine } from '../../engine/index.js';
import type { BookingId, UserId } from '../../engine/ids.js';
import { formatAmount, notifyProcessor, refundProcessor } from '../processors.js';
import type { Mail, Mailer } from '../../integrations/mail/mailer.js';

const job = (data: unknown) => ({ id: 'test', data }) as Job;

/** A mailer that keeps what it is given; `failNext` makes the next send fail as a transport would. */
function recordingMailer() {
  const sent: Mail[] = [];
  let failNext = 0;
  const mailer: Mailer = {
    name: 'outbox',
    async send(m) {
      if (failNext > 0) {
        failNext--;
        throw new Error('transport down');
      }
      sent.push(m);
      return { messageId: `msg-${sent.length}` };
    },
  };
  return { mailer, sent, failNext: (n: number) => (failNext = n) };
}

async function paid(engine: Engine, eventId: string, who: string, holderName?: string): Promise<BookingId> {
  const { reservation } = await engine.bookings.create({ userId: who as UserId, eventId: eventId as never, ticketCount: 2 });
  await drain(engine, eventId as never);
  const r = await engine.payments.pay({ bookingId: reservation.bookingId, userId: who as UserId, paymentMethodId: 'pm_card_visa', holderName });
  expect(r.outcome).toBe('succeeded');
  await drain(engine, eventId as never); // CONFIRMED (and the holder's name) recorded from the outbox
  return reservation.bookingId;
}

describe('messages to buyers', () => {
  it('the tickets e-mail greets the holder by name, or just "Hello," and states the start in the event\'s time zone', async ({ engine }) => {
    const ev = await engine.createEvent(gaEvent(10, { startsAt: '2031-06-01T20:00:00Z', timeZone: 'Europe/Paris' }));
    expect(ev.timeZone).toBe('Europe/Paris');
    const named = await paid(engine, ev.id, 'anna', 'Anna Karenina');
    const anonymous = await paid(engine, ev.id, 'nobody');
    const { mailer, sent } = recordingMailer();
    const notify = notifyProcessor({ engine, log: pino({ level: 'silent' }), mailer, mailFrom: 'tickets@floodgate.test' });
    await notify(job({ bookingId: named, channel: 'email' }));
    await notify(job({ bookingId: anonymous, channel: 'email' }));
    expect(sent).toHaveLength(2);
    expect(sent[0]!.text).toMatch(/^Hello Anna Karenina,\n/);
    expect(sent[1]!.text).toMatch(/^Hello,\n/);
    for (const m of sent) {
      expect(m.text).toContain('at Test Hall, Sun 1 Jun 2031, 22:00 (CEST), are attached');
      expect(m.text).not.toMatch(/\d{4}-\d{2}-\d{2}T/);
    }
  });

  it('an event without a time zone says UTC; an unknown time zone is refused at creation', async ({ engine }) => {
    const ev = await engine.createEvent(gaEvent(10, { startsAt: '2031-06-01T20:00:00Z' }));
    expect(ev.timeZone).toBe('UTC');
    const id = await paid(engine, ev.id, 'utc');
    const { mailer, sent } = recordingMailer();
    await notifyProcessor({ engine, log: pino({ level: 'silent' }), mailer, mailFrom: 'tickets@floodgate.test' })(job({ bookingId: id, channel: 'email' }));
    expect(sent[0]!.text).toContain('Sun 1 Jun 2031, 20:00 (UTC)');
    const bad = CreateEvent.safeParse({ ...gaEvent(5), timeZone: 'Mars/Olympus_Mons' });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.'))).toEqual(['timeZone']);
    await expect(engine.createEvent(gaEvent(5, { timeZone: 'Europe/Paris; DROP TABLE events' }))).rejects.toThrow(/timeZone/);
  });

  it('a refund sends one e-mail, however often its job runs, and again after a transport failure', async ({ engine }) => {
    const ev = await engine.createEvent(gaEvent(10, { startsAt: '2031-06-01T20:00:00Z', timeZone: 'America/New_York' }));
    const id = await paid(engine, ev.id, 'leaver', 'Lev');
    const other = await paid(engine, ev.id, 'stayer');
    const { mailer, sent, failNext } = recordingMailer();
    const refund = refundProcessor({ engine, log: pino({ level: 'silent' }), mailer, mailFrom: 'tickets@floodgate.test' });
    // a job for a booking nobody refunded sends nothing
    expect(await refund(job({ bookingId: other }))).toEqual({ result: 'nothing-to-do', mail: 'not refunded' });
    expect(await engine.refunds.request(id, 'leaver' as UserId)).toMatchObject({ decision: 'automatic' });
    failNext(1);
    await expect(refund(job({ bookingId: id }))).rejects.toThrow(/transport down/); // refunded, the e-mail failed
    await drain(engine, ev.id); // REFUNDED from the outbox's BookingRefunded
    expect((await engine.bookings.get(id, { userId: 'leaver' as UserId })).status).toBe('REFUNDED');
    expect(await refund(job({ bookingId: id }))).toEqual({ result: 'nothing-to-do', mail: 'sent' }); // the retry sends it
    expect(await refund(job({ bookingId: id }))).toEqual({ result: 'nothing-to-do', mail: 'already sent' });
    expect(sent).toHaveLength(1);
    expect(sent[0]!).toMatchObject({ subject: 'Refund for Test GA', idempotencyKey: `refund-${id}`, attachments: [] });
    expect(sent[0]!.text).toMatch(/^Hello Lev,\n/);
    expect(sent[0]!.text).toContain('Sun 1 Jun 2031, 16:00 (GMT-4), has been refunded: EUR 90.00 goes back');
  });

  it('formats amounts in minor units by the currency\'s own decimals', () => {
    expect([formatAmount(9000, 'EUR'), formatAmount(9000, 'JPY'), formatAmount(5, 'USD')]).toEqual(['EUR 90.00', 'JPY 9,000', 'USD 0.05']);
  });
});
