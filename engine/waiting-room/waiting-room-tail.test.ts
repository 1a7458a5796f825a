import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent, seatedEvent } from '../../test/events.js';
import { snapshotPg, snapshotRedis } from '../../test/state.js';
import { HoldBestReply, HoldGeneralReply, HoldSeatsReply } from '../../lua/codes.js';
import { isDomainError } from '../errors.js';
import { newBookingId, type BookingId, type EventId, type UserId } from '../ids.js';
import type { Engine, EngineDeps } from '../index.js';
import { eventKeys } from '../keys.js';
import { HELD_SHARE_MAX, heldShareOf, memberOf, standing } from './waiting-room.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const OPENS = T0 - 3600_000;
const SALES = T0 + 60_000;
const u = (s: string) => s as UserId;

async function queuedEvent(engine: Engine, capacity: number, o: { maxTicketsPerUser?: number; passTtlSeconds?: number; graceSeconds?: number; unseenSeconds?: number } = {}) {
  return engine.createEvent({
    ...gaEvent(capacity),
    salesOpenAt: new Date(SALES).toISOString(),
    maxTicketsPerUser: o.maxTicketsPerUser ?? 4,
    queue: {
      enabled: true, opensAt: new Date(OPENS).toISOString(), admissionRatePerSecond: 100, passTtlSeconds: o.passTtlSeconds ?? 120,
      ...(o.graceSeconds ? { passGraceSeconds: o.graceSeconds } : {}), ...(o.unseenSeconds ? { passUnseenGraceSeconds: o.unseenSeconds } : {}),
    },
  });
}
const qid = (d: EngineDeps, eventId: EventId, who: UserId) => `q_${eventId.slice(3)}_${memberOf(d.config.admissionSecret, eventId, who)}`;
const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (isDomainError(e)) return e.code;
    throw e;
  }
};

describe('the end of a sale: short grace for unused passes, sized passes, the held-stock share, sold_out', () => {
  it('a pass not used within the grace period hands its slot to the next person (20 s once seen, 90 s unseen); a used pass keeps going', async ({ engine, deps, clock }) => {
    clock.set(SALES + 1000);
    const ev = await queuedEvent(engine, 4, { maxTicketsPerUser: 4, passTtlSeconds: 150 });
    const [a, b, c] = [u('ga-a'), u('ga-b'), u('ga-c')];
    for (const p of [a, b, c]) await engine.waitingRoom.join(ev.id, p);
    expect((await engine.waitingRoom.admit(ev.id, 10))!.admitted).toBe(1); // 4 tickets, a full pass is 4
    const seen = await engine.waitingRoom.status(qid(deps, ev.id, a), a); // a is told (a poll or the SSE push)
    expect(seen.status).toBe('admitted');
    expect(seen.admissionUseBy).toBe(new Date(clock.now() + 20_000).toISOString());
    expect(seen.admissionExpiresAt).toBe(new Date(clock.now() + 150_000).toISOString());
    // reading again does not move the deadline
    clock.advance(5_000);
    expect((await engine.waitingRoom.status(qid(deps, ev.id, a), a)).admissionUseBy).toBe(seen.admissionUseBy);

    clock.advance(14_000); // 19 s after being told: still a's
    expect((await engine.waitingRoom.admit(ev.id, 10))!).toMatchObject({ admitted: 0, lapsed: 0 });
    clock.advance(1_001);
    expect((await engine.waitingRoom.admit(ev.id, 10))!).toMatchObject({ admitted: 1, lapsed: 1, expired: 1 });
    expect((await engine.waitingRoom.status(qid(deps, ev.id, a), a)).status).toBe('expired');
    expect(await codeOf(engine.bookings.create({ userId: a, eventId: ev.id, tierId: ev.tiers[0]!.id, ticketCount: 1, admissionToken: seen.admissionToken })))
      .toBe('ADMISSION_REQUIRED');

    // b never looks: the pass lapses at the longer unseen deadline, 90 s after the admission
    clock.advance(89_000);
    expect((await engine.waitingRoom.admit(ev.id, 10))!).toMatchObject({ admitted: 0, lapsed: 0 });
    clock.advance(1_000);
    expect((await engine.waitingRoom.admit(ev.id, 10))!).toMatchObject({ admitted: 1, lapsed: 1 });
    const cs = await engine.waitingRoom.status(qid(deps, ev.id, c), c);
    expect(cs.status).toBe('admitted');
    // c holds within the grace: the pass is not taken back, its hold goes on
    await engine.bookings.create({ userId: c, eventId: ev.id, tierId: ev.tiers[0]!.id, ticketCount: 2, admissionToken: cs.admissionToken });
    clock.advance(25_000);
    expect((await engine.waitingRoom.admit(ev.id, 10))!).toMatchObject({ lapsed: 0 });
    const after = await engine.waitingRoom.status(qid(deps, ev.id, c), c);
    expect(after.status).toBe('admitted');
    expect(after.bookingId).toMatch(/^bk_/);
    expect(after.admissionUseBy).toBeUndefined();
  });

  it('admits with passes sized to what is left; a hold for more than the pass allows is PASS_TICKET_LIMIT and changes nothing', async ({ engine, deps, clock, redis, ns, pg }) => {
    clock.set(SALES + 1000);
    const ev = await queuedEvent(engine, 6, { maxTicketsPerUser: 4 });
    const tierId = ev.tiers[0]!.id;
    const [a, b, c] = [u('sz-a'), u('sz-b'), u('sz-c')];
    for (const p of [a, b, c]) await engine.waitingRoom.join(ev.id, p);
    const r = (await engine.waitingRoom.admit(ev.id, 10))!;
    expect([r.admitted, r.reserved]).toEqual([2, 6]); // 4 + "up to 2"
    const sa = await engine.waitingRoom.status(qid(deps, ev.id, a), a);
    const sb = await engine.waitingRoom.status(qid(deps, ev.id, b), b);
    expect([sa.passTickets, sa.singleSeatsOnly]).toEqual([4, false]);
    expect([sb.status, sb.passTickets, sb.singleSeatsOnly]).toEqual(['admitted', 2, false]);
    // c: nothing free that no pass was given for, but b may take fewer than 2
    expect(await engine.waitingRoom.status(qid(deps, ev.id, c), c)).toMatchObject({ status: 'waiting', aheadOfYou: 0, chance: 'unlikely', ticketsHeldAhead: 0 });

    const pattern = eventKeys(ns, ev.id).pattern;
    const [r0, p0] = [await snapshotRedis(redis, pattern), await snapshotPg(pg)];
    const err = await engine.bookings.create({ userId: b, eventId: ev.id, tierId, ticketCount: 3, admissionToken: sb.admissionToken }).catch((e: unknown) => e);
    expect(isDomainError(err) && [err.code, err.extra]).toEqual(['PASS_TICKET_LIMIT', { passTickets: 2 }]);
    expect(await snapshotRedis(redis, pattern)).toEqual(r0);
    expect(await snapshotPg(pg)).toEqual(p0);
    expect((await engine.bookings.create({ userId: b, eventId: ev.id, tierId, ticketCount: 2, admissionToken: sb.admissionToken })).reservation.status).toBe('RESERVED');
    expect((await engine.bookings.create({ userId: a, eventId: ev.id, tierId, ticketCount: 4, admissionToken: sa.admissionToken })).reservation.status).toBe('RESERVED');
    // all 6 held; at the starting share (10 %) no held ticket is counted as coming back: c is told sold_out
    await engine.waitingRoom.admit(ev.id, 10);
    expect(await engine.waitingRoom.status(qid(deps, ev.id, c), c)).toMatchObject({ status: 'sold_out', aheadOfYou: 0 });
  });

  it('the sized pass is enforced in Lua by all three hold scripts (PASS_LIMIT with the pass size; nothing written)', async ({ engine, clock, redis, ns, pg }) => {
    clock.set(SALES + 1000);
    const ev = await engine.createEvent({
      ...seatedEvent([{ id: 'A', rows: 1, seatsPerRow: 6 }], 6), salesOpenAt: new Date(SALES).toISOString(), maxTicketsPerUser: 4,
      queue: { enabled: true, opensAt: new Date(OPENS).toISOString(), admissionRatePerSecond: 100, passTtlSeconds: 120 },
    });
    const [seatTier, gaTier] = [ev.tiers[0]!.id, ev.tiers[1]!.id];
    const k = eventKeys(ns, ev.id);
    const now = clock.now();
    const pass = 'abcdef0123456789';
    await redis.zadd(k.wrPasses, now + 60_000, pass);
    await redis.hset(k.meta, `pass:${pass}`, 1); // as admitNext writes it for an "up to 1 ticket" pass
    const general = (count: number) => {
      const b = newBookingId(ev.id);
      return redis.holdGeneral(k.meta, k.inv, k.hold(b), k.expiry, k.buyers, k.noIdem, k.outbox, k.wrPasses, k.wrUsed, k.noHoldRate, k.noHoldRate, ev.id, b,
        'alice', gaTier, count, now, 60_000, '', 3_600_000, pass, '', '');
    };
    const seats = (ids: string[]) => {
      const b = newBookingId(ev.id);
      return redis.holdSeats(k.meta, k.inv, k.sec, k.smap, k.hold(b), k.expiry, k.buyers, k.noIdem, k.outbox, k.wrPasses, k.wrUsed,
        k.noHoldRate, k.noHoldRate, ev.id, b, 'alice', '', now, 60_000, '', 3_600_000, pass, '', '', ...ids);
    };
    const best = (count: number, adjacent: '1' | '0') => {
      const b = newBookingId(ev.id);
      return redis.holdBest(k.meta, k.inv, k.sec, k.smap, k.hold(b), k.expiry, k.buyers, k.noIdem, k.outbox, k.wrPasses, k.wrUsed,
        k.noHoldRate, k.noHoldRate, ev.id, b, 'alice', seatTier, count, now, 60_000, '', 3_600_000, '', adjacent, pass, '', '');
    };
    const [r0, p0] = [await snapshotRedis(redis, k.pattern), await snapshotPg(pg)];
    expect(await general(2)).toEqual([HoldGeneralReply.PASS_LIMIT, '1']);
    expect(await seats(['A-1-1', 'A-1-3'])).toEqual([HoldSeatsReply.PASS_LIMIT, '1']);
    expect(await best(2, '0')).toEqual([HoldBestReply.PASS_LIMIT, '1']);
    expect(await snapshotRedis(redis, k.pattern)).toEqual(r0);
    expect(await snapshotPg(pg)).toEqual(p0);
    // within the size: held, and the pass is in use
    expect((await best(1, '0'))[0]).toBe(HoldBestReply.HELD);
    expect(await redis.hexists(k.wrUsed, pass)).toBe(1);
  });

  it('counts held tickets only at the observed return share: measured from the outbox, starting at 10 %, bounded to [0, 90 %]', async ({ engine, deps, clock }) => {
    expect(heldShareOf(0, 0)).toBeCloseTo(0.1);
    expect(heldShareOf(0, 990)).toBeCloseTo(0.001);
    expect(heldShareOf(10_000, 10_000)).toBe(HELD_SHARE_MAX);
    for (const [ret, res] of [[0, 0], [5, 5], [3, 100], [1e6, 1e6], [0, 1e6]] as const) {
      const s = heldShareOf(ret, res);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(HELD_SHARE_MAX);
    }

    clock.set(SALES + 1000);
    const ev = await queuedEvent(engine, 10, { maxTicketsPerUser: 1 });
    const tierId = ev.tiers[0]!.id;
    const people = Array.from({ length: 14 }, (_, i) => u(`sh-${i}`));
    for (const p of people) await engine.waitingRoom.join(ev.id, p);
    expect((await engine.waitingRoom.admit(ev.id, 100, { heldSharePermille: 0 }))!.admitted).toBe(10);
    const ids: string[] = [];
    for (const p of people.slice(0, 10)) {
      const st = await engine.waitingRoom.status(qid(deps, ev.id, p), p);
      ids.push((await engine.bookings.create({ userId: p, eventId: ev.id, tierId, ticketCount: 1, admissionToken: st.admissionToken })).reservation.bookingId);
    }
    // 10 held, 0 free: with nothing observed yet, 10 % of the held come back (1 ticket): one more person, not ten
    const first = await engine.waitingRoom.measureHeldShare(ev.id);
    expect(first).toEqual({ permille: 100, returned: 0, resolved: 0 });
    expect((await engine.waitingRoom.admit(ev.id, 100, { heldSharePermille: first.permille }))!.admitted).toBe(1);
    // 4 holds cancelled (returned): (4 + 1) / (4 + 10)
    for (let i = 0; i < 4; i++) await engine.bookings.cancel(ids[i]! as BookingId, people[i]!);
    const second = await engine.waitingRoom.measureHeldShare(ev.id);
    expect(second).toEqual({ permille: Math.round((5 / 14) * 1000), returned: 4, resolved: 4 });
    // read from where it stopped: nothing new counts nothing twice
    expect(await engine.waitingRoom.measureHeldShare(ev.id)).toEqual(second);
    // free 4, held 6 (x 0.357 = 2 counted), five unused passes of 1 (the four who cancelled keep their live pass, and
    // the 11th person's): room for one more; at a 90 % share (5 of the held counted) for three more: the two left in line
    expect((await engine.waitingRoom.admit(ev.id, 100, { heldSharePermille: second.permille }))!.admitted).toBe(1);
    expect((await engine.waitingRoom.admit(ev.id, 100, { heldSharePermille: 900 }))!.admitted).toBe(2);
  });

  it('the wait of a place only returning tickets can reach: not before the holds ahead resolve, with no upper bound', async ({ engine, deps, clock }) => {
    clock.set(SALES + 1000);
    const ev = await queuedEvent(engine, 4, { maxTicketsPerUser: 4 });
    const [a, b, c] = [u('eta-a'), u('eta-b'), u('eta-c')];
    for (const p of [a, b, c]) await engine.waitingRoom.join(ev.id, p);
    await engine.waitingRoom.admit(ev.id, 10);
    const sa = await engine.waitingRoom.status(qid(deps, ev.id, a), a);
    const hold = await engine.bookings.create({ userId: a, eventId: ev.id, tierId: ev.tiers[0]!.id, ticketCount: 4, admissionToken: sa.admissionToken });
    // 4 held, none free; at a 90 % observed return share 3 are expected back: b is admitted for up to 3, and c, behind
    // b, can only be reached by tickets that come back
    expect((await engine.waitingRoom.admit(ev.id, 10, { heldSharePermille: 900 }))!.admitted).toBe(1);
    expect((await engine.waitingRoom.status(qid(deps, ev.id, b), b)).passTickets).toBe(3);
    const sc = await engine.waitingRoom.status(qid(deps, ev.id, c), c);
    const untilHold = Math.ceil((Date.parse(hold.reservation.expiresAt) - clock.now()) / 1000);
    expect(untilHold).toBeGreaterThan(1);
    expect(sc).toMatchObject({ status: 'waiting', aheadOfYou: 0, chance: 'unlikely', ticketsHeldAhead: 4, estimatedWaitSeconds: untilHold });
    expect(sc.estimatedWaitRange!.high).toBeNull();
    // at the starting share (10 %) nothing held is expected back: sold out
    await engine.waitingRoom.admit(ev.id, 10, { heldSharePermille: 100 });
    expect((await engine.waitingRoom.status(qid(deps, ev.id, c), c)).status).toBe('sold_out');
  });

  it('standing(): sold out only when nothing is free for the line and what could come back cannot reach the place', () => {
    const base = { free: 0, held: 0, reserved: 0, unusedPasses: 0, heldSharePermille: 100 };
    expect(standing({ ...base, ahead: 0 }).soldOut).toBe(true);
    expect(standing({ ...base, ahead: 0, free: 3, reserved: 3, unusedPasses: 3 }).soldOut).toBe(true); // 3 singles, 3 passes of 1
    expect(standing({ ...base, ahead: 1, free: 3, reserved: 3, unusedPasses: 1 })).toMatchObject({ soldOut: false, chance: 'unlikely' }); // a pass for up to 3
    expect(standing({ ...base, ahead: 2, free: 3, reserved: 3, unusedPasses: 1 }).soldOut).toBe(true);
    expect(standing({ ...base, ahead: 4, held: 50 })).toMatchObject({ soldOut: false, heldReturning: 5 });
    expect(standing({ ...base, ahead: 5, held: 50 }).soldOut).toBe(true);
    expect(standing({ ...base, ahead: 100, free: 1, reserved: 0 })).toMatchObject({ soldOut: false, chance: 'unlikely' }); // something is free
    expect(standing({ ...base, ahead: 0, free: 1, reserved: 0 })).toMatchObject({ soldOut: false, chance: 'likely' });
  });
  it("leaves a tier with an open waitlist out of admission's stock: its returned tickets go to the waitlist, not to passes", async ({ engine, deps, clock }) => {
    clock.set(SALES + 1000);
    const ev = await queuedEvent(engine, 4, { maxTicketsPerUser: 4, passTtlSeconds: 30 });
    const tierId = ev.tiers[0]!.id;
    const [a, b, w] = [u('wl-a'), u('wl-b'), u('wl-w')];
    await engine.waitingRoom.join(ev.id, a);
    expect((await engine.waitingRoom.admit(ev.id, 10))!.admitted).toBe(1);
    const sa = await engine.waitingRoom.status(qid(deps, ev.id, a), a);
    const held = await engine.bookings.create({ userId: a, eventId: ev.id, tierId, ticketCount: 4, admissionToken: sa.admissionToken });
    // sold out: w joins the waitlist, b the waiting room
    expect((await engine.waitlist.join(ev.id, tierId, w, 'w@example.com', 2)).position).toBe(1);
    await engine.waitingRoom.join(ev.id, b);
    clock.advance(31_000); // a's pass runs out (its hold, 60 s, goes on)
    await engine.waitingRoom.admit(ev.id, 10);
    await engine.bookings.cancel(held.reservation.bookingId, a);
    // the 4 returned tickets are free, but the waitlist comes first (holdGeneral would sell none of them): no pass for b
    expect(await engine.waitingRoom.admit(ev.id, 10)).toMatchObject({ admitted: 0, free: 0, held: 0 });
    expect((await engine.waitingRoom.status(qid(deps, ev.id, b), b)).status).toBe('sold_out');
    // the offer takes 2 and empties the waitlist: the other 2 are on general sale again, and b is admitted for them
    const offers = await engine.waitlist.offer(ev.id, tierId);
    expect(offers.map((o) => [o.userId, o.ticketCount])).toEqual([[w, 2]]);
    expect(await engine.waitingRoom.admit(ev.id, 10)).toMatchObject({ admitted: 1, free: 2, held: 2 });
    const sb = await engine.waitingRoom.status(qid(deps, ev.id, b), b);
    expect([sb.status, sb.passTickets]).toEqual(['admitted', 2]);
    expect((await engine.bookings.create({ userId: b, eventId: ev.id, tierId, ticketCount: 2, admissionToken: sb.admissionToken })).reservation.status).toBe('RESERVED');
  });
});
