import { pino } from 'pino';
import { Redis } from 'ioredis';
import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent, seatedEvent } from '../../test/events.js';
import { TEST_REDIS_URL } from '../../test/env.js';
import { waitFor } from '../../test/wait.js';
import { getBooking } from '../../engine/booking/bookings-repo.js';
import type { UserId } from '../../engine/ids.js';
import { eventKeys } from '../../engine/keys.js';
import { createMetrics } from '../../platform/metrics.js';
import { startSweeper, sweepAll } from './sweeper.js';

const TTL = 60_000; // TEST_ENGINE_CONFIG.holdTtlMs

describe('sweeper', () => {
  it('releases a hold once its deadline passes: seats back, booking EXPIRED, ReservationExpired emitted', async ({ engine, clock, pg, redis, ns }) => {
    const ev = await engine.createEvent(seatedEvent([{ id: 'A', rows: 1, seatsPerRow: 6 }]));
    const tier = ev.tiers[0]!.id;
    const hold = await engine.bookings.create({ userId: 'ann' as UserId, eventId: ev.id, ticketCount: 3 });
    const created = await engine.outbox.read(ev.id, 10);
    await engine.applyOutbox(created);
    await engine.outbox.ack(ev.id, created.map((e) => e.id));

    clock.advance(TTL - 1);
    expect(await sweepAll(engine)).toBe(0);
    expect((await engine.inventory.redisState(ev.id))[tier]!.held).toBe(3);

    clock.advance(1);
    expect(await sweepAll(engine)).toBe(1);
    expect((await engine.inventory.redisState(ev.id))[tier]).toEqual({ cap: 6, free: 6, held: 0, sold: 0 });
    expect(await redis.hget(eventKeys(ns, ev.id).smap, 'A')).toBe('......');
    const entries = await engine.outbox.read(ev.id, 10);
    expect(entries.map((e) => e.type)).toEqual(['ReservationExpired']);
    await engine.applyOutbox(entries);
    await engine.outbox.ack(ev.id, entries.map((e) => e.id));
    expect((await getBooking(pg, hold.reservation.bookingId))!.status).toBe('EXPIRED');
    expect(await engine.inventory.postgresState(ev.id)).toEqual(await engine.inventory.redisState(ev.id));
  });

  it('expires each hold exactly once when two sweepers run at the same time', async ({ engine, clock }) => {
    const ev = await createGaEvent(engine, 100);
    await Promise.all(Array.from({ length: 40 }, (_, i) => engine.bookings.create({ userId: `s${i}` as UserId, eventId: ev.id, ticketCount: 2 })));
    clock.advance(TTL);
    const [a, b] = await Promise.all([sweepAll(engine), sweepAll(engine)]);
    expect(a + b).toBe(40);
    const entries = await engine.outbox.read(ev.id, 1000);
    expect(entries.filter((e) => e.type === 'ReservationExpired')).toHaveLength(40);
    expect(new Set(entries.filter((e) => e.type === 'ReservationExpired').map((e) => e.bookingId)).size).toBe(40);
    expect((await engine.inventory.redisState(ev.id))[ev.tiers[0]!.id]).toEqual({ cap: 100, free: 100, held: 0, sold: 0 });
  });

  it('leaves a hold that was confirmed before its deadline', async ({ engine, clock }) => {
    const ev = await createGaEvent(engine, 5);
    const hold = await engine.bookings.create({ userId: 'pay' as UserId, eventId: ev.id, ticketCount: 1 });
    await engine.holds.confirm(ev.id, hold.reservation.bookingId);
    clock.advance(TTL * 2);
    expect(await sweepAll(engine)).toBe(0);
    expect((await engine.inventory.redisState(ev.id))[ev.tiers[0]!.id]).toMatchObject({ sold: 1, held: 0 });
  });

  it('runs on its own as a BullMQ job scheduler', async ({ engine, clock, ns, onTestFinished }) => {
    const ev = await createGaEvent(engine, 10);
    await engine.bookings.create({ userId: 'bull' as UserId, eventId: ev.id, ticketCount: 4 });
    clock.advance(TTL);
    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const metrics = createMetrics('workers');
    const sweeper = await startSweeper({ engine, connection, prefix: `${ns}:bull`, intervalMs: 100, log: pino({ level: 'silent' }), metrics });
    onTestFinished(async () => {
      await sweeper.stop();
      connection.disconnect();
    });
    await waitFor('the hold released by the scheduled sweep', async () => (await engine.inventory.redisState(ev.id))[ev.tiers[0]!.id]!.free === 10);
    // the job counts what it expired once its sweep returns, a moment after the script freed the seats: wait for that
    // job to finish, not only for its effect in Redis (checked at once, this failed under load)
    await waitFor('the sweep job to count the expiry', async () =>
      /^floodgate_holds_expired_total(\{[^}]*\})? [1-9]\d*$/m.test(await metrics.registry.getSingleMetricAsString('floodgate_holds_expired_total')));
  });
});
