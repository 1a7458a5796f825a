import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent, seatedEvent } from '../../test/events.js';
import { snapshotPg } from '../../test/state.js';
import { legacySpelledHold } from '../../test/poison.js';
import { TEST_DATABASE_URL } from '../../test/env.js';
import { createPool } from '../../platform/pg.js';
import type { UserId } from '../ids.js';
import { getBooking, insertBooking, transitionsOf } from './bookings-repo.js';
import { applyOutbox } from './persist.js';

const u = (s: string) => s as UserId;

describe('applyOutbox', () => {
  it('records holds as RESERVED bookings with their seats, in stream order', async ({ engine, pg }) => {
    const ev = await engine.createEvent(seatedEvent([{ id: 'A', rows: 2, seatsPerRow: 4 }], 10));
    const [seats, ga] = [ev.tiers[0]!, ev.tiers[1]!];
    const a = await engine.bookings.create({ userId: u('ann'), eventId: ev.id, ticketCount: 2, seatPreferences: { seatIds: ['A-1-1', 'A-1-2'] } });
    const b = await engine.bookings.create({ userId: u('bob'), eventId: ev.id, tierId: ga.id, ticketCount: 3 });
    const entries = await engine.outbox.read(ev.id, 100);
    expect(entries.map((e) => e.type)).toEqual(['BookingCreated', 'BookingCreated']);
    const r = await engine.applyOutbox(entries);
    expect(r).toMatchObject({ applied: 2, duplicates: 0, refused: [], anomalies: [] });
    const booked = await getBooking(pg, a.reservation.bookingId);
    expect(booked).toMatchObject({ status: 'RESERVED', ticketCount: 2, seats: ['A-1-1', 'A-1-2'], amount: 18000, currency: 'EUR', userId: 'ann' });
    expect(booked!.expiresAt).toBe(a.reservation.expiresAt);
    expect((await getBooking(pg, b.reservation.bookingId))!.amount).toBe(9000);
    expect(await engine.inventory.postgresState(ev.id)).toEqual(await engine.inventory.redisState(ev.id));
    expect((await engine.inventory.postgresState(ev.id))[seats.id]).toEqual({ cap: 8, free: 6, held: 2, sold: 0 });
    await engine.outbox.ack(ev.id, entries.map((e) => e.id));
    expect((await engine.outbox.backlog(ev.id)).entries).toBe(0);
  });

  it('changes nothing when the same entries are applied again', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 10);
    await engine.bookings.create({ userId: u('ann'), eventId: ev.id, ticketCount: 2 });
    const entries = await engine.outbox.read(ev.id, 100);
    await engine.applyOutbox(entries);
    const before = await snapshotPg(pg);
    const again = await engine.applyOutbox(entries);
    expect(again).toMatchObject({ applied: 0, duplicates: 1 });
    expect(await snapshotPg(pg)).toEqual(before);
  });

  it('applies cancellations, expiries and confirmations as guarded transitions', async ({ engine, pg, clock }) => {
    const ev = await createGaEvent(engine, 10);
    const start = clock.now();
    const [c, x, p] = await Promise.all(['c', 'x', 'p'].map((n) => engine.bookings.create({ userId: u(n), eventId: ev.id, ticketCount: 1 })));
    await engine.bookings.cancel(c!.reservation.bookingId, u('c'));
    await engine.holds.confirm(ev.id, p!.reservation.bookingId, 'pay_1');
    clock.advance(10 * 60_000);
    expect(await engine.holds.sweep(ev.id)).toBe(1);
    clock.set(start);
    const entries = await engine.outbox.read(ev.id, 100);
    expect(entries.map((e) => e.type)).toEqual(['BookingCreated', 'BookingCreated', 'BookingCreated', 'BookingCancelled', 'BookingConfirmed', 'ReservationExpired']);
    const r = await engine.applyOutbox(entries);
    expect(r.anomalies).toEqual([]);
    const state = async (id: string) => (await getBooking(pg, id as never))!.status;
    expect([await state(c!.reservation.bookingId), await state(x!.reservation.bookingId), await state(p!.reservation.bookingId)]).toEqual([
      'CANCELLED', 'EXPIRED', 'CONFIRMED',
    ]);
    expect((await transitionsOf(pg, p!.reservation.bookingId)).map((t) => t.to)).toEqual(['PENDING', 'RESERVED', 'PAYMENT_PENDING', 'CONFIRMED']);
    expect(await engine.inventory.postgresState(ev.id)).toEqual(await engine.inventory.redisState(ev.id));
  });

  it('records a hold Postgres refuses as FAILED and hands it back for release before committing', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 2);
    const tier = ev.tiers[0]!.id;
    // Postgres already has both tickets reserved (as after a Redis loss that lost this sale): Redis does not know.
    await insertBooking(pg, {
      bookingId: `bk_${ev.id.slice(3)}_zzzzzzzzzzzzzzzz` as never, eventId: ev.id, tierId: tier, userId: u('zed'), ticketCount: 2,
      seats: [], expiresAtMs: Date.now() + 60_000, createdAtMs: Date.now(),
    }, 'RESERVED');
    const hold = await engine.bookings.create({ userId: u('amy'), eventId: ev.id, ticketCount: 1 });
    const entries = await engine.outbox.read(ev.id, 10);
    const released: string[] = [];
    const r = await engine.applyOutbox(entries, async (refused) => {
      for (const e of refused) {
        await engine.holds.release(e.eventId, e.bookingId, { system: 'BookingFailed', reason: 'refused', states: ['held'] });
        released.push(e.bookingId);
      }
    });
    expect(r.refused.map((e) => e.bookingId)).toEqual([hold.reservation.bookingId]);
    expect(released).toEqual([hold.reservation.bookingId]);
    const b = await getBooking(pg, hold.reservation.bookingId);
    expect(b).toMatchObject({ status: 'FAILED', failureReason: 'inventory-conflict' });
    expect((await engine.inventory.postgresState(ev.id))[tier]).toEqual({ cap: 2, free: 0, held: 2, sold: 0 });
    expect((await engine.inventory.redisState(ev.id))[tier]).toEqual({ cap: 2, free: 2, held: 0, sold: 0 });
    await engine.outbox.ack(ev.id, entries.map((e) => e.id));
    const followUp = await engine.outbox.read(ev.id, 10);
    expect(followUp.map((e) => e.type)).toContain('BookingFailed');
  });

  it('quarantines a poison hold (FAILED, with the reason, handed back for release) and applies the entries around it', async ({ engine, pg, redis }) => {
    const ev = await engine.createEvent(seatedEvent([{ id: 'A', rows: 1, seatsPerRow: 4 }]));
    const a = await engine.bookings.create({ userId: u('ann'), eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: ['A-1-2'] } });
    const poison = await legacySpelledHold(engine, redis, ev.id, u('pat'));
    const b = await engine.bookings.create({ userId: u('bob'), eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: ['A-1-3'] } });
    const entries = await engine.outbox.read(ev.id, 10);
    const released: [string[], string[]][] = [];
    const r = await engine.applyOutbox(entries, async (refused, quarantined) => {
      released.push([refused.map((e) => e.bookingId), quarantined.map((e) => e.bookingId)]);
    });
    expect(r.quarantined).toEqual([
      { entry: entries[1], reason: 'quarantined: postgres refused the entry (23503 booking_seats_event_id_seat_id_fkey)', recorded: true },
    ]);
    expect(r).toMatchObject({ applied: 2, refused: [], anomalies: [] });
    expect(r.fresh.map((e) => e.bookingId)).toEqual([a.reservation.bookingId, b.reservation.bookingId]);
    expect(released).toEqual([[[], [poison]]]);
    expect((await getBooking(pg, poison))!.status).toBe('FAILED');
    expect((await getBooking(pg, b.reservation.bookingId))!.status).toBe('RESERVED');
    // replayed, the batch changes nothing and quarantines nothing again
    const before = await snapshotPg(pg);
    expect(await engine.applyOutbox(entries)).toMatchObject({ applied: 0, duplicates: 3, quarantined: [] });
    expect(await snapshotPg(pg)).toEqual(before);
  });

  it('quarantines nothing on an infrastructure error (a timeout): nothing commits and the batch is retried whole', async ({ engine, pg, redis, ns, onTestFinished }) => {
    const ev = await engine.createEvent(seatedEvent([{ id: 'A', rows: 1, seatsPerRow: 4 }]));
    const x = await engine.bookings.create({ userId: u('xan'), eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: ['A-1-4'] } });
    const first = await engine.outbox.read(ev.id, 10);
    await engine.applyOutbox(first);
    await engine.outbox.ack(ev.id, first.map((e) => e.id));
    await engine.bookings.create({ userId: u('ann'), eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: ['A-1-2'] } });
    await legacySpelledHold(engine, redis, ev.id, u('pat'));
    await engine.bookings.cancel(x.reservation.bookingId, u('xan'));
    const entries = await engine.outbox.read(ev.id, 10);
    expect(entries.map((e) => e.type)).toEqual(['BookingCreated', 'BookingCreated', 'BookingCancelled']);
    // The batch fails on the poison hold; entry by entry, the cancellation then waits on a row another transaction
    // holds, until the statement timeout: an infrastructure error, not the entry's fault.
    const blocker = await pg.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT 1 FROM bookings WHERE id = $1 FOR UPDATE', [x.reservation.bookingId]);
    onTestFinished(async () => {
      await blocker.query('ROLLBACK');
      blocker.release();
    });
    const impatient = createPool({ url: TEST_DATABASE_URL, schema: ns, max: 2, statementTimeoutMs: 200 });
    onTestFinished(() => impatient.end());
    const before = await snapshotPg(pg);
    await expect(applyOutbox(impatient, entries)).rejects.toMatchObject({ code: '57014' });
    expect(await snapshotPg(pg)).toEqual(before);
  });

  it('commits nothing when the release before the commit fails (the batch is retried whole)', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 1);
    await insertBooking(pg, {
      bookingId: `bk_${ev.id.slice(3)}_yyyyyyyyyyyyyyyy` as never, eventId: ev.id, tierId: ev.tiers[0]!.id, userId: u('zed'),
      ticketCount: 1, seats: [], expiresAtMs: Date.now() + 60_000, createdAtMs: Date.now(),
    }, 'RESERVED');
    await engine.bookings.create({ userId: u('amy'), eventId: ev.id, ticketCount: 1 });
    const entries = await engine.outbox.read(ev.id, 10);
    const before = await snapshotPg(pg);
    await expect(engine.applyOutbox(entries, async () => { throw new Error('redis down'); })).rejects.toThrow('redis down');
    expect(await snapshotPg(pg)).toEqual(before);
  });
});
