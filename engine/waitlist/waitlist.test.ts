import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent, seatedEvent } from '../../test/events.js';
import { drain } from '../../test/wait.js';
import { isDomainError } from '../errors.js';
import type { BookingId, TierId, UserId } from '../ids.js';
import type { Engine } from '../index.js';

const u = (s: string) => s as UserId;
const mail = (s: string) => `${s}@example.com`;
const OFFER_TTL = 5 * 60_000; // the default: the fixtures' config sets none

/** The refusal code of a promise that must fail with a DomainError. */
const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    if (isDomainError(err)) return err.code;
    throw err;
  }
  throw new Error('expected a refusal');
};

async function soldOut(engine: Engine, capacity: number, holder: string) {
  const ev = await createGaEvent(engine, capacity, { maxTicketsPerUser: 8 });
  const tier = ev.tiers[0]!.id as TierId;
  const { reservation } = await engine.bookings.create({ userId: u(holder), eventId: ev.id, ticketCount: capacity });
  return { ev, tier, held: reservation.bookingId };
}

describe('waitlist (real Redis and Postgres)', () => {
  it('joins only a sold-out GA tier, once per buyer and tier, within the per-buyer limit', async ({ engine }) => {
    const onSale = await createGaEvent(engine, 5);
    expect(await refusal(engine.waitlist.join(onSale.id, onSale.tiers[0]!.id as TierId, u('w1'), mail('w1'), 1))).toBe('NOT_SOLD_OUT');
    const seated = await engine.createEvent(seatedEvent([{ id: 'A', rows: 1, seatsPerRow: 2 }]));
    expect(await refusal(engine.waitlist.join(seated.id, seated.tiers[0]!.id as TierId, u('w1'), mail('w1'), 1))).toBe('WAITLIST_NOT_AVAILABLE');
    expect(await refusal(engine.waitlist.join(onSale.id, 'tr_nosuchtier' as TierId, u('w1'), mail('w1'), 1))).toBe('TIER_NOT_FOUND');

    const { ev, tier } = await soldOut(engine, 3, 'holder');
    expect(await refusal(engine.waitlist.join(ev.id, tier, u('w1'), mail('w1'), 9))).toBe('TICKET_LIMIT');
    expect(await refusal(engine.waitlist.join(ev.id, tier, u('holder'), mail('holder'), 6))).toBe('TICKET_LIMIT'); // holds 3 of 8
    expect(await engine.waitlist.join(ev.id, tier, u('w1'), mail('w1'), 2)).toEqual({ tierId: tier, position: 1, ticketCount: 2, joined: true });
    expect(await engine.waitlist.join(ev.id, tier, u('w2'), mail('w2'), 1)).toEqual({ tierId: tier, position: 2, ticketCount: 1, joined: true });
    // again: the first place and count, nothing written
    expect(await engine.waitlist.join(ev.id, tier, u('w1'), mail('w1'), 4)).toEqual({ tierId: tier, position: 1, ticketCount: 2, joined: false });
    expect(await engine.waitlist.place(ev.id, tier, u('w2'))).toMatchObject({ position: 2, ticketCount: 1 });
    expect(await engine.waitlist.place(ev.id, tier, u('nobody'))).toBeNull();
    expect(await engine.waitlist.waiting(ev.id, [tier])).toEqual(new Map([[tier, 2]]));
    // nothing free yet: no offer
    expect(await engine.waitlist.offer(ev.id, tier)).toEqual([]);
  });

  it('returned tickets go to the line in order, each offer a real hold of its buyer; general sale gets only what the line leaves', async ({ engine, clock }) => {
    const { ev, tier, held } = await soldOut(engine, 4, 'holder');
    for (const [who, n] of [['first', 2], ['second', 1], ['third', 3]] as const) await engine.waitlist.join(ev.id, tier, u(who), mail(who), n);
    await engine.bookings.cancel(held, u('holder'));
    // the 4 returned tickets are not on general sale while people wait
    expect(await refusal(engine.bookings.create({ userId: u('walk-in'), eventId: ev.id, ticketCount: 1 }))).toBe('INSUFFICIENT_INVENTORY');

    const offers = await engine.waitlist.offer(ev.id, tier);
    expect(offers.map((o) => [o.userId, o.ticketCount, o.email])).toEqual([['first', 2, mail('first')], ['second', 1, mail('second')], ['third', 1, mail('third')]]);
    for (const o of offers) {
      const hold = await engine.holds.get(ev.id, o.bookingId);
      expect(hold).toMatchObject({ userId: o.userId, tierId: tier, ticketCount: o.ticketCount, state: 'held', expiresAtMs: clock.now() + OFFER_TTL });
      expect(o.expiresAtMs).toBe(clock.now() + OFFER_TTL);
    }
    expect((await engine.inventory.redisState(ev.id))[tier]).toEqual({ cap: 4, free: 0, held: 4, sold: 0 });
    // an offer leaves the line; the line is empty, so the tier is on general sale again (nothing is free now)
    expect(await engine.waitlist.waiting(ev.id, [tier])).toEqual(new Map());
    expect(await engine.waitlist.openTiers(ev.id)).toEqual([]);
    // the offers are bookings like any other: recorded in Postgres, payable by their buyer
    await drain(engine, ev.id);
    const b = await engine.bookings.get(offers[0]!.bookingId, { userId: u('first') });
    expect(b).toMatchObject({ status: 'RESERVED', ticketCount: 2 });
    const paid = await engine.payments.pay({ bookingId: offers[0]!.bookingId, userId: u('first'), paymentMethodId: 'pm_card_visa' });
    expect(paid.outcome).toBe('succeeded');
    expect((await engine.waitlist.settle(ev.id)).map((e) => [e.bookingId, e.outcome])).toEqual([[offers[0]!.bookingId, 'taken']]);
    expect(await engine.waitlist.settle(ev.id)).toEqual([]); // each offer is closed once
    await drain(engine, ev.id);
    expect((await engine.checkInvariants({ eventIds: [ev.id], drained: true })).violations).toEqual([]);
  });

  it('an unclaimed offer expires like any hold and passes to the next in line, then back to general sale', async ({ engine, clock }) => {
    const { ev, tier, held } = await soldOut(engine, 1, 'holder');
    await engine.waitlist.join(ev.id, tier, u('slow1'), mail('slow1'), 1);
    await engine.waitlist.join(ev.id, tier, u('slow2'), mail('slow2'), 1);
    clock.advance(60_001); // the holder's hold runs out (TTL 60 s in the tests)
    expect(await engine.holds.sweep(ev.id)).toBe(1);
    const [first] = await engine.waitlist.offer(ev.id, tier);
    expect(first).toMatchObject({ userId: 'slow1', ticketCount: 1 });
    expect(await engine.holds.get(ev.id, held)).toBeNull();
    // slow2 still waits: general sale gets nothing even when the offer lapses, until the line is empty
    clock.advance(OFFER_TTL);
    expect(await engine.holds.sweep(ev.id)).toBe(1);
    expect(await refusal(engine.bookings.create({ userId: u('walk-in'), eventId: ev.id, ticketCount: 1 }))).toBe('INSUFFICIENT_INVENTORY');
    expect((await engine.waitlist.settle(ev.id)).map((e) => e.outcome)).toEqual(['expired']);
    const [second] = await engine.waitlist.offer(ev.id, tier);
    expect(second).toMatchObject({ userId: 'slow2', ticketCount: 1 });
    clock.advance(OFFER_TTL);
    expect(await engine.holds.sweep(ev.id)).toBe(1);
    expect(await engine.waitlist.offer(ev.id, tier)).toEqual([]);
    // the line is empty: the ticket is on general sale
    const walkIn = await engine.bookings.create({ userId: u('walk-in'), eventId: ev.id, ticketCount: 1 });
    expect(walkIn.reservation.ticketCount).toBe(1);
    expect((await engine.waitlist.settle(ev.id)).map((e) => e.outcome)).toEqual(['expired']);
    expect(await engine.waitlist.events()).not.toContain(ev.id);
    await drain(engine, ev.id);
    expect((await engine.checkInvariants({ eventIds: [ev.id], drained: true })).violations).toEqual([]);
  });

  it('a buyer over the per-buyer limit by now is skipped; the next in line gets the offer', async ({ engine }) => {
    const ev = await createGaEvent(engine, 2, {
      maxTicketsPerUser: 2,
      tiers: [{ name: 'Floor', price: 4500, currency: 'EUR', capacity: 2 }, { name: 'Balcony', price: 3000, currency: 'EUR', capacity: 5 }],
    });
    const [floor, balcony] = ev.tiers.map((t) => t.id as TierId) as [TierId, TierId];
    const a = await engine.bookings.create({ userId: u('a'), eventId: ev.id, tierId: floor, ticketCount: 1 });
    await engine.bookings.create({ userId: u('greedy'), eventId: ev.id, tierId: floor, ticketCount: 1 });
    await engine.waitlist.join(ev.id, floor, u('greedy'), mail('greedy'), 1);
    await engine.waitlist.join(ev.id, floor, u('next'), mail('next'), 1);
    // greedy reaches the limit of 2 on the other tier while waiting
    await engine.bookings.create({ userId: u('greedy'), eventId: ev.id, tierId: balcony, ticketCount: 1 });
    await engine.bookings.cancel(a.reservation.bookingId, u('a'));
    expect((await engine.waitlist.offer(ev.id, floor)).map((o) => o.userId)).toEqual(['next']);
    expect(await engine.waitlist.place(ev.id, floor, u('greedy'))).toBeNull();
    expect((await engine.inventory.redisState(ev.id))[floor]).toMatchObject({ free: 0, held: 2 });
  });

  it('returns racing general-sale buyers and several offer workers: no ticket held or sold twice, the line served first', async ({ engine }) => {
    const N = 40;
    const ev = await createGaEvent(engine, N, { maxTicketsPerUser: 8 });
    const tier = ev.tiers[0]!.id as TierId;
    const holds: BookingId[] = [];
    for (let i = 0; i < N; i++) holds.push((await engine.bookings.create({ userId: u(`h${i}`), eventId: ev.id, ticketCount: 1 })).reservation.bookingId);
    const W = 15;
    for (let i = 0; i < W; i++) await engine.waitlist.join(ev.id, tier, u(`w${i}`), mail(`w${i}`), 1);
    // 25 holders give back while 60 walk-ins try to hold and 3 workers offer, all at once
    const returns = holds.slice(0, 25).map((id, i) => engine.bookings.cancel(id, u(`h${i}`)));
    const walkIns = Array.from({ length: 60 }, (_, i) => engine.bookings.create({ userId: u(`g${i}`), eventId: ev.id, ticketCount: 1 }).then(() => `g${i}`, () => null));
    const offerRounds = async () => {
      const made = [];
      for (let r = 0; r < 20; r++) made.push(...(await engine.waitlist.offer(ev.id, tier)));
      return made;
    };
    const [, bought, ...workers] = await Promise.all([Promise.all(returns), Promise.all(walkIns), offerRounds(), offerRounds(), offerRounds()]);
    const offers = workers.flat();
    for (let r = 0; r < 3; r++) offers.push(...(await engine.waitlist.offer(ev.id, tier)));
    // every buyer in line got exactly one offer, in order of the line
    expect(offers.map((o) => o.userId).sort()).toEqual(Array.from({ length: W }, (_, i) => `w${i}`).sort());
    expect(new Set(offers.map((o) => o.bookingId)).size).toBe(W);
    // walk-ins got only what the line left: 25 returned - 15 offered
    const sold = (bought as (string | null)[]).filter((x) => x !== null);
    expect(sold.length).toBeLessThanOrEqual(25 - W);
    const state = (await engine.inventory.redisState(ev.id))[tier]!;
    expect(state.cap).toBe(state.free + state.held + state.sold);
    expect(state.held).toBe(N - 25 + W + sold.length);
    await drain(engine, ev.id);
    expect((await engine.checkInvariants({ eventIds: [ev.id], drained: true })).violations).toEqual([]);
  });
});

