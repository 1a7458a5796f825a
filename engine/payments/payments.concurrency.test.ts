import { describe, expect, it } from '../../test/fixtures.js';
import { simulatedPaymentKeys } from '../keys.js';
import { createGaEvent, seatedEvent } from '../../test/events.js';
import { dropPaymentsBookingFk } from '../../test/follow-outbox.js';
import { drain } from '../../test/wait.js';
import { listSimulatedPayments } from '../../integrations/payments/simulated.js';
import type { Pool } from '../../platform/pg.js';
import { getBooking } from '../booking/bookings-repo.js';
import { isDomainError } from '../errors.js';
import type { BookingId, UserId } from '../ids.js';
import { createEngine } from '../index.js';
import type { PaymentProvider } from './provider.js';

const u = (s: string) => s as UserId;
const TTL = 60_000;

/** Deadlocks Postgres has counted in this database so far (every backend's stats, flushed or not yet, are read fresh). */
async function deadlocks(pg: Pool): Promise<number> {
  await pg.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await pg.query<{ n: string }>('SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()');
  return Number(rows[0]!.n);
}

describe('payments under concurrency (real Redis and Postgres)', () => {
  it('500 simultaneous payments on one tier: all CONFIRMED, counters exact in Redis and Postgres, one charge each, 0 deadlocks', async ({ engine, pg, redis, ns }) => {
    await dropPaymentsBookingFk(pg);
    const N = 500;
    const ev = await createGaEvent(engine, N);
    const tier = ev.tiers[0]!.id;
    const ids: BookingId[] = [];
    for (let i = 0; i < N; i += 50) {
      ids.push(...(await Promise.all(Array.from({ length: 50 }, (_, j) => engine.bookings.create({ userId: u(`p${i + j}`), eventId: ev.id, ticketCount: 1 })))).map((b) => b.reservation.bookingId));
    }
    const before = await deadlocks(pg);
    // the persist worker keeps draining while the payments run (its batches and the payments share Postgres)
    let paying = true;
    const persist = (async () => {
      let n = 0;
      while (paying) n += await drain(engine, ev.id);
      return n + (await drain(engine, ev.id));
    })();
    const results = await Promise.allSettled(ids.map((id, i) => engine.payments.pay({ bookingId: id, userId: u(`p${i}`), paymentMethodId: 'pm_card_visa' })));
    paying = false;
    await persist;
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${ids[i]}: ${String(r.reason)}`] : r.value.outcome !== 'succeeded' ? [`${ids[i]}: ${r.value.outcome}`] : []));
    expect(failed).toEqual([]);

    expect((await engine.inventory.redisState(ev.id))[tier]).toEqual({ cap: N, free: 0, held: 0, sold: N });
    await drain(engine, ev.id);
    expect(await engine.inventory.postgresState(ev.id)).toEqual(await engine.inventory.redisState(ev.id));
    const states = await pg.query<{ state: string; n: number }>('SELECT state, count(*)::int AS n FROM bookings WHERE event_id = $1 GROUP BY state', [ev.id]);
    expect(states.rows).toEqual([{ state: 'CONFIRMED', n: N }]);
    const rows = await pg.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM payments WHERE booking_id = ANY($1::text[]) GROUP BY status', [ids]);
    expect(rows.rows).toEqual([{ status: 'captured', n: N }]);
    const charges = (await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((c) => ids.includes(c.bookingId as never));
    expect(charges.filter((c) => c.status === 'captured')).toHaveLength(N);
    expect(new Set(charges.map((c) => c.bookingId)).size).toBe(N);
    const report = await engine.checkInvariants({ eventIds: [ev.id], charges, drained: true });
    expect(report.violations).toEqual([]);
    expect(await deadlocks(pg)).toBe(before);
  }, 120_000);

  it('a payment racing its hold expiry, many rounds: CONFIRMED and captured, or EXPIRED with the authorization cancelled (or never charged)', async ({ engine, deps, pg, redis, ns, clock }) => {
    await dropPaymentsBookingFk(pg);
    const seen = new Map<string, number>();
    for (let round = 0; round < 30; round++) {
      const ev = await engine.createEvent(seatedEvent([{ id: 'A', rows: 1, seatsPerRow: 2 }]));
      const who = u(`racer${round}`);
      const { reservation } = await engine.bookings.create({ userId: who, eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: ['A-1-1'] } });
      const id = reservation.bookingId;
      // the expiry (and, every other round, a rival for the seat) lands while the provider is authorizing: real
      // concurrent calls, the interleaving left to the event loop, Redis and Postgres
      let atProvider!: () => void;
      const reached = new Promise<void>((r) => (atProvider = r));
      const provider: PaymentProvider = { ...deps.provider!, authorize: (i) => (atProvider(), deps.provider!.authorize(i)) };
      const e2 = createEngine({ ...deps, provider });
      const pay = e2.payments
        .pay({ bookingId: id, userId: who, paymentMethodId: 'pm_card_visa' })
        .catch((e: unknown) => (isDomainError(e) ? { outcome: 'refused' as const, code: e.code } : Promise.reject(e)));
      const expire = (round % 3 === 0 ? Promise.resolve() : reached).then(async () => {
        clock.advance(TTL + deps.config.paymentWindowMs);
        await engine.holds.sweep(ev.id);
        if (round % 2 === 0) await engine.bookings.create({ userId: u(`rival${round}`), eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: ['A-1-1'] } }).catch(() => null);
      });
      const [result] = await Promise.all([pay, expire]);
      await drain(engine, ev.id);
      const money = (await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((m) => m.bookingId === id);
      const status = (await getBooking(pg, id))!.status;
      const attempts = await engine.payments.attempts(id);
      const seat = (await redis.hget(`${ns}:{evt:${ev.id}}:smap`, 'A'))![0];
      const outcome = `${result.outcome}/${status}/${money.map((m) => m.status).join(',') || 'no charge'}`;
      seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
      if (result.outcome === 'succeeded') {
        expect(outcome, `round ${round}`).toBe('succeeded/CONFIRMED/captured');
        expect(seat).toBe('s');
        expect(attempts.map((a) => a.status)).toEqual(['captured']);
      } else {
        expect(['returned', 'refused'], `round ${round}: ${outcome}`).toContain(result.outcome);
        expect(status, `round ${round}`).toBe('EXPIRED');
        expect(money.filter((m) => m.status !== 'cancelled'), `round ${round}: an authorization kept without a ticket`).toEqual([]);
        expect(attempts.filter((a) => ['pending', 'authorized', 'captured'].includes(a.status)), `round ${round}: an attempt left open`).toEqual([]);
        if (result.outcome === 'returned') expect(money.map((m) => m.status)).toEqual(['cancelled']);
      }
      const inv = (await engine.inventory.redisState(ev.id))[ev.tiers[0]!.id]!;
      expect(inv.free + inv.held + inv.sold).toBe(2);
      expect(await engine.inventory.postgresState(ev.id)).toEqual(await engine.inventory.redisState(ev.id));
      clock.set(Date.UTC(2030, 0, 1));
    }
    // both kinds of ending happened (the rival rounds with the expiry first end without a sale)
    expect([...seen.keys()].some((k) => k.startsWith('succeeded'))).toBe(true);
    expect([...seen.keys()].some((k) => !k.startsWith('succeeded'))).toBe(true);
  }, 120_000);
});
