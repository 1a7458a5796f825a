import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent, seatedEvent } from '../../test/events.js';
import { startApi, token } from '../../test/http.js';
import { drain } from '../../test/wait.js';

/** Real concurrent HTTP requests against real Redis and Postgres. */
describe('POST /api/bookings under contention', () => {
  it('last ticket: two users at once, exactly one 201 and one 409 insufficient-inventory', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    const ev = await createGaEvent(engine, 1);
    const [a, b] = await Promise.all([token('last-a'), token('last-b')]);
    const replies = await Promise.all([a, b].map((t) => api.call('POST', '/api/bookings', { token: t, body: { eventId: ev.id, ticketCount: 1 } })));
    expect(replies.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(replies.find((r) => r.status === 409)!.json).toMatchObject({ type: '/problems/insufficient-inventory', available: 0 });
  });

  it('1,000 users, 100 tickets: exactly 100 reserved, 900 clean 409s, no 5xx; Postgres agrees after the drain', async ({ engine, pg, onTestFinished }) => {
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    const ev = await createGaEvent(engine, 100);
    const tokens = await Promise.all(Array.from({ length: 1000 }, (_, i) => token(`crowd-${i}`)));
    const replies = await Promise.all(
      tokens.map((t, i) => api.call('POST', '/api/bookings', { token: t, body: { eventId: ev.id, ticketCount: 1 }, headers: { 'idempotency-key': `k-${i}` } })),
    );
    const byStatus: Record<string, typeof replies> = {};
    for (const r of replies) (byStatus[String(r.status)] ??= []).push(r);
    expect(Object.keys(byStatus).sort()).toEqual(['201', '409']);
    expect(byStatus['201']).toHaveLength(100);
    expect(byStatus['409']).toHaveLength(900);
    expect(byStatus['409']!.every((r) => r.json.type === '/problems/insufficient-inventory')).toBe(true);

    await drain(engine, ev.id);
    const { rows } = await pg.query<{ id: string }>("SELECT id FROM bookings WHERE event_id = $1 AND state = 'RESERVED'", [ev.id]);
    expect(rows.map((r) => r.id).sort()).toEqual(byStatus['201']!.map((r) => r.json.bookingId as string).sort());
    const tier = ev.tiers[0]!.id;
    const redisState = (await engine.inventory.redisState(ev.id))[tier]!;
    expect(redisState).toEqual({ cap: 100, free: 0, held: 100, sold: 0 });
    expect(redisState.cap).toBe(redisState.free + redisState.held + redisState.sold);
    expect((await engine.inventory.postgresState(ev.id))[tier]).toEqual(redisState);
  });

  it('assigned seating: 200 concurrent requests for overlapping seats never put a seat in two bookings', async ({ engine, pg, onTestFinished }) => {
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    const ev = await engine.createEvent({ ...seatedEvent([{ id: 'A', rows: 4, seatsPerRow: 10 }]), maxTicketsPerUser: 10 });
    // each request wants a window of 1-4 consecutive seats in a random row; windows overlap heavily
    const wants = Array.from({ length: 200 }, (_, i) => {
      const n = 1 + (i % 4);
      const row = 1 + ((i * 7) % 4);
      const start = 1 + ((i * 13) % (11 - n));
      return Array.from({ length: n }, (_, j) => `A-${row}-${start + j}`);
    });
    const tokens = await Promise.all(wants.map((_, i) => token(`seat-${i}`)));
    const replies = await Promise.all(
      wants.map((seatIds, i) =>
        api.call('POST', '/api/bookings', { token: tokens[i], body: { eventId: ev.id, ticketCount: seatIds.length, seatPreferences: { seatIds } } }),
      ),
    );
    expect(replies.every((r) => r.status === 201 || (r.status === 409 && r.json.type === '/problems/seat-unavailable'))).toBe(true);
    const won = replies.filter((r) => r.status === 201).flatMap((r) => r.json.seats as string[]);
    expect(new Set(won).size).toBe(won.length);
    expect(won.length).toBeGreaterThan(0);

    await drain(engine, ev.id);
    const dup = await pg.query('SELECT seat_id FROM booking_seats WHERE event_id = $1 AND live GROUP BY seat_id HAVING count(*) > 1', [ev.id]);
    expect(dup.rows).toEqual([]);
    const live = await pg.query<{ seat_id: string }>('SELECT seat_id FROM booking_seats WHERE event_id = $1 AND live', [ev.id]);
    expect(live.rows.map((r) => r.seat_id).sort()).toEqual([...won].sort());
    const map = await api.call('GET', `/api/events/${ev.id}/seats`);
    expect(map.json.sections[0].available).toBe(40 - won.length);
  });

  it('best available under contention: 120 buyers of 2 adjacent seats share 40 seats without overlap', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    const ev = await engine.createEvent(seatedEvent([{ id: 'A', rows: 4, seatsPerRow: 10 }]));
    const tokens = await Promise.all(Array.from({ length: 120 }, (_, i) => token(`best-${i}`)));
    const replies = await Promise.all(
      tokens.map((t) => api.call('POST', '/api/bookings', { token: t, body: { eventId: ev.id, ticketCount: 2, seatPreferences: { section: 'A' } } })),
    );
    const ok = replies.filter((r) => r.status === 201);
    expect(ok).toHaveLength(20);
    expect(replies.filter((r) => r.status === 409)).toHaveLength(100);
    const seats = ok.flatMap((r) => r.json.seats as string[]);
    expect(new Set(seats).size).toBe(40);
    for (const r of ok) {
      const [a, b] = r.json.seats as string[];
      const [, ra, na] = a!.split('-');
      const [, rb, nb] = b!.split('-');
      expect([ra, Number(nb) - Number(na)]).toEqual([rb, 1]);
    }
  });
});
