import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent, seatedEvent } from '../../test/events.js';
import { snapshotPg } from '../../test/state.js';
import { legacySpelledHold } from '../../test/poison.js';
import { TEST_DATABASE_URL } from '../../test/env.js';
import type { Redis } from 'ioredis';
import { createPool, type Pool } from '../../platform/pg.js';
import type { Namespace, UserId } from '../ids.js';
import { eventKeys } from '../keys.js';
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

  it('quarantines a poison hold (FAILED, with the reason, handed back for release) and applies the entries around it', async ({ engine, ns, pg, redis }) => {
    const ev = await engine.createEvent(seatedEvent([{ id: 'A', rows: 1, seatsPerRow: 4 }]));
    const a = await engine.bookings.create({ userId: u('ann'), eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: ['A-1-2'] } });
    const poison = await legacySpelledHold({ engine, redis, ns }, ev.id, u('pat'));
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
    await legacySpelledHold({ engine, redis, ns }, ev.id, u('pat'));
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

/** Appends an entry to an event's outbox as the payment scripts do (they land on another branch: issue 12). */
async function append(redis: Redis, ns: Namespace, e: { type: string; eventId: string; bookingId: string; userId: string; tierId: string; count: number } & Record<string, string | number>) {
  const fields = Object.entries({ seats: '', atMs: Date.now(), ...e }).flatMap(([k, v]) => [k, String(v)]);
  await redis.xadd(eventKeys(ns, e.eventId as never).outbox, '*', ...fields);
}

describe('applyOutbox: a payment attempt (PaymentStarted, PaymentDeclined)', () => {
  it('moves the booking per attempt, sets attempts, failure reason and holder fields, and moves no counter', async ({ engine, pg, redis, ns }) => {
    const ev = await createGaEvent(engine, 10);
    const tier = ev.tiers[0]!.id;
    const h = await engine.bookings.create({ userId: u('ann'), eventId: ev.id, ticketCount: 2 });
    const id = h.reservation.bookingId;
    const base = { eventId: ev.id, bookingId: id, userId: 'ann', tierId: tier, count: 2 };
    const created = await engine.outbox.read(ev.id, 10);
    await engine.applyOutbox(created);
    await engine.outbox.ack(ev.id, created.map((e) => e.id));
    const stateBefore = await engine.inventory.postgresState(ev.id);

    await append(redis, ns, { ...base, type: 'PaymentStarted', attempt: 1, holderName: 'Ann Lee', holderEmail: 'ann@example.com', holderPhone: '' });
    // pending, it moves no counter in reconciliation either
    expect(await engine.reconcile(ev.id)).toMatchObject({ mismatch: 0, pendingEntries: 1 });
    const first = await engine.outbox.read(ev.id, 10);
    expect(first.map((e) => [e.type, e.attempt, e.holderName, e.holderPhone])).toEqual([['PaymentStarted', 1, 'Ann Lee', undefined]]);
    expect(await engine.applyOutbox(first)).toMatchObject({ applied: 1, anomalies: [] });
    await engine.outbox.ack(ev.id, first.map((e) => e.id));
    const row = async () =>
      (await pg.query('SELECT state, payment_attempts, failure_reason, holder_name, holder_email, holder_phone FROM bookings WHERE id = $1', [id])).rows[0];
    expect(await row()).toEqual({ state: 'PAYMENT_PENDING', payment_attempts: 1, failure_reason: null, holder_name: 'Ann Lee', holder_email: 'ann@example.com', holder_phone: null });

    // a decline, then a second attempt with only a new e-mail and a phone, in one batch
    await append(redis, ns, { ...base, type: 'PaymentDeclined', attempt: 1, reason: 'declined: card_declined: Your card was declined.' });
    await append(redis, ns, { ...base, type: 'PaymentStarted', attempt: 2, holderName: '', holderEmail: 'lee@example.com', holderPhone: '+15550100' });
    await append(redis, ns, { ...base, type: 'PaymentDeclined', attempt: 2, reason: 'declined: insufficient_funds' });
    const batch = await engine.outbox.read(ev.id, 10);
    expect(await engine.applyOutbox(batch)).toMatchObject({ applied: 3, duplicates: 0, anomalies: [] });
    expect(await row()).toEqual({
      state: 'PAYMENT_FAILED', payment_attempts: 2, failure_reason: 'declined: insufficient_funds',
      holder_name: 'Ann Lee', holder_email: 'lee@example.com', holder_phone: '+15550100',
    });
    const moves = (await transitionsOf(pg, id)).map((t) => [t.to, t.cause]);
    expect(moves).toEqual([
      ['PENDING', 'hold'], ['RESERVED', 'hold'], ['PAYMENT_PENDING', 'payment started (attempt 1)'],
      ['PAYMENT_FAILED', 'declined: card_declined: Your card was declined.'], ['PAYMENT_PENDING', 'payment started (attempt 2)'],
      ['PAYMENT_FAILED', 'declined: insufficient_funds'],
    ]);
    // one marker per attempt
    const markers = (await pg.query('SELECT key FROM processed_events WHERE key LIKE $1 ORDER BY key', [`${id}:Payment%`])).rows.map((r) => r.key);
    expect(markers).toEqual([`${id}:PaymentDeclined:a1`, `${id}:PaymentDeclined:a2`, `${id}:PaymentStarted:a1`, `${id}:PaymentStarted:a2`]);
    // held all along: no counter moved
    expect(await engine.inventory.postgresState(ev.id)).toEqual(stateBefore);
    expect((await engine.reconcile(ev.id)).mismatch).toBe(0);

    // replayed, nothing changes; a third attempt clears the failure reason
    const before = await snapshotPg(pg);
    expect(await engine.applyOutbox([...first, ...batch])).toMatchObject({ applied: 0, duplicates: 4, anomalies: [] });
    expect(await snapshotPg(pg)).toEqual(before);
    await engine.outbox.ack(ev.id, batch.map((e) => e.id));
    await append(redis, ns, { ...base, type: 'PaymentStarted', attempt: 3 });
    await engine.applyOutbox(await engine.outbox.read(ev.id, 10));
    expect(await row()).toMatchObject({ state: 'PAYMENT_PENDING', payment_attempts: 3, failure_reason: null, holder_email: 'lee@example.com' });
  });

  it('treats a start or decline that finds its booking expired, cancelled or sold as done, and one without a booking as an anomaly', async ({ engine, pg, redis, ns, clock }) => {
    const ev = await createGaEvent(engine, 10);
    const tier = ev.tiers[0]!.id;
    const start = clock.now();
    const x = (await engine.bookings.create({ userId: u('xan'), eventId: ev.id, ticketCount: 1 })).reservation.bookingId;
    const s = (await engine.bookings.create({ userId: u('sam'), eventId: ev.id, ticketCount: 1 })).reservation.bookingId;
    await engine.holds.confirm(ev.id, s, 'pay_s');
    clock.advance(10 * 60_000);
    expect(await engine.holds.sweep(ev.id)).toBe(1);
    clock.set(start);
    await engine.applyOutbox(await engine.outbox.read(ev.id, 10).then(async (es) => (await engine.outbox.ack(ev.id, es.map((e) => e.id)), es)));
    const ghost = `bk_${ev.id.slice(3)}_gggggggggggggggg`;
    for (const [bookingId, userId] of [[x, 'xan'], [s, 'sam'], [ghost, 'gus']] as const) {
      await append(redis, ns, { type: 'PaymentStarted', eventId: ev.id, bookingId, userId, tierId: tier, count: 1, attempt: 1 });
      await append(redis, ns, { type: 'PaymentDeclined', eventId: ev.id, bookingId, userId, tierId: tier, count: 1, attempt: 1, reason: 'declined: x' });
    }
    const before = await snapshotPg(pg);
    const r = await engine.applyOutbox(await engine.outbox.read(ev.id, 10));
    expect(r.anomalies.map((a) => [a.entry.bookingId, a.entry.type, a.problem])).toEqual([
      [ghost, 'PaymentStarted', 'booking never recorded'], [ghost, 'PaymentDeclined', 'booking never recorded'],
    ]);
    const after = await snapshotPg(pg);
    expect({ ...after, processed_events: [] }).toEqual({ ...before, processed_events: [] });
    expect([(await getBooking(pg, x))!.status, (await getBooking(pg, s))!.status]).toEqual(['EXPIRED', 'CONFIRMED']);
  });
});

describe('applyOutbox: counters', () => {
  /** Records every update of a tiers row and every statement that updates bookings, in this file's schema, for one test. */
  async function countWrites(pg: Pool, onTestFinished: (fn: () => Promise<void>) => void) {
    await pg.query(`CREATE TABLE test_writes (what text NOT NULL, id text);
      CREATE FUNCTION test_tier_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO test_writes VALUES ('tier', NEW.id); RETURN NULL; END $$;
      CREATE FUNCTION test_booking_statement() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO test_writes VALUES ('bookings', NULL); RETURN NULL; END $$;
      CREATE TRIGGER test_tier_write AFTER UPDATE ON tiers FOR EACH ROW EXECUTE FUNCTION test_tier_write();
      CREATE TRIGGER test_booking_statement AFTER UPDATE ON bookings FOR EACH STATEMENT EXECUTE FUNCTION test_booking_statement();`);
    onTestFinished(async () => {
      await pg.query(`DROP TRIGGER test_tier_write ON tiers; DROP TRIGGER test_booking_statement ON bookings;
        DROP FUNCTION test_tier_write(); DROP FUNCTION test_booking_statement(); DROP TABLE test_writes;`);
    });
    return {
      async take() {
        const { rows } = await pg.query<{ what: string; id: string | null; n: number }>(
          'DELETE FROM test_writes RETURNING what, id',
        );
        const tiers: Record<string, number> = {};
        let statements = 0;
        for (const r of rows) if (r.what === 'tier') tiers[r.id!] = (tiers[r.id!] ?? 0) + 1; else statements++;
        return { tiers, statements };
      },
    };
  }

  it('confirms 200 bookings of one tier with one statement per step and one update of the tier, counters exact', async ({ engine, pg, onTestFinished }) => {
    const ev = await createGaEvent(engine, 400);
    const tier = ev.tiers[0]!.id;
    const ids = [];
    for (let i = 0; i < 200; i++) ids.push((await engine.bookings.create({ userId: u(`c${i}`), eventId: ev.id, ticketCount: 1 })).reservation.bookingId);
    const created = await engine.outbox.read(ev.id, 500);
    await engine.applyOutbox(created);
    await engine.outbox.ack(ev.id, created.map((e) => e.id));
    for (const [i, id] of ids.entries()) await engine.holds.confirm(ev.id, id, `pay_${i}`);
    const writes = await countWrites(pg, onTestFinished);

    const entries = await engine.outbox.read(ev.id, 500);
    expect(entries).toHaveLength(200);
    expect(await engine.applyOutbox(entries)).toMatchObject({ applied: 200, anomalies: [], refused: [] });
    // RESERVED -> PAYMENT_PENDING, then -> CONFIRMED: two statements for the 200; the tier row updated once
    expect(await writes.take()).toEqual({ tiers: { [tier]: 1 }, statements: 2 });
    expect((await engine.inventory.postgresState(ev.id))[tier]).toEqual({ cap: 400, free: 200, held: 0, sold: 200 });
    expect(await engine.inventory.postgresState(ev.id)).toEqual(await engine.inventory.redisState(ev.id));
    // each booking keeps its own cause
    expect((await transitionsOf(pg, ids[7]!)).at(-1)).toMatchObject({ to: 'CONFIRMED', cause: 'payment pay_7' });
    expect((await transitionsOf(pg, ids[199]!)).at(-1)).toMatchObject({ to: 'CONFIRMED', cause: 'payment pay_199' });
  });

  it('updates each tier once for a batch that mixes holds, sales, cancellations and expiries on two tiers', async ({ engine, pg, clock, onTestFinished }) => {
    const ev = await engine.createEvent(seatedEvent([{ id: 'B', rows: 2, seatsPerRow: 5 }], 20));
    const [seats, ga] = [ev.tiers[0]!.id, ev.tiers[1]!.id];
    const start = clock.now();
    const writes = await countWrites(pg, onTestFinished);
    const book = async (who: string, o: { seat?: string; n?: number }) =>
      (await engine.bookings.create({ userId: u(who), eventId: ev.id, ticketCount: o.n ?? 1, ...(o.seat ? { seatPreferences: { seatIds: [o.seat] } } : { tierId: ga }) })).reservation.bookingId;
    const a = await book('a', { seat: 'B-1-1' });
    const b = await book('b', { n: 3 });
    await engine.holds.confirm(ev.id, a, 'pay_a');
    const c = await book('c', { seat: 'B-1-2' });
    await engine.bookings.cancel(b, u('b'));
    await book('d', { n: 2 });
    await engine.holds.confirm(ev.id, c, 'pay_c');
    await book('e', { n: 1 });
    clock.advance(10 * 60_000);
    await engine.holds.sweep(ev.id);
    clock.set(start);
    await book('f', { n: 2 }); // (the expiries gave back d's and e's tickets: GA moves on by f's)
    await writes.take(); // the event's creation
    const entries = await engine.outbox.read(ev.id, 100);
    expect(new Set(entries.map((e) => e.type)).size).toBe(4);
    expect(await engine.applyOutbox(entries)).toMatchObject({ anomalies: [], refused: [] });
    expect((await writes.take()).tiers).toEqual({ [seats]: 1, [ga]: 1 });
    expect(await engine.inventory.postgresState(ev.id)).toEqual(await engine.inventory.redisState(ev.id));
    expect((await engine.reconcile(ev.id)).mismatch).toBe(0);
  });

  it('still lets Postgres refuse an oversell on its own: a tier over capacity, a seat sold twice, deferred or not', async ({ engine, pg }) => {
    const ev = await engine.createEvent(seatedEvent([{ id: 'C', rows: 1, seatsPerRow: 2 }], 2));
    const [seats, ga] = [ev.tiers[0]!.id, ev.tiers[1]!.id];
    const nb = (n: number, tierId: string, count: number, seat: string[] = []) => ({
      bookingId: `bk_${ev.id.slice(3)}_${String(n).padStart(16, 'o')}` as never, eventId: ev.id, tierId: tierId as never, userId: u(`o${n}`),
      ticketCount: count, seats: seat, expiresAtMs: Date.now() + 60_000, createdAtMs: Date.now(),
    });
    const before = await snapshotPg(pg);
    await expect(insertBooking(pg, nb(1, ga, 3), 'RESERVED')).rejects.toMatchObject({ code: '23514', constraint: 'tiers_no_oversell' });
    await insertBooking(pg, nb(2, seats, 1, ['C-1-1']), 'RESERVED');
    await expect(insertBooking(pg, nb(3, seats, 1, ['C-1-1']), 'RESERVED')).rejects.toMatchObject({ code: '23505', constraint: 'booking_seats_one_live' });
    // deferred to the end of a batch, the counters are refused when they land
    const tx = await pg.connect();
    try {
      await tx.query('BEGIN');
      await tx.query("SELECT set_config('floodgate.defer_counters', 'on', true)");
      await insertBooking(tx, nb(4, ga, 2), 'RESERVED');
      await insertBooking(tx, nb(5, ga, 1), 'RESERVED');
      expect((await tx.query('SELECT reserved FROM tiers WHERE id = $1', [ga])).rows[0].reserved).toBe(0);
      await expect(tx.query('SELECT apply_tier_deltas()')).rejects.toMatchObject({ code: '23514', constraint: 'tiers_no_oversell' });
    } finally {
      await tx.query('ROLLBACK');
      tx.release();
    }
    expect((await snapshotPg(pg)).tiers).toEqual((before.tiers as { id: string }[]).map((t) => (t.id === seats ? { ...t, reserved: 1 } : t)));
  });

  it('applies a batch whose end state oversells statement by statement: only the refused hold fails, and is released', async ({ engine, pg }) => {
    const ev = await createGaEvent(engine, 3);
    const tier = ev.tiers[0]!.id;
    // Postgres already has 2 of 3 tickets reserved that Redis does not know about (as after a lost Redis write)
    await insertBooking(pg, {
      bookingId: `bk_${ev.id.slice(3)}_xxxxxxxxxxxxxxxx` as never, eventId: ev.id, tierId: tier, userId: u('zed'), ticketCount: 2,
      seats: [], expiresAtMs: Date.now() + 60_000, createdAtMs: Date.now(),
    }, 'RESERVED');
    const a = (await engine.bookings.create({ userId: u('amy'), eventId: ev.id, ticketCount: 1 })).reservation.bookingId;
    await engine.holds.confirm(ev.id, a, 'pay_a');
    const b = (await engine.bookings.create({ userId: u('bo'), eventId: ev.id, ticketCount: 1 })).reservation.bookingId;
    const entries = await engine.outbox.read(ev.id, 10);
    const released: string[] = [];
    const r = await engine.applyOutbox(entries, async (refused) => void released.push(...refused.map((e) => e.bookingId)));
    expect(r.refused.map((e) => e.bookingId)).toEqual([b]);
    expect(released).toEqual([b]);
    expect([(await getBooking(pg, a))!.status, (await getBooking(pg, b))!.status]).toEqual(['CONFIRMED', 'FAILED']);
    expect((await engine.inventory.postgresState(ev.id))[tier]).toEqual({ cap: 3, free: 0, held: 2, sold: 1 });
  });
});
