import { describe, expect, it, type Fixtures } from '../test/fixtures.js';
import { gaEvent, seatedEvent } from '../test/events.js';
import { snapshotPg, snapshotRedis } from '../test/state.js';
import { eventKeys } from '../engine/keys.js';
import type { BookingId, EventId, UserId } from '../engine/ids.js';
import { newBookingId } from '../engine/ids.js';
import {
  ArmEventReply,
  ConfirmHoldReply,
  ExpireHoldReply,
  HoldBestReply,
  HoldGeneralReply,
  HoldSeatsReply,
  PayHoldReply,
  ReleaseHoldReply,
  RateLimitReply,
  RestoreHoldReply,
  TakeLeaseReply,
} from './codes.js';

/**
 * Every documented reply code of every script, called directly (no engine in between). Every rejection
 * asserts that Redis and Postgres are byte-for-byte unchanged.
 */
type Ctx = Pick<Fixtures, 'redis' | 'ns' | 'pg' | 'clock'>;
/** Hands a test the fixtures it uses as one object (vitest needs the destructuring to know them). */
const t =
  (fn: (fx: Ctx) => Promise<void>) =>
  ({ redis, ns, pg, clock }: Fixtures) =>
    fn({ redis, ns, pg, clock });
const NOW = Date.UTC(2030, 0, 1);
const TTL = 60_000;
let ga: { id: EventId; tier: string };
let seated: { id: EventId; tier: string; gaTier: string };

async function unchanged(fx: Ctx, eventId: EventId, act: () => Promise<unknown>) {
  const pattern = eventKeys(fx.ns, eventId).pattern;
  const [r0, p0] = [await snapshotRedis(fx.redis, pattern), await snapshotPg(fx.pg)];
  const out = await act();
  expect(await snapshotRedis(fx.redis, pattern)).toEqual(r0);
  expect(await snapshotPg(fx.pg)).toEqual(p0);
  return out;
}

function holdGeneral(
  fx: Ctx,
  o: { eventId?: EventId; tier?: string; user?: string; count?: number | string; now?: number; idem?: string; fp?: string; bookingId?: string; pass?: string;
    limits?: string; ip?: string } = {},
) {
  const eventId = o.eventId ?? ga.id;
  const k = eventKeys(fx.ns, eventId);
  const user = (o.user ?? 'alice') as UserId;
  const b = (o.bookingId ?? newBookingId(eventId)) as BookingId;
  return fx.redis.holdGeneral(k.meta, k.inv, k.hold(b), k.expiry, k.buyers,
    o.idem ? k.idem(user, o.idem) : k.noIdem, k.outbox, k.wrPasses, k.wrUsed, k.holdRate('u', user), k.holdRate('ip', o.ip ?? '10.0.0.1'),
    eventId, b, user, o.tier ?? ga.tier, o.count ?? 1, o.now ?? NOW, TTL, o.fp ?? '', 3_600_000, o.pass ?? '', o.idem ?? '', o.limits ?? '');
}

function holdSeats(fx: Ctx, seats: string[], o: { user?: string; tier?: string; idem?: string; fp?: string; now?: number; limits?: string } = {}) {
  const k = eventKeys(fx.ns, seated.id);
  const user = (o.user ?? 'alice') as UserId;
  const b = newBookingId(seated.id);
  return fx.redis.holdSeats(k.meta, k.inv, k.sec, k.smap, k.hold(b), k.expiry, k.buyers, o.idem ? k.idem(user, o.idem) : k.noIdem,
    k.outbox, k.wrPasses, k.wrUsed, k.holdRate('u', user), k.noHoldRate, seated.id, b, user, o.tier ?? '', o.now ?? NOW, TTL, o.fp ?? '',
    3_600_000, '', o.idem ?? '', o.limits ?? '', ...seats);
}

function holdBest(fx: Ctx, count: number, o: { user?: string; tier?: string; section?: string; adjacent?: '1' | '0'; idem?: string; fp?: string; limits?: string } = {}) {
  const k = eventKeys(fx.ns, seated.id);
  const user = (o.user ?? 'alice') as UserId;
  const b = newBookingId(seated.id);
  return fx.redis.holdBest(k.meta, k.inv, k.sec, k.smap, k.hold(b), k.expiry, k.buyers, o.idem ? k.idem(user, o.idem) : k.noIdem,
    k.outbox, k.wrPasses, k.wrUsed, k.holdRate('u', user), k.noHoldRate, seated.id, b, user, o.tier ?? seated.tier, count, NOW, TTL,
    o.fp ?? '', 3_600_000, o.section ?? '', o.adjacent ?? '1', '', o.idem ?? '', o.limits ?? '');
}

const releaseKeys = (fx: Ctx, eventId: EventId, b: string) => {
  const k = eventKeys(fx.ns, eventId);
  return [k.inv, k.sec, k.smap, k.hold(b as BookingId), k.expiry, k.buyers, k.outbox, k.wrUsed] as const;
};
const release = (fx: Ctx, eventId: EventId, b: string, user: string, now = NOW) =>
  fx.redis.releaseHold(...releaseKeys(fx, eventId, b), eventId, b, user, now, 'BookingCancelled', 'test', 'held');
const expire = (fx: Ctx, eventId: EventId, b: string, now: number) => fx.redis.expireHold(...releaseKeys(fx, eventId, b), eventId, b, now);
const confirm = (fx: Ctx, eventId: EventId, b: string, now = NOW) => {
  const k = eventKeys(fx.ns, eventId);
  return fx.redis.confirmHold(k.inv, k.sec, k.smap, k.hold(b as BookingId), k.expiry, k.outbox, eventId, b, now, 'pay_1');
};

describe('Lua scripts', () => {
  it.beforeAll(async ({ engine, clock }) => {
    clock.set(NOW);
    const g = await engine.createEvent(gaEvent(5, { maxTicketsPerUser: 4 }));
    ga = { id: g.id, tier: g.tiers[0]!.id };
    const s = await engine.createEvent({ ...seatedEvent([{ id: 'A', rows: 2, seatsPerRow: 5 }, { id: 'B', rows: 1, seatsPerRow: 3 }], 10), maxTicketsPerUser: 6 });
    seated = { id: s.id, tier: s.tiers[0]!.id, gaTier: s.tiers[1]!.id };
  });

  it('arms the test events with every ticket free', async ({ engine }) => {
    expect(await engine.inventory.redisState(ga.id)).toEqual({ [ga.tier]: { cap: 5, free: 5, held: 0, sold: 0 } });
  });

  describe('armEvent', () => {
    it('answers ALREADY_ARMED for an armed event and writes nothing', t(async (fx) => {
      const k = eventKeys(fx.ns, ga.id);
      const spec = JSON.stringify({ maxPerUser: 1, opensAtMs: 0, tiers: [{ id: ga.tier, kind: 'ga', cap: 1, free: 1, held: 0, sold: 0 }] });
      const [code] = await unchanged(fx, ga.id, () => fx.redis.armEvent(k.meta, k.inv, k.sec, k.smap, k.buyers, ga.id, spec, 'arm')) as [number];
      expect(code).toBe(ArmEventReply.ALREADY_ARMED);
    }));
    it.for([
      ['not JSON', '{'],
      ['cap != free + held + sold', { maxPerUser: 1, opensAtMs: 0, tiers: [{ id: 't', kind: 'ga', cap: 2, free: 1, held: 0, sold: 0 }] }],
      ['seat map disagreeing with counters', { maxPerUser: 1, opensAtMs: 0, tiers: [{ id: 't', kind: 'seated', cap: 2, free: 2, held: 0, sold: 0 }],
        sections: [{ id: 'A', tier: 't', rows: 1, perRow: 2, map: '.h' }] }],
      ['a bad seat map character', { maxPerUser: 1, opensAtMs: 0, tiers: [{ id: 't', kind: 'seated', cap: 2, free: 2, held: 0, sold: 0 }],
        sections: [{ id: 'A', tier: 't', rows: 1, perRow: 2, map: '.%' }] }],
    ] as const)('refuses a spec with %s before writing', async ([, spec], { redis, ns, pg, clock }) => {
      const fx = { redis, ns, pg, clock };
      const eventId = 'ev_000000000000' as EventId;
      const k = eventKeys(fx.ns, eventId);
      const body = typeof spec === 'string' ? spec : JSON.stringify(spec);
      await unchanged(fx, eventId, async () => {
        await expect(fx.redis.armEvent(k.meta, k.inv, k.sec, k.smap, k.buyers, eventId, body, 'rebuild')).rejects.toThrow(/bad argument/);
      });
    });
  });

  describe('holdGeneral', () => {
    it('HELD: takes stock, records the hold, its expiry, the buyer count and a BookingCreated entry', t(async (fx) => {
      const k = eventKeys(fx.ns, ga.id);
      const reply = await holdGeneral(fx, { count: 2, bookingId: 'bk_x' });
      expect(reply).toEqual([HoldGeneralReply.HELD, 'bk_x', ga.tier, '2', '', String(NOW + TTL), String(NOW)]);
      expect(await fx.redis.hget(k.inv, `free:${ga.tier}`)).toBe('3');
      expect(await fx.redis.hget(k.inv, `held:${ga.tier}`)).toBe('2');
      expect(await fx.redis.zscore(k.expiry, 'bk_x')).toBe(String(NOW + TTL));
      expect(await fx.redis.hget(k.buyers, 'alice')).toBe('2');
      const [[, fields]] = (await fx.redis.xrange(k.outbox, '-', '+')) as [[string, string[]]];
      expect(fields.slice(0, 6)).toEqual(['type', 'BookingCreated', 'eventId', ga.id, 'bookingId', 'bk_x']);
    }));
    it('REPLAYED: the same key and fingerprint return the first reply and write nothing', t(async (fx) => {
      const first = await holdGeneral(fx, { user: 'bob', idem: 'k1', fp: 'f1' });
      // the BookingCreated entry carries the key as the caller passed it (ARGV), so a rebuild can store the record again
      const entry = (await fx.redis.xrange(eventKeys(fx.ns, ga.id).outbox, '-', '+')).at(-1)![1];
      expect(entry.slice(entry.indexOf('idemKey'), entry.indexOf('idemKey') + 4)).toEqual(['idemKey', 'k1', 'idemFp', 'f1']);
      const again = (await unchanged(fx, ga.id, () => holdGeneral(fx, { user: 'bob', idem: 'k1', fp: 'f1' }))) as string[];
      expect(again).toEqual([HoldGeneralReply.REPLAYED, ...first.slice(1)]);
    }));
    it('IDEMPOTENCY_MISMATCH: the same key with another fingerprint', t(async (fx) => {
      const r = await unchanged(fx, ga.id, () => holdGeneral(fx, { user: 'bob', idem: 'k1', fp: 'other' }));
      expect(r).toEqual([HoldGeneralReply.IDEMPOTENCY_MISMATCH]);
    }));
    it('INSUFFICIENT: more than the stock, with what is available', t(async (fx) => {
      expect(await unchanged(fx, ga.id, () => holdGeneral(fx, { user: 'carol', count: 3 }))).toEqual([HoldGeneralReply.INSUFFICIENT, '2']);
    }));
    it('TICKET_LIMIT: the buyer cap counts tickets already held', t(async (fx) => {
      // alice holds 2 of her 4
      expect(await unchanged(fx, ga.id, () => holdGeneral(fx, { count: 3 }))).toEqual([HoldGeneralReply.INSUFFICIENT, '2']);
      await holdGeneral(fx, { count: 2 }); // alice now at 4, stock 0
      const k = eventKeys(fx.ns, ga.id);
      await fx.redis.hset(k.inv, `free:${ga.tier}`, 1, `cap:${ga.tier}`, 6); // (test-only: one more ticket exists)
      expect(await unchanged(fx, ga.id, () => holdGeneral(fx, { count: 1 }))).toEqual([HoldGeneralReply.TICKET_LIMIT, '0']);
      await fx.redis.hset(k.inv, `free:${ga.tier}`, 0, `cap:${ga.tier}`, 5);
    }));
    it('UNKNOWN_TIER, TIER_KIND, NOT_ARMED and SALES_NOT_OPEN', t(async (fx) => {
      expect(await unchanged(fx, ga.id, () => holdGeneral(fx, { tier: 'tr_nosuchtier' }))).toEqual([HoldGeneralReply.UNKNOWN_TIER]);
      expect(await unchanged(fx, seated.id, () => holdGeneral(fx, { eventId: seated.id, tier: seated.tier }))).toEqual([HoldGeneralReply.TIER_KIND]);
      const nowhere = 'ev_zzzzzzzzzzzz' as EventId;
      expect(await unchanged(fx, nowhere, () => holdGeneral(fx, { eventId: nowhere }))).toEqual([HoldGeneralReply.NOT_ARMED]);
      const early = Date.UTC(2028, 0, 1);
      expect(await unchanged(fx, seated.id, () => holdGeneral(fx, { eventId: seated.id, tier: seated.gaTier, now: early }))).toEqual([
        HoldGeneralReply.SALES_NOT_OPEN,
        String(Date.UTC(2029, 0, 1)),
      ]);
    }));
    it.for([['count 0', { count: 0 }], ['count 1.5', { count: 1.5 }], ['count "x"', { count: 'x' }], ['a user id with braces', { user: 'a{b}' }]] as const)(
      'raises a Redis error for %s and changes nothing',
      async ([, o], { redis, ns, pg, clock }) => {
        const fx = { redis, ns, pg, clock };
        await unchanged(fx, seated.id, () => expect(holdGeneral(fx, { eventId: seated.id, tier: seated.gaTier, ...o })).rejects.toThrow(/bad argument/));
      },
    );
  });

  describe('holdSeats', () => {
    it('HELD: marks exactly those seats held in their sections', t(async (fx) => {
      const r = await holdSeats(fx, ['A-1-1', 'B-1-3']);
      expect(r[0]).toBe(HoldSeatsReply.HELD);
      expect(r[4]).toBe('A-1-1,B-1-3');
      const maps = await fx.redis.hgetall(eventKeys(fx.ns, seated.id).smap);
      expect(maps).toEqual({ A: 'h.........', B: '..h' });
    }));
    it('SEAT_TAKEN names the first taken seat', t(async (fx) => {
      expect(await unchanged(fx, seated.id, () => holdSeats(fx, ['A-1-2', 'A-1-1'], { user: 'bob' }))).toEqual([HoldSeatsReply.SEAT_TAKEN, 'A-1-1']);
    }));
    it('UNKNOWN_SEAT for a bad section, row or number', t(async (fx) => {
      for (const s of ['Z-1-1', 'A-3-1', 'A-1-6', 'A-0-1', 'nonsense']) {
        expect(await unchanged(fx, seated.id, () => holdSeats(fx, [s], { user: 'bob' }))).toEqual([HoldSeatsReply.UNKNOWN_SEAT, s]);
      }
    }));
    it('UNKNOWN_SEAT for any spelling of a seat id but the canonical one, alone or beside the seat it spells', t(async (fx) => {
      const spellings = ['A-01-1', 'A-1-01', 'A-001-0001', 'A-+1-1', 'A--1-1', 'A- 1-1', ' A-1-1', 'A-1-1 ', 'A-1-1\n', 'A-\u0661-1',
        'A-\uff11-1', 'A-1.0-1', 'A-1e0-1', 'A-0x1-1', 'A-18446744073709551617-1', 'A-1-4294967297', 'A-0-1', 'A-1-0'];
      for (const s of spellings) {
        expect(await unchanged(fx, seated.id, () => holdSeats(fx, [s], { user: 'bob' }))).toEqual([HoldSeatsReply.UNKNOWN_SEAT, s]);
      }
      // "A-2-4" and "A-02-4" are one seat read twice: the map must neither be held twice nor grow a character
      expect(await unchanged(fx, seated.id, () => holdSeats(fx, ['A-2-4', 'A-02-4'], { user: 'bob' }))).toEqual([HoldSeatsReply.UNKNOWN_SEAT, 'A-02-4']);
      expect(await unchanged(fx, seated.id, () => holdSeats(fx, ['A-2-4', 'A-2-04'], { user: 'bob' }))).toEqual([HoldSeatsReply.UNKNOWN_SEAT, 'A-2-04']);
    }));
    it('SEAT_TIER_MISMATCH when the seats are not in the requested tier', t(async (fx) => {
      expect(await unchanged(fx, seated.id, () => holdSeats(fx, ['A-2-1'], { user: 'bob', tier: seated.gaTier }))).toEqual([
        HoldSeatsReply.SEAT_TIER_MISMATCH,
        'A-2-1',
      ]);
    }));
    it('TICKET_LIMIT, REPLAYED and IDEMPOTENCY_MISMATCH', t(async (fx) => {
      expect(await unchanged(fx, seated.id, () => holdSeats(fx, ['A-2-1', 'A-2-2', 'A-2-3', 'A-2-4', 'A-2-5'], { user: 'alice' }))).toEqual([
        HoldSeatsReply.TICKET_LIMIT,
        '4',
      ]);
      const first = await holdSeats(fx, ['A-2-1'], { user: 'dan', idem: 'i', fp: 'p' });
      expect(await unchanged(fx, seated.id, () => holdSeats(fx, ['A-2-1'], { user: 'dan', idem: 'i', fp: 'p' }))).toEqual([HoldSeatsReply.REPLAYED, ...first.slice(1)]);
      expect(await unchanged(fx, seated.id, () => holdSeats(fx, ['A-2-2'], { user: 'dan', idem: 'i', fp: 'q' }))).toEqual([HoldSeatsReply.IDEMPOTENCY_MISMATCH]);
    }));
    it('raises a Redis error for duplicate seats and changes nothing', t(async (fx) => {
      await unchanged(fx, seated.id, () => expect(holdSeats(fx, ['A-2-5', 'A-2-5'])).rejects.toThrow(/duplicate/));
    }));
  });

  describe('holdBest', () => {
    it('HELD: the first row with N adjacent free seats, nearest the centre', t(async (fx) => {
      // A row 1: h......... ; row 2: h......... (A-2-1 held by dan)
      const r = await holdBest(fx, 3, { user: 'erin' });
      expect(r[0]).toBe(HoldBestReply.HELD);
      expect(r[4]).toBe('A-1-2,A-1-3,A-1-4');
    }));
    it('NO_ADJACENT when seats exist but not together; adjacent "0" takes the best separate seats', t(async (fx) => {
      const k = eventKeys(fx.ns, seated.id);
      // section A is 2 rows of 5; leave only A-1-5 and A-2-2 free, in different rows
      expect((await holdSeats(fx, ['A-2-3', 'A-2-4', 'A-2-5'], { user: 'p1' }))[0]).toBe(HoldSeatsReply.HELD);
      expect(await fx.redis.hget(k.smap, 'A')).toBe('hhhh.h.hhh');
      const free = Number(await fx.redis.hget(k.inv, `free:${seated.tier}`));
      expect(await unchanged(fx, seated.id, () => holdBest(fx, 2, { user: 'fay', section: 'A' }))).toEqual([HoldBestReply.NO_ADJACENT, '2']);
      const r = await holdBest(fx, 2, { user: 'fay', section: 'A', adjacent: '0' });
      expect([r[0], r[4]]).toEqual([HoldBestReply.HELD, 'A-1-5,A-2-2']);
      expect(await fx.redis.hget(k.smap, 'A')).toBe('h'.repeat(10));
      expect(Number(await fx.redis.hget(k.inv, `free:${seated.tier}`))).toBe(free - 2);
    }));
    it('INSUFFICIENT when the scope has fewer free seats than asked', t(async (fx) => {
      expect(await unchanged(fx, seated.id, () => holdBest(fx, 3, { user: 'gus', section: 'A' }))).toEqual([HoldBestReply.INSUFFICIENT, '0']);
      // the tier (A and B) has B-1-1 and B-1-2 left
      expect(await unchanged(fx, seated.id, () => holdBest(fx, 3, { user: 'gus' }))).toEqual([HoldBestReply.INSUFFICIENT, '2']);
    }));
    it('UNKNOWN_SECTION, SEAT_TIER_MISMATCH, UNKNOWN_TIER and TIER_KIND', t(async (fx) => {
      expect(await unchanged(fx, seated.id, () => holdBest(fx, 1, { section: 'Q' }))).toEqual([HoldBestReply.UNKNOWN_SECTION]);
      expect(await unchanged(fx, seated.id, () => holdBest(fx, 1, { section: 'A', tier: seated.gaTier }))).toEqual([HoldBestReply.SEAT_TIER_MISMATCH, 'A']);
      expect(await unchanged(fx, seated.id, () => holdBest(fx, 1, { tier: 'tr_nosuchtier' }))).toEqual([HoldBestReply.UNKNOWN_TIER]);
      expect(await unchanged(fx, seated.id, () => holdBest(fx, 1, { tier: seated.gaTier }))).toEqual([HoldBestReply.TIER_KIND]);
    }));
  });

  describe('releaseHold, expireHold, confirmHold', () => {
    let held: string;
    it('RELEASED: a buyer cancels their live hold; the seats and the cap come back', t(async (fx) => {
      const k = eventKeys(fx.ns, seated.id);
      const r = await holdSeats(fx, ['B-1-1'], { user: 'hal' });
      held = r[1]!;
      expect(await release(fx, seated.id, held, 'hal')).toEqual([ReleaseHoldReply.RELEASED, seated.tier, '1', 'B-1-1']);
      expect(await fx.redis.hget(k.smap, 'B')).toBe('..h');
      expect(await fx.redis.hget(k.buyers, 'hal')).toBeNull();
      expect(await fx.redis.exists(k.hold(held as BookingId))).toBe(0);
      const entries = await fx.redis.xrange(k.outbox, '-', '+');
      expect(entries.at(-1)![1].slice(0, 2)).toEqual(['type', 'BookingCancelled']);
    }));
    it('RELEASED: a hold stored before seat ids were canonical frees the seat it took, once, and the map keeps its length', t(async (fx) => {
      const k = eventKeys(fx.ns, seated.id);
      const b = (await holdSeats(fx, ['B-1-2'], { user: 'leo' }))[1]!;
      const map = (await fx.redis.hget(k.smap, 'B'))!;
      expect(map[1]).toBe('h');
      // as the old hold script stored ["B-1-2", "B-01-2"]: one seat, spelled twice
      await fx.redis.hset(k.hold(b as BookingId), 's', 'B-1-2,B-01-2');
      expect(await release(fx, seated.id, b, 'leo')).toEqual([ReleaseHoldReply.RELEASED, seated.tier, '1', 'B-1-2,B-01-2']);
      expect(await fx.redis.hget(k.smap, 'B')).toBe(`${map[0]}.${map.slice(2)}`);
    }));
    it('HOLD_NOT_FOUND, NOT_OWNER, HOLD_EXPIRED and NOT_RELEASABLE', t(async (fx) => {
      expect(await unchanged(fx, seated.id, () => release(fx, seated.id, held, 'hal'))).toEqual([ReleaseHoldReply.HOLD_NOT_FOUND]);
      const b = (await holdSeats(fx, ['B-1-1'], { user: 'ivy' }))[1]!;
      expect(await unchanged(fx, seated.id, () => release(fx, seated.id, b, 'mallory'))).toEqual([ReleaseHoldReply.NOT_OWNER]);
      expect(await unchanged(fx, seated.id, () => release(fx, seated.id, b, 'ivy', NOW + TTL))).toEqual([ReleaseHoldReply.HOLD_EXPIRED, String(NOW + TTL)]);
      expect(await confirm(fx, seated.id, b)).toEqual([ConfirmHoldReply.CONFIRMED, seated.tier, '1', 'B-1-1']);
      expect(await unchanged(fx, seated.id, () => release(fx, seated.id, b, 'ivy'))).toEqual([ReleaseHoldReply.NOT_RELEASABLE, 'sold']);
    }));
    it('confirmHold: CONFIRMED (held -> sold), ALREADY_CONFIRMED, HOLD_NOT_FOUND, HOLD_EXPIRED', t(async (fx) => {
      const k = eventKeys(fx.ns, seated.id);
      const b = (await holdSeats(fx, ['B-1-2'], { user: 'jo' }))[1]!;
      const before = await fx.redis.hgetall(k.inv);
      expect((await confirm(fx, seated.id, b))[0]).toBe(ConfirmHoldReply.CONFIRMED);
      const after = await fx.redis.hgetall(k.inv);
      expect(Number(after[`sold:${seated.tier}`])).toBe(Number(before[`sold:${seated.tier}`]) + 1);
      expect(Number(after[`held:${seated.tier}`])).toBe(Number(before[`held:${seated.tier}`]) - 1);
      expect(await fx.redis.hget(k.smap, 'B')).toBe('ssh'); // B-1-3 is still alice's hold
      expect(await unchanged(fx, seated.id, () => confirm(fx, seated.id, b))).toEqual([ConfirmHoldReply.ALREADY_CONFIRMED, seated.tier, '1', 'B-1-2']);
      expect(await unchanged(fx, seated.id, () => confirm(fx, seated.id, 'bk_none'))).toEqual([ConfirmHoldReply.HOLD_NOT_FOUND]);
      const late = (await holdGeneral(fx, { eventId: seated.id, tier: seated.gaTier, user: 'kim' }))[1]!;
      expect(await unchanged(fx, seated.id, () => confirm(fx, seated.id, late, NOW + TTL))).toEqual([ConfirmHoldReply.HOLD_EXPIRED, String(NOW + TTL)]);
    }));
    it('expireHold: NOT_DUE before the deadline, EXPIRED at it, HOLD_NOT_FOUND after; NOT_RELEASABLE for a sold hold', t(async (fx) => {
      const k = eventKeys(fx.ns, seated.id);
      const b = (await holdGeneral(fx, { eventId: seated.id, tier: seated.gaTier, user: 'lee', count: 2 }))[1]!;
      expect(await unchanged(fx, seated.id, () => expire(fx, seated.id, b, NOW + TTL - 1))).toEqual([ExpireHoldReply.NOT_DUE, String(NOW + TTL)]);
      const free = Number(await fx.redis.hget(k.inv, `free:${seated.gaTier}`));
      expect(await expire(fx, seated.id, b, NOW + TTL)).toEqual([ExpireHoldReply.EXPIRED, seated.gaTier, '2', '']);
      expect(Number(await fx.redis.hget(k.inv, `free:${seated.gaTier}`))).toBe(free + 2);
      expect((await fx.redis.xrange(k.outbox, '-', '+')).at(-1)![1].slice(0, 2)).toEqual(['type', 'ReservationExpired']);
      expect(await unchanged(fx, seated.id, () => expire(fx, seated.id, b, NOW + TTL))).toEqual([ExpireHoldReply.HOLD_NOT_FOUND]);
      const sold = (await holdGeneral(fx, { eventId: seated.id, tier: seated.gaTier, user: 'max' }))[1]!;
      await confirm(fx, seated.id, sold);
      await fx.redis.zadd(k.expiry, NOW, sold); // a stray expiry entry for a sold hold is removed, nothing else
      expect(await expire(fx, seated.id, sold, NOW + TTL)).toEqual([ExpireHoldReply.NOT_RELEASABLE, 'sold']);
      expect(await fx.redis.zscore(k.expiry, sold)).toBeNull();
    }));
  });

  describe('payHold', () => {
    const pay = (fx: Ctx, b: string, mode: 'start' | 'decline', o: { user?: string; now?: number; attempt?: number; reason?: string } = {}) => {
      const k = eventKeys(fx.ns, seated.id);
      return fx.redis.payHold(k.hold(b as BookingId), k.expiry, k.outbox, seated.id, b, o.user ?? '', o.now ?? NOW, 60_000, mode,
        o.attempt ?? 2, o.reason ?? '', mode === 'start' ? 'Ann Example' : '', '', '');
    };
    const lastEntry = async (fx: Ctx) => {
      const f = (await fx.redis.xrange(eventKeys(fx.ns, seated.id).outbox, '-', '+')).at(-1)![1];
      return Object.fromEntries(f.flatMap((v, i) => (i % 2 ? [] : [[v, f[i + 1]!]])));
    };
    it('DONE: start counts the attempt, extends the deadline and appends PaymentStarted; decline hands back with PaymentDeclined', t(async (fx) => {
      const k = eventKeys(fx.ns, seated.id);
      const b = (await holdGeneral(fx, { eventId: seated.id, tier: seated.gaTier, user: 'pat', count: 2 }))[1]!;
      expect(await pay(fx, b, 'start', { user: 'pat', now: NOW + 10 })).toEqual([PayHoldReply.DONE, String(NOW + 10 + 60_000), '1']);
      expect(await fx.redis.hmget(k.hold(b as BookingId), 'st', 'a', 'x')).toEqual(['paying', '1', String(NOW + 10 + 60_000)]);
      expect(await fx.redis.zscore(k.expiry, b)).toBe(String(NOW + 10 + 60_000));
      expect(await lastEntry(fx)).toEqual({
        type: 'PaymentStarted', eventId: seated.id, bookingId: b, userId: 'pat', tierId: seated.gaTier, count: '2', seats: '', attempt: '1',
        atMs: String(NOW + 10), holderName: 'Ann Example', holderEmail: '', holderPhone: '',
      });
      expect(await pay(fx, b, 'decline', { attempt: 1, reason: 'declined: card_declined: no' })).toEqual([PayHoldReply.DONE, String(NOW + 10 + 60_000), '1']);
      expect(await fx.redis.hget(k.hold(b as BookingId), 'st')).toBe('held');
      expect(await lastEntry(fx)).toMatchObject({ type: 'PaymentDeclined', bookingId: b, attempt: '1', reason: 'declined: card_declined: no' });
      expect((await pay(fx, b, 'start', { user: 'pat' })).at(-1)).toBe('2'); // the next attempt is the second
    }));
    it('HOLD_NOT_FOUND, NOT_OWNER, NOT_RELEASABLE, HOLD_EXPIRED, NO_ATTEMPTS_LEFT, OTHER_ATTEMPT: nothing changes', t(async (fx) => {
      const k = eventKeys(fx.ns, seated.id);
      expect(await unchanged(fx, seated.id, () => pay(fx, 'bk_none', 'start', { user: 'quinn' }))).toEqual([PayHoldReply.HOLD_NOT_FOUND]);
      const b = (await holdGeneral(fx, { eventId: seated.id, tier: seated.gaTier, user: 'quinn' }))[1]!;
      expect(await unchanged(fx, seated.id, () => pay(fx, b, 'start', { user: 'mallory' }))).toEqual([PayHoldReply.NOT_OWNER]);
      expect(await unchanged(fx, seated.id, () => pay(fx, b, 'decline', { attempt: 1 }))).toEqual([PayHoldReply.OTHER_ATTEMPT, '0']);
      expect(await unchanged(fx, seated.id, () => pay(fx, b, 'start', { user: 'quinn', now: NOW + TTL }))).toEqual([PayHoldReply.HOLD_EXPIRED, String(NOW + TTL)]);
      expect((await pay(fx, b, 'start', { user: 'quinn', attempt: 1 }))[0]).toBe(PayHoldReply.DONE);
      expect(await unchanged(fx, seated.id, () => pay(fx, b, 'start', { user: 'quinn' }))).toEqual([PayHoldReply.NOT_RELEASABLE, 'paying']);
      expect(await unchanged(fx, seated.id, () => pay(fx, b, 'decline', { attempt: 2 }))).toEqual([PayHoldReply.OTHER_ATTEMPT, '1']);
      expect((await pay(fx, b, 'decline', { attempt: 1 }))[0]).toBe(PayHoldReply.DONE);
      expect(await unchanged(fx, seated.id, () => pay(fx, b, 'decline', { attempt: 1 }))).toEqual([PayHoldReply.NOT_RELEASABLE, 'held']);
      // maxAttempts 1, one attempt used: no more
      expect(await unchanged(fx, seated.id, () => pay(fx, b, 'start', { user: 'quinn', attempt: 1 }))).toEqual([PayHoldReply.NO_ATTEMPTS_LEFT, '1']);
      expect(await fx.redis.hget(k.hold(b as BookingId), 'st')).toBe('held');
    }));
  });

  describe('restoreHold', () => {
    it('RESTORED with the attempt counter (the next payHold start numbers max + 1); ALREADY_THERE writes nothing', t(async (fx) => {
      const k = eventKeys(fx.ns, seated.id);
      const b = newBookingId(seated.id);
      const restore = (attempts: number | string) => fx.redis.restoreHold(k.hold(b), k.expiry, b, 'rita', seated.gaTier, 1, '', NOW + TTL, NOW, 'held', attempts);
      await expect(restore('x')).rejects.toThrow(/bad argument/);
      expect(await restore(2)).toEqual([RestoreHoldReply.RESTORED]);
      expect(await fx.redis.hmget(k.hold(b), 'st', 'a')).toEqual(['held', '2']);
      expect(await fx.redis.zscore(k.expiry, b)).toBe(String(NOW + TTL));
      expect(await unchanged(fx, seated.id, () => restore(0))).toEqual([RestoreHoldReply.ALREADY_THERE]);
      const started = await fx.redis.payHold(k.hold(b), k.expiry, k.outbox, seated.id, b, 'rita', NOW, 60_000, 'start', 5, '', '', '', '');
      expect(started).toEqual([PayHoldReply.DONE, String(NOW + TTL), '3']);
    }));
  });

  describe('takeLease', () => {
    it('HELD for the owner, BUSY for anyone else; only the owner drops it', t(async (fx) => {
      const key = eventKeys(fx.ns, seated.id).persistLease;
      expect(await fx.redis.takeLease(key, 'p1', 10_000, 'take')).toEqual([TakeLeaseReply.HELD]);
      expect(await fx.redis.takeLease(key, 'p2', 10_000, 'take')).toEqual([TakeLeaseReply.BUSY]);
      expect(await fx.redis.takeLease(key, 'p2', 10_000, 'drop')).toEqual([TakeLeaseReply.BUSY]);
      expect(await fx.redis.get(key)).toBe('p1');
      expect(await fx.redis.takeLease(key, 'p1', 10_000, 'drop')).toEqual([TakeLeaseReply.HELD]);
      expect(await fx.redis.takeLease(key, 'p2', 10_000, 'take')).toEqual([TakeLeaseReply.HELD]);
    }));
  });

  describe('rate limits (includes/rateLimit, counted first in every hold script; rateLimit-1 for the rest)', () => {
    /** The event's state without its rate-limit counters (the one write a refused call makes, by design). */
    const withoutCounters = async (fx: Ctx, eventId: EventId) =>
      Object.fromEntries(Object.entries(await snapshotRedis(fx.redis, eventKeys(fx.ns, eventId).pattern)).filter(([key]) => !key.includes(':rl:')));

    it('holdGeneral: RATE_LIMITED once a buyer is over the limit, before any other check, with the ms until the window ends', async ({ engine, redis, ns, pg, clock }) => {
      const fx = { redis, ns, pg, clock };
      const ev = await engine.createEvent(gaEvent(5, { maxTicketsPerUser: 4 }));
      const g = { eventId: ev.id, tier: ev.tiers[0]!.id, user: 'rl-ann', limits: '2,0,60000' };
      expect((await holdGeneral(fx, g))[0]).toBe(HoldGeneralReply.HELD);
      expect(await holdGeneral(fx, { ...g, tier: 'tr_nosuchtier' })).toEqual([HoldGeneralReply.UNKNOWN_TIER]); // refused calls count too
      const before = await withoutCounters(fx, ev.id);
      const [code, retryAfterMs] = await holdGeneral(fx, { ...g, tier: 'tr_nosuchtier' });
      expect(code).toBe(HoldGeneralReply.RATE_LIMITED);
      expect(Number(retryAfterMs)).toBeGreaterThan(0);
      expect(Number(retryAfterMs)).toBeLessThanOrEqual(60_000);
      expect(await withoutCounters(fx, ev.id)).toEqual(before);
      const k = eventKeys(ns, ev.id);
      expect(await redis.get(k.holdRate('u', 'rl-ann'))).toBe('3');
      expect(await redis.pttl(k.holdRate('u', 'rl-ann'))).toBeGreaterThan(0);
      // the per-IP limit is off ("0"): its key is never touched; another buyer has a limit of their own
      expect(await redis.exists(k.holdRate('ip', '10.0.0.1'))).toBe(0);
      expect((await holdGeneral(fx, { ...g, user: 'rl-bob' }))[0]).toBe(HoldGeneralReply.HELD);
      // no limits ("") counts nothing
      expect((await holdGeneral(fx, { ...g, limits: '' }))[0]).toBe(HoldGeneralReply.HELD);
      expect(await redis.get(k.holdRate('u', 'rl-ann'))).toBe('3');
    });

    it('holdGeneral: the per-IP limit counts every buyer from one address', async ({ engine, redis, ns, pg, clock }) => {
      const fx = { redis, ns, pg, clock };
      const ev = await engine.createEvent(gaEvent(5));
      const g = { eventId: ev.id, tier: ev.tiers[0]!.id, limits: '0,1,60000', ip: '192.0.2.7' };
      expect((await holdGeneral(fx, { ...g, user: 'ip-a' }))[0]).toBe(HoldGeneralReply.HELD);
      expect((await holdGeneral(fx, { ...g, user: 'ip-b' }))[0]).toBe(HoldGeneralReply.RATE_LIMITED);
      expect((await holdGeneral(fx, { ...g, user: 'ip-b', ip: '192.0.2.8' }))[0]).toBe(HoldGeneralReply.HELD);
      expect(await redis.exists(eventKeys(ns, ev.id).holdRate('u', 'ip-a'))).toBe(0);
    });

    it('holdSeats and holdBest: RATE_LIMITED too, and refused calls counted', t(async (fx) => {
      expect(await holdSeats(fx, ['Z-9-9'], { user: 'rl-cy', limits: '1,0,60000' })).toEqual([HoldSeatsReply.UNKNOWN_SEAT, 'Z-9-9']);
      const before = await withoutCounters(fx, seated.id);
      expect((await holdSeats(fx, ['A-1-1'], { user: 'rl-cy', limits: '1,0,60000' }))[0]).toBe(HoldSeatsReply.RATE_LIMITED);
      expect(await holdBest(fx, 1, { user: 'rl-di', section: 'Q', limits: '1,0,60000' })).toEqual([HoldBestReply.UNKNOWN_SECTION]);
      expect((await holdBest(fx, 1, { user: 'rl-di', limits: '1,0,60000' }))[0]).toBe(HoldBestReply.RATE_LIMITED);
      expect(await withoutCounters(fx, seated.id)).toEqual(before);
    }));

    it('raises a Redis error for malformed limits and counts nothing', t(async (fx) => {
      for (const limits of ['x,0,1000', '1,0', '1,0,0', '-1,0,1000']) {
        await unchanged(fx, seated.id, () => expect(holdBest(fx, 1, { user: 'rl-bad', limits })).rejects.toThrow(/bad argument/));
      }
    }));

    it('rateLimit: ALLOWED up to the points, then RATE_LIMITED until the window ends (refused requests count)', t(async (fx) => {
      const key = `${fx.ns}:rl:test:u:someone`;
      expect(await fx.redis.rateLimit(key, 2, 60_000)).toEqual([RateLimitReply.ALLOWED]);
      expect(await fx.redis.rateLimit(key, 2, 60_000)).toEqual([RateLimitReply.ALLOWED]);
      const [code, ms] = await fx.redis.rateLimit(key, 2, 60_000);
      expect(code).toBe(RateLimitReply.RATE_LIMITED);
      expect(Number(ms)).toBeGreaterThan(0);
      expect(Number(ms)).toBeLessThanOrEqual(60_000);
      expect(await fx.redis.get(key)).toBe('3');
      await expect(fx.redis.rateLimit(key, 0, 60_000)).rejects.toThrow(/bad argument/);
    }));
  });

  it('keeps cap == free + held + sold for every tier after all of the above', async ({ engine }) => {
    for (const id of [ga.id, seated.id]) {
      for (const t of Object.values(await engine.inventory.redisState(id))) expect(t.free + t.held + t.sold).toBe(t.cap);
    }
  });
});
