import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { drain } from '../../test/wait.js';
import { listSimulatedPayments } from '../../integrations/payments/simulated.js';
import type { UserId } from '../ids.js';
import { eventKeys } from '../keys.js';
import { checkInvariants } from './invariants.js';
import { simulatedPaymentKeys } from '../../engine/keys.js';

const u = (s: string) => s as UserId;

describe('the invariant checker', () => {
  it('passes on a healthy event and catches each kind of violation', async ({ engine, redis, ns, pg }) => {
    const ev = await createGaEvent(engine, 10);
    const a = await engine.bookings.create({ userId: u('a'), eventId: ev.id, ticketCount: 2 });
    await drain(engine, ev.id);
    await engine.payments.pay({ bookingId: a.reservation.bookingId, userId: u('a'), paymentMethodId: 'pm_card_visa' });
    const b = await engine.bookings.create({ userId: u('b'), eventId: ev.id, ticketCount: 1 });
    await drain(engine, ev.id);
    const charges = () => listSimulatedPayments(redis, simulatedPaymentKeys(ns));
    const healthy = await checkInvariants(engine, { eventIds: [ev.id], charges: await charges(), drained: true });
    expect(healthy.violations).toEqual([]);
    expect(healthy.figures).toMatchObject({ capacity: 10, sold: 2, held: 1, bookings: 2, captured: 1, mismatch: 0 });

    // money without a ticket: a charge captured for a booking that never got its seats
    const ref = await engine.deps.provider!.authorize({ bookingId: b.reservation.bookingId, attempt: 9, amount: 4500, currency: 'EUR', paymentMethodId: 'pm_card_visa', idempotencyKey: 'x' });
    await engine.deps.provider!.capture((ref as { paymentRef: string }).paymentRef, 'y');
    expect((await checkInvariants(engine, { eventIds: [ev.id], charges: await charges() })).violations).toEqual([
      `money without a ticket: booking ${b.reservation.bookingId} is RESERVED but its charge is captured`,
    ]);
    // a counter off in Redis, and an undrained outbox
    await redis.hincrby(eventKeys(ns, ev.id).inv, `held:${ev.tiers[0]!.id}`, 1);
    await engine.bookings.create({ userId: u('c'), eventId: ev.id, ticketCount: 1 });
    const broken = await checkInvariants(engine, { eventIds: [ev.id], drained: true, emailsPerBooking: new Map([[a.reservation.bookingId, 2]]) });
    expect(broken.violations).toEqual(expect.arrayContaining([
      expect.stringMatching(/capacity 10 != available \d+ \+ held \d+ \+ sold 2/),
      'the outbox still holds 1 entries',
      expect.stringMatching(/Redis and Postgres disagree/),
      `booking ${a.reservation.bookingId}: 2 e-mails`,
    ]));
    // a ticket without money
    await pg.query("UPDATE bookings SET state = 'PAYMENT_PENDING' WHERE id = $1", [b.reservation.bookingId]);
    await pg.query("UPDATE bookings SET state = 'CONFIRMED' WHERE id = $1", [b.reservation.bookingId]);
    const noMoney = await checkInvariants(engine, { eventIds: [ev.id], charges: [] });
    expect(noMoney.violations).toEqual(expect.arrayContaining([expect.stringMatching(/a ticket without money: booking .* is CONFIRMED/)]));
  });
});
