import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { dropPaymentsBookingFk } from '../../test/follow-outbox.js';
import { drain } from '../../test/wait.js';
import { listSimulatedPayments } from '../../integrations/payments/simulated.js';
import type { UserId } from '../ids.js';
import { eventKeys } from '../keys.js';
import { simulatedPaymentKeys } from '../../engine/keys.js';

const u = (s: string) => s as UserId;

describe('the invariant checker', () => {
  it('passes on a healthy event and catches each kind of violation', async ({ engine, deps, redis, ns, pg }) => {
    const ev = await createGaEvent(engine, 10);
    const a = await engine.bookings.create({ userId: u('a'), eventId: ev.id, ticketCount: 2 });
    await drain(engine, ev.id);
    await engine.payments.pay({ bookingId: a.reservation.bookingId, userId: u('a'), paymentMethodId: 'pm_card_visa' });
    const b = await engine.bookings.create({ userId: u('b'), eventId: ev.id, ticketCount: 1 });
    await drain(engine, ev.id);
    const charges = () => listSimulatedPayments(redis, simulatedPaymentKeys(ns));
    const healthy = await engine.checkInvariants({ eventIds: [ev.id], charges: await charges(), drained: true });
    expect(healthy.violations).toEqual([]);
    expect(healthy.figures).toMatchObject({ capacity: 10, sold: 2, held: 1, bookings: 2, captured: 1, mismatch: 0 });

    // money without a ticket: a charge captured for a booking that never got its seats
    const ref = await deps.provider!.authorize({ bookingId: b.reservation.bookingId, attempt: 9, amount: 4500, currency: 'EUR', paymentMethodId: 'pm_card_visa', idempotencyKey: 'x' });
    await deps.provider!.capture((ref as { paymentRef: string }).paymentRef, 'y');
    expect((await engine.checkInvariants({ eventIds: [ev.id], charges: await charges() })).violations).toEqual([
      `money without a ticket: booking ${b.reservation.bookingId} is RESERVED but its charge is captured`,
    ]);
    // a counter off in Redis, and an undrained outbox
    await redis.hincrby(eventKeys(ns, ev.id).inv, `held:${ev.tiers[0]!.id}`, 1);
    await engine.bookings.create({ userId: u('c'), eventId: ev.id, ticketCount: 1 });
    const broken = await engine.checkInvariants({ eventIds: [ev.id], drained: true, emailsPerBooking: new Map([[a.reservation.bookingId, 2]]) });
    expect(broken.violations).toEqual(expect.arrayContaining([
      expect.stringMatching(/capacity 10 != available \d+ \+ held \d+ \+ sold 2/),
      'the outbox still holds 1 entries',
      expect.stringMatching(/Redis and Postgres disagree/),
      `booking ${a.reservation.bookingId}: 2 e-mails`,
    ]));
    // a ticket without money
    await pg.query("UPDATE bookings SET state = 'PAYMENT_PENDING' WHERE id = $1", [b.reservation.bookingId]);
    await pg.query("UPDATE bookings SET state = 'CONFIRMED' WHERE id = $1", [b.reservation.bookingId]);
    const noMoney = await engine.checkInvariants({ eventIds: [ev.id], charges: [] });
    expect(noMoney.violations).toEqual(expect.arrayContaining([expect.stringMatching(/a ticket without money: booking .* is CONFIRMED/)]));
  });

  it('checks the payment steps on the money record against the holds, before anything is drained', async ({ engine, pg }) => {
    await dropPaymentsBookingFk(pg);
    const ev = await createGaEvent(engine, 10);
    const paid = (await engine.bookings.create({ userId: u('pia'), eventId: ev.id, ticketCount: 1 })).reservation.bookingId;
    const held = (await engine.bookings.create({ userId: u('rob'), eventId: ev.id, ticketCount: 1 })).reservation.bookingId;
    await engine.payments.pay({ bookingId: paid, userId: u('pia'), paymentMethodId: 'pm_card_visa' });
    // healthy, with the persist worker behind (nothing drained): the rules read Redis and the payments rows
    const settling = new Set<string>();
    expect((await engine.checkInvariants({ eventIds: [ev.id], settling })).violations).toEqual([]);

    // money without a ticket: an attempt captured for a hold that was never sold
    await pg.query(`INSERT INTO payments (booking_id, attempt, provider, payment_method, amount, currency, status) VALUES ($1, 1, 'simulated', 'pm_card_visa', 4500, 'EUR', 'captured')`, [held]);
    expect((await engine.checkInvariants({ eventIds: [ev.id] })).violations).toEqual([`money without a ticket: attempt ${held}.a1 is captured but the hold is held`]);
    // an authorized attempt nobody will finish (no settle job queued for it)
    await pg.query(`UPDATE payments SET status = 'authorized' WHERE booking_id = $1`, [held]);
    expect((await engine.checkInvariants({ eventIds: [ev.id], settling })).violations).toEqual([`attempt ${held}.a1 is authorized and no settle job will finish it`]);
    expect((await engine.checkInvariants({ eventIds: [ev.id], settling: new Set([`${held}:a1`]) })).violations).toEqual([]);
    await pg.query('DELETE FROM payments WHERE booking_id = $1', [held]);
    // a ticket without money: the sold hold's only attempt is not captured
    await pg.query(`UPDATE payments SET status = 'cancelled' WHERE booking_id = $1`, [paid]);
    expect((await engine.checkInvariants({ eventIds: [ev.id] })).violations).toEqual([`a ticket without money: the hold of ${paid} is sold with 0 captured or authorized attempts`]);
  });
});
