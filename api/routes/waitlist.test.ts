import type { TierId, UserId } from '../../engine/ids.js';
import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent, seatedEvent } from '../../test/events.js';
import { startApi, token } from '../../test/http.js';

describe('waitlist API', () => {
  it('join (201, then 200 with the same place), your places; problem+json for every refusal', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    const ev = await createGaEvent(engine, 2, { maxTicketsPerUser: 4 });
    const tierId = ev.tiers[0]!.id;
    const [ann, bob] = await Promise.all([token('ann'), token('bob')]);
    const join = (t: string, body: unknown) => api.call('POST', `/api/events/${ev.id}/waitlist`, { token: t, body });

    // on sale: hold instead
    const onSale = await join(ann, { tierId, ticketCount: 1, email: 'ann@example.com' });
    expect(onSale.status).toBe(409);
    expect(onSale.headers.get('content-type')).toContain('application/problem+json');
    expect(onSale.json).toMatchObject({ type: '/problems/not-sold-out', title: 'Tickets still on sale', available: 2 });

    await engine.bookings.create({ userId: 'holder' as UserId, eventId: ev.id, ticketCount: 2 });
    const first = await join(ann, { tierId, ticketCount: 2, email: 'ann@example.com' });
    expect(first.status).toBe(201);
    expect(first.json).toEqual({ eventId: ev.id, tierId, position: 1, ticketCount: 2, offerMinutes: 5 });
    const again = await join(ann, { tierId, ticketCount: 3, email: 'ann@example.com' });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ position: 1, ticketCount: 2 });
    expect((await join(bob, { tierId, ticketCount: 1, email: 'bob@example.com' })).json).toMatchObject({ position: 2 });
    expect((await api.call('GET', `/api/events/${ev.id}/waitlist`, { token: bob })).json).toEqual({ places: [{ eventId: ev.id, tierId, position: 2, ticketCount: 1, offerMinutes: 5 }] });
    expect((await api.call('GET', `/api/events/${ev.id}/waitlist`, { token: await token('cat') })).json).toEqual({ places: [] });
    expect(await api.metrics.registry.getSingleMetricAsString('floodgate_waitlist_joins_total')).toMatch(/\} 2$/m);

    // refusals: no e-mail to write to, past the limit, an unknown tier, bad input, a seated tier
    const noMail = await join(await token('dan'), { tierId, ticketCount: 1 });
    expect(noMail.status).toBe(400);
    expect(noMail.json).toMatchObject({ type: '/problems/email-required', errors: [{ field: 'email' }] });
    const limit = await join(await token('eve'), { tierId, ticketCount: 5, email: 'eve@example.com' });
    expect(limit.status).toBe(422);
    expect(limit.json).toMatchObject({ type: '/problems/ticket-limit', allowed: 4 });
    expect((await join(await token('eve'), { tierId: 'tr_0000000000', ticketCount: 1, email: 'eve@example.com' })).json).toMatchObject({ type: '/problems/tier-not-found' });
    const bad = await join(await token('eve'), { tierId: 'nope', ticketCount: 0, email: 'not-an-address' });
    expect(bad.status).toBe(400);
    expect(bad.json.type).toBe('/problems/validation');
    expect(bad.json.errors.map((e: { field: string }) => e.field).sort()).toEqual(['email', 'ticketCount', 'tierId']);
    const seated = await engine.createEvent(seatedEvent([{ id: 'A', rows: 1, seatsPerRow: 1 }]));
    await engine.bookings.create({ userId: 'holder' as UserId, eventId: seated.id, ticketCount: 1, seatPreferences: { seatIds: ['A-1-1'] } });
    const noList = await api.call('POST', `/api/events/${seated.id}/waitlist`, { token: ann, body: { tierId: seated.tiers[0]!.id, ticketCount: 1, email: 'ann@example.com' } });
    expect(noList.status).toBe(409);
    expect(noList.json).toMatchObject({ type: '/problems/waitlist-not-available', errors: [{ field: 'tierId' }] });
    expect((await api.call('POST', `/api/events/ev_000000000000/waitlist`, { token: ann, body: { tierId, ticketCount: 1, email: 'a@b.co' } })).status).toBe(404);
    expect(await engine.waitlist.place(ev.id, tierId as TierId, 'eve' as UserId)).toBeNull();
  });
});
