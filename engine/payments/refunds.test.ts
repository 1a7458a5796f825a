import { describe, expect, it, type Fixtures } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { drain } from '../../test/wait.js';
import { getBooking, transition, transitionsOf } from '../booking/bookings-repo.js';
import { isDomainError } from '../errors.js';
import type { BookingId, UserId } from '../ids.js';
import { createEngine, type Engine, type EngineDeps } from '../index.js';

const u = (s: string) => s as UserId;
const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e) => (isDomainError(e) ? e.code : Promise.reject(e)));

/** Books and pays `n` tickets for `who`; `delivered` moves it on to TICKETS_DELIVERED as the notify worker does. */
async function paidBooking({ engine, pg }: Pick<Fixtures, 'engine' | 'pg'>, eventId: string, who: string, o: { delivered?: boolean } = {}): Promise<BookingId> {
  const { reservation } = await engine.bookings.create({ userId: u(who), eventId: eventId as never, ticketCount: 1 });
  await drain(engine, eventId as never);
  expect((await engine.payments.pay({ bookingId: reservation.bookingId, userId: u(who), paymentMethodId: 'pm_card_visa' })).outcome).toBe('succeeded');
  await drain(engine, eventId as never); // the persist worker records the sale (BookingConfirmed) before anything else
  if (o.delivered) await transition(pg, reservation.bookingId, ['CONFIRMED'], 'TICKETS_DELIVERED', 'delivered: email');
  return reservation.bookingId;
}

const scan = async (engine: Engine, id: BookingId) => {
  const b = (await engine.bookings.recorded(id))!;
  return (await engine.tickets.verify(engine.tickets.codes(b)[0]!)).result;
};

/** An engine whose refund cutoff lies beyond every test event: every request waits for an admin. */
const afterCutoff = (deps: EngineDeps) => createEngine({ ...deps, config: { ...deps.config, refundCutoffHours: 24 * 365 * 10 } });

describe('refunds and the gate', () => {
  it('a booking with a ticket scanned valid is not refunded: the buyer gets ticket-used before and after the cutoff, nothing changes', async ({ engine, pg, deps, jobs }) => {
    const ev = await createGaEvent(engine, 5);
    const id = await paidBooking({ engine, pg }, ev.id, 'scanned', { delivered: true });
    expect(await scan(engine, id)).toBe('valid');
    expect(await codeOf(engine.refunds.request(id, u('scanned'), 'changed my mind'))).toBe('TICKET_USED');
    expect(await codeOf(afterCutoff(deps).refunds.request(id, u('scanned')))).toBe('TICKET_USED');
    expect(jobs.refund).not.toContain(id);
    expect((await getBooking(pg, id))!.status).toBe('TICKETS_DELIVERED');
    expect((await pg.query('SELECT 1 FROM refunds WHERE booking_id = $1', [id])).rowCount).toBe(0);
    // and the refund job, were it asked anyway, has nothing approved to act on
    expect(await engine.refunds.process(id)).toBe('nothing-to-do');
  });

  it('an admin refunds a scanned booking only with overrideTicketUsed and a reason; the audit trail says so', async ({ engine, pg, jobs }) => {
    const ev = await createGaEvent(engine, 5);
    const id = await paidBooking({ engine, pg }, ev.id, 'vip', { delivered: true });
    expect(await scan(engine, id)).toBe('valid');
    expect(await codeOf(engine.refunds.decide(id, true, 'root'))).toBe('TICKET_USED');
    await expect(engine.refunds.decide(id, true, 'root', { overrideTicketUsed: true })).rejects.toThrow(/with a reason/);
    expect(await engine.refunds.decide(id, true, 'root', { overrideTicketUsed: true, reason: 'show cancelled at half time' })).toEqual({
      status: 'REFUND_REQUESTED',
    });
    expect(jobs.refund).toContain(id);
    expect(await engine.refunds.process(id)).toBe('refunded');
    await drain(engine, ev.id); // REFUNDED comes from the outbox's BookingRefunded
    expect((await getBooking(pg, id))!.status).toBe('REFUNDED');
    const audit = await transitionsOf(pg, id);
    expect(audit.find((t) => t.to === 'REFUND_REQUESTED')!.cause).toBe('refund approved by root over 1 scanned ticket(s): show cancelled at half time');
  });

  it('a ticket scanned while a refund waits for review: approval is refused (ticket-used), denial keeps it', async ({ engine, pg, deps }) => {
    const ev = await createGaEvent(engine, 5);
    const near = afterCutoff(deps);
    const id = await paidBooking({ engine, pg }, ev.id, 'waiter');
    expect(await near.refunds.request(id, u('waiter'))).toEqual({ status: 'REFUND_REQUESTED', decision: 'pending_review' });
    expect(await scan(engine, id)).toBe('valid'); // the request is not a refund yet: the ticket still gets in
    expect(await codeOf(near.refunds.decide(id, true, 'root'))).toBe('TICKET_USED');
    expect((await getBooking(pg, id))!.status).toBe('REFUND_REQUESTED');
    expect(await near.refunds.decide(id, false, 'root', { reason: 'ticket used' })).toEqual({ status: 'CONFIRMED' });
  });

  it('once a refund is approved its tickets are void at the gate', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 5);
    const id = await paidBooking({ engine, pg }, ev.id, 'leaver');
    expect(await engine.refunds.request(id, u('leaver'))).toEqual({ status: 'REFUND_REQUESTED', decision: 'automatic' });
    expect(await scan(engine, id)).toBe('invalid'); // approved, the refund job has not run yet
    expect(await engine.refunds.process(id)).toBe('refunded');
    expect(await scan(engine, id)).toBe('invalid');
  });

  it('a denied refund of a delivered booking goes back to TICKETS_DELIVERED (of a confirmed one, to CONFIRMED)', async ({ engine, pg, deps }) => {
    const ev = await createGaEvent(engine, 5);
    const near = afterCutoff(deps);
    const delivered = await paidBooking({ engine, pg }, ev.id, 'del', { delivered: true });
    const confirmed = await paidBooking({ engine, pg }, ev.id, 'conf');
    for (const [id, who] of [[delivered, 'del'], [confirmed, 'conf']] as const) {
      expect(await near.refunds.request(id, u(who))).toMatchObject({ decision: 'pending_review' });
    }
    expect(await near.refunds.decide(delivered, false, 'root', { reason: 'too late' })).toEqual({ status: 'TICKETS_DELIVERED' });
    expect(await near.refunds.decide(confirmed, false, 'root')).toEqual({ status: 'CONFIRMED' });
    expect((await getBooking(pg, delivered))!.status).toBe('TICKETS_DELIVERED');
    expect((await transitionsOf(pg, delivered)).slice(-3).map((t) => `${t.from}->${t.to}`)).toEqual([
      'TICKETS_DELIVERED->REFUND_REQUESTED', 'REFUND_REQUESTED->REFUND_DENIED', 'REFUND_DENIED->TICKETS_DELIVERED',
    ]);
    // delivered again: the notify worker's CONFIRMED -> TICKETS_DELIVERED does not run twice
    expect(await engine.tickets.markTicketsDelivered(delivered, [])).toBe(false);
  });

  it('a scan racing a refund request: never both (the ticket gets in and the money goes back)', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 30);
    for (let i = 0; i < 25; i++) {
      const who = `racer-${i}`;
      const id = await paidBooking({ engine, pg }, ev.id, who);
      const [scanned, refunded] = await Promise.all([scan(engine, id), codeOf(engine.refunds.request(id, u(who)))]);
      expect([`valid/TICKET_USED`, `invalid/ok`], `round ${i}`).toContain(`${scanned}/${refunded}`);
    }
  });
});
