import { pino } from 'pino';
import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { waitFor } from '../../test/wait.js';
import type { UserId } from '../../engine/ids.js';
import { createMetrics } from '../../platform/metrics.js';
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

  it('after a worker died holding read-but-unacknowledged entries, the next lease holder applies them', async ({ engine, pg, redis, onTestFinished }) => {
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
    expect(await redis.xlen(`${engine.deps.ns}:{evt:${ev.id}}:outbox`)).toBe(0);
  });

  it('keeps the entries and catches up when Postgres refuses to work for a while', async ({ engine, pg, onTestFinished }) => {
    const ev = await createGaEvent(engine, 50);
    await engine.bookings.create({ userId: 'x1' as UserId, eventId: ev.id, ticketCount: 1 });
    // Lock the processed_events table so every batch fails (lock_timeout), as if Postgres were unavailable.
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
    const metrics = createMetrics('workers');
    const w = createPersistWorker({ engine: { ...engine, applyOutbox: async (e, r) => {
      const c = await pg.connect();
      try {
        await c.query("SET lock_timeout = '50ms'");
        await c.query('SELECT 1 FROM processed_events LIMIT 1');
      } finally {
        c.release();
      }
      return engine.applyOutbox(e, r);
    } }, log, metrics });
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
