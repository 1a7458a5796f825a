import { pino } from 'pino';
import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { waitFor } from '../../test/wait.js';
import type { UserId } from '../../engine/ids.js';
import { createMetrics } from '../../platform/metrics.js';
import { createAdmissionWorker } from './admission.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const log = pino({ level: 'silent' });

describe('admission worker', () => {
  it('admits at the configured ceiling, and two workers together still admit at the ceiling', async ({ engine, clock }) => {
    clock.set(T0);
    const ev = await engine.createEvent({
      ...gaEvent(10_000), salesOpenAt: new Date(T0).toISOString(), maxTicketsPerUser: 1,
      queue: { enabled: true, opensAt: new Date(T0 - 1000).toISOString(), admissionRatePerSecond: 20, passTtlSeconds: 600 },
    });
    await Promise.all(Array.from({ length: 200 }, (_, i) => engine.waitingRoom.join(ev.id, `w${i}` as UserId)));
    const metrics = createMetrics('workers');
    const a = createAdmissionWorker({ engine, log, metrics, tickMs: 100 });
    const b = createAdmissionWorker({ engine, log, tickMs: 100 });
    let admitted = 0;
    for (let t = 0; t < 50; t++) {
      clock.advance(100);
      admitted += (await a.tick()) + (await b.tick());
    }
    // 5 s at 20/s: 100 (+ the first tick's allowance), never more, however many workers run
    expect(admitted).toBeGreaterThanOrEqual(98);
    expect(admitted).toBeLessThanOrEqual(102);
    expect(await metrics.registry.getSingleMetricAsString('floodgate_waiting_room_waiting')).toMatch(new RegExp(`\\} ${200 - admitted}$`, 'm'));
    await a.stop();
    await b.stop();
  });

  it('runs on its own loop and stops cleanly', async ({ engine, clock, onTestFinished }) => {
    clock.set(T0);
    const ev = await engine.createEvent({
      ...gaEvent(100), salesOpenAt: new Date(T0).toISOString(), maxTicketsPerUser: 1,
      queue: { enabled: true, opensAt: new Date(T0 - 1000).toISOString(), admissionRatePerSecond: 1000, passTtlSeconds: 600 },
    });
    await engine.waitingRoom.join(ev.id, 'looped' as UserId);
    const w = createAdmissionWorker({ engine, log, tickMs: 20 });
    w.start();
    onTestFinished(() => w.stop());
    await waitFor('the person admitted', async () => {
      clock.advance(50);
      const q = (await engine.waitingRoom.join(ev.id, 'looped' as UserId)).status;
      return q.status === 'admitted';
    });
  });

  it('with a pace, keeps the tickets in play within the cap: the floor until sales are measured, then sold/s x budget x hold lifetime', async ({ engine, clock }) => {
    clock.set(T0);
    const ev = await engine.createEvent({
      ...gaEvent(10_000), salesOpenAt: new Date(T0).toISOString(), maxTicketsPerUser: 2,
      queue: { enabled: true, opensAt: new Date(T0 - 1000).toISOString(), admissionRatePerSecond: 5, passTtlSeconds: 600 },
    });
    await Promise.all(Array.from({ length: 100 }, (_, i) => engine.waitingRoom.join(ev.id, `p${i}` as UserId)));
    const metrics = createMetrics('workers');
    const w = createAdmissionWorker({ engine, log, metrics, tickMs: 100, pace: { holdTtlMs: 60_000, budget: 0.5, windowMs: 10_000 } });
    let admitted = 0;
    for (let t = 0; t < 30; t++) {
      clock.advance(100);
      admitted += await w.tick();
    }
    const cap = async () => {
      const text = await metrics.registry.getSingleMetricAsString('floodgate_waiting_room_active_cap_tickets');
      return Number(new RegExp(`event="${ev.id}"[^}]*\\} (\\d+)$`, 'm').exec(text)?.[1]);
    };
    // 3 s at 5/s would admit 15; the floor (one second at the ceiling, 5 passes x 2 tickets) stops it at 5
    expect(admitted).toBe(5);
    expect(await cap()).toBe(10);
    // 6 tickets sold at t = 3 s; at t = 4 s the rate over the 3.9 s measured is 1.54/s: cap ceil(1.54 x 0.5 x 60) = 47
    const tierId = ev.tiers[0]!.id;
    for (let i = 0; i < 3; i++) {
      const who = `p${i}` as UserId;
      const st = (await engine.waitingRoom.join(ev.id, who)).status;
      const { reservation } = await engine.bookings.create({ userId: who, eventId: ev.id, tierId, ticketCount: 2, admissionToken: st.admissionToken });
      expect((await engine.payments.pay({ bookingId: reservation.bookingId, userId: who, paymentMethodId: 'pm_card_visa' })).outcome).toBe('succeeded');
    }
    for (let t = 0; t < 10; t++) {
      clock.advance(100);
      admitted += await w.tick();
    }
    expect(await cap()).toBe(47);
    // in play now: 2 unused passes (4) + nothing held (3 sold); room for the cap's 47 - 4 = 43 -> more passes (5/s)
    expect(admitted).toBeGreaterThan(5);
    await w.stop();
  });
});
