import { pino } from 'pino';
import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent, seatedEvent } from '../../test/events.js';
import { legacySpelledHold } from '../../test/poison.js';
import { getBooking } from '../../engine/booking/bookings-repo.js';
import { eventKeys } from '../../engine/keys.js';
import { waitFor } from '../../test/wait.js';
import type { UserId } from '../../engine/ids.js';
import { createMetrics } from '../../platform/metrics.js';
import { createPool } from '../../platform/pg.js';
import { createEngine } from '../../engine/index.js';
import { TEST_DATABASE_URL } from '../../test/env.js';
import { createPersistWorker } from './persist.js';

const log = pino({ level: 'silent' });
const countBookings = async (pg: { query: (s: string, p?: unknown[]) => Promise<{ rows: { n: string }[] }> }, eventId: string) =>
  Number((await pg.query('SELECT count(*) AS n FROM bookings WHERE event_id = $1', [eventId])).rows[0]!.n);

describe('persist worker', () => {
  it('drains holds made under load into Postgres, in batches, and leaves the outbox empty', async ({ engine, pg, onTestFinished }) => {
    const ev = await createGaEvent(engine, 1000, { maxTicketsPerUser: 8 });
    const metrics = createMetrics('workers');
    const w = createPersistWorker({ engine, log, metrics, batchSize: 50 });
    w.start();
    onTestFinished(() => w.stop());
    await Promise.all(Array.from({ length: 300 }, (_, i) => engine.bookings.create({ userId: `u${i}` as UserId, eventId: ev.id, ticketCount: 1 })));
    await waitFor('300 bookings in Postgres', async () => (await countBookings(pg, ev.id)) === 300);
    await waitFor('an empty outbox', async () => (await engine.outbox.backlog(ev.id)).entries === 0);
    expect(await engine.inventory.postgresState(ev.id)).toEqual(await engine.inventory.redisState(ev.id));
    const batches = (await metrics.registry.getSingleMetricAsString('floodgate_persist_batch_duration_seconds')).match(/_count\{[^}]*\} (\d+)/);
    expect(Number(batches![1])).toBeGreaterThanOrEqual(6); // 300 entries, at most 50 per batch
    expect(Number(batches![1])).toBeLessThan(300);
  });

  it('with two workers, each entry is applied exactly once', async ({ engine, pg, onTestFinished }) => {
    const ev = await createGaEvent(engine, 500);
    const [a, b] = [createPersistWorker({ engine, log, batchSize: 20 }), createPersistWorker({ engine, log, batchSize: 20 })];
    a.start();
    b.start();
    onTestFinished(async () => {
      await a.stop();
      await b.stop();
    });
    await Promise.all(Array.from({ length: 200 }, (_, i) => engine.bookings.create({ userId: `v${i}` as UserId, eventId: ev.id, ticketCount: 2 })));
    await waitFor('200 bookings', async () => (await countBookings(pg, ev.id)) === 200);
    await waitFor('an empty outbox', async () => (await engine.outbox.backlog(ev.id)).entries === 0);
    const { rows } = await pg.query(
      `SELECT count(*)::int AS n FROM processed_events p JOIN bookings b ON p.key = b.id || ':BookingCreated' WHERE b.event_id = $1`,
      [ev.id],
    );
    expect(rows[0].n).toBe(200);
    expect(await engine.inventory.postgresState(ev.id)).toEqual(await engine.inventory.redisState(ev.id));
  });

  it('after a worker died holding read-but-unacknowledged entries, the next lease holder applies them', async ({ engine, ns, pg, redis, onTestFinished }) => {
    const ev = await createGaEvent(engine, 50);
    await Promise.all(Array.from({ length: 10 }, (_, i) => engine.bookings.create({ userId: `w${i}` as UserId, eventId: ev.id, ticketCount: 1 })));
    // The dead worker: took the lease, read the entries, never applied nor acknowledged them.
    expect(await engine.outbox.lease(ev.id, 'dead-worker', 300)).toBe(true);
    expect(await engine.outbox.read(ev.id, 100)).toHaveLength(10);
    const w = createPersistWorker({ engine, log, leaseMs: 1000 });
    expect(await w.drainOnce()).toBe(0); // the lease is still the dead worker's
    w.start();
    onTestFinished(() => w.stop());
    await waitFor('the 10 pending entries applied', async () => (await countBookings(pg, ev.id)) === 10);
    expect(await redis.xlen(`${ns}:{evt:${ev.id}}:outbox`)).toBe(0);
  });

  it('quarantines a poison entry between good ones: the good ones land, the poison booking is FAILED with a reason and its seat freed, the metric counts it, and later entries keep flowing', async ({ engine, ns, pg, redis }) => {
    const ev = await engine.createEvent(seatedEvent([{ id: 'A', rows: 2, seatsPerRow: 5 }]));
    const k = eventKeys(ns, ev.id);
    const book = async (user: string, seat: string) =>
      (await engine.bookings.create({ userId: user as UserId, eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: [seat] } })).reservation.bookingId;
    const first = await book('g1', 'A-1-2');
    const poison = await legacySpelledHold({ engine, redis, ns }, ev.id, 'p1' as UserId); // holds A-1-1, spelled "A-01-1"
    const second = await book('g2', 'A-1-3');
    expect((await engine.outbox.read(ev.id, 10)).map((e) => e.seats)).toEqual([['A-1-2'], ['A-01-1'], ['A-1-3']]);
    const metrics = createMetrics('workers');
    const w = createPersistWorker({ engine, log, metrics });

    await w.drainOnce();
    expect(await getBooking(pg, first)).toMatchObject({ status: 'RESERVED', seats: ['A-1-2'] });
    expect(await getBooking(pg, second)).toMatchObject({ status: 'RESERVED', seats: ['A-1-3'] });
    const p = await getBooking(pg, poison);
    expect(p).toMatchObject({ status: 'FAILED', seats: [], ticketCount: 1 });
    expect(p!.failureReason).toMatch(/^quarantined: postgres refused the entry \(23503 booking_seats_event_id_seat_id_fkey\)$/);
    expect(await metrics.registry.getSingleMetricAsString('floodgate_outbox_quarantined_total')).toMatch(/^floodgate_outbox_quarantined_total\{[^}]*\} 1$/m);
    // Redis gave the poison hold's seat back: nothing stays held that Postgres does not hold
    expect(await redis.exists(k.hold(poison))).toBe(0);
    expect(await redis.hget(k.smap, 'A')).toBe('.hh.......');

    // later entries of the same event keep flowing, and the freed seat sells again
    const later = await book('g3', 'A-1-1');
    await w.drainOnce();
    expect(await getBooking(pg, later)).toMatchObject({ status: 'RESERVED', seats: ['A-1-1'] });
    expect((await engine.outbox.backlog(ev.id)).entries).toBe(0);
    expect(await metrics.registry.getSingleMetricAsString('floodgate_outbox_quarantined_total')).toMatch(/\} 1$/m);
    expect((await engine.checkInvariants({ eventIds: [ev.id], drained: true })).violations).toEqual([]);
  });

  it('keeps the entries and catches up when Postgres refuses to work for a while', async ({ engine, deps, pg, ns, onTestFinished }) => {
    const ev = await createGaEvent(engine, 50);
    await engine.bookings.create({ userId: 'x1' as UserId, eventId: ev.id, ticketCount: 1 });
    // Lock the processed_events table so every batch fails (its statement deadline), as if Postgres were unavailable.
    const blocker = await pg.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE processed_events IN ACCESS EXCLUSIVE MODE');
    let released = false;
    const unblock = async () => {
      if (released) return;
      released = true;
      await blocker.query('ROLLBACK');
      blocker.release();
    };
    onTestFinished(unblock);
    const impatient = createPool({ url: TEST_DATABASE_URL, schema: ns, max: 2, statementTimeoutMs: 200 });
    onTestFinished(() => impatient.end());
    const metrics = createMetrics('workers');
    const w = createPersistWorker({ engine: createEngine({ ...deps, pg: impatient }), log, metrics });
    w.start();
    onTestFinished(() => w.stop());
    await waitFor('a failed pass', async () =>
      /worker="persist"[^}]*\} [1-9]/.test(await metrics.registry.getSingleMetricAsString('floodgate_worker_errors_total')),
    );
    expect(await countBookings(pg, ev.id)).toBe(0);
    expect((await engine.outbox.backlog(ev.id)).entries).toBe(1);
    await unblock();
    await waitFor('the booking recorded', async () => (await countBookings(pg, ev.id)) === 1);
  });
});
