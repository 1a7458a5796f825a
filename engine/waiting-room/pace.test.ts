import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import type { UserId } from '../ids.js';
import { createPace } from './pace.js';

const SALES = Date.UTC(2030, 0, 1, 12, 1, 0);
const u = (s: string) => s as UserId;

describe('the pace of admission: tickets in play <= sold per second x budget x hold lifetime', () => {
  it('is the floor until the sold rate is measured, then follows the sold rate, and is never below the floor', () => {
    const pace = createPace({ holdTtlMs: 30_000, budget: 0.5, windowMs: 10_000 });
    expect(pace.read(0, 0, 200)).toEqual({ cap: 200, soldPerSecond: null });
    expect(pace.read(2_000, 100, 200).soldPerSecond).toBeNull(); // under 3 s of measure
    // 1,000 tickets in 4 s = 250/s; x 0.5 x 30 s = 3,750
    expect(pace.read(4_000, 1_000, 200)).toEqual({ cap: 3_750, soldPerSecond: 250 });
    // the window slides: from t=4 s on, the reference is the newest sample at least 10 s old
    for (let t = 5_000; t <= 20_000; t += 1_000) pace.read(t, 1_000 + (t - 4_000) / 10, 200); // 100 tickets/s
    const r = pace.read(21_000, 2_700, 200);
    expect(r.soldPerSecond).toBeCloseTo(100, 0);
    expect(r.cap).toBe(1_500);
    // nothing sold for a window: back to the floor, not to zero
    for (let t = 22_000; t <= 40_000; t += 1_000) pace.read(t, 2_700, 200);
    expect(pace.read(41_000, 2_700, 200)).toEqual({ cap: 200, soldPerSecond: 0 });
    expect(() => createPace({ holdTtlMs: 1, budget: 0, windowMs: 1 })).toThrow(RangeError);
  });

  it('admitNext admits only while reserved + held tickets stay within the cap, with full passes only, in order', async ({ engine, clock }) => {
    clock.set(SALES + 1_000);
    const ev = await engine.createEvent({
      ...gaEvent(1_000),
      salesOpenAt: new Date(SALES).toISOString(),
      maxTicketsPerUser: 4,
      queue: { enabled: true, opensAt: new Date(SALES - 3_600_000).toISOString(), admissionRatePerSecond: 100, passTtlSeconds: 120 },
    });
    const tierId = ev.tiers[0]!.id;
    const people = Array.from({ length: 12 }, (_, i) => u(`pace-${i}`));
    const places = [];
    for (const p of people) places.push((await engine.waitingRoom.join(ev.id, p)).status.queueId);

    // cap 10 tickets: two full passes (8), never a pass sized down to the 2 left
    const first = (await engine.waitingRoom.admit(ev.id, 100, { activeCap: 10 }))!;
    expect(first).toMatchObject({ admitted: 2, reserved: 8 });
    const st0 = await engine.waitingRoom.status(places[0]!, people[0]!);
    expect(st0).toMatchObject({ status: 'admitted', passTickets: 4 });
    expect((await engine.waitingRoom.status(places[2]!, people[2]!)).status).toBe('waiting');

    // the first buyer holds 3: in play = 4 (unused pass) + 3 (held) = 7; the cap 10 leaves room for no full pass
    await engine.bookings.create({ userId: people[0]!, eventId: ev.id, tierId, ticketCount: 3, admissionToken: st0.admissionToken });
    expect((await engine.waitingRoom.admit(ev.id, 100, { activeCap: 10 }))!.admitted).toBe(0);
    // the cap grows (sales measured): 20 - 7 = 13 -> three more full passes, the next three in line
    expect((await engine.waitingRoom.admit(ev.id, 100, { activeCap: 20 }))!).toMatchObject({ admitted: 3, reserved: 16 });
    for (const i of [2, 3, 4]) expect((await engine.waitingRoom.status(places[i]!, people[i]!)).status).toBe('admitted');
    expect((await engine.waitingRoom.status(places[5]!, people[5]!)).status).toBe('waiting');
    // no cap (0): the stock and the rate decide, as before
    expect((await engine.waitingRoom.admit(ev.id, 100))!.admitted).toBe(7);
  });
});
