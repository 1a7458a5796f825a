import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import type { Pool } from '../../platform/pg.js';
import type { BookingId, UserId } from '../ids.js';
import { getBooking, insertBooking, transition, transitionsOf } from './bookings-repo.js';
import { BOOKING_STATES, HOLDS, TRANSITIONS, canTransition, isFinal, type BookingState } from './states.js';

describe('booking state machine', () => {
  it('is the same table in TypeScript and in Postgres', async ({ pg }) => {
    const { rows } = await pg.query<{ from_state: BookingState; to_state: BookingState }>(
      'SELECT from_state, to_state FROM booking_state_transitions ORDER BY 1, 2',
    );
    const sql = rows.map((r) => `${r.from_state}->${r.to_state}`).sort();
    const ts = BOOKING_STATES.flatMap((f) => TRANSITIONS[f].map((t) => `${f}->${t}`)).sort();
    expect(sql).toEqual(ts);
    const holds = await pg.query<{ state: BookingState; holds: string }>('SELECT state, holds FROM booking_states');
    expect(Object.fromEntries(holds.rows.map((r) => [r.state, r.holds]))).toEqual(HOLDS);
  });

  it('has the seed states, with EXPIRED, CANCELLED, FAILED and REFUNDED final', () => {
    expect([...BOOKING_STATES].sort()).toEqual(
      ['PENDING', 'RESERVED', 'PAYMENT_PENDING', 'CONFIRMED', 'PAYMENT_FAILED', 'CANCELLED', 'EXPIRED', 'FAILED',
        'TICKETS_DELIVERED', 'REFUND_REQUESTED', 'REFUNDED', 'REFUND_DENIED'].sort(),
    );
    expect(BOOKING_STATES.filter(isFinal).sort()).toEqual(['CANCELLED', 'EXPIRED', 'FAILED', 'REFUNDED']);
    expect(canTransition('REFUND_DENIED', 'CONFIRMED')).toBe(true);
    expect(canTransition('EXPIRED', 'CONFIRMED')).toBe(true); // a late payment re-taking its seats
    expect(canTransition('CANCELLED', 'CONFIRMED')).toBe(false);
  });

  describe('in Postgres', () => {
    let n = 0;
    const newBooking = async (fx: { pg: Pool }, tierId: string, eventId: string, count = 2) => {
      const id = `bk_${eventId.slice(3)}_${String(++n).padStart(16, '0')}` as BookingId;
      await insertBooking(fx.pg, {
        bookingId: id, eventId: eventId as never, tierId: tierId as never, userId: 'u1' as UserId, ticketCount: count,
        seats: [], expiresAtMs: Date.now() + 60_000, createdAtMs: Date.now(),
      }, 'RESERVED');
      return id;
    };

    it('moves a booking along legal transitions with one audit row each, and counters follow', async ({ pg, engine }) => {
      const ev = await createGaEvent(engine, 10);
      const tier = ev.tiers[0]!.id;
      const id = await newBooking({ pg }, tier, ev.id, 3);
      const counters = async () => (await pg.query('SELECT reserved, sold FROM tiers WHERE id = $1', [tier])).rows[0];
      expect(await counters()).toEqual({ reserved: 3, sold: 0 });
      expect(await transition(pg, id, ['RESERVED'], 'PAYMENT_PENDING', 'pay')).toBe('RESERVED');
      expect(await transition(pg, id, ['PAYMENT_PENDING'], 'CONFIRMED', 'paid')).toBe('PAYMENT_PENDING');
      expect(await counters()).toEqual({ reserved: 0, sold: 3 });
      expect(await transition(pg, id, ['CONFIRMED'], 'REFUND_REQUESTED', 'refund')).toBe('CONFIRMED');
      expect(await transition(pg, id, ['REFUND_REQUESTED'], 'REFUNDED', 'refunded')).toBe('REFUND_REQUESTED');
      expect(await counters()).toEqual({ reserved: 0, sold: 0 });
      const audit = await transitionsOf(pg, id);
      expect(audit.map((t) => `${t.from}->${t.to}`)).toEqual([
        'null->PENDING', 'PENDING->RESERVED', 'RESERVED->PAYMENT_PENDING', 'PAYMENT_PENDING->CONFIRMED',
        'CONFIRMED->REFUND_REQUESTED', 'REFUND_REQUESTED->REFUNDED',
      ]);
    });

    it('a guarded transition from a state the booking is not in changes nothing and returns null', async ({ pg, engine }) => {
      const ev = await createGaEvent(engine, 10);
      const id = await newBooking({ pg }, ev.tiers[0]!.id, ev.id);
      expect(await transition(pg, id, ['PAYMENT_PENDING'], 'CONFIRMED', 'x')).toBeNull();
      expect((await getBooking(pg, id))!.status).toBe('RESERVED');
      expect(await transitionsOf(pg, id)).toHaveLength(2);
    });

    it('two concurrent transitions from the same state: exactly one wins', async ({ pg, engine }) => {
      const ev = await createGaEvent(engine, 10);
      const id = await newBooking({ pg }, ev.tiers[0]!.id, ev.id);
      const results = await Promise.all([
        transition(pg, id, ['RESERVED'], 'EXPIRED', 'sweeper'),
        transition(pg, id, ['RESERVED'], 'CANCELLED', 'buyer'),
        transition(pg, id, ['RESERVED'], 'PAYMENT_PENDING', 'pay'),
      ]);
      expect(results.filter((r) => r === 'RESERVED')).toHaveLength(1);
      expect(await transitionsOf(pg, id)).toHaveLength(3);
    });

    it('the trigger refuses an illegal transition even from raw SQL', async ({ pg, engine }) => {
      const ev = await createGaEvent(engine, 10);
      const id = await newBooking({ pg }, ev.tiers[0]!.id, ev.id);
      await expect(pg.query("UPDATE bookings SET state = 'CONFIRMED' WHERE id = $1", [id])).rejects.toMatchObject({ code: 'FG001' });
      await expect(pg.query("UPDATE bookings SET state = 'TICKETS_DELIVERED' WHERE id = $1", [id])).rejects.toThrow(/illegal booking transition/);
      await expect(transition(pg, id, ['RESERVED'], 'REFUNDED', 'x')).rejects.toThrow(/illegal booking transition RESERVED -> REFUNDED/);
      expect((await getBooking(pg, id))!.status).toBe('RESERVED');
    });

    it('a raw UPDATE of the state leaves its audit row too (written by the trigger); each move has exactly one', async ({ pg, engine }) => {
      const ev = await createGaEvent(engine, 10);
      const id = await newBooking({ pg }, ev.tiers[0]!.id, ev.id);
      expect(await transition(pg, id, ['RESERVED'], 'PAYMENT_PENDING', 'pay')).toBe('RESERVED');
      // a person at psql: no cause set, and the cause of the statement before (another transaction) does not carry over
      await pg.query("UPDATE bookings SET state = 'CONFIRMED' WHERE id = $1", [id]);
      await pg.query('UPDATE bookings SET updated_at = now() WHERE id = $1', [id]); // no move, no row
      const tx = await pg.connect();
      try {
        await tx.query('BEGIN');
        await tx.query("UPDATE bookings SET state = 'TICKETS_DELIVERED' WHERE id = $1", [id]);
        await tx.query('ROLLBACK'); // a move undone leaves no trail either
      } finally {
        tx.release();
      }
      const audit = await transitionsOf(pg, id);
      const me = (await pg.query<{ u: string }>('SELECT session_user AS u')).rows[0]!.u;
      expect(audit.map((t) => [`${t.from}->${t.to}`, t.cause])).toEqual([
        ['null->PENDING', 'hold'],
        ['PENDING->RESERVED', 'hold'],
        ['RESERVED->PAYMENT_PENDING', 'pay'],
        ['PAYMENT_PENDING->CONFIRMED', `sql by ${me}`],
      ]);
      const { rows } = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM booking_transitions WHERE booking_id = $1 AND to_state = 'CONFIRMED'", [id]);
      expect(rows[0]!.n).toBe(1);
    });

    it('refuses an oversell on its own: reserved + sold never exceed capacity', async ({ pg, engine }) => {
      const ev = await createGaEvent(engine, 3);
      const tier = ev.tiers[0]!.id;
      await newBooking({ pg }, tier, ev.id, 2);
      await expect(newBooking({ pg }, tier, ev.id, 2)).rejects.toMatchObject({ code: '23514' });
      expect((await pg.query('SELECT reserved FROM tiers WHERE id = $1', [tier])).rows[0]).toEqual({ reserved: 2 });
    });

    it('refuses a seat in two live bookings, and frees it when a booking stops holding', async ({ pg, engine }) => {
      const ev = await engine.createEvent({
        name: 'S', category: 'music', venue: 'V', startsAt: '2031-01-01T00:00:00Z', salesOpenAt: '2029-01-01T00:00:00Z',
        tiers: [{ name: 'Seats', price: 100, currency: 'EUR', capacity: 4, seating: { sections: [{ id: 'A', rows: 1, seatsPerRow: 4 }] } }],
      });
      const tier = ev.tiers[0]!.id as never;
      const base = { eventId: ev.id, tierId: tier, userId: 'u' as UserId, ticketCount: 1, expiresAtMs: Date.now(), createdAtMs: Date.now() };
      const a = `bk_${ev.id.slice(3)}_aaaaaaaaaaaaaaaa` as BookingId;
      const b = `bk_${ev.id.slice(3)}_bbbbbbbbbbbbbbbb` as BookingId;
      await insertBooking(pg, { ...base, bookingId: a, seats: ['A-1-1'] }, 'RESERVED');
      await expect(insertBooking(pg, { ...base, bookingId: b, seats: ['A-1-1'] }, 'RESERVED')).rejects.toMatchObject({ code: '23505' });
      await transition(pg, a, ['RESERVED'], 'EXPIRED', 'sweeper');
      await insertBooking(pg, { ...base, bookingId: b, seats: ['A-1-1'] }, 'RESERVED');
      const live = await pg.query('SELECT booking_id FROM booking_seats WHERE seat_id = $1 AND live', ['A-1-1']);
      expect(live.rows).toEqual([{ booking_id: b }]);
    });
  });
});
