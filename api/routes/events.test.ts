import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { inProcessApi, token } from '../../test/http.js';
import { snapshotPg } from '../../test/state.js';

describe('catalog and admin API', () => {
  it('an admin creates an event; it is armed at once and listed with live availability', async ({ engine, onTestFinished }) => {
    const api = inProcessApi(engine);
    onTestFinished(() => api.close());
    const admin = await token('root', { admin: true });
    const body = {
      ...gaEvent(50),
      category: 'theatre',
      tiers: [
        { name: 'Stalls', price: 7000, currency: 'GBP', capacity: 60, seating: { sections: [{ id: 'S1', rows: 6, seatsPerRow: 10 }] } },
        { name: 'Standing', price: 2500, currency: 'GBP', capacity: 50 },
      ],
    };
    const created = await api.call('POST', '/api/admin/events', { token: admin, body });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: 'Test GA', category: 'theatre', status: 'on_sale', maxTicketsPerUser: 8 });
    expect(created.json.tiers.map((t: { available: number; seated: boolean }) => [t.available, t.seated])).toEqual([[60, true], [50, false]]);
    const id = created.json.id;

    const buyer = await token('reader');
    const hold = await api.call('POST', '/api/bookings', { token: buyer, body: { eventId: id, tierId: created.json.tiers[1].id, ticketCount: 3 } });
    expect(hold.status).toBe(201);

    const details = await api.call('GET', `/api/events/${id}`);
    expect(details.status).toBe(200);
    expect(details.json.tiers[1]).toMatchObject({ name: 'Standing', capacity: 50, available: 47, held: 3, sold: 0 });
    const list = await api.call('GET', '/api/events?category=theatre');
    expect(list.json.events.map((e: { id: string }) => e.id)).toEqual([id]);
    expect((await api.call('GET', '/api/events?category=sports')).json.events).toEqual([]);
    const seats = await api.call('GET', `/api/events/${id}/seats`);
    expect(seats.json.sections).toEqual([{ id: 'S1', tierId: created.json.tiers[0].id, rows: 6, seatsPerRow: 10, available: 60, seatMap: '.'.repeat(60) }]);
  });

  it('unknown and malformed event ids: 404 and 400', async ({ engine, onTestFinished }) => {
    const api = inProcessApi(engine);
    onTestFinished(() => api.close());
    expect((await api.call('GET', '/api/events/ev_000000000000')).json).toMatchObject({ status: 404, type: '/problems/event-not-found' });
    expect((await api.call('GET', '/api/events/nope')).json).toMatchObject({ status: 400, type: '/problems/validation', errors: [{ field: 'eventId' }] });
    expect((await api.call('GET', '/api/events?status=sold')).status).toBe(400);
    expect((await api.call('GET', '/api/events?category=a%0d%0aSet-Cookie:x')).status).toBe(400);
  });

  it('event creation: 401 without a token, 403 for a non-admin, 400 for bad specs, and nothing is written', async ({ engine, pg, onTestFinished }) => {
    const api = inProcessApi(engine);
    onTestFinished(() => api.close());
    const before = await snapshotPg(pg);
    const events0 = (await pg.query('SELECT count(*)::int AS n FROM events')).rows[0].n;
    expect((await api.call('POST', '/api/admin/events', { body: gaEvent(5) })).status).toBe(401);
    expect((await api.call('POST', '/api/admin/events', { token: await token('user'), body: gaEvent(5) })).json).toMatchObject({
      status: 403,
      type: '/problems/forbidden',
    });
    const admin = await token('root', { admin: true });
    const bad: [unknown, string][] = [
      [{}, 'name'],
      [{ ...gaEvent(5), tiers: [] }, 'tiers'],
      [{ ...gaEvent(5), startsAt: 'tomorrow' }, 'startsAt'],
      [{ ...gaEvent(5), name: 'bad\u0000name' }, 'name'],
      [{ ...gaEvent(5), tiers: [{ name: 'X', price: -1, currency: 'EUR', capacity: 5 }] }, 'tiers.0.price'],
      [{ ...gaEvent(5), tiers: [{ name: 'X', price: 1, currency: 'eur', capacity: 5 }] }, 'tiers.0.currency'],
      [{ ...gaEvent(5), tiers: [{ name: 'X', price: 1, currency: 'EUR', capacity: 9, seating: { sections: [{ id: 'A', rows: 2, seatsPerRow: 5 }] } }] }, 'tiers.0.capacity'],
      [{ ...gaEvent(5), tiers: [
        { name: 'X', price: 1, currency: 'EUR', capacity: 4, seating: { sections: [{ id: 'A', rows: 2, seatsPerRow: 2 }] } },
        { name: 'Y', price: 1, currency: 'EUR', capacity: 4, seating: { sections: [{ id: 'A', rows: 2, seatsPerRow: 2 }] } },
      ] }, 'tiers.1.seating'],
      [{ ...gaEvent(5), tiers: [{ name: 'X', price: 1, currency: 'EUR', capacity: 30_000, seating: { sections: [{ id: 'A', rows: 150, seatsPerRow: 200 }] } }] }, 'tiers.0.seating.sections.0'],
    ];
    for (const [body, field] of bad) {
      const res = await api.call('POST', '/api/admin/events', { token: admin, body });
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.json.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
    expect(await snapshotPg(pg)).toEqual(before);
    expect((await pg.query('SELECT count(*)::int AS n FROM events')).rows[0].n).toBe(events0);
  });
});
