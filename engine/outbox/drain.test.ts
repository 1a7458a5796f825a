import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { getBooking } from '../booking/bookings-repo.js';
import { createEngine } from '../index.js';
import type { BookingId, UserId } from '../ids.js';
import type { JobSink } from '../jobs.js';
import { eventKeys } from '../keys.js';

const u = (s: string) => s as UserId;
const drainAs = { owner: 'drain-test', leaseMs: 5_000 };

describe('outbox.drain', () => {
  it('applies, acknowledges and queues the tickets of each sale after the commit, when Postgres has it CONFIRMED', async ({ deps, pg }) => {
    const asked: [BookingId, string][] = [];
    const sink: JobSink = {
      settlePayment: async () => {},
      refund: async () => {},
      async deliverTickets(id) {
        asked.push([id, (await getBooking(pg, id))!.status]); // what a notify job would find, seen from another connection
      },
    };
    const e = createEngine({ ...deps, jobs: sink });
    const ev = await createGaEvent(e, 10);
    const ids = [];
    for (const who of ['ann', 'bob', 'cat']) ids.push((await e.bookings.create({ userId: u(who), eventId: ev.id, ticketCount: 2 })).reservation.bookingId);
    await e.holds.confirm(ev.id, ids[0]!, 'pay_a');
    await e.holds.confirm(ev.id, ids[2]!, 'pay_c');

    const r = await e.outbox.drain(ev.id, drainAs);
    expect(r).toMatchObject({ status: 'applied', entries: 5, result: { applied: 5, duplicates: 0 } });
    expect(asked).toEqual([[ids[0], 'CONFIRMED'], [ids[2], 'CONFIRMED']]);
    expect(r.status === 'applied' && r.sales.map((s) => [s.bookingId, s.ticketCount, s.amount, s.currency]).sort()).toEqual(
      [[ids[0], 2, 9000, 'EUR'], [ids[2], 2, 9000, 'EUR']].sort(),
    );
    expect((await e.outbox.backlog(ev.id)).entries).toBe(0);
    expect(await e.outbox.drain(ev.id, drainAs)).toMatchObject({ status: 'applied', entries: 0 });
  });

  it('after a crash between the commit and the acknowledgement, the re-run skips the batch as replays and queues the tickets again', async ({ engine, jobs }) => {
    const ev = await createGaEvent(engine, 10);
    const id = (await engine.bookings.create({ userId: u('dan'), eventId: ev.id, ticketCount: 1 })).reservation.bookingId;
    await engine.holds.confirm(ev.id, id, 'pay_d');
    jobs.clear();
    await expect(engine.outbox.drain(ev.id, { ...drainAs, afterCommit: () => { throw new Error('died'); } })).rejects.toThrow('died');
    expect(jobs.deliver).toEqual([]);
    expect((await engine.outbox.backlog(ev.id)).entries).toBe(2);
    const again = await engine.outbox.drain(ev.id, drainAs);
    expect(again).toMatchObject({ status: 'applied', entries: 2, result: { applied: 0, duplicates: 2 }, sales: [] });
    expect(jobs.deliver).toEqual([id]);
    expect((await engine.outbox.backlog(ev.id)).entries).toBe(0);
  });

  it('leaves an event alone while another process holds its lease, or while it is disarmed (being rebuilt)', async ({ engine, redis, ns }) => {
    const ev = await createGaEvent(engine, 10);
    await engine.bookings.create({ userId: u('eve'), eventId: ev.id, ticketCount: 1 });
    expect(await engine.outbox.lease(ev.id, 'someone-else', 5_000)).toBe(true);
    expect(await engine.outbox.drain(ev.id, drainAs)).toEqual({ status: 'skipped', reason: 'leased' });
    await engine.outbox.lease(ev.id, 'someone-else', 5_000, 'drop');
    await redis.hset(eventKeys(ns, ev.id).meta, 'armed', '0');
    expect(await engine.outbox.drain(ev.id, drainAs)).toEqual({ status: 'skipped', reason: 'not-armed' });
    expect((await engine.outbox.backlog(ev.id)).entries).toBe(1);
    await redis.hset(eventKeys(ns, ev.id).meta, 'armed', '1');
    expect(await engine.outbox.drain(ev.id, drainAs)).toMatchObject({ status: 'applied', entries: 1 });
  });
});
