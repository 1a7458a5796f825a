/**
 * The benchmark driver's correctness checks are real checks: run against deliberately broken servers and stores they
 * fail (and the run's exit code becomes 1), against healthy ones they pass.
 *   - a fake booking server that answers 201 to more tickets than the stock allows -> the oversell check fails;
 *   - a tampered Redis counter (Redis and Postgres disagree, or a counter oversold) -> the store checks fail;
 *   - a tampered pg-lock tier counter -> the pg-lock check fails.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventKeys } from '../engine/keys.js';
import { pgLockHold, withPgLockBookings } from './lib/pg-lock.js';
import { newBookingId, type BookingId, type EventId, type TierId, type UserId } from '../engine/ids.js';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../test/env.js';
import { createPersistWorker } from '../workers/persist/persist.js';
import { floodgateEventChecks, oversellCheck, pgLockEventChecks, reportChecks, type Check } from './lib/checks.js';
import { benchStack, runLoad, startServer, type BenchStack } from './lib/stack.js';
import { signToken } from './lib/common.js';

/** A booking endpoint that takes `stock` tickets and then answers 409, or (broken) answers 201 to everything. */
function fakeBookingServer(stock: number, broken: boolean): Promise<Server> {
  let left = stock;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { ticketCount } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ticketCount: number };
      const ok = broken || left >= ticketCount;
      if (ok) left -= ticketCount;
      res.writeHead(ok ? 201 : 409, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { bookingId: 'bk_x', ticketCount } : { type: '/problems/insufficient-inventory', available: left }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Runs the checks as the driver does and restores the exit code the failure sets. */
function verdict(checks: Check[]): { ok: boolean; exitCode: number | string | undefined } {
  const prev = process.exitCode;
  process.exitCode = undefined;
  const ok = reportChecks(checks, () => {}, () => {});
  const exitCode = process.exitCode;
  process.exitCode = prev;
  return { ok, exitCode };
}

describe('the oversell check against a booking server, through the real load generator', () => {
  const bodies = [1, 2, 3, 4].map((tickets) => ({ body: JSON.stringify({ eventId: 'ev_x', ticketCount: tickets }), tickets }));
  const hammer = async (server: Server) => {
    const { port } = server.address() as AddressInfo;
    return runLoad({ title: 'fake', url: `http://127.0.0.1:${port}/api/bookings`, method: 'POST', bodies, connections: 10, durationSec: 1 });
  };

  it('fails the run when the server acknowledges more tickets than the stock', async () => {
    const server = await fakeBookingServer(50, true);
    try {
      const r = await hammer(server);
      expect(r.ticketsAcknowledged).toBeGreaterThan(50);
      const v = verdict([oversellCheck('fake', { capacity: 50, acknowledgedTickets: r.ticketsAcknowledged! })]);
      expect(v.ok).toBe(false);
      expect(v.exitCode).toBe(1);
    } finally {
      server.close();
    }
  });

  it('passes when the server stops at the stock and answers 409', async () => {
    const server = await fakeBookingServer(50, false);
    try {
      const r = await hammer(server);
      expect(r.statuses['409']).toBeGreaterThan(0);
      expect(r.ticketsAcknowledged).toBeLessThanOrEqual(50);
      const v = verdict([oversellCheck('fake', { capacity: 50, acknowledgedTickets: r.ticketsAcknowledged! })]);
      expect(v.ok).toBe(true);
      expect(v.exitCode).toBeUndefined();
    } finally {
      server.close();
    }
  });
});

describe('the store checks against real Redis and Postgres', () => {
  let stack: BenchStack;
  beforeAll(async () => {
    stack = await benchStack({ redisUrl: TEST_REDIS_URL, databaseUrl: TEST_DATABASE_URL });
  });
  afterAll(async () => {
    await stack?.cleanup();
  });

  async function eventWithHolds(capacity: number, tickets: number[]) {
    const { engine } = stack;
    const ev = await engine.createEvent({
      name: 'check', category: 'bench', venue: 'Bench', startsAt: new Date(Date.now() + 86400_000).toISOString(), maxTicketsPerUser: 10,
      tiers: [{ name: 'General', price: 100, currency: 'EUR', capacity }],
    });
    for (const [i, n] of tickets.entries()) await engine.bookings.create({ userId: `u${i}` as UserId, eventId: ev.id as EventId, ticketCount: n });
    const persist = createPersistWorker({ engine, log: pino({ level: 'silent' }) });
    while ((await persist.drainOnce()) > 0);
    const acknowledged = tickets.reduce((a, b) => a + b, 0);
    return { ev, tier: ev.tiers[0]!.id, k: eventKeys(stack.deps.ns, ev.id as EventId), acknowledged };
  }
  const run = (ev: { id: string }, acknowledged: number, capacity: number) =>
    floodgateEventChecks(stack.engine, 'test', ev.id as EventId, { acknowledgedTickets: acknowledged, sentTicketsMax: acknowledged, capacity });
  /** The failed checks' names without the run's label. */
  const failing = (checks: Check[]) => checks.filter((c) => !c.ok).map((c) => c.name.replace(/^test( \(Redis\))?: /, ''));

  it('pass on a healthy, drained event', async () => {
    const { ev, acknowledged } = await eventWithHolds(10, [2, 3]);
    const r = await run(ev, acknowledged, 10);
    expect(failing(r.checks)).toEqual([]);
    expect(verdict(r.checks).ok).toBe(true);
  });

  it('fail when Redis and Postgres disagree after the drain (a Redis counter moved by hand)', async () => {
    const { ev, tier, k, acknowledged } = await eventWithHolds(10, [2, 3]);
    await stack.redis.hincrby(k.inv, `free:${tier}`, -1);
    await stack.redis.hincrby(k.inv, `held:${tier}`, 1); // still adds up in Redis, but Postgres says otherwise
    const r = await run(ev, acknowledged, 10);
    const failed = failing(r.checks);
    expect(failed).toEqual(expect.arrayContaining(['Redis and Postgres agree after the drain', 'checkInvariants']));
    expect(failed).not.toContain('capacity == available + held + sold, nothing below zero');
    expect(r.invariants.violations.join('\n')).toMatch(/Redis and Postgres disagree/);
    const v = verdict(r.checks);
    expect(v.ok).toBe(false);
    expect(v.exitCode).toBe(1);
  });

  it('fail on an oversold tier (held + sold beyond capacity, a counter below zero)', async () => {
    const { ev, tier, k, acknowledged } = await eventWithHolds(10, [2, 3]);
    await stack.redis.hset(k.inv, `free:${tier}`, -1, `sold:${tier}`, 6);
    const r = await run(ev, acknowledged, 10);
    expect(failing(r.checks)).toEqual(expect.arrayContaining(['oversold seats = 0', 'capacity == available + held + sold, nothing below zero', 'checkInvariants']));
    expect(verdict(r.checks).exitCode).toBe(1);
  });

  it('fail when fewer tickets are held than were acknowledged (a lost booking)', async () => {
    const { ev, acknowledged } = await eventWithHolds(10, [2, 3]);
    const r = await run(ev, acknowledged + 1, 10);
    expect(failing(r.checks)).toEqual(['every acknowledged ticket is in the store, none without a request']);
  });

  it('pg-lock: pass when the tier counters equal the bookings, fail when a counter is tampered with', async () => {
    const { engine } = stack;
    const ev = await engine.createEvent({
      name: 'pg-lock check', category: 'bench', venue: 'Bench', startsAt: new Date(Date.now() + 86400_000).toISOString(), maxTicketsPerUser: 10,
      tiers: [{ name: 'General', price: 100, currency: 'EUR', capacity: 10 }],
    });
    const eventId = ev.id as EventId;
    const tierId = ev.tiers[0]!.id as TierId;
    for (const [i, n] of [3, 4].entries()) {
      await pgLockHold(stack.deps, { eventId, bookingId: newBookingId(eventId), userId: `p${i}` as UserId, tierId, ticketCount: n, maxPerUser: 10 });
    }
    const healthy = await pgLockEventChecks(engine, stack.pool, 'pg', eventId, { acknowledgedTickets: 7, sentTicketsMax: 7, capacity: 10 });
    expect(healthy.checks.filter((c) => !c.ok)).toEqual([]);
    await stack.pool.query('UPDATE tiers SET reserved = reserved + 1 WHERE id = $1', [tierId]);
    const broken = await pgLockEventChecks(engine, stack.pool, 'pg', eventId, { acknowledgedTickets: 7, sentTicketsMax: 7, capacity: 10 });
    expect(broken.checks.filter((c) => !c.ok).map((c) => c.name)).toContain('pg: Postgres counters equal its bookings, within capacity');
    expect(verdict(broken.checks).exitCode).toBe(1);
  });

  it('pg-lock: the injected engine books in Postgres (tier row counters, RESERVED at once), not in Redis, and stops at the stock', async () => {
    const { engine } = stack;
    const baseline = withPgLockBookings(engine, stack.deps);
    const ev = await engine.createEvent({
      name: 'pg-lock bookings', category: 'bench', venue: 'Bench', startsAt: new Date(Date.now() + 86400_000).toISOString(), maxTicketsPerUser: 10,
      tiers: [{ name: 'General', price: 100, currency: 'EUR', capacity: 5 }],
    });
    const eventId = ev.id as EventId;
    const { reservation } = await baseline.bookings.create({ userId: 'b0' as UserId, eventId, ticketCount: 3 });
    expect(reservation).toMatchObject({ status: 'RESERVED', eventId, ticketCount: 3, amount: 300, currency: 'EUR', seats: [] });
    const booked = await stack.pool.query<{ state: string }>('SELECT state FROM bookings WHERE id = $1', [reservation.bookingId]);
    expect(booked.rows).toEqual([{ state: 'RESERVED' }]);
    const tier = await stack.pool.query<{ reserved: number }>('SELECT reserved FROM tiers WHERE id = $1', [ev.tiers[0]!.id]);
    expect(tier.rows).toEqual([{ reserved: 3 }]);
    expect(await engine.holds.get(eventId, reservation.bookingId)).toBeNull();
    await expect(baseline.bookings.create({ userId: 'b1' as UserId, eventId, ticketCount: 3 })).rejects.toMatchObject({ code: 'INSUFFICIENT_INVENTORY' });
    // the engine it was given is unchanged: its bookings still go to Redis
    const { reservation: viaRedis } = await engine.bookings.create({ userId: 'b2' as UserId, eventId, ticketCount: 1 });
    expect(await engine.holds.get(eventId, viaRedis.bookingId)).not.toBeNull();
  });

  it('pg-lock: `bench/server.ts pg-lock` (the booking benchmark\'s baseline server) books through Postgres', async () => {
    const { engine } = stack;
    const ev = await engine.createEvent({
      name: 'pg-lock server', category: 'bench', venue: 'Bench', startsAt: new Date(Date.now() + 86400_000).toISOString(), maxTicketsPerUser: 10,
      tiers: [{ name: 'General', price: 100, currency: 'EUR', capacity: 4 }],
    });
    const server = await startServer('pg-lock', stack.env);
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/api/bookings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${signToken(stack.jwtSecret, 'srv0')}`, 'content-type': 'application/json', 'idempotency-key': 'pg-lock-1' },
        body: JSON.stringify({ eventId: ev.id, ticketCount: 2 }),
      });
      expect(res.status).toBe(201);
      const { bookingId } = (await res.json()) as { bookingId: string };
      const booked = await stack.pool.query<{ state: string }>('SELECT state FROM bookings WHERE id = $1', [bookingId]);
      expect(booked.rows).toEqual([{ state: 'RESERVED' }]);
      expect(await engine.holds.get(ev.id as EventId, bookingId as BookingId)).toBeNull();
    } finally {
      await server.stop();
    }
  });

  it('--api-processes 2: `bench/server.ts floodgate 2` runs a cluster primary and two processes on one port, and SIGTERM ends them all', async () => {
    const { engine } = stack;
    const ev = await engine.createEvent({
      name: 'cluster server', category: 'bench', venue: 'Bench', startsAt: new Date(Date.now() + 86400_000).toISOString(), maxTicketsPerUser: 10,
      tiers: [{ name: 'General', price: 100, currency: 'EUR', capacity: 100 }],
    });
    const server = await startServer('floodgate', stack.env, { processes: 2 });
    const alive = (pid: number) => {
      try {
        return process.kill(pid, 0);
      } catch {
        return false;
      }
    };
    try {
      // the primary first, then its two processes: the CPU meter counts all three as "api"
      expect(server.pids).toHaveLength(3);
      expect(server.pids[0]).toBe(server.child.pid);
      const book = (i: number) =>
        fetch(`http://127.0.0.1:${server.port}/api/bookings`, {
          method: 'POST',
          // a connection per request: the primary hands them to its processes in turn
          headers: { authorization: `Bearer ${signToken(stack.jwtSecret, `cl${i}`)}`, 'content-type': 'application/json', 'idempotency-key': `cl-${i}`, connection: 'close' },
          body: JSON.stringify({ eventId: ev.id, ticketCount: 1 }),
        }).then((r) => r.status);
      expect(await Promise.all([0, 1, 2, 3].map(book))).toEqual([201, 201, 201, 201]);
      // the primary's metrics port sums both processes
      const metrics = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
      expect(metrics).toMatch(/^floodgate_bookings_created_total\{service="api"\} 4$/m);
      expect(metrics).toMatch(/^floodgate_cluster_workers\{service="api"\} 2$/m);
    } finally {
      await server.stop();
    }
    expect(server.child.exitCode).toBe(0);
    expect(server.pids.filter(alive)).toEqual([]);
  });
});
