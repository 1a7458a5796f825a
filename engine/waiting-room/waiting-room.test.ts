import { createHash } from 'node:crypto';
import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { snapshotPg, snapshotRedis } from '../../test/state.js';
import { isDomainError } from '../errors.js';
import type { UserId } from '../ids.js';
import type { Engine } from '../index.js';
import { signAdmission } from './admission-token.js';
import { drawScore, memberOf, parseQueueId } from './waiting-room.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const OPENS = T0 - 3600_000;
const SALES = T0 + 60_000;
const u = (s: string) => s as UserId;

async function queuedEvent(engine: Engine, capacity: number, o: { rate?: number; passTtlSeconds?: number; maxTicketsPerUser?: number } = {}) {
  return engine.createEvent({
    ...gaEvent(capacity),
    salesOpenAt: new Date(SALES).toISOString(),
    maxTicketsPerUser: o.maxTicketsPerUser ?? 4,
    queue: { enabled: true, opensAt: new Date(OPENS).toISOString(), admissionRatePerSecond: o.rate ?? 100, passTtlSeconds: o.passTtlSeconds ?? 120 },
  });
}

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (isDomainError(e)) return e.code;
    throw e;
  }
};

describe('waiting room', () => {
  it('5,000 people join at once, 200 of them 20 times each in parallel: exactly 5,000 places', async ({ engine, clock, redis, ns }) => {
    clock.set(T0 + 120_000); // after the opening: everyone queues in arrival order
    const ev = await queuedEvent(engine, 100);
    const joins = [
      ...Array.from({ length: 5000 }, (_, i) => engine.waitingRoom.join(ev.id, u(`crowd-${i}`))),
      ...Array.from({ length: 200 * 20 }, (_, i) => engine.waitingRoom.join(ev.id, u(`crowd-${i % 200}`))),
    ];
    const results = await Promise.all(joins);
    const ids = new Set(results.map((r) => r.status.queueId));
    expect(ids.size).toBe(5000);
    expect(results.filter((r) => r.created)).toHaveLength(5000);
    expect(await redis.zcard(`${ns}:{evt:${ev.id}}:wr:line`)).toBe(5000);
    const positions = new Set(results.filter((r) => r.created).map((r) => r.status.position));
    expect(positions.size).toBe(5000); // no two people share a place
    expect(Math.max(...[...positions].map(Number))).toBe(5000);
  });

  it('draws the pre-opening group with a committed seed, then serves later arrivals first come first served', async ({ engine, deps, clock }) => {
    clock.set(OPENS + 1000);
    const ev = await queuedEvent(engine, 100_000);
    const before = ev.queue!.seedHash;
    const early = Array.from({ length: 300 }, (_, i) => u(`early-${i}`));
    for (const who of early) await engine.waitingRoom.join(ev.id, who);
    // before the sale opens: no positions, and the seed is secret
    const pre = await engine.waitingRoom.status((await engine.waitingRoom.join(ev.id, early[0]!)).status.queueId, early[0]!);
    expect([pre.status, pre.position, pre.aheadOfYou]).toEqual(['waiting', null, null]);
    const sealed = await engine.waitingRoom.fairness(ev.id, { offset: 0, limit: 10 });
    expect(sealed.seed).toBeNull();
    expect(sealed.preOpening.places).toEqual([]);

    clock.set(SALES);
    const late = Array.from({ length: 50 }, (_, i) => u(`late-${i}`));
    for (const who of late) await engine.waitingRoom.join(ev.id, who);

    const record = await engine.waitingRoom.fairness(ev.id, { offset: 0, limit: 10_000 });
    expect(record.seedHash).toBe(before);
    expect(createHash('sha256').update(record.seed!).digest('hex')).toBe(before);
    // anyone can recompute the draw from the seed and the published places
    const recomputed = early
      .map((who) => ({ member: memberOf(deps.config.admissionSecret, ev.id, who), score: drawScore(record.seed!, memberOf(deps.config.admissionSecret, ev.id, who)) }))
      .sort((a, b) => a.score - b.score || (a.member < b.member ? -1 : 1))
      .map((x) => x.member);
    expect(record.preOpening.places.map((p) => parseQueueId(p.queueId)!.member)).toEqual(recomputed);
    expect(record.preOpening.count).toBe(300);

    // admission follows exactly that order, then the late arrivals in arrival order: admit one at a time
    const expected = [...recomputed.map((m) => early.find((w) => memberOf(deps.config.admissionSecret, ev.id, w) === m)!), ...late];
    const isAdmitted = async (who: UserId) =>
      (await engine.waitingRoom.status(`q_${ev.id.slice(3)}_${memberOf(deps.config.admissionSecret, ev.id, who)}`, who)).status === 'admitted';
    for (let i = 0; i < expected.length; i++) {
      expect((await engine.waitingRoom.admit(ev.id, 1))!.admitted).toBe(1);
      expect(await isAdmitted(expected[i]!), `place ${i + 1}`).toBe(true);
      if (i + 1 < expected.length) expect(await isAdmitted(expected[i + 1]!)).toBe(false);
    }
  });

  it('never admits more than the stock can serve; shows sold_out to everyone waiting; resumes when holds expire', async ({ engine, deps, clock }) => {
    clock.set(SALES + 1000);
    // passes last 30 s, holds 60 s (TEST_ENGINE_CONFIG): unused passes run out before the holds do
    const ev = await queuedEvent(engine, 100, { maxTicketsPerUser: 4, passTtlSeconds: 30 });
    const people = Array.from({ length: 10_000 }, (_, i) => u(`buyer-${i}`));
    await Promise.all(people.map((p) => engine.waitingRoom.join(ev.id, p)));
    const tier = ev.tiers[0]!.id;
    const served = new Set<string>();
    let rounds = 0;
    for (;;) {
      const r = (await engine.waitingRoom.admit(ev.id, 50))!;
      const inv = (await engine.inventory.redisState(ev.id))[tier]!;
      expect(r.outstanding * 4).toBeLessThanOrEqual(inv.free + inv.held);
      if (r.admitted === 0) break;
      // every newly admitted person books 1-4 tickets with their pass (as many as are left)
      const admittedNow = people.slice(0, (rounds + 1) * 60).filter((p) => !served.has(p));
      for (const p of admittedNow) {
        const st = await engine.waitingRoom.status(`q_${ev.id.slice(3)}_${memberOf(deps.config.admissionSecret, ev.id, p)}`, p);
        if (st.status !== 'admitted') continue;
        served.add(p);
        const free = (await engine.inventory.redisState(ev.id))[tier]!.free;
        if (free === 0) continue;
        await engine.bookings.create({ userId: p, eventId: ev.id, tierId: tier, ticketCount: Math.min(free, 1 + (served.size % 4)), admissionToken: st.admissionToken });
      }
      rounds++;
    }
    const inv = (await engine.inventory.redisState(ev.id))[tier]!;
    expect(inv).toMatchObject({ free: 0, held: 100 });
    expect(served.size).toBeLessThan(100); // nowhere near everyone was let in
    const waiting = people.slice(-3);
    for (const p of waiting) expect((await engine.waitingRoom.status(`q_${ev.id.slice(3)}_${memberOf(deps.config.admissionSecret, ev.id, p)}`, p)).status).toBe('sold_out');

    // The unused passes run out (30 s): their slots come back, and with every ticket held but possibly released
    // (the holds may expire), admission goes on only as far as the held stock could serve.
    clock.advance(30_000);
    const whileHeld = (await engine.waitingRoom.admit(ev.id, 500))!;
    expect(whileHeld.outstanding * 4).toBeLessThanOrEqual(100);
    // The holds expire (60 s): stock returns, the waiting see "waiting" again...
    clock.advance(30_000);
    expect(await engine.holds.sweep(ev.id)).toBeGreaterThan(0);
    expect((await engine.waitingRoom.status(`q_${ev.id.slice(3)}_${memberOf(deps.config.admissionSecret, ev.id, waiting[0]!)}`, waiting[0]!)).status).toBe('waiting');
    // ...and once the passes given out meanwhile run out unused, admission resumes by itself
    clock.advance(30_000);
    const resumed = (await engine.waitingRoom.admit(ev.id, 500))!;
    expect(resumed.expired).toBe(whileHeld.admitted);
    expect(resumed.admitted).toBe(25);
    expect(resumed.outstanding * 4).toBeLessThanOrEqual((await engine.inventory.redisState(ev.id))[tier]!.free);
  });

  it('refuses bookings without a valid pass (403 ADMISSION_REQUIRED) and changes nothing; one pass, one live hold', async ({ engine, deps, clock, redis, ns, pg }) => {
    clock.set(SALES + 1000);
    const ev = await queuedEvent(engine, 50, { passTtlSeconds: 120 });
    const other = await queuedEvent(engine, 50);
    const ann = u('ann');
    const bob = u('bob');
    await engine.waitingRoom.join(ev.id, ann);
    await engine.waitingRoom.join(ev.id, bob);
    await engine.waitingRoom.join(other.id, ann);
    await engine.waitingRoom.admit(ev.id, 10);
    await engine.waitingRoom.admit(other.id, 10);
    const annPass = (await engine.waitingRoom.status(`q_${ev.id.slice(3)}_${memberOf(deps.config.admissionSecret, ev.id, ann)}`, ann)).admissionToken!;
    const bobPass = (await engine.waitingRoom.status(`q_${ev.id.slice(3)}_${memberOf(deps.config.admissionSecret, ev.id, bob)}`, bob)).admissionToken!;
    const annOtherEvent = (await engine.waitingRoom.status(`q_${other.id.slice(3)}_${memberOf(deps.config.admissionSecret, other.id, ann)}`, ann)).admissionToken!;
    const tierId = ev.tiers[0]!.id;
    const book = (admissionToken: string | undefined, userId = ann) =>
      engine.bookings.create({ userId, eventId: ev.id, tierId, ticketCount: 1, admissionToken });
    const forged = annPass.slice(0, -2) + (annPass.endsWith('AA') ? 'BB' : 'AA');
    const expired = signAdmission(deps.config.admissionSecret, { eventId: ev.id, userId: ann, member: memberOf(deps.config.admissionSecret, ev.id, ann), expiresAtMs: clock.now() - 1 });
    const stolenMember = signAdmission('not-the-secret-at-all!!', { eventId: ev.id, userId: ann, member: memberOf(deps.config.admissionSecret, ev.id, bob), expiresAtMs: clock.now() + 60_000 });

    const pattern = `${ns}:{evt:${ev.id}}:*`;
    const [r0, p0] = [await snapshotRedis(redis, pattern), await snapshotPg(pg)];
    for (const [why, token, who] of [
      ['missing', undefined, ann],
      ['forged signature', forged, ann],
      ["someone else's", bobPass, ann],
      ["another event's", annOtherEvent, ann],
      ['expired', expired, ann],
      ['signed with another key', stolenMember, ann],
    ] as const) {
      expect(await codeOf(book(token, who)), why).toBe('ADMISSION_REQUIRED');
    }
    expect(await snapshotRedis(redis, pattern)).toEqual(r0);
    expect(await snapshotPg(pg)).toEqual(p0);

    const first = await book(annPass);
    expect(first.reservation.status).toBe('RESERVED');
    expect(await codeOf(book(annPass))).toBe('ADMISSION_REQUIRED'); // a second live hold on the same pass
    await engine.bookings.cancel(first.reservation.bookingId, ann);
    expect((await book(annPass)).reservation.status).toBe('RESERVED'); // the pass is usable again once the hold is gone
    const st = await engine.waitingRoom.status(`q_${ev.id.slice(3)}_${memberOf(deps.config.admissionSecret, ev.id, ann)}`, ann);
    expect(st.bookingId).toMatch(/^bk_/);
  });

  it('unused passes expire and give their slot back; leaving is final; statuses for strangers are not found', async ({ engine, deps, clock }) => {
    clock.set(SALES + 1000);
    const ev = await queuedEvent(engine, 4, { maxTicketsPerUser: 4, passTtlSeconds: 30 });
    const [a, b, c] = [u('pa'), u('pb'), u('pc')];
    for (const p of [a, b, c]) await engine.waitingRoom.join(ev.id, p);
    const q = (p: UserId) => `q_${ev.id.slice(3)}_${memberOf(deps.config.admissionSecret, ev.id, p)}`;
    expect((await engine.waitingRoom.admit(ev.id, 10))!.admitted).toBe(1); // 4 tickets, 4 per pass: one pass at a time
    expect((await engine.waitingRoom.status(q(a), a)).status).toBe('admitted');
    expect((await engine.waitingRoom.status(q(b), b))).toMatchObject({ status: 'waiting', aheadOfYou: 0, position: 1 });
    clock.advance(30_000);
    const r = (await engine.waitingRoom.admit(ev.id, 10))!;
    expect([r.expired, r.admitted]).toEqual([1, 1]);
    expect((await engine.waitingRoom.status(q(a), a)).status).toBe('expired');
    expect((await engine.waitingRoom.status(q(b), b)).status).toBe('admitted');
    await engine.waitingRoom.leave(q(c), c);
    expect(await codeOf(engine.waitingRoom.status(q(c), c))).toBe('QUEUE_NOT_FOUND');
    expect(await codeOf(engine.waitingRoom.join(ev.id, c))).toBe('QUEUE_LEFT');
    expect(await codeOf(engine.waitingRoom.status(q(a), b))).toBe('QUEUE_NOT_FOUND');
    expect(await codeOf(engine.waitingRoom.status('q_nope', a))).toBe('QUEUE_NOT_FOUND');
    // an admin turns the waiting room off: places say closed, joins are refused, bookings no longer need a pass
    await engine.waitingRoom.configure(ev.id, { enabled: false, opensAt: new Date(OPENS).toISOString(), admissionRatePerSecond: 1, passTtlSeconds: 30 });
    expect((await engine.waitingRoom.status(q(b), b)).status).toBe('admitted');
    const d = u('pd');
    expect(await codeOf(engine.waitingRoom.join(ev.id, d))).toBe('QUEUE_CLOSED');
    expect(await engine.waitingRoom.admit(ev.id, 10)).toBeNull();
    expect((await engine.bookings.create({ userId: d, eventId: ev.id, ticketCount: 1 })).reservation.status).toBe('RESERVED');
  });

  it('estimates the wait from the observed admission rate, with a band', async ({ engine, deps, clock }) => {
    clock.set(SALES + 1000);
    const ev = await queuedEvent(engine, 100_000, { rate: 10, maxTicketsPerUser: 1 });
    const people = Array.from({ length: 400 }, (_, i) => u(`eta-${i}`));
    for (const p of people) await engine.waitingRoom.join(ev.id, p);
    const last = people.at(-1)!;
    const q = `q_${ev.id.slice(3)}_${memberOf(deps.config.admissionSecret, ev.id, last)}`;
    const before = await engine.waitingRoom.status(q, last);
    expect(before.estimatedWaitSeconds).toBe(40); // 400 places at the 10/s ceiling, nothing observed yet
    expect(before.estimatedWaitRange).toEqual({ low: 40, high: null });
    for (let s = 0; s < 30; s++) {
      await engine.waitingRoom.admit(ev.id, s < 15 ? 10 : 5); // 10/s, then 5/s
      clock.advance(1000);
    }
    const after = await engine.waitingRoom.status(q, last);
    expect(after.aheadOfYou).toBe(400 - 225 - 1);
    expect(after.estimatedWaitRange!.low).toBeLessThanOrEqual(after.estimatedWaitSeconds!);
    expect(after.estimatedWaitRange!.high).toBeGreaterThanOrEqual(after.estimatedWaitSeconds!);
    expect(after.estimatedWaitSeconds).toBeGreaterThan(174 / 10);
  });
});
