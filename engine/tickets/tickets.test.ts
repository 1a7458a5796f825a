import { describe, expect, it, type Fixtures } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { drain } from '../../test/wait.js';
import { getBooking, transition, transitionsOf } from '../booking/bookings-repo.js';
import type { BookingId, UserId } from '../ids.js';

const u = (s: string) => s as UserId;

/** Books and pays one ticket for `who`, recorded CONFIRMED by the persist worker (as the notify worker finds it). */
async function paidBooking({ engine }: Pick<Fixtures, 'engine'>, eventId: string, who: string): Promise<BookingId> {
  const { reservation } = await engine.bookings.create({ userId: u(who), eventId: eventId as never, ticketCount: 1 });
  await drain(engine, eventId as never);
  expect((await engine.payments.pay({ bookingId: reservation.bookingId, userId: u(who), paymentMethodId: 'pm_card_visa' })).outcome).toBe('succeeded');
  await drain(engine, eventId as never);
  return reservation.bookingId;
}

const deliveryOf = async ({ pg }: Pick<Fixtures, 'pg'>, id: BookingId) =>
  (await pg.query<{ status: string; message_id: string | null }>(`SELECT status, message_id FROM deliveries WHERE booking_id = $1 AND channel = 'email'`, [id])).rows[0];

describe('delivery bookkeeping: the e-mail recorded sent and the booking delivered in one statement', () => {
  it('a claimed e-mail marked sent with ticketsDelivered: the delivery is sent with its message id, CONFIRMED -> TICKETS_DELIVERED with its cause', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 5);
    const id = await paidBooking({ engine }, ev.id, 'ana');
    expect(await engine.tickets.claimDelivery(id, 'email')).toBe('claimed');
    expect(await engine.tickets.markDelivered(id, 'email', 'msg-1', { ticketsDelivered: true })).toBe(true);
    expect(await deliveryOf({ pg }, id)).toEqual({ status: 'sent', message_id: 'msg-1' });
    expect((await getBooking(pg, id))!.status).toBe('TICKETS_DELIVERED');
    expect((await transitionsOf(pg, id)).at(-1)).toMatchObject({ from: 'CONFIRMED', to: 'TICKETS_DELIVERED', cause: 'delivered: email' });
    // a second run (the job ran twice): the delivery stays sent, the booking does not move again
    expect(await engine.tickets.markDelivered(id, 'email', 'msg-1', { ticketsDelivered: true })).toBe(false);
    expect((await transitionsOf(pg, id)).filter((t) => t.to === 'TICKETS_DELIVERED')).toHaveLength(1);
    expect(await engine.tickets.claimDelivery(id, 'email')).toBe('sent');
  });

  it('no claim, no move: without a delivery row the booking stays CONFIRMED; a booking no longer CONFIRMED is not moved', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 5);
    const unclaimed = await paidBooking({ engine }, ev.id, 'ben');
    expect(await engine.tickets.markDelivered(unclaimed, 'email', 'msg-2', { ticketsDelivered: true })).toBe(false);
    expect((await getBooking(pg, unclaimed))!.status).toBe('CONFIRMED');
    expect(await deliveryOf({ pg }, unclaimed)).toBeUndefined();

    // a refund requested while the e-mail was being sent: the send is recorded, the booking stays REFUND_REQUESTED
    const refunding = await paidBooking({ engine }, ev.id, 'cy');
    expect(await engine.tickets.claimDelivery(refunding, 'email')).toBe('claimed');
    await transition(pg, refunding, ['CONFIRMED'], 'REFUND_REQUESTED', 'refund requested');
    expect(await engine.tickets.markDelivered(refunding, 'email', 'msg-3', { ticketsDelivered: true })).toBe(false);
    expect(await deliveryOf({ pg }, refunding)).toEqual({ status: 'sent', message_id: 'msg-3' });
    expect((await getBooking(pg, refunding))!.status).toBe('REFUND_REQUESTED');
  });

  it('without ticketsDelivered only the delivery is recorded (the SMS, the refund e-mail)', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 5);
    const id = await paidBooking({ engine }, ev.id, 'dee');
    expect(await engine.tickets.claimDelivery(id, 'email')).toBe('claimed');
    expect(await engine.tickets.markDelivered(id, 'email', 'msg-4')).toBe(false);
    expect(await deliveryOf({ pg }, id)).toEqual({ status: 'sent', message_id: 'msg-4' });
    expect((await getBooking(pg, id))!.status).toBe('CONFIRMED');
  });

  it('render draws the PDF of a booking read already, with the holder name given; pdf() reads it and draws the same', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 5);
    const id = await paidBooking({ engine }, ev.id, 'eve');
    const inputs: unknown[] = [];
    const spy = async (input: unknown) => {
      inputs.push(input);
      return new Uint8Array([37, 80, 68, 70]);
    };
    const b = (await getBooking(pg, id))!;
    expect(await engine.tickets.render(b, 'Eve Example', spy)).toEqual(new Uint8Array([37, 80, 68, 70]));
    await pg.query('UPDATE bookings SET holder_name = $2 WHERE id = $1', [id, 'Eve Example']);
    await engine.tickets.pdf(id, undefined, spy);
    expect(inputs).toHaveLength(2);
    expect(inputs[0]).toEqual(inputs[1]);
    expect(inputs[0]).toMatchObject({ booking: { bookingId: id, holderName: 'Eve Example' }, event: { name: ev.name } });
    expect((inputs[0] as { tickets: unknown[] }).tickets).toHaveLength(1);
  });
});
