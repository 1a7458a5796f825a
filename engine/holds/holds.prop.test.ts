import fc from 'fast-check';
import { describe, expect, it, type Fixtures } from '../../test/fixtures.js';
import { isDomainError } from '../errors.js';
import type { BookingId, EventId, TierId, UserId } from '../ids.js';
import { eventKeys } from '../keys.js';
import type { Engine } from '../index.js';

/**
 * Model-based test: random sequences of hold (GA, specific seats, best available) / cancel / confirm /
 * clock advance + sweep from several users. After every command Redis must equal a plain in-memory model,
 * and no seat may be in two holds.
 */
const ROWS = 2;
const PER_ROW = 4;
const GA_CAP = 6;
const MAX_PER_USER = 5;
const TTL = 60_000;
const USERS = ['u1', 'u2', 'u3'] as const;
const SEATS = Array.from({ length: ROWS * PER_ROW }, (_, i) => `A-${Math.floor(i / PER_ROW) + 1}-${(i % PER_ROW) + 1}`);

type Hold = { user: string; tier: 'ga' | 'seats'; n: number; seats: string[]; expiresAt: number; sold: boolean };
type Model = { now: number; seats: Map<string, string>; ga: { free: number; held: number; sold: number }; holds: Map<string, Hold>; order: string[] };
type Real = { engine: Engine; eventId: EventId; seatTier: TierId; gaTier: TierId; fx: Pick<Fixtures, 'redis' | 'ns' | 'clock'> };

const userCount = (m: Model, u: string) => [...m.holds.values()].filter((h) => h.user === u && (h.sold || h.expiresAt > m.now)).reduce((s, h) => s + h.n, 0);
const freeSeats = (m: Model) => SEATS.filter((s) => !m.seats.has(s));
const hasAdjacent = (m: Model, n: number) =>
  Array.from({ length: ROWS }, (_, r) => r + 1).some((r) => {
    let run = 0;
    for (let c = 1; c <= PER_ROW; c++) {
      run = m.seats.has(`A-${r}-${c}`) ? 0 : run + 1;
      if (run >= n) return true;
    }
    return false;
  });

/** Applies expiry to the model exactly as the sweeper would at `now`. */
function expireModel(m: Model) {
  for (const [id, h] of m.holds) {
    if (h.sold || h.expiresAt > m.now) continue;
    if (h.tier === 'ga') {
      m.ga.free += h.n;
      m.ga.held -= h.n;
    }
    for (const s of h.seats) m.seats.delete(s);
    m.holds.delete(id);
  }
}

async function check(m: Model, r: Real) {
  const k = eventKeys(r.fx.ns, r.eventId);
  const map = (await r.fx.redis.hget(k.smap, 'A'))!;
  const expected = SEATS.map((s) => {
    const owner = m.seats.get(s);
    return owner === undefined ? '.' : m.holds.get(owner)?.sold ? 's' : 'h';
  }).join('');
  expect(map).toBe(expected);
  const inv = await r.engine.inventory.redisState(r.eventId);
  expect(inv[r.gaTier]).toEqual({ cap: GA_CAP, ...m.ga });
  const seatHolds = [...m.holds.values()].filter((h) => h.tier === 'seats');
  expect(inv[r.seatTier]).toEqual({
    cap: SEATS.length,
    free: freeSeats(m).length,
    held: seatHolds.filter((h) => !h.sold).reduce((s, h) => s + h.n, 0),
    sold: seatHolds.filter((h) => h.sold).reduce((s, h) => s + h.n, 0),
  });
  // no seat in two holds, as Redis has them
  const owners = new Map<string, string>();
  for (const id of m.holds.keys()) {
    const h = await r.engine.holds.get(r.eventId, id as BookingId);
    for (const s of h?.seats ?? []) {
      expect(owners.has(s), `seat ${s} in two holds`).toBe(false);
      owners.set(s, id);
    }
  }
  const buyers = await r.fx.redis.hgetall(k.buyers);
  for (const u of USERS) expect(Number(buyers[u] ?? 0)).toBe([...m.holds.values()].filter((h) => h.user === u).reduce((s, h) => s + h.n, 0));
}

function recordHold(m: Model, res: { bookingId: string; seats: string[]; ticketCount: number }, user: string, tier: 'ga' | 'seats') {
  m.holds.set(res.bookingId, { user, tier, n: res.ticketCount, seats: res.seats, expiresAt: m.now + TTL, sold: false });
  m.order.push(res.bookingId);
  for (const s of res.seats) {
    expect(m.seats.has(s), `seat ${s} handed out twice`).toBe(false);
    m.seats.set(s, res.bookingId);
  }
  if (tier === 'ga') {
    m.ga.free -= res.ticketCount;
    m.ga.held += res.ticketCount;
  }
}

const code = (e: unknown) => (isDomainError(e) ? e.code : (() => { throw e; })());

class HoldGa implements fc.AsyncCommand<Model, Real> {
  constructor(readonly user: string, readonly n: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const ok = m.ga.free >= this.n && userCount(m, this.user) + this.n <= MAX_PER_USER;
    try {
      const { reservation } = await r.engine.bookings.create({ userId: this.user as UserId, eventId: r.eventId, tierId: r.gaTier, ticketCount: this.n });
      expect(ok).toBe(true);
      recordHold(m, reservation, this.user, 'ga');
    } catch (e) {
      expect(ok).toBe(false);
      expect(code(e)).toBe(m.ga.free < this.n ? 'INSUFFICIENT_INVENTORY' : 'TICKET_LIMIT');
    }
    await check(m, r);
  }
  toString = () => `HoldGa(${this.user}, ${this.n})`;
}

class HoldSeats implements fc.AsyncCommand<Model, Real> {
  constructor(readonly user: string, readonly seats: string[]) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const taken = this.seats.find((s) => m.seats.has(s));
    const capOk = userCount(m, this.user) + this.seats.length <= MAX_PER_USER;
    try {
      const { reservation } = await r.engine.bookings.create({
        userId: this.user as UserId, eventId: r.eventId, ticketCount: this.seats.length, seatPreferences: { seatIds: this.seats },
      });
      expect(taken).toBeUndefined();
      expect(capOk).toBe(true);
      expect(reservation.seats).toEqual(this.seats);
      recordHold(m, reservation, this.user, 'seats');
    } catch (e) {
      expect(code(e)).toBe(taken ? 'SEAT_UNAVAILABLE' : 'TICKET_LIMIT');
    }
    await check(m, r);
  }
  toString = () => `HoldSeats(${this.user}, ${this.seats.join(' ')})`;
}

class HoldBest implements fc.AsyncCommand<Model, Real> {
  constructor(readonly user: string, readonly n: number, readonly adjacent: boolean) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const free = freeSeats(m).length;
    const capOk = userCount(m, this.user) + this.n <= MAX_PER_USER;
    const adjacentOk = hasAdjacent(m, this.n);
    try {
      const { reservation } = await r.engine.bookings.create({
        userId: this.user as UserId, eventId: r.eventId, tierId: r.seatTier, ticketCount: this.n, seatPreferences: { adjacent: this.adjacent },
      });
      expect(capOk && free >= this.n && (adjacentOk || !this.adjacent)).toBe(true);
      if (adjacentOk) {
        const rows = new Set(reservation.seats.map((s) => s.split('-')[1]));
        const nums = reservation.seats.map((s) => Number(s.split('-')[2]));
        expect(rows.size).toBe(1);
        expect(Math.max(...nums) - Math.min(...nums)).toBe(this.n - 1);
      }
      recordHold(m, reservation, this.user, 'seats');
    } catch (e) {
      const c = code(e);
      if (free < this.n) expect(c).toBe('INSUFFICIENT_INVENTORY');
      else if (this.adjacent && !adjacentOk) expect(c).toBe('NO_ADJACENT_SEATS');
      else expect(c).toBe('TICKET_LIMIT');
    }
    await check(m, r);
  }
  toString = () => `HoldBest(${this.user}, ${this.n}, adjacent=${this.adjacent})`;
}

class Cancel implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number, readonly byOwner: boolean) {}
  check = (m: Readonly<Model>) => m.order.length > 0;
  async run(m: Model, r: Real) {
    const id = m.order[this.pick % m.order.length]!;
    const h = m.holds.get(id);
    const user = this.byOwner && h ? h.user : 'intruder';
    const ok = h !== undefined && !h.sold && h.expiresAt > m.now && user === h.user;
    try {
      await r.engine.holds.release(r.eventId, id as BookingId, { userId: user as UserId });
      expect(ok).toBe(true);
      if (h!.tier === 'ga') {
        m.ga.free += h!.n;
        m.ga.held -= h!.n;
      }
      for (const s of h!.seats) m.seats.delete(s);
      m.holds.delete(id);
    } catch (e) {
      expect(ok).toBe(false);
      expect(['BOOKING_NOT_FOUND', 'BOOKING_NOT_CANCELLABLE', 'HOLD_EXPIRED']).toContain(code(e));
    }
    await check(m, r);
  }
  toString = () => `Cancel(#${this.pick}, ${this.byOwner ? 'owner' : 'intruder'})`;
}

class Confirm implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.order.length > 0;
  async run(m: Model, r: Real) {
    const id = m.order[this.pick % m.order.length]!;
    const h = m.holds.get(id);
    try {
      const out = await r.engine.holds.confirm(r.eventId, id as BookingId);
      expect(h).toBeDefined();
      expect(h!.expiresAt > m.now || h!.sold).toBe(true);
      expect(out).toBe(h!.sold ? 'already-confirmed' : 'confirmed');
      if (!h!.sold && h!.tier === 'ga') {
        m.ga.held -= h!.n;
        m.ga.sold += h!.n;
      }
      h!.sold = true;
    } catch (e) {
      expect(['BOOKING_NOT_FOUND', 'HOLD_EXPIRED']).toContain(code(e));
      expect(h === undefined || (!h.sold && h.expiresAt <= m.now)).toBe(true);
    }
    await check(m, r);
  }
  toString = () => `Confirm(#${this.pick})`;
}

class AdvanceAndSweep implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    m.now += this.ms;
    r.fx.clock.set(m.now);
    const due = [...m.holds.values()].filter((h) => !h.sold && h.expiresAt <= m.now).length;
    expect(await r.engine.holds.sweep(r.eventId)).toBe(due);
    expireModel(m);
    await check(m, r);
  }
  toString = () => `AdvanceAndSweep(${this.ms})`;
}

const user = fc.constantFrom(...USERS);
const commands = [
  fc.tuple(user, fc.integer({ min: 1, max: 4 })).map(([u, n]) => new HoldGa(u, n)),
  fc.tuple(user, fc.uniqueArray(fc.constantFrom(...SEATS), { minLength: 1, maxLength: 3 })).map(([u, s]) => new HoldSeats(u, s)),
  fc.tuple(user, fc.integer({ min: 1, max: 4 }), fc.boolean()).map(([u, n, a]) => new HoldBest(u, n, a)),
  fc.tuple(fc.nat(), fc.boolean()).map(([p, o]) => new Cancel(p, o)),
  fc.nat().map((p) => new Confirm(p)),
  fc.constantFrom(10_000, 30_000, 59_999, 60_000, 90_000).map((ms) => new AdvanceAndSweep(ms)),
];

describe('holds, against an in-memory model', () => {
  it('random hold / cancel / confirm / expire sequences keep Redis equal to the model', async ({ engine, redis, ns, clock }) => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25 }), async (cmds) => {
        clock.set(Date.UTC(2030, 0, 1));
        const ev = await engine.createEvent({
          name: 'Model', category: 'test', venue: 'V', startsAt: '2031-01-01T00:00:00Z', salesOpenAt: '2029-01-01T00:00:00Z',
          maxTicketsPerUser: MAX_PER_USER,
          tiers: [
            { name: 'Seats', price: 100, currency: 'EUR', capacity: SEATS.length, seating: { sections: [{ id: 'A', rows: ROWS, seatsPerRow: PER_ROW }] } },
            { name: 'GA', price: 50, currency: 'EUR', capacity: GA_CAP },
          ],
        });
        const real: Real = { engine, eventId: ev.id, seatTier: ev.tiers[0]!.id, gaTier: ev.tiers[1]!.id, fx: { redis, ns, clock } };
        const model: Model = { now: clock.now(), seats: new Map(), ga: { free: GA_CAP, held: 0, sold: 0 }, holds: new Map(), order: [] };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
      }),
      { numRuns: 60 },
    );
  });
});
